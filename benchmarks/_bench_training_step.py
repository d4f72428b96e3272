"""Whole training steps (gradient + optimizer update) with the Hessian curvature oracle.

The optimizer-only step of :mod:`benchmarks.bench_optimizers` hides what the oracle really costs:
its Hessian-vector products are products of the network, not of the optimizer. Here one training
step is ``value_and_grad`` of a minibatch loss plus the optimizer update and apply, on an MLP
(784-512-512-10, tanh, softmax cross-entropy, 0.67M parameters, batch 128 of fixed synthetic
data, float32), for YellowFin and for YellowFin with ``curvature="hessian"`` at several
(k = ``curvature_every``, m = ``lanczos_steps``), paired by round against YellowFin.

Cost model, in gradient evaluations (g = one ``value_and_grad`` of the minibatch loss): a Lanczos
run is one linearisation (c_lin g) and m Hessian-vector products (c_hvp g each), every k steps, so
a Hessian step costs 1 + c_yf + (c_lin + m c_hvp) / k against 1 + c_yf for YellowFin (c_yf: the
optimizer update in g). c_lin and c_hvp are measured here on the same network, and the predicted
ratio is printed beside the measured one. A curvature loss on a quarter of the minibatch (the
"curvature minibatch" of Hessian-free optimisation, Martens 2010, Sec. 4.3) divides c_lin and
c_hvp by about 4.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

WIDTHS = (784, 512, 512, 10)
BATCH = 128
# name -> (curvature_every k, lanczos_steps m, fraction of the batch the curvature loss sees)
VARIANTS: dict[str, tuple[int, int, float]] = {
    "yellowfin_hessian_k10_m10": (10, 10, 1.0),
    "yellowfin_hessian_k10_m10_quarter_batch": (10, 10, 0.25),
    "yellowfin_hessian_k10_m4": (10, 4, 1.0),
    "yellowfin_hessian_k20_m4": (20, 4, 1.0),
}


def mlp_problem(rng: np.random.Generator) -> tuple[Any, jax.Array, jax.Array]:
    """Parameters (Glorot-scaled normal), inputs and integer labels of the benchmark MLP."""
    params = {}
    for i, (a, b) in enumerate(itertools.pairwise(WIDTHS)):
        params[f"w{i}"] = jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a), jnp.float32)
        params[f"b{i}"] = jnp.zeros((b,), jnp.float32)
    x = jnp.asarray(rng.standard_normal((BATCH, WIDTHS[0])), jnp.float32)
    y = jnp.asarray(rng.integers(0, WIDTHS[-1], BATCH), jnp.int32)
    return params, x, y


def mlp_loss(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of the tanh MLP."""
    h = x
    n = len(WIDTHS) - 1
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = jnp.tanh(h)
    return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()


def _time(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``fn`` (blocked), after one warm-up call."""
    jax.block_until_ready(fn())
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def component_costs(params: Any, x: jax.Array, y: jax.Array, repeats: int) -> dict[str, float]:
    """Seconds of one gradient, one linearisation, one Hessian-vector product (and in g units)."""
    from optimizers import hvp_matvec

    grad = jax.jit(jax.value_and_grad(mlp_loss))
    flat = jax.flatten_util.ravel_pytree(params)[0]

    @jax.jit
    def lin(p: Any) -> Any:
        matvec, _ = hvp_matvec(lambda q: mlp_loss(q, x, y), p, jnp.float32)
        return matvec(flat)

    @jax.jit
    def lin_10(p: Any) -> Any:
        matvec, _ = hvp_matvec(lambda q: mlp_loss(q, x, y), p, jnp.float32)
        v = flat
        for _ in range(10):
            v = matvec(v) * 1e-3
        return v

    t_g = _time(lambda: grad(params, x, y), repeats)
    t_1 = _time(lambda: lin(params), repeats)
    t_10 = _time(lambda: lin_10(params), repeats)
    t_hvp = max(t_10 - t_1, 0.0) / 9
    t_lin = max(t_1 - t_hvp, 0.0)
    return {
        "gradient_ms": 1e3 * t_g,
        "linearize_ms": 1e3 * t_lin,
        "hvp_ms": 1e3 * t_hvp,
        "c_lin": t_lin / t_g,
        "c_hvp": t_hvp / t_g,
    }


def time_training_steps(rounds: int, steps: int, rng: np.random.Generator) -> dict[str, Any]:
    """Median time per training step of YellowFin and each Hessian variant, rotated rounds."""
    import optimizers

    params0, x, y = mlp_problem(rng)
    builds: dict[str, Callable[[], optax.GradientTransformation]] = {
        "yellowfin": optimizers.yellowfin
    }
    fractions = {"yellowfin": None}
    for name, (k, m, frac) in VARIANTS.items():
        builds[name] = lambda k=k, m=m: optimizers.yellowfin(
            curvature="hessian", curvature_every=k, lanczos_steps=m
        )
        fractions[name] = frac
    live: dict[str, list[Any]] = {}
    for name, build in builds.items():
        opt = build()
        frac = fractions[name]

        def step(p: Any, s: Any, opt=opt, frac=frac) -> tuple[Any, Any]:
            loss, g = jax.value_and_grad(mlp_loss)(p, x, y)
            if frac is None:
                u, s = opt.update(g, s, p, value=loss)
            else:
                nb = max(1, round(frac * BATCH))
                u, s = opt.update(
                    g, s, p, value=loss, loss_fn=lambda q: mlp_loss(q, x[:nb], y[:nb])
                )
            return optax.apply_updates(p, u), s

        jstep = jax.jit(step, donate_argnums=(0, 1))
        p = jax.tree_util.tree_map(jnp.copy, params0)
        s = jax.tree_util.tree_map(jnp.copy, opt.init(p))
        p, s = jstep(p, s)
        jax.block_until_ready((p, s))
        live[name] = [jstep, p, s]
    names = list(live)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 1):  # round 0 is the warm-up
        for name in names[r % len(names) :] + names[: r % len(names)]:
            jstep, p, s = live[name]
            t0 = time.perf_counter()
            for _ in range(steps):
                p, s = jstep(p, s)
            jax.block_until_ready((p, s))
            live[name][1:] = [p, s]
            if r > 0:
                times[name].append((time.perf_counter() - t0) / steps)
    costs = component_costs(params0, x, y, repeats=max(3, rounds))
    yf_ms = 1e3 * statistics.median(times["yellowfin"])
    c_yf = max(yf_ms / costs["gradient_ms"] - 1.0, 0.0)
    out: dict[str, Any] = {"components": costs | {"c_yf": c_yf}, "steps": {}}
    for name in names:
        entry = {
            "median_ms": 1e3 * statistics.median(times[name]),
            "min_ms": 1e3 * min(times[name]),
            "rounds": len(times[name]),
            "steps_per_round": steps,
        }
        if name != "yellowfin":
            k, m, frac = VARIANTS[name]
            paired = [t / b for t, b in zip(times[name], times["yellowfin"], strict=True)]
            extra_g = frac * (costs["c_lin"] + m * costs["c_hvp"]) / k
            entry |= {
                "curvature_every": k,
                "lanczos_steps": m,
                "curvature_batch_fraction": frac,
                "paired_ratio_to_yellowfin": statistics.median(paired),
                "predicted_ratio_to_yellowfin": 1.0 + extra_g / (1.0 + c_yf),
                "extra_gradient_evaluations_per_step": extra_g,
                "target_ratio_to_yellowfin": 1.5,
            }
        out["steps"][name] = entry
    return out
