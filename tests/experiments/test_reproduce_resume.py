"""An interrupted ``momlab reproduce`` (SIGKILL mid-run) loses no finished record and resumes.

The command runs in a subprocess with two fake experiments added through
``MOMLAB_EXTRA_EXPERIMENTS`` (see ``_fake_experiments.py``): ``fake-fast`` finishes at once,
``fake-slow`` touches a marker file and then sleeps, and the test kills the process while it sleeps.
A forced rerun killed the same way must leave the previous record of ``fake-slow`` untouched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.record import Record
from experiments.registry import EXTRA_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _env(marker: Path, sleep: float) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env[EXTRA_ENV] = "_fake_experiments"
    env["MOMLAB_FAKE_MARKER"] = str(marker)
    env["MOMLAB_FAKE_SLEEP"] = str(sleep)
    env["JAX_PLATFORMS"] = "cpu"
    env["MPLBACKEND"] = "Agg"
    return env


def _argv(out: Path, *extra: str) -> list[str]:
    only = ["--only", "fake-fast", "--only", "fake-slow"]
    return [sys.executable, "-m", "experiments.cli", "reproduce", "--out", str(out), *only, *extra]


def _kill_while_slow_runs(argv: list[str], marker: Path) -> None:
    """Start ``argv`` and SIGKILL it once ``fake-slow`` has started (it then sleeps 300 s)."""
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=_env(marker, sleep=300), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120  # interpreter + jax start-up on a loaded 2-core machine
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fake-slow never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def test_killed_reproduce_keeps_finished_records_and_resumes(tmp_path: Path) -> None:
    out, marker = tmp_path / "results", tmp_path / "slow-started"
    _kill_while_slow_runs(_argv(out), marker)

    fast_json = out / "fake-fast" / "record.json"
    finished = fast_json.read_bytes()
    assert Record.load(out / "fake-fast").verdict == "holds"
    assert not (out / "fake-slow" / "record.json").exists(), "an unfinished run left a record"
    assert not list(out.rglob("*.tmp"))

    marker.unlink()
    done = subprocess.run(
        _argv(out),
        cwd=ROOT,
        env=_env(marker, sleep=0),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "fake-fast: reused" in done.stdout and "fake-slow: ran" in done.stdout
    assert fast_json.read_bytes() == finished  # reused, not rewritten
    assert Record.load(out / "fake-slow").verdict == "holds"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="fake-fast"' in report and 'id="fake-slow"' in report

    assert not (out / ".momlab-staging").exists()

    # A forced rerun killed while fake-slow runs again leaves fake-slow's previous finished record
    # whole, figures included (fake-fast was rerun before the kill: its new record is complete).
    slow = out / "fake-slow"
    before = {p.name: p.read_bytes() for p in slow.iterdir()}
    assert set(before) == {"record.json", "arrays.npz", "figure.png", "figure.svg"}
    _kill_while_slow_runs(_argv(out, "--force"), marker)
    assert {p.name: p.read_bytes() for p in slow.iterdir()} == before
    assert Record.load(out / "fake-fast").verdict == "holds"
    assert fast_json.read_bytes() != finished  # forced: rewritten (new start time)
    assert not list(out.rglob("*.tmp"))
