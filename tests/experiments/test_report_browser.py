"""The report opens in a real browser: every figure loads, every anchor resolves, no console error.

The page is rendered by headless Chromium (Debian's ``chromium``, installed by ``.ci/run``). A copy
of the report gets a probe script: one part, first in ``<head>``, records console errors and
uncaught exceptions; the other, run on the ``load`` event, writes what it found (image natural
widths, unresolved ``#anchors``, the errors) into the DOM, which ``--dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest
from _fake_experiments import BROKEN, FAST

from experiments import registry, reproduce
from experiments.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_HEAD_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
const __err = console.error;
console.error = (...a) => { window.__errors.push(a.join(" ")); __err(...a); };
</script>"""

_LOAD_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => ({alt: i.alt, w: i.naturalWidth, ok: i.complete}));
  const anchors = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute("href"));
  const broken = anchors.filter(h => !document.getElementById(decodeURIComponent(h.slice(1))));
  const out = document.createElement("pre");
  out.id = "momlab-probe";
  const errors = window.__errors;
  out.textContent = JSON.stringify({imgs, anchors: anchors.length, broken, errors});
  document.body.appendChild(out);
});
</script>"""


def _probe(page_html: str) -> str:
    page_html = page_html.replace("<head>", "<head>" + _HEAD_PROBE, 1)
    return page_html.replace("</body>", _LOAD_PROBE + "</body>", 1)


def _render(page_html: str, tmp_path) -> dict:
    """Open ``page_html`` (with the probe) in headless Chromium and return what the probe found."""
    probed = tmp_path / "probed.html"
    probed.write_text(_probe(page_html), encoding="utf-8")
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probed.as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="momlab-probe">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, (done.returncode, done.stderr[-2000:])
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {FAST.name: FAST, BROKEN.name: BROKEN})
    for exp in (FAST, BROKEN):
        reproduce.run_experiment(exp, quick=True, seed=1, out=tmp_path)
    page, _ = write_report(tmp_path, missing={"fake-gpu": "needs data"})
    result = _render(page.read_text(encoding="utf-8"), tmp_path)
    assert result["errors"] == []
    assert len(result["imgs"]) == 1  # fake-fast's figure (fake-broken raised: no figure)
    assert all(i["ok"] and i["w"] > 0 for i in result["imgs"]), result["imgs"]
    assert result["anchors"] >= 2 and result["broken"] == []


def test_the_probe_detects_a_broken_image_and_anchor(tmp_path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    bad = (
        '<html><head></head><body><a href="#nowhere">x</a><img alt="b" src="no.png"></body></html>'
    )
    result = _render(bad, tmp_path)
    assert result["broken"] == ["#nowhere"]
    assert result["imgs"][0]["w"] == 0
