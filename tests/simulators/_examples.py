"""Run the docstring examples of one module (shared by the simulators and gpu example tests)."""

from __future__ import annotations

import doctest
import importlib

import pytest


def run_examples(module_name: str) -> None:
    """Run the doctests of one module; fail with doctest's report when an example differs."""
    module = importlib.import_module(module_name)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, module_name):
        runner.run(test, out=out.append)
    if runner.failures:
        pytest.fail("".join(out), pytrace=False)
