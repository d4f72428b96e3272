"""Text of ``closed-loop-any-optimizer``: notes and summary, written from the measured values."""

from __future__ import annotations

from typing import Any

from experiments.library._closed_loop_text import speed_text


def case_note(case: str, a: dict[str, Any]) -> str:
    """One sentence on one (bed, optimizer) case: iterations over the ladder and the late loss.

    Example:
        >>> a = dict(speedup=0.97, interval=(0.9, 1.05), open_iterations=300.0,
        ...          closed_iterations=310.0, unreached_open_closed=[0, 1], late_open=0.2,
        ...          late_closed=0.3, horizon=2000.0)
        >>> case_note("nqm_adam", a)[:58]
        'nqm_adam: closed loop indistinguishable, 0.97x (interval 0'
    """
    o, c = a["unreached_open_closed"]
    return (
        f"{case}: closed loop {speed_text(a['speedup'], a['interval'])} over the ladder (mean "
        f"iterations {a['open_iterations']:.0f} open, {a['closed_iterations']:.0f} closed, "
        f"horizon {a['horizon']:.0f}; levels never reached {o} open, {c} closed); late loss "
        f"(seed median) {a['late_open']:.3g} open, {a['late_closed']:.3g} closed"
    )


def summary(cfg: Any, tracking: Any, assessed: dict[str, dict]) -> str:
    """The record's one-line summary from the tracking check and the assessed cases."""
    if tracking is None:
        head = "no tracking check (MoMo not in the run)"
    else:
        est = tracking.measured["extrapolated"]
        head = (
            f"M={cfg.workers}: MoMo's settled beta {est:.3f} at a vanishing step vs first order "
            f"{tracking.predicted:.3f} ({tracking.outcome})"
        )
    parts = []
    for k, a in assessed.items():
        if not a["applicable"]:
            parts.append(f"{k} not applicable ({a['reason']})")
        else:
            parts.append(f"{k} {speed_text(a['speedup'], a['interval'])}")
    return f"{head}; closed vs open loop, iterations over the ladder: " + "; ".join(parts)
