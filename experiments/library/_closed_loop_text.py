"""Text of experiment 10 (closed-loop): notes and summary, written from the measured values."""

from __future__ import annotations

from typing import Any


def speed_text(ratio: float, interval: tuple[float, float]) -> str:
    """How the closed loop compares in iterations (``ratio`` = open / closed).

    Example:
        >>> speed_text(1.3, (1.1, 1.5)), speed_text(0.97, (0.9, 1.05))
        ('1.3x faster (interval 1.1-1.5)', 'indistinguishable, 0.97x (interval 0.9-1.05)')
    """
    lo, hi = interval
    span = f"(interval {lo:.3g}-{hi:.3g})"
    if lo > 1.0:
        return f"{ratio:.3g}x faster {span}"
    if hi < 1.0:
        return f"{1.0 / ratio:.3g}x slower {span}"
    return f"indistinguishable, {ratio:.3g}x {span}"


def bed_note(batch: int, gain: float, res: dict[str, Any]) -> str:
    """One sentence on one bed and gain: iterations over the ladder and the late loss.

    Example:
        >>> res = dict(speedup=0.97, interval=(0.9, 1.05), open_iterations=300.0,
        ...            closed_iterations=310.0, unreached_open_closed=[0, 1],
        ...            from_warm_up_per_level_open=[400.0], from_warm_up_per_level_closed=[380.0],
        ...            late_loss_ratio_open_over_closed=1.0, late_loss_interval=(0.9, 1.1))
        >>> bed_note(16, 0.02, res)[:60]
        'B=16, gain 0.02: closed loop indistinguishable, 0.97x (inter'
    """
    o, c = res["unreached_open_closed"]
    lo, hi = res["late_loss_interval"]
    return (
        f"B={batch}, gain {gain:g}: closed loop {speed_text(res['speedup'], res['interval'])} "
        f"over the ladder (mean iterations below its first level {res['open_iterations']:.0f} "
        f"open, {res['closed_iterations']:.0f} closed; levels never reached {o} open, {c} "
        f"closed); from the end of the warm-up to the deepest level "
        f"{res['from_warm_up_per_level_open'][-1]:.0f} open, "
        f"{res['from_warm_up_per_level_closed'][-1]:.0f} closed; "
        f"late loss open / closed {res['late_loss_ratio_open_over_closed']:.3g} "
        f"(interval {lo:.3g}-{hi:.3g})"
    )


def precondition_note(cfg: Any, assessed: dict[int, dict]) -> str:
    """Which beds the claim applies to, and why each other one does not (measured)."""
    parts = [
        f"B={b}: {'applicable' if a['applicable'] else 'not applicable'}, {a['reason']}"
        for b, a in assessed.items()
    ]
    return "; ".join(parts)


def summary(cfg: Any, tracking: Any, assessed: dict[int, dict]) -> str:
    """The record's one-line summary from the tracking check and the assessed beds."""
    est = tracking.measured["extrapolated"]
    head = (
        f"M={cfg.workers}: settled mu_algo {est:.3f} at a vanishing step vs first order "
        f"{tracking.predicted:.3f} ({tracking.outcome})"
    )
    beds = []
    for b, a in assessed.items():
        if not a["applicable"]:
            beds.append(f"B={b} not applicable ({a['reason']})")
            continue
        per_gain = ", ".join(
            f"gain {g:g} {speed_text(r['speedup'], r['interval'])}" for g, r in a["gains"].items()
        )
        beds.append(f"B={b}: closed loop {per_gain}")
    return f"{head}; YellowFin open vs closed loop, iterations below the ladder's first level: " + (
        "; ".join(beds)
    )
