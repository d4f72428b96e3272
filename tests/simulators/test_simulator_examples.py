"""Every docstring example in ``simulators`` runs and prints what it shows (DESIGN.md: docstrings
give an example). ``# doctest: +SKIP`` marks examples too long for the test run."""

from __future__ import annotations

import pkgutil

import pytest

import simulators
from tests.simulators._examples import run_examples

MODULES = sorted(m.name for m in pkgutil.walk_packages(simulators.__path__, prefix="simulators."))


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    run_examples(module_name)
