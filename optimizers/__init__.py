"""Optimizers as optax transformations: YellowFin (with closed-loop momentum feedback), MoMo,
MoMo-Adam, MoMo* and exact heavy ball.

Baselines (SGD, SGD with momentum, Adam) are optax's own.
"""

from __future__ import annotations

from optimizers._common import logged_stats

__all__ = ["logged_stats"]
