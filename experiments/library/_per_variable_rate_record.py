"""Bookkeeping of experiment 12 (per-variable-rate): progress in steps, the record's run tables and
its arrays (per network, prefixed ``mlp_`` / ``lstm_``)."""

from __future__ import annotations

import numpy as np

from experiments import runtime


class Progress:
    """Progress in heavy-ball steps, plus a fixed charge per polish, reported through
    :func:`experiments.runtime.progress` (the CLI turns it into a bar with an ETA).

    Example:
        >>> bar = Progress(2000.0)
        >>> bar.add(8000.0)
        >>> bar.advance(2000.0, "pilot")
        >>> bar.done / bar.total
        0.2
    """

    def __init__(self, expected: float) -> None:
        self.total, self.done = float(expected), 0.0

    def add(self, units: float) -> None:
        """Plan ``units`` more work."""
        self.total += float(units)

    def advance(self, units: float, what: str) -> None:
        """Count ``units`` as done."""
        self.done += float(units)
        runtime.progress(min(self.done, self.total), self.total, what)

    def chunk(self, what: str):
        """A ``(steps done, steps in all)`` callback for the chunks of the next run."""
        start = self.done

        def report(done: int, _total: int) -> None:
            runtime.progress(min(start + done, self.total), self.total, what)

        return report

    def finish_chunks(self, units: float, what: str) -> None:
        """Count a finished run's ``units`` as done."""
        self.advance(units, what)


def public(r: dict) -> dict:
    """A run summary without its arrays (keys starting with ``_``), JSON-ready."""
    out = {}
    for k, v in r.items():
        if k.startswith("_"):
            continue
        out[k] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def record_arrays(name: str, results: list[dict], noisy: list[dict]) -> dict[str, np.ndarray]:
    """The figure's arrays of one network: per run, then the noisy runs (``<name>_noisy_*``)."""
    usable_runs = [r for r in results if "_rates" in r]
    out: dict[str, np.ndarray] = {}
    if usable_runs:
        width = max(r["_shown"].shape[0] for r in usable_runs)

        def pad(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, np.full((width - a.shape[0], a.shape[1]), np.nan)])

        for key in (
            "mu",
            "alpha",
            "alpha_lo",
            "alpha_hi",
            "inside",
            "predicted_rate",
            "median_rate",
            "log_tolerance",
            "fraction_following_sqrt_mu",
            "fraction_following_prediction",
        ):
            out[f"{name}_{key}"] = np.array([r[key] for r in usable_runs])
        out[f"{name}_rates"] = np.stack([r["_rates"] for r in usable_runs])
        out[f"{name}_shown"] = np.stack([pad(r["_shown"]) for r in usable_runs])
    if noisy:
        for key in ("mu", "alpha", "fraction_following_sqrt_mu", "median_rate"):
            out[f"{name}_noisy_{key}"] = np.array([r[key] for r in noisy])
    return out
