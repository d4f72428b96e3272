"""Ctrl-C during ``momlab reproduce``: one line, exit status 130, no crash, records kept.

The command runs in a subprocess (the console-script entry point, which installs the SIGINT
handler) with the fake experiments of ``_fake_experiments.py``; ``fake-slow`` is kept busy in
jitted JAX code, where a ``KeyboardInterrupt`` used to end in a segmentation fault.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.cli import INTERRUPTED
from experiments.record import Record
from experiments.registry import EXTRA_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_one_sigint_stops_cleanly_with_status_130(tmp_path) -> None:
    marker = tmp_path / "started"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    env[EXTRA_ENV] = "_fake_experiments"
    env["MOMLAB_FAKE_MARKER"] = str(marker)
    env["MOMLAB_FAKE_SLEEP"] = "120"
    env["JAX_PLATFORMS"] = "cpu"
    env["MPLBACKEND"] = "Agg"
    env["MOMLAB_FAKE_JAX"] = "1"
    out = tmp_path / "results"
    code = "from experiments.cli import run; run()"
    argv = [sys.executable, "-c", code, "reproduce", "--out", str(out)]
    argv += ["--only", "fake-fast", "--only", "fake-slow"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fake-slow never started"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert stderr.decode().strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in stderr.decode() and "Exception ignored" not in stderr.decode()
    assert "fake-fast: ran" in stdout.decode()
    assert Record.load(out / "fake-fast").verdict == "holds"
    assert not (out / "fake-slow" / "record.json").exists()
