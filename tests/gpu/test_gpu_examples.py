"""Every docstring example in ``gpu`` runs and prints what it shows (DESIGN.md: docstrings give an
example). The model examples build and run ResNets (about 10 s each on a CPU): marked slow."""

from __future__ import annotations

import pkgutil

import pytest

import gpu
from tests.simulators._examples import run_examples

MODULES = sorted(m.name for m in pkgutil.walk_packages(gpu.__path__, prefix="gpu."))


@pytest.mark.parametrize(
    "module_name",
    [pytest.param(m, marks=pytest.mark.slow) if m.startswith("gpu.models") else m for m in MODULES],
)
def test_docstring_examples_run(module_name: str) -> None:
    run_examples(module_name)
