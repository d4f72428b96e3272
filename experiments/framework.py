"""The public face of the experiment framework: what an experiment module imports.

An experiment lives in ``experiments/library/<name>.py``::

    from experiments.framework import Experiment, Record, register, verdict

    @dataclass(frozen=True)
    class Config:
        n: int = 1000

        @classmethod
        def quick(cls) -> "Config":
            return cls(n=100)

    def run(cfg: Config, seed: int) -> Record:
        checks = [check("rate", "verification", abs(measured - predicted) <= tol, ...)]
        return Record(claim, prediction, measurement, tolerance, checks=checks)  # verdict derived
    def plot(record: Record) -> Figure: ...              # use experiments.framework.figure

    EXPERIMENT = register(Experiment(name="my-claim", title="...", claim="...", config=Config,
                                     run=run, plot=plot, device="cpu", order=50))
"""

from __future__ import annotations

from experiments.checks import Check, check, decide, interval_check
from experiments.record import Record, to_jsonable, verdict
from experiments.registry import Experiment, discover, get, register
from experiments.report import write_report
from experiments.reproduce import reproduce, run_experiment
from experiments.stats import bootstrap_interval, ratio_interval
from experiments.style import STYLE, figure, moving_average, save_figure, style

__all__ = [
    "STYLE",
    "Check",
    "Experiment",
    "Record",
    "bootstrap_interval",
    "check",
    "decide",
    "discover",
    "figure",
    "get",
    "interval_check",
    "moving_average",
    "ratio_interval",
    "register",
    "reproduce",
    "run_experiment",
    "save_figure",
    "style",
    "to_jsonable",
    "verdict",
    "write_report",
]
