"""``momlab --help`` and ``momlab list`` start without the scientific stack; the static catalog
equals the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from experiments import catalog, registry

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sympy", "scipy", "matplotlib", "jax", "flax", "optax")


def test_catalog_equals_the_live_registry() -> None:
    # Regenerate with `python -m experiments.catalog` after adding or renaming an experiment.
    assert list(catalog.CATALOG) == catalog.live_entries()
    assert not registry.import_errors()


def test_help_and_list_import_none_of_the_scientific_stack() -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from experiments import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    codes = [cli.main(['--help']), cli.main(['list']), cli.main(['theory', '--help'])]\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy, 'out': out.getvalue()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != registry.EXTRA_ENV}
    env["COLUMNS"] = "80"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0, 0, 0]
    assert result["heavy"] == []
    # every name whole on an 80-column terminal
    for entry in catalog.CATALOG:
        assert entry.name in result["out"]
