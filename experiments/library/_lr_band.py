"""Good bands of learning rates: per-seed bands, and a grid that grows until they close.

A learning rate is *good* for one seed when its final loss is at most ``factor`` times the best
final loss of that seed over the grid. The *band* is the contiguous run of good grid points around
the best one; its width is ``log10(lr_hi / lr_lo)`` decades (0 for a single point), so it does not
depend on how many points a decade holds. A band that reaches an end of the grid is *open* on that
side: its true width is unknown (censored by the grid).

The grid is a union of decade blocks ``{10**(d + i / per_decade) : i = 0 .. per_decade - 1}``.
:func:`explore` starts from a few blocks and adds one block below (above) while some seed's band is
open below (above), up to a cap. One exception stops the growth upwards early: a capped method
(MoMo, MoMo-Adam: ``tau_k = min(cap_k, model step)``) whose top learning rate never hit its cap on
any step of any seed runs the *same* trajectory at every larger learning rate (induction on ``k``),
so its band is open above for good and more grid adds nothing.

:class:`SeedLrSweep` trains one model per (seed, learning rate) on the same task, vmapped over
both, with one compiled program per optimizer: seed ``s`` fixes the initial weights and the batch
order, the learning rate is an array in the ``optax.inject_hyperparams`` state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gpu import Task, as_extra_args, init_state, make_step, scan_steps

CAP_RTOL = 1e-4  # a step is capped when tau >= cap (1 - CAP_RTOL) (float32 statistics)


@dataclasses.dataclass(frozen=True)
class Band:
    """The good band of one seed on one grid.

    Attributes:
        best: index of the best (lowest finite) loss, -1 when no loss is finite.
        lo, hi: first and last index of the band (-1 when there is no finite loss).
        width: ``log10(lr[hi] / lr[lo])`` in decades (NaN without a finite loss).
        open_below, open_above: whether the band reaches the first / last grid point.
    """

    best: int
    lo: int
    hi: int
    width: float
    open_below: bool
    open_above: bool


def good_band(lrs: np.ndarray, loss: np.ndarray, factor: float) -> Band:
    """The contiguous run of grid points with ``loss <= factor * min(loss)`` around the best one.

    Non-finite losses (diverged runs) are never good.

    Raises:
        ValueError: for ``factor < 1`` or grids of different lengths.

    Example:
        >>> b = good_band(np.array([0.01, 0.1, 1.0, 10.0]), np.array([2.0, 0.3, 0.2, np.nan]), 2.0)
        >>> (b.lo, b.hi, round(b.width, 6), b.open_below, b.open_above)
        (1, 2, 1.0, False, False)
    """
    lrs = np.asarray(lrs, np.float64)
    loss = np.asarray(loss, np.float64)
    if not factor >= 1.0:
        raise ValueError(f"factor must be >= 1 (got {factor})")
    if lrs.shape != loss.shape or lrs.ndim != 1:
        raise ValueError(f"lrs and loss must be 1-D of one length (got {lrs.shape}, {loss.shape})")
    finite = np.isfinite(loss)
    if not finite.any():
        return Band(-1, -1, -1, float("nan"), False, False)
    s = np.where(finite, loss, np.inf)
    best = int(np.argmin(s))
    ok = s <= factor * s[best]
    lo = hi = best
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(s) - 1 and ok[hi + 1]:
        hi += 1
    width = float(np.log10(lrs[hi] / lrs[lo]))
    return Band(best, lo, hi, width, lo == 0, hi == len(s) - 1)


def block(decade: int, per_decade: int) -> np.ndarray:
    """The learning rates ``10**(decade + i / per_decade)``, ``i = 0 .. per_decade - 1``."""
    return 10.0 ** (decade + np.arange(per_decade) / per_decade)


@dataclasses.dataclass
class Exploration:
    """The grid one method ended on.

    Attributes:
        lrs: the grid ``(n,)``, increasing.
        loss: final loss per seed ``(S, n)`` (NaN where a run diverged).
        capped: fraction of capped steps per seed ``(S, n)`` (None for methods without a cap).
        bands: one :class:`Band` per seed.
        stop_below, stop_above: why the grid stopped growing on each side: ``"closed"`` (every
            band closed), ``"cap"`` (the grid cap was reached with a band still open) or
            ``"uncapped"`` (above only: the cap never bound at the top learning rate).
    """

    lrs: np.ndarray
    loss: np.ndarray
    capped: np.ndarray | None
    bands: list[Band]
    stop_below: str
    stop_above: str


def explore(
    measure: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
    *,
    start: tuple[int, int],
    cap: tuple[int, int],
    per_decade: int,
    factor: float,
) -> Exploration:
    """Grow a decade-block grid until every seed's band closes (module docstring).

    Args:
        measure: ``lrs (n,) -> (loss (S, n), capped fraction (S, n) or None)``.
        start: first and last decade block of the initial grid.
        cap: lowest and highest decade block the grid may reach.
        per_decade: grid points per decade.
        factor: the good band's loss factor.

    Raises:
        ValueError: when ``start`` is not inside ``cap``.
    """
    if not cap[0] <= start[0] <= start[1] <= cap[1]:
        raise ValueError(f"start {start} must lie inside cap {cap}")
    runs: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    lo, hi = start
    while True:
        for d in range(lo, hi + 1):
            if d not in runs:
                runs[d] = measure(block(d, per_decade))
        decades = range(lo, hi + 1)
        lrs = np.concatenate([block(d, per_decade) for d in decades])
        loss = np.concatenate([runs[d][0] for d in decades], axis=1)
        has_cap = runs[lo][1] is not None
        capped = np.concatenate([runs[d][1] for d in decades], axis=1) if has_cap else None
        bands = [good_band(lrs, row, factor) for row in loss]
        open_below = any(b.open_below for b in bands)
        open_above = any(b.open_above for b in bands)
        uncapped_top = capped is not None and float(np.max(capped[:, -1])) == 0.0
        grow_below = open_below and lo > cap[0]
        grow_above = open_above and hi < cap[1] and not uncapped_top
        if not (grow_below or grow_above):
            break
        lo -= int(grow_below)
        hi += int(grow_above)
    below = "cap" if open_below else "closed"
    above = ("uncapped" if uncapped_top else "cap") if open_above else "closed"
    return Exploration(lrs, loss, capped, bands, below, above)


class SeedLrSweep:
    """Final training loss of models trained at many (seed, learning rate) pairs, vmapped over both.

    The final loss of a run is the mean batch loss of its last ``tail`` steps (NaN when any of
    them, or a final parameter, is not finite). Every call with the same number of learning rates
    reuses one compiled program.

    Args:
        make_tx: optimizer factory with a ``learning_rate`` keyword.
        task: the classification task (batches drawn from each seed's key).
        models: one initial model per seed (built by the caller from that seed).
        seeds: the seeds (batch order); ``len(seeds) == len(models)``.
        steps: training steps.
        tail: steps averaged into the final loss.
        cap: ``k -> the cap on tau_k over the learning rate`` for capped methods (``1`` for MoMo,
            ``1 / (1 - b1**k)`` for MoMo-Adam), None for uncapped ones.

    Raises:
        ValueError: for mismatched models and seeds or ``tail`` outside ``[1, steps]``.
    """

    def __init__(
        self,
        make_tx: Callable[..., optax.GradientTransformation],
        task: Task,
        models: Sequence[nnx.Module],
        seeds: Sequence[int],
        steps: int,
        tail: int,
        cap: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if len(models) != len(seeds) or not models:
            raise ValueError(f"need one model per seed (got {len(models)} and {len(seeds)})")
        if not 1 <= tail <= steps:
            raise ValueError(f"tail must be in [1, steps = {steps}] (got {tail})")
        tx = as_extra_args(optax.inject_hyperparams(make_tx)(learning_rate=1.0))
        bases = []
        for model, s in zip(models, seeds, strict=True):
            graphdef, base = init_state(model, tx, int(s))
            bases.append(base)
        self.base = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *bases)
        self.seeds = len(bases)
        self.task, self.steps, self.tail, self.cap = task, steps, tail, cap
        self.run = scan_steps(jax.vmap(make_step(graphdef, tx, task), in_axes=(0, None)))

    def __call__(self, lrs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(final loss (S, n), capped fraction (S, n) or None)`` at the learning rates ``lrs``."""
        lrs = np.asarray(lrs, np.float64)
        n, s_count = lrs.size, self.seeds
        state = jax.tree_util.tree_map(lambda a: jnp.repeat(a, n, axis=0), self.base)
        hp = dict(state.opt_state.hyperparams)
        lr_flat = np.tile(lrs, s_count)
        hp["learning_rate"] = jnp.asarray(lr_flat, jnp.asarray(hp["learning_rate"]).dtype)
        state = state._replace(opt_state=state.opt_state._replace(hyperparams=hp))
        state, metrics = self.run(state, self.task.train_data, self.steps)
        tail = np.asarray(metrics["loss"], np.float64)[-self.tail :]  # (tail, S n)
        finite = np.all(np.isfinite(tail), axis=0)
        for leaf in jax.tree_util.tree_leaves(state.params):
            finite &= np.all(np.isfinite(np.asarray(leaf).reshape(s_count * n, -1)), axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            loss = np.where(finite, tail.mean(axis=0), np.nan)
        capped = None
        if self.cap is not None:
            tau = np.asarray(metrics["step_size"], np.float64)  # (steps, S n)
            k = np.arange(1, tau.shape[0] + 1)
            cap = self.cap(k)[:, None] * lr_flat[None, :]
            capped = np.mean(tau >= cap * (1.0 - CAP_RTOL), axis=0).reshape(s_count, n)
        return loss.reshape(s_count, n), capped
