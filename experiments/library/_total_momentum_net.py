"""The real-network stage of ``total-momentum``: heavy ball under stale gradients, observed by the
total-momentum sensor of :mod:`._async_net_sensor` (zero-gradient coordinates left out).

Bed per tier (:mod:`._async_net_beds`): the digits MLP (quick), a ResNet-8 on Fashion-MNIST (full),
ResNet-20 on CIFAR-100 from ``$MOMLAB_CIFAR_DIR`` (gpu). The learning rate is chosen per ``mu_L``
so that the effective step ``alpha / (1 - mu_L)`` is the same for every momentum (it is also the
effective step of the asynchronous mean dynamics: step ``alpha / M`` over ``1 - mu_T`` with
``1 - mu_T = (1 - mu_L) / M``).

Checks (kinds fixed before measuring):

- ``net_data_present`` (precondition): the bed's data can be read; otherwise the missing path or
  variable is the reason, the stage is not run and the record is ``not applicable``.
- ``net_training_progressed`` (precondition): every run's late loss is below ``net_trained`` times
  the chance loss ``ln(classes)``: the sensor of a run that never left chance reads no training.
- ``net_sync_reads_mu_L`` (identity): synchronously the sensor reads ``mu_L`` by the algebra of
  the update.
- ``net_async_exceeds_mu*`` (reproduction): the bootstrap interval over seeds of the asynchronous
  median reading (the paper's sensor) lies above ``mu_L``.
- ``net_first_order_mu*`` (reproduction): the bootstrap interval over seeds of the pooled
  least-squares reading holds the first-order total momentum ``1 - (1 - mu_L) / M``
  (:func:`theory.total_momentum`). First order is exact for the mean dynamics in the small-step
  limit (Mitliagkas et al., arXiv 1605.09774, Theorem 2); whether it describes a network trained at
  a useful step is the claim tested, so a gap is reported as measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optax

import gpu
import theory
from experiments.framework import Check, bootstrap_interval, check, interval_check
from experiments.library._async_net_beds import (
    NetBed,
    arm_resources,
    missing_data,
    pooled_ls,
    staged_arm,
)
from experiments.library._async_net_sensor import observed

#: Cross-entropy of a uniform guess over the ten digit classes, ``ln 10``.
CHANCE_LOSS = float(np.log(10.0))

_KEEP = ("total_median", "total_ls_num", "total_ls_den", "total_size")


def sensed_heavy_ball(
    learning_rate: float, momentum: float, *, workers: int = 1, max_staleness: int = 0
) -> optax.GradientTransformationExtraArgs:
    """Heavy ball ``d_{k+1} = mu d_k - alpha g_k`` (``optax.sgd``) with the total-momentum sensor
    of :func:`._async_net_sensor.observed` read at every step (``update(..., staleness=tau)``).

    Synchronously (``workers = 1``) the median reading is ``mu`` up to rounding, by the algebra of
    the update.

    Args:
        learning_rate: ``alpha > 0``.
        momentum: ``mu_L`` in ``[0, 1)``.
        workers: ``M >= 1``; the numerator's step is ``alpha / M``.
        max_staleness: largest staleness paired, ``>= 0``.

    Raises:
        ValueError: for a value outside the ranges above.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0 (got {learning_rate!r})")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1) (got {momentum!r})")
    inner = optax.sgd(learning_rate, momentum=momentum if momentum else None)
    return observed(inner, workers=workers, max_staleness=max_staleness, step_size=learning_rate)


def bed_of(cfg: Any) -> NetBed:
    """The network bed named by a config's ``net_*`` fields."""
    return NetBed(
        dataset=cfg.net_dataset,
        model=cfg.net_model,
        hidden=cfg.net_hidden,
        depth=cfg.net_depth,
        width=cfg.net_width,
        batch=cfg.net_batch,
        n_train=cfg.net_n_train,
        data_dir=cfg.net_data_dir,
    )


def data_present(name: str, bed: NetBed) -> Check:
    """Precondition: the bed's data can be read (the reason names the missing path or variable)."""
    why = missing_data(bed)
    return check(
        name,
        "precondition",
        not why,
        predicted="the bed's data set is readable",
        measured=why or bed.describe(),
        note=why or f"{bed.describe()}: data present",
    )


def training_progressed(name: str, late_losses: dict[str, float], threshold: float) -> Check:
    """Precondition: every run's late training loss is below ``threshold`` (a fraction of the
    chance loss); the sensor of a run that never left chance reads nothing about training.

    Args:
        name: the check's name.
        late_losses: ``{run label: mean loss over the last tenth of the run}``.
        threshold: the largest admitted late loss.

    Example:
        >>> training_progressed("trained", {"mu_L=0.9, M=16": 2.30}, 1.0).outcome
        'fail'
    """
    stuck = {k: v for k, v in late_losses.items() if not v < threshold}
    worst = max(late_losses, key=lambda k: late_losses[k])
    note = (
        "every run's late loss is below the threshold"
        if not stuck
        else "training did not progress: late loss "
        + ", ".join(f"{v:.3f} ({k})" for k, v in stuck.items())
        + f" vs threshold {threshold:.3f}"
    )
    return check(
        name,
        "precondition",
        not stuck,
        predicted=f"late loss < {threshold:.3f}",
        measured={"worst": worst, "late_loss": late_losses[worst], "all": late_losses},
        tolerance=threshold,
        note=note,
    )


def _summaries(res: dict[str, np.ndarray], burn_in: int) -> dict[str, np.ndarray]:
    med = res["total_median"][:, burn_in:]
    loss = res["loss"]
    tail = max(1, loss.shape[1] // 10)
    return {
        "median": np.array([np.nanmean(r) for r in med]),
        "ls": pooled_ls(res["total_ls_num"], res["total_ls_den"], burn_in),
        "late": loss[:, -tail:].mean(axis=1),
        "size": res["total_size"][:, burn_in:].mean(axis=1),
    }


def network_stage(cfg: Any, seed: int) -> tuple[dict, list[Check]]:
    """Asynchronous and synchronous heavy-ball runs at every ``cfg.net_mus``; the checks of the
    module docstring. Each ``(mu_L, workers)`` arm is a resumable stage."""
    bed = bed_of(cfg)
    checks = [data_present("net_data_present", bed)]
    if not checks[0].passed:
        return {"bed": bed.describe(), "missing": checks[0].note}, checks
    m = cfg.workers
    seeds = [1000 * seed + s for s in range(cfg.net_seeds)]
    law = gpu.geometric(m)
    total = len(cfg.net_mus) * cfg.net_steps * (len(seeds) + 1)
    done = 0.0
    runs, sync = {}, {}
    for mu in cfg.net_mus:
        lr = cfg.net_effective_step * (1.0 - mu)
        for workers, n_seeds, out in ((m, len(seeds), runs), (1, 1, sync)):
            tau = law.max_tau if workers > 1 else 0

            def make(lr=lr, mu=mu, workers=workers, tau=tau):
                return sensed_heavy_ball(lr, mu, workers=workers, max_staleness=tau)

            res = staged_arm(
                f"net_mu{mu:g}_M{workers}",
                make,
                bed,
                seeds=seeds[:n_seeds],
                steps=cfg.net_steps,
                workers=workers,
                keep=_KEEP,
                done_before=done,
                total=total,
                what=f"{bed.describe()}, mu_L={mu:g}, M={workers}",
            )
            done += cfg.net_steps * n_seeds
            out[mu] = res | _summaries(res, cfg.net_burn_in)
    chance = float(np.log(10.0 if bed.dataset != "cifar100" else 100.0))
    late = {}
    for mu in cfg.net_mus:
        late.update(
            {
                f"mu_L={mu:g}, M={m}, seed {s}": float(v)
                for s, v in zip(seeds, runs[mu]["late"], strict=True)
            }
        )
        late[f"mu_L={mu:g}, sync"] = float(sync[mu]["late"][0])
    checks.append(training_progressed("net_training_progressed", late, cfg.net_trained * chance))
    mus = np.asarray(cfg.net_mus, float)
    sync_read = np.array([sync[mu]["median"][0] for mu in cfg.net_mus])
    checks.append(
        check(
            "net_sync_reads_mu_L",
            "identity",
            bool(np.all(np.abs(sync_read - mus) <= 1e-4)),
            predicted=list(mus),
            measured=sync_read.tolist(),
            tolerance=1e-4,
            note="synchronous heavy ball reads mu_L by the update's algebra (float32 rounding)",
        )
    )
    first = np.asarray(theory.total_momentum(mus, m), float)
    med = np.array([runs[mu]["median"] for mu in cfg.net_mus])
    ls = np.array([runs[mu]["ls"] for mu in cfg.net_mus])
    med_iv, ls_iv = [], []
    for i, mu in enumerate(cfg.net_mus):
        lo, hi = bootstrap_interval(med[i], seed=seed)
        med_iv.append((lo, hi))
        checks.append(
            interval_check(
                f"net_async_exceeds_mu{mu:g}",
                "reproduction",
                (lo, hi),
                lower=float(mu),
                measured={"mean": float(med[i].mean()), "interval": [lo, hi]},
                note=f"asynchronous median reading {med[i].mean():.4f} [{lo:.4f}, {hi:.4f}] over "
                f"{len(seeds)} seeds vs mu_L {mu:g}",
            )
        )
        lo, hi = bootstrap_interval(ls[i], seed=seed)
        ls_iv.append((lo, hi))
        inside = lo <= first[i] <= hi
        checks.append(
            check(
                f"net_first_order_mu{mu:g}",
                "reproduction",
                inside,
                predicted=float(first[i]),
                measured={"mean": float(ls[i].mean()), "interval": [lo, hi]},
                tolerance="bootstrap interval over seeds",
                note=f"asynchronous least-squares reading {ls[i].mean():.4f} [{lo:.4f}, {hi:.4f}] "
                f"vs first order {first[i]:.4f} (gap {ls[i].mean() - first[i]:+.4f}; median "
                f"reading {med[i].mean():.4f})",
            )
        )
    last = cfg.net_mus[-1]
    out = {
        "bed": bed.describe(),
        "reads": med,
        "intervals": np.asarray(med_iv),
        "ls": ls,
        "ls_intervals": np.asarray(ls_iv),
        "sync": sync_read,
        "first": first,
        "late": late,
        "learning_rates": [cfg.net_effective_step * (1 - mu) for mu in cfg.net_mus],
        "sensor_size": float(np.mean([runs[mu]["size"].mean() for mu in cfg.net_mus])),
        "trace_async": runs[last]["total_median"][0],
        "trace_sync": sync[last]["total_median"][0],
        "loss_async": np.stack([runs[mu]["loss"][0] for mu in cfg.net_mus]),
        "resources": arm_resources(
            {f"mu_L={mu:g}, M={m}": runs[mu] for mu in cfg.net_mus}
            | {f"mu_L={mu:g}, sync": sync[mu] for mu in cfg.net_mus}
        ),
    }
    return out, checks
