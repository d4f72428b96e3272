"""Experiment 13: MoMo's robustness to the learning rate, against momentum SGD and Adam.

Claim (Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates", arXiv 2305.07583,
Sec. 6 and Fig. 1, an empirical published claim): over a sweep of constant learning rates MoMo
stays near its best over a wider band of learning rates than momentum SGD, and MoMo-Adam than Adam.

Prediction: the published claim itself (no closed form exists): ``width(MoMo) > width(SGD-M)`` and
``width(MoMo-Adam) > width(Adam)``. For one seed, a learning rate is *good* when its final
training loss (mean batch loss of the last ``tail`` steps) is at most ``factor`` times the seed's
best over the grid; the *band* is the contiguous run of good grid points around the best one and
its *width* is ``log10(lr_hi / lr_lo)`` decades (:mod:`experiments.library._lr_band`).

Measurement: each method trains an MLP on the 8x8 digits from ``seeds`` initialisations (seed =
initial weights and batch order), vmapped over seeds and learning rates, for
:func:`optimizers.momo`, ``optax.sgd(momentum=0.9)``, :func:`optimizers.momo_adam` and
``optax.adam``. Each method's grid (``per_decade`` points a decade) starts from two decades around
its default and grows a decade at a time until every seed's band is closed on both sides, up to
``grid_cap``. MoMo's and MoMo-Adam's step is ``tau_k = min(cap_k, model step)`` with
``cap_k = lr`` (``lr / (1 - b1^k)`` for MoMo-Adam): once the cap never binds at some learning rate,
every larger one runs the identical trajectory, so their grids stop growing there and the band
stays open above for good.

Checks. Preconditions: every method trained (best final loss below ``trained_fraction`` of the
chance loss ``ln 10``), and for each pair both bands closed on both sides on every seed; a band
that is still open (censored by the grid, or with no upper edge because the cap is inactive) makes
the pair's comparison ``not applicable``, with the measured reason. Reproduction (one per pair):
the bootstrap interval over seeds of the mean paired width difference must lie above 0 (pass),
below or at 0 (fail), or it straddles 0 (unresolved).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np
import optax
from flax import nnx
from matplotlib.figure import Figure

from experiments.framework import (
    Check,
    Experiment,
    Record,
    bootstrap_interval,
    check,
    interval_check,
    register,
)
from experiments.library._lr_band import Exploration, SeedLrSweep, explore
from experiments.library._momo_robustness_plot import plot_bands
from gpu import classification_task
from gpu.data import load_digits
from gpu.models import MLP
from optimizers import momo, momo_adam

METHODS = ("momo", "sgdm", "momo-adam", "adam")
PAIRS = (("momo", "sgdm"), ("momo-adam", "adam"))
CHANCE_LOSS = math.log(10.0)  # cross-entropy of a uniform guess over the 10 digits


@dataclasses.dataclass(frozen=True)
class MomoRobustnessConfig:
    """Model, grids, seeds and the good-band factor.

    Attributes:
        hidden: hidden widths of the MLP on the 8x8 digits.
        batch_size: training batch size.
        steps: training steps per (seed, learning rate).
        tail: steps averaged into the final training loss.
        seeds: independent initialisations and batch orders (at least 3).
        per_decade: grid points per decade (at least 3).
        factor: a learning rate is good when its final loss is at most ``factor`` x the best.
        start: first and last decade block of each method's initial grid (MoMo's lr lives on the
            EMA-momentum scale, about 10x that of ``SGD(momentum=0.9)``; Adam's two decades lower).
        grid_cap: lowest and highest decade block any grid may reach.
        momentum: SGD-M's momentum, MoMo's beta, Adam's and MoMo-Adam's b1.
        trained_fraction: a method trained when its best final loss is below this fraction of
            the chance loss ``ln 10`` on every seed.
        smoke: why this configuration cannot decide (empty when it can).
    """

    hidden: tuple[int, ...] = (64,)
    batch_size: int = 32
    steps: int = 600
    tail: int = 60
    seeds: int = 8
    per_decade: int = 3
    factor: float = 2.0
    start: tuple[tuple[str, int, int], ...] = (
        ("momo", -1, 0),
        ("sgdm", -2, -1),
        ("momo-adam", -3, -2),
        ("adam", -3, -2),
    )
    grid_cap: tuple[int, int] = (-7, 4)
    momentum: float = 0.9
    trained_fraction: float = 0.5
    smoke: str = ""

    @classmethod
    def quick(cls) -> MomoRobustnessConfig:
        """3 seeds, a 16-unit MLP, 150 steps (well under a minute on an idle 2-core CPU)."""
        return cls(
            hidden=(16,),
            steps=150,
            tail=15,
            seeds=3,
            smoke="3 seeds of 150 steps: a bootstrap interval over 3 seeds cannot resolve a "
            "width difference",
        )


def _makers(mom: float) -> dict[str, tuple[Callable, Callable[[np.ndarray], np.ndarray] | None]]:
    """Optimizer factory and cap-over-learning-rate of each method."""
    return {
        "momo": (functools.partial(momo, beta=mom), lambda k: np.ones(k.shape)),
        "sgdm": (functools.partial(optax.sgd, momentum=mom), None),
        "momo-adam": (functools.partial(momo_adam, b1=mom), lambda k: 1.0 / (1.0 - mom**k)),
        "adam": (functools.partial(optax.adam, b1=mom), None),
    }


def cap_inactive_from(ex: Exploration) -> float | None:
    """Smallest grid learning rate from which the cap never bound on any step of any seed (None
    when the method has no cap or the cap binds at the top of the grid)."""
    if ex.capped is None:
        return None
    active = np.max(ex.capped, axis=0) > 0.0
    if active[-1]:
        return None
    last = np.flatnonzero(active)
    return float(ex.lrs[last[-1] + 1 if last.size else 0])


def _open_reason(name: str, ex: Exploration, cap: tuple[int, int]) -> str:
    """Why ``name``'s band is open, or "" when it is closed on every seed."""
    out = []
    n = len(ex.bands)
    below = sum(b.open_below for b in ex.bands)
    above = sum(b.open_above for b in ex.bands)
    if below:
        out.append(f"{name} open below on {below}/{n} seeds at the grid cap 1e{cap[0]}")
    if above and ex.stop_above == "uncapped":
        out.append(
            f"{name} open above on {above}/{n} seeds: its cap never binds for lr >= "
            f"{cap_inactive_from(ex):.3g}, so every larger lr runs the same trajectory (no upper "
            "edge)"
        )
    elif above:
        out.append(f"{name} open above on {above}/{n} seeds at the grid cap 1e{cap[1]}")
    return "; ".join(out)


def compare(
    explorations: dict[str, Exploration], cfg: MomoRobustnessConfig
) -> tuple[list[Check], dict]:
    """The checks of the record from each method's final grid (module docstring, "Checks")."""
    best = {m: np.array([np.nanmin(r) for r in ex.loss]) for m, ex in explorations.items()}
    worst = max(float(np.max(b)) for b in best.values())
    limit = cfg.trained_fraction * CHANCE_LOSS
    untrained = [m for m, b in best.items() if float(np.max(b)) > limit]
    checks = [
        check(
            "training_progressed",
            "precondition",
            not untrained,
            predicted={"upper": limit},
            measured={m: float(np.max(b)) for m, b in best.items()},
            tolerance=f"best final loss <= {cfg.trained_fraction:g} ln 10 on every seed",
            note=f"worst best-loss {worst:.3g}"
            + (f"; not trained: {', '.join(untrained)}" if untrained else ""),
        )
    ]
    widths = {m: np.array([b.width for b in ex.bands]) for m, ex in explorations.items()}
    diffs: dict[str, dict] = {}
    for i, (a, b) in enumerate(PAIRS):
        key = f"{a}_vs_{b}".replace("-", "_")
        why = "; ".join(
            r for r in (_open_reason(m, explorations[m], cfg.grid_cap) for m in (a, b)) if r
        )
        checks.append(
            check(
                f"bands_closed_{key}",
                "precondition",
                not why,
                measured={m: widths[m].tolist() for m in (a, b)},
                tolerance="every seed's band has a non-good grid point on both sides",
                note=why or "every band closed on both sides",
            )
        )
        name = f"{a}_band_wider_than_{b}".replace("-", "_")
        d = widths[a] - widths[b]
        if why:
            checks.append(
                check(
                    name,
                    "reproduction",
                    None,
                    predicted={"lower": 0.0},
                    measured={"width_difference_decades": d.tolist()},
                    note="not compared: a band is censored (" + why + ")",
                    headline=i == 0,
                )
            )
            diffs[key] = {"per_seed": d.tolist(), "mean": None, "interval": None}
            continue
        lo, hi = bootstrap_interval(d, seed=i)
        checks.append(
            interval_check(
                name,
                "reproduction",
                (lo, hi),
                lower=0.0,
                measured={"mean_decades": float(d.mean()), "interval": [lo, hi]},
                note=f"width({a}) - width({b}) = {d.mean():.2f} decades, 95% bootstrap "
                f"[{lo:.2f}, {hi:.2f}] over {d.size} seeds",
                headline=i == 0,
            )
        )
        diffs[key] = {"per_seed": d.tolist(), "mean": float(d.mean()), "interval": [lo, hi]}
    return checks, diffs


def run(cfg: MomoRobustnessConfig, seed: int) -> Record:
    """Grow each method's grid until its bands close; compare band widths in decades."""
    if cfg.seeds < 3 or cfg.per_decade < 3:
        raise ValueError(f"seeds and per_decade must be >= 3 (got {cfg.seeds}, {cfg.per_decade})")
    ds = load_digits()
    task = classification_task(ds, cfg.batch_size)
    in_dim = int(np.prod(ds.x_train.shape[1:]))
    seeds = [seed + i for i in range(cfg.seeds)]
    models = [MLP(in_dim, cfg.hidden, 10, rngs=nnx.Rngs(s)) for s in seeds]
    start = {m: (lo, hi) for m, lo, hi in cfg.start}
    explorations: dict[str, Exploration] = {}
    for name, (make, cap) in _makers(cfg.momentum).items():
        sweep = SeedLrSweep(make, task, models, seeds, cfg.steps, cfg.tail, cap)
        explorations[name] = explore(
            sweep, start=start[name], cap=cfg.grid_cap, per_decade=cfg.per_decade, factor=cfg.factor
        )
    checks, diffs = compare(explorations, cfg)
    return _record(cfg, explorations, checks, diffs)


def _record(cfg: MomoRobustnessConfig, ex: dict[str, Exploration], checks, diffs) -> Record:
    width = {m: [b.width for b in e.bands] for m, e in ex.items()}
    edges = {m: [[float(e.lrs[b.lo]), float(e.lrs[b.hi])] for b in e.bands] for m, e in ex.items()}
    arrays: dict[str, np.ndarray] = {}
    for m, e in ex.items():
        key = m.replace("-", "_")
        arrays[f"{key}_lr"] = e.lrs
        arrays[f"{key}_loss"] = e.loss
        arrays[f"{key}_band"] = np.array([[b.lo, b.hi] for b in e.bands])
        arrays[f"{key}_open"] = np.array([[b.open_below, b.open_above] for b in e.bands])
        if e.capped is not None:
            arrays[f"{key}_capped"] = e.capped
    inactive = {m: cap_inactive_from(e) for m, e in ex.items() if e.capped is not None}
    parts = []
    for a, b in PAIRS:
        key = f"{a}_vs_{b}".replace("-", "_")
        wa, wb = np.mean(width[a]), np.mean(width[b])
        open_a = "+" if any(x.open_below or x.open_above for x in ex[a].bands) else ""
        open_b = "+" if any(x.open_below or x.open_above for x in ex[b].bands) else ""
        parts.append(f"{a} {wa:.2f}{open_a} vs {b} {wb:.2f}{open_b} decades")
        if diffs[key]["interval"] is not None:
            lo, hi = diffs[key]["interval"]
            parts[-1] += f" (difference [{lo:.2f}, {hi:.2f}])"
    censored = [m for m, e in ex.items() if any(x.open_below or x.open_above for x in e.bands)]
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "source": "published empirical claim (Schaipp et al., arXiv 2305.07583, Sec. 6)",
            "momo_band_wider_than_sgdm": True,
            "momo_adam_band_wider_than_adam": True,
        },
        measurement={
            "band_width_decades": width,
            "band_width_mean_decades": {m: float(np.mean(w)) for m, w in width.items()},
            "band_edges_lr": edges,
            "band_open_seeds": {
                m: {
                    "below": sum(b.open_below for b in e.bands),
                    "above": sum(b.open_above for b in e.bands),
                }
                for m, e in ex.items()
            },
            "grid_stop": {m: {"below": e.stop_below, "above": e.stop_above} for m, e in ex.items()},
            "cap_inactive_from_lr": inactive,
            "best_final_loss": {m: [float(np.nanmin(r)) for r in e.loss] for m, e in ex.items()},
            "best_learning_rate": {
                m: [float(e.lrs[b.best]) for b in e.bands] for m, e in ex.items()
            },
            "grid": {
                m: [float(e.lrs[0]), float(e.lrs[-1]), int(e.lrs.size)] for m, e in ex.items()
            },
            "width_difference_decades": diffs,
        },
        tolerance={
            "good_band": f"final training loss <= {cfg.factor:g} x the seed's best",
            "width": "log10(lr_hi / lr_lo) of the band's end points; resolved to 1/"
            f"{cfg.per_decade} decade",
            "comparison": "95% percentile bootstrap interval over seeds of the mean paired "
            "width difference, against 0",
        },
        checks=checks,
        smoke=cfg.smoke,
        summary="; ".join(parts)
        + (f"; open bands (+): {', '.join(censored)}" if censored else "")
        + (
            "; caps inactive from lr "
            + ", ".join(f"{m} {v:.3g}" for m, v in inactive.items() if v is not None)
            if any(v is not None for v in inactive.values())
            else ""
        ),
        arrays=arrays,
    )


def plot(record: Record) -> Figure:
    """Final training loss against the learning rate per pair, each seed's good band drawn."""
    factor = record.config.get("factor", 2.0) if record.config else 2.0
    return plot_bands(record.arrays, PAIRS, factor, record.measurement.get("cap_inactive_from_lr"))


EXPERIMENT_CLAIM = (
    "Over a grid of constant learning rates, grown until every band closes, the band of learning "
    "rates whose final training loss is within a factor of the best is wider, in decades, for "
    "MoMo than for momentum SGD and for MoMo-Adam than for Adam (bootstrap over seeds)."
)

EXPERIMENT = register(
    Experiment(
        name="momo-robustness",
        title="MoMo: learning-rate robustness",
        claim=EXPERIMENT_CLAIM,
        config=MomoRobustnessConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=13,
    )
)
