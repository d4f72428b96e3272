"""Optimizers as optax transformations: YellowFin, MoMo, MoMo-Adam, MoMo* and exact heavy ball,
and closed-loop momentum around any optax optimizer whose momentum is injected.

Baselines (SGD, SGD with momentum, Adam) are optax's own.
"""

from __future__ import annotations

from optimizers._common import logged_stats
from optimizers._curvature_oracle import hvp_matvec
from optimizers.closed_loop import (
    CLOSED_LOOP_STATIC_ARGS,
    ClosedLoopState,
    LoopState,
    closed_loop,
    closed_loop_yellowfin,
)
from optimizers.feedback import (
    MOMENTUM_FEEDBACK_STATIC_ARGS,
    MomentumFeedbackState,
    momentum_feedback,
    momentum_sensor,
)
from optimizers.heavy_ball import HeavyBallState, heavy_ball
from optimizers.momo import MomoState, momo
from optimizers.momo_adam import MomoAdamState, momo_adam
from optimizers.yellowfin import (
    YELLOWFIN_STATIC_ARGS,
    YellowFinState,
    yellowfin,
)

__all__ = [
    "CLOSED_LOOP_STATIC_ARGS",
    "MOMENTUM_FEEDBACK_STATIC_ARGS",
    "YELLOWFIN_STATIC_ARGS",
    "ClosedLoopState",
    "HeavyBallState",
    "LoopState",
    "MomentumFeedbackState",
    "MomoAdamState",
    "MomoState",
    "YellowFinState",
    "closed_loop",
    "closed_loop_yellowfin",
    "heavy_ball",
    "hvp_matvec",
    "logged_stats",
    "momentum_feedback",
    "momentum_sensor",
    "momo",
    "momo_adam",
    "yellowfin",
]
