"""Speed and memory of experiment 11's grids (yellowfin-vs-adam), for the record.

Per method (its grids over every extension together):

* ``member_steps_per_s = sum_grids S G n_timed / sum_grids t_train`` and ``grid_steps_per_s`` (one
  vmapped step of all members), over the chunks that neither came first nor compiled
  (:class:`gpu.resources.ResourceMeter` decides which), from the times stored with each block, so a
  resumed run still covers every block;
* ``eval_fraction = t_eval / (t_train + t_eval)`` over the same chunks: the cost of the held-out
  readings;
* ``peak_bytes``: the largest peak of the grids this process ran, with its ``memory_source``
  (:mod:`gpu.resources`: the device allocator's peak on a GPU, XLA's analysis of the compiled chunk
  on the CPU). Memory grows with the members of a grid, all of which live in one program.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def grid_resources(grids: Sequence[Any]) -> dict[str, Any]:
    """Steps/s, evaluation share and peak memory of ``grids`` (:class:`._seed_grid.GridRuns`)."""
    member_steps = grid_steps = 0
    train_s = eval_s = 0.0
    peaks = []
    for g in grids:
        steps, t_train, t_eval = g.timed_totals()
        member_steps += steps * g.members
        grid_steps += steps
        train_s += t_train
        eval_s += t_eval
        res = g.resources or {}
        if res.get("peak_bytes") is not None:
            peaks.append((int(res["peak_bytes"]), str(res.get("memory_source", ""))))
    peak = max(peaks) if peaks else (None, "unavailable")
    return {
        "member_steps_per_s": member_steps / train_s if train_s > 0 else None,
        "grid_steps_per_s": grid_steps / train_s if train_s > 0 else None,
        "members": [g.members for g in grids],
        "eval_fraction": eval_s / (train_s + eval_s) if train_s + eval_s > 0 else None,
        "timed_steps": grid_steps,
        "peak_bytes": peak[0],
        "memory_source": peak[1],
        "platform": next((g.resources.get("platform") for g in grids if g.resources), None),
    }
