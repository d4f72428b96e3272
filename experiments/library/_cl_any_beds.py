"""Arms and test beds of ``closed-loop-any-optimizer``.

Arms of one optimizer (MoMo's ``beta``, MoMo-Adam's and Adam's ``b1`` injected with
``optax.inject_hyperparams``, starting at the same value ``initial_momentum``):

* ``sync``: open loop, one worker (the synchronous control);
* ``open``: open loop, ``M`` workers with geometric staleness;
* ``closed``: :func:`optimizers.closed_loop` around the same optimizer, ``M`` workers: the total
  convention (sensor step ``a / M``, ``a`` the step that multiplied the gradient in the move,
  ``optimizers.effective_step``) steering the injected momentum to ``target``.

Beds: the noisy quadratic model (exact event-driven workers, :func:`simulators.async_ensemble`,
float64, exact loss recorded every ``record_every`` steps) and an MLP classifier
(:mod:`experiments.library._cl_any_net`, geometric delays :func:`gpu.geometric`, batch loss
averaged over blocks of ``net_every`` steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from experiments.library._cl_any_measure import block_means
from experiments.library._cl_any_net import load_task, train_seeds
from optimizers import closed_loop, momo, momo_adam
from simulators import async_ensemble, noisy_quadratic_model

#: optimizer name -> (factory, name of its momentum hyper-parameter)
OPTIMIZERS: dict[str, tuple[Callable[..., Any], str]] = {
    "adam": (optax.adam, "b1"),
    "momo": (momo, "beta"),
    "momo_adam": (momo_adam, "b1"),
}
ARMS = ("sync", "open", "closed")


def make_arm(name: str, arm: str, lr: float, cfg: Any) -> optax.GradientTransformationExtraArgs:
    """The optimizer of one arm (module docstring)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} (got {name!r})")
    factory, hp = OPTIMIZERS[name]
    inner = optax.inject_hyperparams(factory)(lr, **{hp: cfg.initial_momentum})
    if arm in ("sync", "open"):
        return optax.with_extra_args_support(inner)
    if arm != "closed":
        raise ValueError(f"arm must be one of {ARMS} (got {arm!r})")
    return closed_loop(
        inner,
        hyperparam=hp,
        target_momentum=cfg.target,
        gain=cfg.gain,
        sensor_convention="total",
        effective_workers=float(cfg.workers),
        max_staleness=cfg.max_staleness,
    )


def nqm_case(cfg: Any, name: str, lr: float, seed: int) -> dict[str, np.ndarray]:
    """Exact losses ``(seeds, records)`` of the three arms of one optimizer on the NQM."""
    x0 = cfg.start_scale * np.ones(cfg.nqm_dim) / np.sqrt(cfg.nqm_dim)
    out: dict[str, np.ndarray] = {}
    with jax.enable_x64(True):
        obj = noisy_quadratic_model(cfg.nqm_dim, cfg.nqm_p, batch_size=cfg.nqm_batch, x0=x0)
        for arm in ARMS:
            ens = async_ensemble(
                obj,
                make_arm(name, arm, lr, cfg),
                cfg.nqm_steps,
                cfg.seeds,
                n_workers=1 if arm == "sync" else cfg.workers,
                seed=seed,
                pass_staleness=True,
                record_every=cfg.record_every,
            )
            out["steps"] = np.asarray(ens.steps, np.float64)
            out[arm] = np.asarray(ens.runs.losses, np.float64)
            if arm == "closed":
                out["closed_mu"] = np.asarray(ens.runs.stats["mu_algo"], np.float64)
    return out


def net_case(cfg: Any, name: str, lr: float, seed: int) -> dict[str, np.ndarray]:
    """Block-mean batch losses ``(seeds, blocks)`` of the three arms of one optimizer on the MLP."""
    task = load_task(cfg.net_dataset, cfg.net_batch, cfg.net_train)
    out: dict[str, np.ndarray] = {}
    for arm in ARMS:
        res = train_seeds(
            lambda arm=arm: make_arm(name, arm, lr, cfg),
            task,
            hidden=cfg.net_hidden,
            seeds=cfg.seeds,
            seed=seed,
            steps=cfg.net_steps,
            workers=1 if arm == "sync" else cfg.workers,
        )
        loss = np.where(np.isfinite(res["loss"]), res["loss"], np.inf)
        out[arm], out["steps"] = block_means(loss, cfg.net_every)
        if arm == "closed":
            out["closed_mu"] = block_means(res["mu_algo"], cfg.net_every)[0]
    return out
