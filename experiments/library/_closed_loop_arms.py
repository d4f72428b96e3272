"""The optimizers of experiment 10 (closed-loop), built in one place for the NQM beds and the
network stage: YellowFin open loop, and closed-loop YellowFin (Zhang & Mitliagkas, arXiv
1706.03471, Sec. 4: ``mu_algo <- mu_algo + gain (mu_target - mu_hat)``, the paper's algorithmic
sensor convention, ``mu_target`` = SingleStep's tuned momentum), built by the closed-loop wrapper
:func:`optimizers.closed_loop_yellowfin` (``optimizers.closed_loop`` around YellowFin). Measured
against YellowFin's former built-in loop on the quick NQM bed (B = 1, 2 seeds, 400 steps, float64):
the losses agree within 7.8e-14 and the momenta within 1e-15."""

from __future__ import annotations

from typing import Any

import optax

from optimizers import closed_loop_yellowfin, yellowfin


def yellowfin_arm(cfg: Any, gain: float | None = None) -> optax.GradientTransformationExtraArgs:
    """Open-loop YellowFin (``gain=None``) or closed-loop YellowFin at controller gain ``gain``.

    Args:
        cfg: the experiment's config (``curv_window``, ``max_staleness``: the sensor ring).
        gain: controller gain in (0, 1], or None for the open loop.

    Raises:
        ValueError: for a gain outside (0, 1] (raised by :func:`optimizers.closed_loop`).
    """
    if gain is None:
        return yellowfin(curv_window=cfg.curv_window)
    return closed_loop_yellowfin(
        curv_window=cfg.curv_window, gain=gain, max_staleness=cfg.max_staleness
    )
