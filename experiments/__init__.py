"""Every claim of the papers as a reproducible experiment: prediction, measurement and verdict.

The public names are importable from the package itself (loaded on first use, so importing one
submodule stays cheap)::

    from experiments import Record, get, run_experiment, write_report

    record = run_experiment(get("robust-region"), quick=True, seed=0, out="results")

The submodules ``registry``, ``reproduce`` (whose :func:`~experiments.reproduce.reproduce` runs
everything that fits the machine), ``record`` and ``report`` are importable too; experiment modules
use :mod:`experiments.framework`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Experiment": "experiments.registry",
    "discover": "experiments.registry",
    "get": "experiments.registry",
    "import_errors": "experiments.registry",
    "register": "experiments.registry",
    "Record": "experiments.record",
    "Check": "experiments.checks",
    "decide": "experiments.checks",
    "verdict": "experiments.record",
    "Outcome": "experiments.reproduce",
    "finished_record": "experiments.reproduce",
    "run_experiment": "experiments.reproduce",
    "code_fingerprint": "experiments.fingerprint",
    "load_records": "experiments.report",
    "write_report": "experiments.report",
}
_MODULES = ("checks", "framework", "record", "registry", "report", "reproduce", "stats")

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
