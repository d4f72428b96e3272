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

Speed and memory: every training run an experiment makes through ``gpu.train`` or a
``gpu.ResourceMeter`` is collected (:func:`gpu.collect_resources`) and written with the
experiment's wall time, the device allocator's peak (GPU; cumulative over the process) and the
process's peak resident set to ``<out>/resources.json`` (merged over calls), each run with its
steps per second (compilation excluded) and peak memory (see ``gpu.resources``); one line per
experiment is printed.

Data the gpu tier reads from directories the user gives (``MOMLAB_CIFAR_DIR`` for CIFAR-10/100,
``MOMLAB_TEXT`` for the corpus file) are named by the experiment itself when missing.

Exit status 0 when every selected experiment produced a record or was left for the next call by
the budget, 1 when one raised, 2 on invalid input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import registry

DEFAULT_BUDGET_S = 540.0
RESOURCES_FILE = "resources.json"


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
    from gpu import collect_resources

    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0 seconds (got {budget_s})")
    tier = "quick" if tiny else "gpu"
    target = reproduce.ensure_output_dir(out)
    start = clock()
    outcomes: dict[str, str] = {}
    missing: dict[str, str] = {}
    measured: dict[str, dict[str, Any]] = {}
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
        t0 = time.perf_counter()
        with collect_resources() as runs:
            record = reproduce.run_experiment(exp, tier=tier, seed=seed, out=target)
        measured[exp.name] = experiment_resources(runs, time.perf_counter() - t0, tier)
        outcomes[exp.name] = record.verdict
    write_resources(target / RESOURCES_FILE, measured)
    write_report(target, missing=missing)
    return outcomes


def experiment_resources(runs: Sequence[Any], wall_time_s: float, tier: str) -> dict[str, Any]:
    """What one experiment used: its runs' ``RunResources`` and process-wide peaks."""
    from gpu import device_peak_bytes, process_peak_rss_bytes

    rates = [r.steps_per_s for r in runs if r.steps_per_s is not None]
    peaks = [r.peak_bytes for r in runs if r.peak_bytes is not None]
    return {
        "tier": tier,
        "wall_time_s": wall_time_s,
        "runs": [r.as_dict() for r in runs],
        "median_steps_per_s": float(np.median(rates)) if rates else None,
        "max_peak_bytes": max(peaks) if peaks else None,
        "device_peak_bytes_so_far": device_peak_bytes(),
        "process_peak_rss_bytes": process_peak_rss_bytes(),
    }


def write_resources(path: Path, measured: dict[str, dict[str, Any]]) -> None:
    """Merge ``measured`` into the JSON at ``path`` (per-experiment entries replaced)."""
    payload: dict[str, Any] = {}
    if path.is_file():
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            payload = {}
    payload.update(measured)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def resource_line(entry: dict[str, Any]) -> str:
    """``runs, median steps/s, largest peak`` of one experiment's entry."""
    rate, peak = entry.get("median_steps_per_s"), entry.get("max_peak_bytes")
    rate_s = "-" if rate is None else f"{rate:.1f}"
    peak_s = "-" if peak is None else f"{peak / 2**20:.1f} MiB"
    return f"{len(entry['runs'])} runs, median {rate_s} steps/s, peak {peak_s}"


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
    used = Path(args.out) / RESOURCES_FILE
    used = json.loads(used.read_text(encoding="utf-8")) if used.is_file() else {}
    for name, outcome in outcomes.items():
        extra = f" ({resource_line(used[name])})" if name in used else ""
        print(f"{name}: {outcome}{extra}")
    print(f"speed and memory: {Path(args.out) / RESOURCES_FILE}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 1 if "error" in outcomes.values() else 0


if __name__ == "__main__":
    sys.exit(main())
