"""Grids of experiment 11 (yellowfin-vs-adam): a baseline's learning-rate grid that extends past an
edge holding the best point, one resumable stage per (task, method, extension), and the progress
report in estimated floating-point operations."""

from __future__ import annotations

import math

import numpy as np

from experiments import runtime
from experiments.library._seed_grid import train_grid
from experiments.library._yellowfin_vs_adam_metrics import grid, smoothed


class Progress:
    """Progress in estimated floating-point operations (member-steps weighted per task); the total
    grows when a grid extends."""

    def __init__(self, cost: dict[str, float], members: dict[str, int], yf_steps: int, cfg):
        self.cfg, self.cost, self.done = cfg, cost, 0.0
        self.total = (
            sum(cost[n] * (members[n] * cfg.steps + cfg.seeds * yf_steps) for n in cost) or 1.0
        )

    def grow(self, name: str, members: int) -> None:
        self.total += self.cost[name] * members * self.cfg.steps

    def block(self, name: str, members: int, what: str):
        last = [0]

        def report(steps_done: int) -> None:
            self.done += self.cost[name] * members * (steps_done - last[0])
            last[0] = steps_done
            runtime.progress(self.done, self.total, what)

        return report


def tune(built, make, center, cfg, prefix, prog) -> dict:
    """Every seed on a grid that grows past an edge holding the best mean final loss."""
    lo, hi = -cfg.grid_half, cfg.grid_half
    done: dict[float, tuple] = {}
    runs = []
    for extension in range(cfg.max_extensions + 1):
        lrs = [float(v) for v in grid(center, cfg.per_decade, lo, hi) if float(v) not in done]
        if extension:
            prog.grow(prefix.split(".")[0], len(lrs) * cfg.seeds)
        res = run_grid(built, make, lrs, cfg, cfg.steps, f"{prefix}.e{extension}", prog)
        runs.append(res)
        for g, lr in enumerate(lrs):
            done[lr] = (res, g)
        ordered = sorted(done)
        final = [
            float(np.mean([smoothed(c, cfg.smooth)[-1] for c in done[v][0].losses[:, done[v][1]]]))
            for v in ordered
        ]
        final = [v if math.isfinite(v) else math.inf for v in final]
        best = ordered[int(np.argmin(final))]
        edge = best in (ordered[0], ordered[-1])
        if not edge or extension == cfg.max_extensions:
            break
        lo, hi = (lo - 1, hi) if best == ordered[0] else (lo, hi + 1)
    res, g = done[best]
    return {
        "grid": ordered,
        "final": final,
        "best": best,
        "on_edge": edge,
        "runs": res,
        "member": g,
        "grids": runs,
    }


def run_grid(built, make, lrs, cfg, steps, name, prog):
    members = len(built.models) * (1 if lrs is None else len(lrs))
    return train_grid(
        built.models,
        make,
        lrs,
        built.task,
        steps=steps,
        eval_every=cfg.eval_every,
        eval_x=built.eval_x,
        eval_y=built.eval_y,
        eval_batch=built.eval_batch,
        block_steps=cfg.stage_steps,
        name=name,
        on_block=prog.block(name.split(".")[0], members, name),
    )
