"""Experiment 12: each scalar variable of a real network converges at the predicted late rate.

Claim (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", arXiv 1706.03471, Sec. 3.1
and the per-variable figure): with a fixed momentum ``mu`` and a learning rate ``alpha`` that puts
the whole Hessian spectrum inside the robust interval, every scalar variable approaches the
minimiser at ``sqrt(mu)`` per step; when the smallest eigenvalue lies outside it (``alpha h_min <
(1 - sqrt(mu))^2``), the variables follow the slowest mode instead.

Protocol (deterministic, so that a rate is a rate and not drift or minibatch noise): full-batch
heavy ball (``optax.sgd(alpha, momentum=mu)``) in float64 from the network's initialisation, with
weight decay so that a minimiser exists, on two networks:

- ``mlp`` (every tier): a ``tanh`` MLP on the digits (:func:`gpu.fullbatch.digits_mlp_problem`).
  The reference ``w*`` is the run's end point polished by L-BFGS and Newton steps with the exact
  Hessian (:func:`gpu.fullbatch.polish`), whose full spectrum gives the prediction.
- ``lstm`` (full and gpu tiers): a character LSTM on a fixed batch of windows of the pydoc text
  (:func:`gpu.fullbatch.char_lstm_problem`) whose embedding is fixed at ``lstm_embedding_scale``
  times its random initial value. Its Hessian is not formed: the polish is L-BFGS then Newton-CG on
  Hessian-vector products (:func:`gpu.fullbatch.newton_cg_polish`) and the spectrum's ends come
  from Lanczos with full reorthogonalisation (:func:`gpu.fullbatch.lanczos_extremes`).

Prediction: each variable is a mixture of the Hessian's modes, so its late rate is
``max_h rho(alpha, mu, h)`` over ``[h_min, h_max]`` (:func:`theory.spectral_radius`, attained at an
end), ``sqrt(mu)`` exactly when the whole spectrum is in the robust interval
(:func:`theory.robust_interval`). A pilot minimiser (L-BFGS from the same start) places the learning
rates: inside runs at ``position`` along the robust interval in log scale, outside runs at
``factor x alpha_lo`` so that ``h_min`` is lazy.

Measurement: :func:`gpu.fullbatch.late_rates` fits each tracked variable's rate over the late window
(global distance between ``lower`` and ``upper`` times its start); the tolerance is the measured
spread of those fits (half the 0.95 quantile of the two half-window fits' disagreement, in
log-rate). Minibatch heavy ball at the inside runs' ``alpha, mu`` is recorded and drawn beside them
as the noisy case; it decides nothing. The checks and their kinds are fixed in
:mod:`experiments.library._per_variable_rate_checks`: the deciding ones are verifications (inside:
at least ``threshold`` of the variables follow ``sqrt(mu)``; outside: the median rate equals the
predicted slowest mode within the tolerance).

Tiers: quick (8-unit MLP, 610 parameters, 512 digits, mu = 0.95 and 0.99, one inside and one
outside run each); full (16-unit MLP on all 1437 digits, mu = 0.9, 0.95, 0.99, two inside runs
where the robust interval exists and one outside run each: the pilot's ``h_max / h_min`` of about
8.9e3 exceeds the range ``((1 + sqrt(mu)) / (1 - sqrt(mu)))^2`` that mu = 0.9 and 0.95 tolerate
(1.4e3, 6.1e3), so only mu = 0.99 has inside runs; an 8 x 16 LSTM, 2348 trained parameters
(embedding fixed), on 16 windows of 32 characters with weight decay 0.03, at mu = 0.9 and 0.99,
one inside (where the robust interval exists) and one outside run each);
gpu (a 64-unit MLP and a larger LSTM, four momenta). Runs are kept as resumable stages
(:mod:`experiments.runtime`) and report progress in steps.

Why the embedding is fixed: a trained embedding ``E`` and input kernel ``W_i`` enter only through
``E W_i``, and ``(E R, R^T W_i)``, ``R`` orthogonal, has the same loss and weight decay, so every
minimiser that reads its input lies on a manifold of minimisers (zero Hessian eigenvalues, no
``h_min > 0``); the one isolated candidate, ``E = 0, W_i = 0``, ignores the input. With the
embedding trained, weight decay 0.03 gave exactly that minimiser: ``E = W_i = 0`` is a local
minimum because the decay exceeds the largest cross curvature between ``E`` and ``W_i`` there
(0.0256; ``h_min = 0.03 - 0.0256``), data loss 3.212 nats against the batch's unigram entropy
3.168. Smaller decays read the input but gave no usable spectrum: at 0.02 ``h_min = 2.7e-7``
(``h_max / h_min = 3e10``); at 0.003 L-BFGS stopped after 13,800 iterations short of a minimiser
(with 64 windows: ``h_min < 0``, ``h_max = 3e6`` there) and Newton-CG from there diverged. The
fixed table, scaled by 6 so that a small ``W_i`` reads it, keeps decay 0.03: the pilot's L-BFGS
point has data loss 2.993 nats against the unigram entropy 3.168 and 3.349 with ``W_i`` zeroed, and
``h_max / h_min = 8.6e3`` (so mu = 0.9 has an outside run only). At scale 3 (``h_max / h_min =
754``) the gain over the unigram entropy, 0.07 to 0.085 nats, was within its spread over the
windows (0.05 bootstrap quantile -0.009 to -0.0005), and the precondition
``lstm_minimiser_uses_input``, which checks this at every run's minimiser, failed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import theory
from experiments import runtime
from experiments.framework import Experiment, Record, register
from experiments.library import _per_variable_rate_runs as runs
from experiments.library._per_variable_rate_checks import stage_checks, usable
from experiments.library._per_variable_rate_plot import plot
from experiments.library._per_variable_rate_record import Progress, public, record_arrays
from gpu.data import load_digits, load_text
from gpu.fullbatch import char_lstm_problem, digits_mlp_problem


@dataclasses.dataclass(frozen=True)
class PerVariableRateConfig:
    """Networks, momenta, learning-rate placement, fit window and the noisy case.

    Attributes:
        hidden, n_train, weight_decay: the ``tanh`` MLP, the first ``n_train`` digits, ``lambda``.
        momenta, positions, factors: the MLP's momenta; inside runs at ``alpha_lo (alpha_hi /
            alpha_lo)^p`` for each position ``p`` in (0, 1); outside runs at ``factor x
            min(alpha_lo, alpha_hi)`` (``h_min`` lazy), ``factor < 1``.
        upper, lower: fit window levels of the global distance relative to its start.
        max_steps: cap on a run's length (a run whose window is not reached is not applicable).
        threshold: smallest fraction of variables that must follow ``sqrt(mu)`` inside.
        quantile: quantile of the half-window fit disagreement that sets the tolerance.
        tracked: variables tracked per run (all when the network has fewer; a seeded sample else).
        batch_size: MLP minibatch size of the noisy runs (0: none).
        noisy_floor, noisy_rel_tol: the noisy runs' fit floor and relative tolerance
            (:func:`gpu.rates.per_variable_rates`, the paper's measurement).
        lstm: whether to run the LSTM stage.
        lstm_sequences, lstm_seq_len, lstm_embed, lstm_hidden, lstm_weight_decay: the LSTM.
        lstm_embedding_scale: the LSTM's embedding is fixed at this multiple of its initial
            value (:func:`gpu.fullbatch.char_lstm_problem`; module docstring).
        lstm_momenta, lstm_positions, lstm_factors: its runs, as for the MLP.
        lstm_batch_size: windows per minibatch of the LSTM's noisy runs (0: none).
        lanczos_steps: Lanczos steps at each polished LSTM minimiser.
        ritz_tol: largest relative residual bound accepted for an extreme Ritz value.
    """

    hidden: int = 16
    n_train: int = 1437
    weight_decay: float = 1e-2
    momenta: tuple[float, ...] = (0.9, 0.95, 0.99)
    positions: tuple[float, ...] = (0.25, 0.75)
    factors: tuple[float, ...] = (0.6,)
    upper: float = 1e-4
    lower: float = 1e-9
    max_steps: int = 30000
    threshold: float = 0.9
    quantile: float = 0.95
    tracked: int = 1024
    batch_size: int = 64
    noisy_floor: float = 1e-2
    noisy_rel_tol: float = 0.2
    lstm: bool = True
    lstm_sequences: int = 16
    lstm_seq_len: int = 32
    lstm_embed: int = 8
    lstm_hidden: int = 16
    lstm_weight_decay: float = 3e-2
    lstm_embedding_scale: float = 6.0
    lstm_momenta: tuple[float, ...] = (0.9, 0.99)
    lstm_positions: tuple[float, ...] = (0.5,)
    lstm_factors: tuple[float, ...] = (0.5,)
    lstm_batch_size: int = 4
    lanczos_steps: int = 250
    ritz_tol: float = 1e-3

    @classmethod
    def quick(cls) -> PerVariableRateConfig:
        """An 8-unit MLP on 512 digits, mu = 0.95 and 0.99, one inside and one outside run each."""
        return cls(
            hidden=8,
            n_train=512,
            momenta=(0.95, 0.99),
            positions=(0.5,),
            factors=(0.7,),
            lstm=False,
        )

    @classmethod
    def gpu(cls) -> PerVariableRateConfig:
        """Paper-scale tier: a 64-unit MLP (4810 parameters, exact Hessian), four momenta, and a
        32 x 128 LSTM on 64 windows of 64 characters."""
        return cls(
            hidden=64,
            momenta=(0.9, 0.95, 0.99, 0.995),
            max_steps=60000,
            lstm_sequences=64,
            lstm_seq_len=64,
            lstm_embed=32,
            lstm_hidden=128,
            lstm_momenta=(0.9, 0.95, 0.99),
            lanczos_steps=300,
        )


def _plan(ends: tuple[float, float], momenta, positions, factors) -> list[tuple[float, float, str]]:
    planned = []
    for mu in momenta:
        lo, hi = (float(v) for v in theory.robust_interval(mu, max(ends[0], 1e-300), ends[1]))
        if lo < hi:
            planned += [(lo * (hi / lo) ** p, mu, "inside") for p in positions]
        planned += [(f * min(lo, hi), mu, "outside") for f in factors]
    return planned


def _prepare(name: str, problem, exact: bool, plan_args, batch_size: int, cfg, seed: int, bar):
    """Pilot minimiser (a resumable stage) and the plan of one network's runs."""
    rng = np.random.default_rng(seed)
    n = problem.size
    coords = np.arange(n) if n <= cfg.tracked else np.sort(rng.choice(n, cfg.tracked, False))
    pilot = runtime.stage(f"{name}-pilot", lambda: _pilot(problem, exact, cfg))
    bar.advance(runs.PILOT_COST, f"{name} pilot")
    ends = (float(pilot["h_min"]), float(pilot["h_max"]))
    planned = _plan(ends, *plan_args)
    firsts = {mu: a for a, mu, k in reversed(planned) if k == "inside"}
    noisy_plan = sorted((a, mu) for mu, a in firsts.items()) if batch_size else []
    steps = [runs.planned_steps(ends, a, mu, cfg.max_steps) for a, mu, _ in planned]
    noisy_steps = [runs.planned_steps(ends, a, mu, cfg.max_steps) for a, mu in noisy_plan]
    bar.add(sum(steps) + len(planned) * runs.PILOT_COST + sum(noisy_steps))
    return name, problem, exact, batch_size, coords, pilot, ends, planned, steps, noisy_plan


def _execute(prepared, cfg, seed: int, bar):
    """Full-batch and noisy runs of one network, each a resumable stage."""
    name, problem, exact, batch_size, coords, pilot, ends, planned, steps, noisy_plan = prepared
    results = []
    for i, (alpha, mu, kind) in enumerate(planned):
        label = f"{name} mu={mu:g} {kind} alpha={alpha:.3g}"
        out = runtime.stage(
            f"{name}-run{i}-mu={mu:g}-{kind}",
            lambda a=alpha, m=mu, k=kind, label=label: runs.to_arrays(
                runs.run_one(
                    problem,
                    ends,
                    a,
                    m,
                    k,
                    coords,
                    exact=exact,
                    lanczos_steps=cfg.lanczos_steps,
                    upper=cfg.upper,
                    lower=cfg.lower,
                    max_steps=cfg.max_steps,
                    quantile=cfg.quantile,
                    on_chunk=bar.chunk(label),
                )
            ),
        )
        bar.finish_chunks(steps[i] + runs.PILOT_COST, label)
        results.append(runs.from_arrays(out))
    noisy = []
    for i, (alpha, mu) in enumerate(noisy_plan):
        ref = next((r for r in results if r["mu"] == mu and r["alpha"] == alpha), None)
        if ref is None or "_reference" not in ref:
            continue
        label = f"{name} minibatch mu={mu:g}"
        n_steps = runs.planned_steps(ends, alpha, mu, cfg.max_steps)
        out = runtime.stage(
            f"{name}-noisy{i}-mu={mu:g}",
            lambda a=alpha, m=mu, r=ref, s=n_steps, label=label: runs.to_arrays(
                runs.noisy_run(
                    problem,
                    r["_reference"],
                    a,
                    m,
                    s,
                    coords,
                    batch_size,
                    seed,
                    floor=cfg.noisy_floor,
                    rel_tol=cfg.noisy_rel_tol,
                    on_chunk=bar.chunk(label),
                )
            ),
        )
        bar.finish_chunks(n_steps, label)
        noisy.append(runs.from_arrays(out))
    return pilot, results, noisy


def _pilot(problem, exact: bool, cfg: PerVariableRateConfig) -> dict[str, np.ndarray]:
    h_min, h_max, rel, _, _, _, gnorm = runs.spectrum_ends(
        problem, problem.init, exact, cfg.lanczos_steps
    )
    out = {"h_min": h_min, "h_max": h_max, "grad_norm": gnorm}
    if rel is not None:
        out["ritz_residual_min"], out["ritz_residual_max"] = rel
    return {k: np.asarray(v) for k, v in out.items()}


def run(cfg: PerVariableRateConfig, seed: int) -> Record:
    """Per network: pilot minimiser, inside and outside runs per momentum, noisy runs; checks."""
    nets = [
        (
            "mlp",
            digits_mlp_problem(load_digits(), cfg.hidden, cfg.weight_decay, seed, cfg.n_train),
            True,
            (cfg.momenta, cfg.positions, cfg.factors),
            cfg.batch_size,
        )
    ]
    if cfg.lstm:
        lstm = char_lstm_problem(
            load_text(),
            num_sequences=cfg.lstm_sequences,
            seq_len=cfg.lstm_seq_len,
            embed=cfg.lstm_embed,
            hidden=cfg.lstm_hidden,
            weight_decay=cfg.lstm_weight_decay,
            seed=seed,
            train_embedding=False,
            embedding_scale=cfg.lstm_embedding_scale,
        )
        plan = (cfg.lstm_momenta, cfg.lstm_positions, cfg.lstm_factors)
        nets.append(("lstm", lstm, False, plan, cfg.lstm_batch_size))
    # both pilots first, so that the progress total (steps planned) is known before any long run
    bar = Progress(len(nets) * runs.PILOT_COST)
    prepared = [_prepare(*net, cfg, seed, bar) for net in nets]
    done = {p[0]: _execute(p, cfg, seed, bar) for p in reversed(prepared)}  # the LSTM first
    stages = {p[0]: (p[1], done[p[0]]) for p in prepared}
    checks, measurement, arrays, summary = [], {}, {}, []
    for name, (problem, (pilot, results, noisy)) in stages.items():
        pilot_ok = float(pilot["grad_norm"]) <= 1e-10 and float(pilot["h_min"]) > 0
        lanczos = None
        if name == "lstm":
            lanczos = {
                f"mu={r['mu']:g},alpha={r['alpha']:.4g}": (
                    r["ritz_residual_min"],
                    r["ritz_residual_max"],
                )
                for r in results
                if "ritz_residual_min" in r
            }
        checks += stage_checks(
            name,
            results,
            cfg.threshold,
            pilot_ok,
            headline=name == "mlp",
            lanczos=lanczos,
            ritz_tol=cfg.ritz_tol,
        )
        measurement[name] = {
            "problem": problem.name,
            "parameters": problem.size,
            "pilot_spectrum": [float(pilot["h_min"]), float(pilot["h_max"])],
            "runs": [public(r) for r in results],
            "minibatch_runs": [public(r) for r in noisy],
        }
        arrays.update(record_arrays(name, results, noisy))
        reads = [r for r in results if "input_data_loss" in r]
        if reads:
            summary.append(
                f"{name} minimiser data loss {max(r['input_data_loss'] for r in reads):.3f} nats "
                f"vs unigram entropy {reads[0]['input_unigram_entropy']:.3f} and "
                f"{min(r['input_blind_loss'] for r in reads):.3f} with its input kernel zeroed"
            )
        summary += [
            f"{name} mu={r['mu']:g} {r['kind']}: {r['fraction_following_sqrt_mu']:.0%} follow "
            f"sqrt(mu), median {r['median_rate']:.5f} vs predicted {r['predicted_rate']:.5f}"
            for r in results
            if usable(r)
        ]
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "rule": "late rate of every variable = max over Hessian eigenvalues h of "
            "rho(alpha, mu, h) (theory.spectral_radius); sqrt(mu) when the whole spectrum is "
            "inside the robust interval; LSTM spectrum ends from Lanczos",
        },
        measurement=measurement,
        tolerance={
            "threshold": cfg.threshold,
            "explanation": "a variable follows rate r when |log rho_i - log r| <= tol, tol = half "
            f"the {cfg.quantile:g} quantile over variables of the disagreement of the fits over "
            "the two halves of the late window (the measured spread of the fit)",
        },
        checks=checks,
        summary="; ".join(summary) or "no usable run",
        arrays=arrays,
    )


EXPERIMENT_CLAIM = (
    "On a real network trained by deterministic heavy ball, every scalar variable converges at "
    "sqrt(mu) when the Hessian spectrum at the minimiser lies inside the robust interval, and at "
    "the predicted slowest-mode rate when its smallest eigenvalue lies outside it."
)

EXPERIMENT = register(
    Experiment(
        name="per-variable-rate",
        title="Per-variable rate on a real network",
        claim=EXPERIMENT_CLAIM,
        config=PerVariableRateConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=12,
    )
)
