"""The images and links of a report page, for the tests of the report."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class PageTags(HTMLParser):
    """Collects the attributes of every ``<img>`` and the ``href`` of every ``<a>``."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))


def parse_page(page: Path) -> PageTags:
    """The tags of the HTML file ``page``."""
    parser = PageTags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser
