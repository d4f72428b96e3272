"""Experiment 11: YellowFin against tuned Adam and tuned momentum SGD on a ResNet and an LSTM.

Claim (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", arXiv 1706.03471, Sec. 5.1,
Fig. 5 and Table 2; an empirical published claim): YellowFin, with no tuning, reaches a target
training loss in fewer or comparable iterations than Adam and momentum SGD whose learning rates
were tuned on a grid; the paper reports up to 3.28x fewer iterations than Adam (ResNet on CIFAR,
LSTMs), quoted here as the reference; what we measure is reported as measured.

Prediction, turned into a test: ``T_YF <= ratio_tol x T_best`` on every task. Per seed ``s`` the
target is the best tuned baseline's (Adam or momentum SGD) training loss, smoothed over ``smooth``
steps, at the end of its budget; ``T_m`` is the first iteration at which method ``m``'s smoothed
loss reaches it (YellowFin's searched only after its slow start, ``10 curv_window = 200`` steps, so
no metric is read inside it). The ratio of means over seeds carries a bootstrap interval
(:func:`experiments.stats.ratio_interval`) and the check is decided from that interval.

Measurement: ``optax.adam`` and ``optax.sgd(momentum=0.9)`` run ``seeds`` seeds (initialisation
and batches) on grids of ``per_decade`` points per decade, all seeds x rates of a method in one
vmapped loop (``_seed_grid.train_grid``); the grid extends while the best mean final loss sits on
an edge (at most ``max_extensions`` times; still on the edge after that is a failed precondition,
``not applicable``). :func:`optimizers.yellowfin` runs the same seeds with its official defaults
for ``ceil(ratio_tol x steps)`` steps. A run that never reaches its target is censored at its
budget + 1. Held-out loss and accuracy at the end of each run are recorded.

Tiers: quick (digits ResNet-8, a 32-unit LSTM, 300 steps: ``smoke``, the budget is below 10x the
slow start); full (the CPU evidence: a width-4 ResNet-8 on the 60k Fashion-MNIST images, batch 16,
and a 128-unit LSTM on the pydoc topics, 3000 steps = 15 slow starts and 3 time constants of
YellowFin's beta = 0.999 averages; about 0.04 s per ResNet step on one CPU core); gpu
(ResNet-20 on CIFAR-10 from ``$MOMLAB_CIFAR_DIR``, the LSTM on ``$MOMLAB_TEXT`` when set).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os

import numpy as np
import optax

from experiments.framework import (
    Check,
    Experiment,
    Record,
    check,
    interval_check,
    ratio_interval,
    register,
)
from experiments.library._seed_grid import train_grid
from experiments.library._yellowfin_vs_adam_plot import plot
from gpu import classification_task, language_model_task
from gpu.data import load_cifar, load_digits, load_fashion_mnist, load_text
from gpu.models import CharLSTM, ResNet, init_model
from optimizers import yellowfin

TASKS = ("resnet", "lstm")
METHODS = ("yellowfin", "adam", "sgdm")
BASELINES = ("adam", "sgdm")
PUBLISHED_SPEEDUP_OVER_ADAM = 3.28
SLOW_START = 200  # optimizers.yellowfin: slow start over 10 curv_window steps (curv_window = 20)


@dataclasses.dataclass(frozen=True)
class YellowFinVsAdamConfig:
    """Data, models, grids, seeds and budget.

    Attributes:
        tasks: which of :data:`TASKS` to run.
        resnet_data: ``"digits"``, ``"fashion-mnist"`` or ``"cifar10"``/``"cifar100"`` (read from
            ``cifar_dir``).
        resnet_n_train: first training images kept (None: all).
        resnet_depth, resnet_width, resnet_batch: the ResNet.
        text_path: corpus of the character LSTM (empty: the embedded pydoc topics snapshot).
        lstm_embed, lstm_hidden, lstm_batch, lstm_seq_len: the LSTM and its batches.
        steps: iterations of every baseline run (YellowFin gets ``ceil(ratio_tol x steps)``).
        resnet_adam_center, ...: centres of the initial grids per task and baseline.
        per_decade: grid points per decade (>= 3).
        grid_half: the initial grid is ``center 10^(k / per_decade)``, ``|k| <= grid_half``.
        max_extensions: how often a grid may grow past an edge that holds the best point.
        sgdm_momentum: momentum of the SGD baseline.
        seeds: seeds per method (>= 2 for an interval).
        smooth: trailing window of the training-loss smoothing.
        ratio_tol: YellowFin's iterations may be at most this multiple of the best baseline's.
        cifar_dir: CIFAR directory for the gpu tier.
    """

    tasks: tuple[str, ...] = TASKS
    resnet_data: str = "fashion-mnist"
    resnet_n_train: int | None = None
    resnet_depth: int = 8
    resnet_width: int = 4
    resnet_batch: int = 16
    text_path: str = ""
    lstm_embed: int = 32
    lstm_hidden: int = 128
    lstm_batch: int = 32
    lstm_seq_len: int = 64
    steps: int = 3000
    resnet_adam_center: float = 3e-3
    resnet_sgdm_center: float = 0.03
    lstm_adam_center: float = 1e-2
    lstm_sgdm_center: float = 1.0
    per_decade: int = 3
    grid_half: int = 1
    max_extensions: int = 3
    sgdm_momentum: float = 0.9
    seeds: int = 3
    smooth: int = 100
    ratio_tol: float = 1.5
    cifar_dir: str = ""

    @classmethod
    def quick(cls) -> YellowFinVsAdamConfig:
        """ResNet-8 on the digits and a 32-unit LSTM, 300 steps: a smoke run (budget < 10x the
        200-step slow start)."""
        return cls(
            resnet_data="digits",
            resnet_width=4,
            resnet_batch=32,
            lstm_embed=16,
            lstm_hidden=32,
            lstm_batch=16,
            lstm_seq_len=32,
            steps=300,
            resnet_adam_center=1e-2,
            resnet_sgdm_center=0.04,
            lstm_adam_center=0.05,
            lstm_sgdm_center=1.4,
            grid_half=1,
            max_extensions=2,
            smooth=20,
        )

    @classmethod
    def gpu(cls) -> YellowFinVsAdamConfig:
        """Paper scale: ResNet-20 on CIFAR-10 (``$MOMLAB_CIFAR_DIR``), a 256-unit LSTM on
        ``$MOMLAB_TEXT`` (the embedded corpus when unset), 20000 steps."""
        return cls(
            resnet_data="cifar10",
            resnet_depth=20,
            resnet_width=16,
            resnet_batch=128,
            text_path=os.environ.get("MOMLAB_TEXT", ""),
            lstm_embed=64,
            lstm_hidden=256,
            lstm_batch=64,
            steps=20000,
            grid_half=2,
            max_extensions=4,
            cifar_dir=os.environ.get("MOMLAB_CIFAR_DIR", ""),
        )


def smoothed(loss: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean ``s_t = mean(loss[max(0, t - window + 1) : t + 1])`` (NaN stays NaN)."""
    x = np.asarray(loss, np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    t = np.arange(x.size)
    lo = np.maximum(0, t - window + 1)
    return (c[t + 1] - c[lo]) / (t + 1 - lo)


def first_reach(curve: np.ndarray, target: float, start: int = 0) -> float:
    """Iterations (1-based) until ``curve <= target`` first holds at or after index ``start``;
    ``inf`` when never."""
    hit = np.nonzero(np.asarray(curve)[start:] <= target)[0]
    return float(hit[0] + start + 1) if hit.size else math.inf


def grid(center: float, per_decade: int, lo: int, hi: int) -> np.ndarray:
    """``center 10^(k / per_decade)`` for ``k = lo .. hi``."""
    return center * 10.0 ** (np.arange(lo, hi + 1) / per_decade)


def _task(name: str, cfg: YellowFinVsAdamConfig, seed: int):
    if name == "resnet":
        if cfg.resnet_data == "digits":
            ds = load_digits()
        elif cfg.resnet_data == "fashion-mnist":
            ds = load_fashion_mnist(n_train=cfg.resnet_n_train)
        else:
            if not cfg.cifar_dir:
                raise FileNotFoundError("CIFAR directory missing: set MOMLAB_CIFAR_DIR")
            ds = load_cifar(cfg.cifar_dir, int(cfg.resnet_data.removeprefix("cifar")))
        channels, classes = ds.x_train.shape[-1], ds.num_classes
        task = classification_task(ds, cfg.resnet_batch)
        model = init_model(
            lambda r: ResNet(
                depth=cfg.resnet_depth,
                width=cfg.resnet_width,
                num_classes=classes,
                in_channels=channels,
                rngs=r,
            ),
            seed,
        )
        return task, model, math.log(classes)
    ds = load_text(cfg.text_path or None)
    task = language_model_task(ds, cfg.lstm_batch, cfg.lstm_seq_len)
    model = init_model(
        lambda r: CharLSTM(ds.vocab_size, embed=cfg.lstm_embed, hidden=cfg.lstm_hidden, rngs=r),
        seed,
    )
    return task, model, math.log(ds.vocab_size)


def _final(curves: np.ndarray, cfg: YellowFinVsAdamConfig) -> np.ndarray:
    """Smoothed training loss at the end of the baseline budget (inf where a run diverged)."""
    flat = curves.reshape(-1, curves.shape[-1])
    end = np.array([smoothed(c, cfg.smooth)[cfg.steps - 1] for c in flat])
    return np.where(np.isfinite(end), end, np.inf).reshape(curves.shape[:-1])


def _tune(models, make, center, task, cfg, chunk) -> dict:
    """Every seed on a grid that grows past an edge holding the best mean final loss."""
    lo, hi = -cfg.grid_half, cfg.grid_half
    done: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for extension in range(cfg.max_extensions + 1):
        lrs = [float(v) for v in grid(center, cfg.per_decade, lo, hi) if float(v) not in done]
        res = train_grid(models, make, lrs, task, steps=cfg.steps, chunk=chunk)
        for g, lr in enumerate(lrs):
            done[lr] = (res.losses[:, g], res.test_loss[:, g], res.test_accuracy[:, g])
        ordered = sorted(done)
        final = [float(np.mean(_final(done[v][0], cfg))) for v in ordered]
        best = ordered[int(np.argmin(final))]
        edge = best in (ordered[0], ordered[-1])
        if not edge or extension == cfg.max_extensions:
            break
        lo, hi = (lo - 1, hi) if best == ordered[0] else (lo, hi + 1)
    return {"grid": ordered, "final": final, "best": best, "on_edge": edge, "runs": done[best]}


def run(cfg: YellowFinVsAdamConfig, seed: int) -> Record:
    """Tune the baselines, run every method on ``seeds`` seeds, compare iterations to target."""
    if not cfg.tasks or set(cfg.tasks) - set(TASKS):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS} (got {cfg.tasks!r})")
    yf_steps = math.ceil(cfg.ratio_tol * cfg.steps)
    chunk = math.gcd(cfg.steps, yf_steps, 100) or 1
    makers = {
        "adam": optax.adam,
        "sgdm": functools.partial(optax.sgd, momentum=cfg.sgdm_momentum),
    }
    checks: list[Check] = []
    meas: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    for k, name in enumerate(cfg.tasks):
        built = [_task(name, cfg, seed + s) for s in range(cfg.seeds)]
        task, chance = built[0][0], built[0][2]
        models = [b[1] for b in built]
        tuned = {
            m: _tune(models, makers[m], getattr(cfg, f"{name}_{m}_center"), task, cfg, chunk)
            for m in BASELINES
        }
        runs = {m: tuned[m]["runs"] for m in BASELINES}
        yf = train_grid(models, yellowfin, None, task, steps=yf_steps, chunk=chunk)
        runs["yellowfin"] = (yf.losses[:, 0], yf.test_loss[:, 0], yf.test_accuracy[:, 0])
        smooth = {m: [smoothed(c, cfg.smooth) for c in runs[m][0]] for m in METHODS}
        finals = {m: np.array([s[min(cfg.steps, s.size) - 1] for s in smooth[m]]) for m in METHODS}
        best = min(BASELINES, key=lambda m: float(np.mean(finals[m])))
        targets = np.minimum(finals["adam"], finals["sgdm"])  # per seed: best baseline's end
        iters = {
            m: np.array(
                [
                    first_reach(s, t, SLOW_START if m == "yellowfin" else 0)
                    for s, t in zip(smooth[m], targets, strict=True)
                ]
            )
            for m in METHODS
        }
        # a run that never reaches the target is censored at its budget + 1 (a lower bound)
        budget = {"yellowfin": yf_steps, "adam": cfg.steps, "sgdm": cfg.steps}
        cens = {m: np.where(np.isfinite(iters[m]), iters[m], budget[m] + 1.0) for m in METHODS}
        t_best = np.minimum(cens["adam"], cens["sgdm"])
        ratio, interval = ratio_interval(cens["yellowfin"], t_best, seed=seed)
        speedup, sp_int = ratio_interval(cens["adam"], cens["yellowfin"], seed=seed)
        edge = [m for m in BASELINES if tuned[m]["on_edge"]]
        checks.append(
            check(
                f"{name}_best_rates_inside_grids",
                "precondition",
                not edge,
                measured={
                    m: {
                        "best": tuned[m]["best"],
                        "grid": [tuned[m]["grid"][0], tuned[m]["grid"][-1]],
                    }
                    for m in BASELINES
                },
                note=f"best learning rate still on the grid's edge for {', '.join(edge)} after "
                f"{cfg.max_extensions} extensions"
                if edge
                else "both optima inside their grids",
            )
        )
        trained = {m: float(np.mean(finals[m])) for m in METHODS}
        checks.append(
            check(
                f"{name}_training_left_chance",
                "precondition",
                all(v < 0.9 * chance for v in trained.values()),
                predicted=f"< 0.9 x chance loss {chance:.3f}",
                measured=trained,
                note="every method's final smoothed training loss is below 90% of log(classes)",
            )
        )
        checks.append(
            interval_check(
                f"{name}_yellowfin_within_{cfg.ratio_tol:g}x_best_baseline",
                "reproduction",
                interval,
                upper=cfg.ratio_tol,
                measured={"ratio": ratio, "interval": list(interval)},
                note=f"mean iterations of YellowFin / best tuned baseline over {cfg.seeds} seeds, "
                "95% bootstrap interval",
                headline=k == 0,
            )
        )
        meas[name] = {
            "best_baseline": best,
            "tuned_learning_rate": {m: tuned[m]["best"] for m in BASELINES},
            "target_loss_per_seed": targets.tolist(),
            "iterations": {m: iters[m].tolist() for m in METHODS},
            "yellowfin_over_best_baseline": ratio,
            "ratio_interval": list(interval),
            "speedup_over_adam": speedup,
            "speedup_over_adam_interval": list(sp_int),
            "final_smoothed_train_loss": {m: finals[m].tolist() for m in METHODS},
            "test_loss": {m: runs[m][1].tolist() for m in METHODS},
            "test_accuracy": {m: runs[m][2].tolist() for m in METHODS},
        }
        for m in METHODS:
            arrays[f"{name}_{m}_smoothed"] = np.stack(smooth[m])
            arrays[f"{name}_{m}_iterations"] = iters[m]
        for m in BASELINES:
            arrays[f"{name}_{m}_grid"] = np.asarray(tuned[m]["grid"])
            arrays[f"{name}_{m}_grid_final_loss"] = np.asarray(tuned[m]["final"])
        arrays[f"{name}_targets"] = targets
    smoke = (
        f"budget {cfg.steps} steps is below 10x YellowFin's {SLOW_START}-step slow start "
        f"({10 * SLOW_START}): the ratio mostly measures the slow start"
        if cfg.steps < 10 * SLOW_START
        else ""
    )
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "source": "published empirical claim (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 5.1)",
            "yellowfin_over_best_baseline_at_most": cfg.ratio_tol,
            "published_speedup_over_adam_up_to": PUBLISHED_SPEEDUP_OVER_ADAM,
        },
        measurement=meas,
        tolerance={
            "ratio_tol": cfg.ratio_tol,
            "explanation": "holds when the 95% bootstrap interval of mean YellowFin iterations / "
            "mean best-baseline iterations over seeds lies below ratio_tol; unresolved when it "
            "straddles it",
        },
        checks=checks,
        smoke=smoke,
        summary="; ".join(
            f"{n}: YellowFin/best baseline {meas[n]['yellowfin_over_best_baseline']:.2f} "
            f"[{meas[n]['ratio_interval'][0]:.2f}, {meas[n]['ratio_interval'][1]:.2f}], "
            f"speedup over Adam {meas[n]['speedup_over_adam']:.2f}x"
            for n in cfg.tasks
        )
        + f" ({cfg.seeds} seeds; tolerance {cfg.ratio_tol:g}; published up to "
        f"{PUBLISHED_SPEEDUP_OVER_ADAM}x over Adam)",
        arrays=arrays,
    )


EXPERIMENT_CLAIM = (
    "Untuned YellowFin reaches the best grid-tuned baseline's (Adam or momentum SGD) final "
    "training loss within 1.5x its iterations on a ResNet and on an LSTM (published: up to 3.28x "
    "fewer iterations than Adam)."
)

EXPERIMENT = register(
    Experiment(
        name="yellowfin-vs-adam",
        title="YellowFin vs tuned Adam and momentum SGD",
        claim=EXPERIMENT_CLAIM,
        config=YellowFinVsAdamConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=11,
    )
)
