"""Text of experiment 10 (closed-loop): YellowFin outcome and notes, from measured values."""

from __future__ import annotations


def _path(run: dict) -> str:
    """``best B at step S, final F`` of a seed-median loss curve."""
    return f"best {run['best']:.2g} at step {run['best_step']:.0f}, final {run['final']:.2g}"


def late_loss_text(ratio: float) -> str:
    """The late median loss of closed vs open loop (``ratio`` = open / closed).

    Example:
        >>> late_loss_text(2.8), late_loss_text(0.5)
        ('late median loss 2.8x lower in closed loop', 'late median loss 2x higher in closed loop')
    """
    if ratio >= 1.0:
        return f"late median loss {ratio:.2g}x lower in closed loop"
    return f"late median loss {1.0 / ratio:.2g}x higher in closed loop"


def yellowfin_outcome(spd: dict, factor: float) -> str:
    """Whether the open- and closed-loop YellowFin runs converge, read off their loss curves.

    A run climbs back when its final seed-median loss exceeds its best by ``factor``.

    Example:
        >>> def run(best, final):
        ...     return dict(best=best, best_step=200, final=final, climbs_back=final > 10 * best)
        >>> yellowfin_outcome({"open": run(1e-3, 2.0), "closed": run(1e-4, 2e-4)}, 10)[:57]
        'the open-loop run climbs back from its best loss, the clo'
    """
    o, c = spd["open"], spd["closed"]
    both = f"(open: {_path(o)}; closed: {_path(c)})"
    if o["climbs_back"] and c["climbs_back"]:
        return f"neither run converges: both climb back from their best loss {both}"
    if o["climbs_back"] or c["climbs_back"]:
        up, down = ("open", "closed") if o["climbs_back"] else ("closed", "open")
        return (
            f"the {up}-loop run climbs back from its best loss, the {down}-loop run ends within "
            f"{factor:g}x of its best {both}"
        )
    return f"both runs end within {factor:g}x of their best loss {both}"


def notes(spd: dict, workers: int, h_true: float, factor: float, early_steps: int) -> str:
    """The record's notes on the YellowFin runs, every claim read off the measured values.

    Args:
        spd: the speedup runs (``open``, ``closed``, ``sync``), as measured by the experiment.
        workers: number of asynchronous workers of the open and closed runs.
        h_true: the objective's true smallest curvature.
        factor: a run climbs back when its final seed-median loss exceeds its best by this.
        early_steps: the window of the early sensor and target medians (``mu_hat_early``,
            ``mu_target_early``).
    """
    o, c, s = spd["open"], spd["closed"], spd["sync"]
    lr_trend = "grows" if s["lr_median_end"] > s["lr_median_best"] else "does not grow"
    below = s["h_min_median_end"] < h_true
    parts = [
        f"Synchronous control (one worker): the seed-median loss reaches {s['best']:.2g} at step "
        f"{s['best_step']:.0f} and "
        + (
            f"climbs back to {s['final']:.2g}"
            if s["climbs_back"]
            else f"ends within {factor:g}x of it ({s['final']:.2g})"
        )
        + f"; the tuned learning rate {lr_trend} from {s['lr_median_best']:.3g} at that step to "
        f"{s['lr_median_end']:.3g} at the end, and YellowFin's h_min ends at "
        f"{s['h_min_median_end']:.2g}, {'below' if below else 'not below'} the true smallest "
        f"curvature {h_true:g}."
    ]
    if below and lr_trend == "grows":
        parts.append(
            "Its curvature samples are ||g||^2, which on a quadratic shrink with the gradient, "
            "and alpha = (1 - sqrt(mu))^2 / h_min grows as h_min falls."
        )
    parts.append(
        "All three runs use YellowFin's defaults (slow start on), the same objective and seeds."
    )
    rebound = {k: spd[k]["final"] / spd[k]["best"] for k in ("open", "sync")}
    parts.append(
        f"With {workers} stale workers the open-loop final/best loss ratio is "
        f"{rebound['open']:.3g} against {rebound['sync']:.3g} synchronously "
        f"({'larger' if rebound['open'] > rebound['sync'] else 'not larger'}); open loop "
        f"{_path(o)}; closed loop {_path(c)}."
    )
    if c["mu_hat_early"] is not None and c["mu_target_early"] is not None:
        later = "later" if c["iters"] > o["iters"] else "not later"
        hat, target = c["mu_hat_early"], c["mu_target_early"]
        drive = (
            f"down (seed-median minimum {c['momentum_min_median']:.2f}; the controller's floor "
            "is -0.9)"
            if hat > target
            else "up"
        )
        parts.append(
            f"The closed loop reaches the target loss {later} than open loop ({c['iters']:.0f} vs "
            f"{o['iters']:.0f} iterations). Over the first {early_steps} steps its sensor reads a "
            f"median {hat:.2f} while SingleStep's target reads a median {target:.2f}, so the "
            f"controller drives the algorithmic momentum {drive}."
        )
    return " ".join(parts)
