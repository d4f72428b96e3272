"""An interrupted ``momlab reproduce`` (SIGKILL mid-run) loses no finished record and resumes.

The command runs in a subprocess with two fake experiments added through
``MOMLAB_EXTRA_EXPERIMENTS`` (see ``_fake_experiments.py``): ``fake-fast`` finishes at once,
``fake-slow`` touches a marker file and then sleeps, and the test kills the process while it sleeps.
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


def _argv(out: Path) -> list[str]:
    only = ["--only", "fake-fast", "--only", "fake-slow"]
    return [sys.executable, "-m", "experiments.cli", "reproduce", "--out", str(out), *only]


def test_killed_reproduce_keeps_finished_records_and_resumes(tmp_path: Path) -> None:
    out, marker = tmp_path / "results", tmp_path / "slow-started"
    proc = subprocess.Popen(
        _argv(out),
        cwd=ROOT,
        env=_env(marker, sleep=300),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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
