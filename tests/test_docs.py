"""Every example in README.md and docs/*.md runs, and what it prints is checked against the page.

A ```` ```python ```` block must be followed by an ```` ```output ```` block holding exactly what
it prints (trailing spaces and the final newline aside); each block runs in a fresh namespace, and
the JAX float64 flag it may set is restored afterwards. In ```` ```bash ```` blocks only the
``momlab theory ...`` lines run (through :func:`experiments.cli.main`); a comment ``exit status N``
states the status the line must end with (0 otherwise), and an ```` ```output ```` block right
after a bash block holds what its ``momlab theory`` lines print. Other shell lines (installing,
``momlab reproduce``) are not run here.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = ("theory", "optimizers", "simulators", "gpu", "experiments", "benchmarks", "development")
README_COMMANDS = ('pip install -e ".[dev]" && momlab reproduce', "python -m pytest")
README_MAX_BYTES = 20_000
_EXAMPLE_MODULE = "docs_example"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown page."""

    lang: str
    text: str
    line: int


def blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` in order, with the line each starts on."""
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(text)
    ]


def examples(text: str) -> list[tuple[Block, Block | None]]:
    """Each python or bash block with the output block right after it (None when there is none)."""
    found = blocks(text)
    pairs = []
    for i, b in enumerate(found):
        if b.lang not in ("python", "bash"):
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        pairs.append((b, nxt if nxt is not None and nxt.lang == "output" else None))
    return pairs


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_python(code: str, where: str) -> str:
    """Execute ``code`` as a fresh module; return what it printed (JAX's x64 flag restored).

    The module is registered in ``sys.modules`` while it runs, as a script's ``__main__`` is (a
    dataclass defined in an example needs that). Examples run on the CPU even where JAX sees a
    GPU: the pages show what a CPU prints, and float32 results differ between the two.
    """
    import jax

    module = types.ModuleType(_EXAMPLE_MODULE)
    x64 = jax.config.jax_enable_x64
    out = io.StringIO()
    sys.modules[_EXAMPLE_MODULE] = module
    try:
        with contextlib.redirect_stdout(out), jax.default_device(jax.devices("cpu")[0]):
            exec(compile(code, where, "exec"), module.__dict__)
    finally:
        del sys.modules[_EXAMPLE_MODULE]
        jax.config.update("jax_enable_x64", x64)
    return out.getvalue()


def theory_lines(code: str) -> list[tuple[list[str], int]]:
    """The ``momlab theory`` lines of a bash block with the exit status each must end with."""
    found = []
    for line in code.splitlines():
        if not line.startswith("momlab theory "):
            continue
        status = re.search(r"exit status (\d+)", line)
        found.append((shlex.split(line.split("#")[0])[1:], int(status.group(1)) if status else 0))
    return found


def run_theory_lines(code: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run each ``momlab theory`` line; fail on a wrong exit status; return their stdout."""
    from experiments.cli import main

    printed = []
    for argv, status in theory_lines(code):
        got = main(argv)
        captured = capsys.readouterr()
        assert got == status, f"momlab {shlex.join(argv)}: status {got}, expected {status}"
        if status == 0:
            assert captured.err == "", captured.err
        printed.append(captured.out)
    return "".join(printed)


def _pages() -> list[Path]:
    return [README, *DOCS]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_print_what_the_page_shows(
    page: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # paths in the examples are relative to the repository root
    text = page.read_text(encoding="utf-8")
    name = str(page.relative_to(ROOT))
    ran = 0
    for code, output in examples(text):
        where = f"{name}:{code.line}"
        if code.lang == "python":
            assert output is not None, f"{where}: a python example needs an output block after it"
            printed = run_python(code.text, where)
        else:
            if not theory_lines(code.text):
                assert output is None, f"{where}: output shown for a block that is not run"
                continue
            printed = run_theory_lines(code.text, capsys)
            if output is None:
                ran += 1
                continue
        assert _normal(printed) == _normal(output.text), (
            f"{where} printed:\n{printed}\nbut the page shows:\n{output.text}"
        )
        ran += 1
    if page != README:
        assert ran > 0 or page.stem in ("development",), f"{name} has no executed example"


def test_every_package_has_its_page() -> None:
    assert sorted(p.stem for p in DOCS) == sorted(PAGES)
    readme = README.read_text(encoding="utf-8")
    for page in PAGES:
        assert f"(docs/{page}.md)" in readme, f"README does not link docs/{page}.md"


def test_readme_is_a_newcomers_page() -> None:
    readme = README.read_text(encoding="utf-8")
    first = blocks(readme)[0]
    assert first.lang == "bash" and first.text.strip().splitlines() == list(README_COMMANDS)
    assert len(readme.encode()) <= README_MAX_BYTES, "per-package reference belongs in docs/"
    found = [c for c, _ in examples(readme)]
    assert sum(c.lang == "python" for c in found) >= 2, "the sqrt(mu) and staleness examples"
    assert any(c.lang == "bash" and theory_lines(c.text) for c in found), "a momlab theory line"


def test_relative_links_resolve() -> None:
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_a_wrong_output_is_caught() -> None:
    page = "```python\nprint(1 + 1)\n```\n\n```output\n3\n```\n"
    [(code, output)] = examples(page)
    assert output is not None
    assert _normal(run_python(code.text, "planted")) != _normal(output.text)
