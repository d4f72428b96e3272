"""The GPU evidence in one short run: the paper-scale tier of every experiment that declares one.

``python -m experiments.gpu_checks`` is what to run on a GPU machine that is lent briefly. It
selects the experiments whose configuration declares a ``gpu()`` tier (today ``per-variable-rate``
and ``yellowfin-vs-adam``), runs each at the ``gpu`` tier through
:func:`experiments.reproduce.run_experiment` (the same call as ``momlab reproduce --gpu``, so the
records, figures and report are the usual ones), one after another within a wall-clock budget
(default 540 s, so that the whole call stays under 10 minutes), and writes the report. An
experiment that would start after the budget is spent is listed as not run, with that reason, and
a later call resumes: finished records of the same code and configuration are reused.

``--tiny`` runs the quick tier instead, through the same function: the check of this script on a
CPU machine (the test suite runs it on fake experiments).

Data the gpu tier reads from directories the user gives (``MOMLAB_CIFAR_DIR`` for CIFAR-10/100,
``MOMLAB_TEXT`` for the corpus file) are named by the experiment itself when missing.

Exit status 0 when every selected experiment produced a record or was left for the next call by
the budget, 1 when one raised, 2 on invalid input.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from experiments import registry

DEFAULT_BUDGET_S = 540.0


def selected(only: Sequence[str] = ()) -> list[registry.Experiment]:
    """The experiments with a gpu tier (or the named ones), in report order.

    Raises:
        ValueError: for an unknown name, or a named experiment without a gpu tier.
    """
    known = registry.discover()
    if not only:
        return [e for e in known if e.has_gpu_tier]
    chosen = [registry.get(name) for name in dict.fromkeys(only)]
    for exp in chosen:
        if not exp.has_gpu_tier:
            raise ValueError(f"--only: {exp.name} has no gpu tier (its config defines no gpu())")
    return chosen


def run_checks(
    *,
    out: str | Path,
    only: Sequence[str] = (),
    budget_s: float = DEFAULT_BUDGET_S,
    tiny: bool = False,
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, str]:
    """Run the gpu tier (quick with ``tiny``) of the selected experiments within ``budget_s``.

    Returns:
        ``{name: outcome}``: the verdict, ``"reused: <verdict>"``, or ``"not run: ..."`` when the
        budget was spent before it started.

    Raises:
        ValueError: for a non-positive budget, an unknown name or an unwritable ``out``.
    """
    from experiments import reproduce
    from experiments.report import write_report

    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0 seconds (got {budget_s})")
    tier = "quick" if tiny else "gpu"
    target = reproduce.ensure_output_dir(out)
    start = clock()
    outcomes: dict[str, str] = {}
    missing: dict[str, str] = {}
    for exp in selected(only):
        old = reproduce.finished_record(exp, tier=tier, seed=seed, out=target)
        if old is not None:
            outcomes[exp.name] = f"reused: {old.verdict}"
            continue
        spent = clock() - start
        if spent >= budget_s:
            why = f"not run: the {budget_s:.0f} s budget was spent ({spent:.0f} s); run again"
            outcomes[exp.name] = missing[exp.name] = why
            continue
        record = reproduce.run_experiment(exp, tier=tier, seed=seed, out=target)
        outcomes[exp.name] = record.verdict
    write_report(target, missing=missing)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.gpu_checks", description=__doc__)
    parser.add_argument("--out", default="results-gpu", help="results directory")
    parser.add_argument("--only", action="append", default=[], help="experiment (repeatable)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    parser.add_argument("--tiny", action="store_true", help="quick tier (a check on the CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        outcomes = run_checks(
            out=args.out, only=args.only, budget_s=args.budget_s, tiny=args.tiny, seed=args.seed
        )
    except (ValueError, OSError) as err:
        print(f"gpu_checks: error: {err}", file=sys.stderr)
        return 2
    for name, outcome in outcomes.items():
        print(f"{name}: {outcome}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 1 if "error" in outcomes.values() else 0


if __name__ == "__main__":
    sys.exit(main())
