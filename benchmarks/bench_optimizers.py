"""Time one jitted optimizer step (update + apply, donated buffers) per optimizer.

Run as ``python -m benchmarks.bench_optimizers [--quick]``. Problems: a flat float32 vector of 1e6
and 1e7 parameters and the parameter pytree of a ResNet-20 (CIFAR-10 shapes, 0.27M parameters in
65 arrays). Optimizers: optax sgd+momentum, optax adam, optax.contrib.momo and ours (heavy_ball,
momo, momo_adam, yellowfin, yellowfin closed-loop, yellowfin with the Hessian-vector curvature
oracle run every 10 steps with 10 Lanczos steps); an optimizer that cannot be built or imported is
recorded as missing with the reason. Every step receives ``loss_fn``, an elementwise loss
sum(log cosh(x)) (its Hessian-vector product costs about one pass over the parameters, so the
measured oracle overhead is the oracle's own: Lanczos recurrence, linearisation, ``lax.cond``);
the Hessian oracle is reported as ``paired_ratio_to_yellowfin`` (same run, paired by round). On a
network each Hessian-vector product costs about two gradient evaluations more, i.e. (1 + 2 m)/k
gradient evaluations per step on top of the step's own (see ``optimizers.yellowfin``). The step
timed here excludes the gradient (it is computed once, outside the loop): it is the optimizer's
own cost. Whole training steps (gradient + update on the same network loss) are timed by
:mod:`benchmarks._bench_training_step` (an MLP; the Hessian oracle at several k and m, the cost
in gradient evaluations measured beside) and written under ``training_step``.

Method: all optimizers of a problem are timed in interleaved rounds, in an order rotated every
round (so that a slow period of a shared machine hits every optimizer alike); a round runs
``steps`` donated steps back to back and blocks once at the end, so the host never waits inside the
timed loop; the first call (compile) and one warm-up round are excluded. Steps per round are a
multiple of the oracle's period (10), so that every round holds the same share of Lanczos runs.
Reported: the median over rounds of the time per step, and its ratio to sgd+momentum's median of
the same run. Results are merged into ``benchmarks/results/optimizers.json`` under the platform's
key (cpu/gpu), written atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._bench_training_step import time_training_steps
from benchmarks._results import merge_run

RESULTS = Path(__file__).resolve().parent / "results" / "optimizers.json"
BASELINE = "optax_sgd_momentum"
HESSIAN = "yellowfin_hessian_k10_m10"


def resnet20_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter shapes of ResNet-20 for CIFAR-10 (He et al. 2016, Sec. 4.2).

    Three stages of three basic blocks (16, 32, 64 channels), batch-norm scales and biases,
    projection shortcuts and a dense head.
    """
    shapes: dict[str, tuple[int, ...]] = {"stem/conv": (3, 3, 3, 16), "stem/bn_s": (16,)}
    shapes["stem/bn_b"] = (16,)
    c_in = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            name = f"s{stage}b{block}"
            shapes[f"{name}/conv1"] = (3, 3, c_in, width)
            shapes[f"{name}/conv2"] = (3, 3, width, width)
            for bn in ("bn1", "bn2"):
                shapes[f"{name}/{bn}_s"] = (width,)
                shapes[f"{name}/{bn}_b"] = (width,)
            if c_in != width:
                shapes[f"{name}/proj"] = (1, 1, c_in, width)
            c_in = width
    shapes["head/w"] = (64, 10)
    shapes["head/b"] = (10,)
    return shapes


def make_problem(name: str, rng: np.random.Generator) -> Any:
    """Parameters of one benchmark problem (float32)."""
    if name == "flat_1e6":
        return jnp.asarray(rng.standard_normal(10**6), jnp.float32)
    if name == "flat_1e7":
        return jnp.asarray(rng.standard_normal(10**7), jnp.float32)
    if name == "resnet20_tree":
        return {
            k: jnp.asarray(0.1 * rng.standard_normal(s), jnp.float32)
            for k, s in resnet20_shapes().items()
        }
    raise ValueError(f"problem must be one of flat_1e6, flat_1e7, resnet20_tree (got {name!r})")


def optimizer_factories() -> dict[str, Callable[[], optax.GradientTransformation]]:
    """Every optimizer of the benchmark; ours are imported lazily so a missing one is recorded."""

    def ours(attr: str, **kwargs: Any) -> Callable[[], optax.GradientTransformation]:
        def build() -> optax.GradientTransformation:
            import optimizers

            return getattr(optimizers, attr)(**kwargs)

        return build

    return {
        BASELINE: lambda: optax.sgd(0.01, momentum=0.9),
        "optax_adam": lambda: optax.adam(1e-3),
        "optax_contrib_momo": lambda: optax.contrib.momo(1.0, 0.9),
        "heavy_ball": ours("heavy_ball", learning_rate=0.01, momentum=0.9),
        "momo": ours("momo", learning_rate=1.0, beta=0.9),
        "momo_adam": ours("momo_adam", learning_rate=1e-2),
        "yellowfin": ours("yellowfin"),
        "yellowfin_closed_loop": ours("closed_loop_yellowfin"),
        HESSIAN: ours("yellowfin", curvature="hessian", curvature_every=10, lanczos_steps=10),
    }


def bench_loss(params: Any) -> jax.Array:
    """Elementwise loss sum(log cosh(x)) over every leaf (Hessian diag(sech^2 x))."""
    return sum(jnp.sum(jnp.log(jnp.cosh(p))) for p in jax.tree_util.tree_leaves(params))


def _shares_buffers(tree: Any) -> bool:
    """True when two leaves of ``tree`` are the same device buffer (which blocks donation)."""
    ptrs = [leaf.unsafe_buffer_pointer() for leaf in jax.tree_util.tree_leaves(tree)]
    return len(set(ptrs)) < len(ptrs)


def build_step(opt: optax.GradientTransformation) -> Callable:
    """One jitted step ``(params, state, grads, loss) -> (params, state)``; params/state donated."""

    def step(params: Any, state: Any, grads: Any, loss: jax.Array) -> tuple[Any, Any]:
        if isinstance(opt, optax.GradientTransformationExtraArgs):
            updates, state = opt.update(grads, state, params, value=loss, loss_fn=bench_loss)
        else:
            updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def time_problem(
    problem: str, rounds: int, steps: int, rng: np.random.Generator
) -> dict[str, dict[str, Any]]:
    """Median time per step of every optimizer on ``problem``, interleaved over ``rounds``."""
    base = make_problem(problem, rng)
    grads = jax.tree_util.tree_map(
        lambda p: jnp.asarray(1e-3 * rng.standard_normal(p.shape), p.dtype), base
    )
    loss = jnp.asarray(1.0, jnp.float32)
    live: dict[str, list[Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for name, build in optimizer_factories().items():
        try:
            opt = build()
            params = jax.tree_util.tree_map(jnp.copy, base)
            state = opt.init(params)
            shared = _shares_buffers(state)
            if shared:
                # Two state fields on one buffer cannot both be donated: copy so it can be timed.
                state = jax.tree_util.tree_map(jnp.copy, state)
            step = build_step(opt)
            params, state = step(params, state, grads, loss)  # compile
            jax.block_until_ready((params, state))
            live[name] = [step, params, state]
            out[name] = {"init_state_shares_buffers": shared}
        except Exception as err:  # recorded, not hidden: the JSON says why it is missing
            out[name] = {"missing": f"{type(err).__name__}: {err}"[:300]}
    times: dict[str, list[float]] = {name: [] for name in live}
    names = list(live)
    for r in range(rounds + 1):  # round 0 is the warm-up
        # Rotate the order every round so that no optimizer always runs first or after the same one.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            slot = live[name]
            step, params, state = slot
            t0 = time.perf_counter()
            for _ in range(steps):
                params, state = step(params, state, grads, loss)
            jax.block_until_ready((params, state))
            elapsed = time.perf_counter() - t0
            slot[1], slot[2] = params, state
            if r > 0:
                times[name].append(elapsed / steps)
    for name, ts in times.items():
        out[name] |= {
            "median_ms": 1e3 * statistics.median(ts),
            "min_ms": 1e3 * min(ts),
            "rounds": len(ts),
            "steps_per_round": steps,
        }
    base_ms = out.get(BASELINE, {}).get("median_ms")
    for name, entry in out.items():
        if base_ms and "median_ms" in entry:
            entry["ratio_to_sgd_momentum"] = entry["median_ms"] / base_ms
            # Ratio within each round (the two were timed seconds apart), then the median: less
            # sensitive to slow periods of a shared machine than the ratio of the two medians.
            paired = [t / b for t, b in zip(times[name], times[BASELINE], strict=True)]
            entry["paired_ratio_median"] = statistics.median(paired)
    if "median_ms" in out.get(HESSIAN, {}) and "median_ms" in out.get("yellowfin", {}):
        paired = [t / b for t, b in zip(times[HESSIAN], times["yellowfin"], strict=True)]
        out[HESSIAN]["paired_ratio_to_yellowfin"] = statistics.median(paired)
        out[HESSIAN]["target_ratio_to_yellowfin"] = 1.5
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per problem")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (7 if args.quick else 21)
    if rounds < 1:
        raise SystemExit("--rounds must be >= 1")
    rng = np.random.default_rng(args.seed)
    load_start = os.getloadavg()
    problems = {"flat_1e6": 20, "flat_1e7": 10, "resnet20_tree": 30}  # steps per round
    results = {}
    for problem, steps in problems.items():
        results[problem] = time_problem(problem, rounds, steps, rng)
        for name, entry in results[problem].items():
            if "median_ms" in entry:
                print(
                    f"{problem:14s} {name:22s} {entry['median_ms']:9.3f} ms"
                    f"  x{entry['ratio_to_sgd_momentum']:.2f}"
                    f"  (paired x{entry['paired_ratio_median']:.2f})"
                    + (
                        f"  vs yellowfin x{entry['paired_ratio_to_yellowfin']:.2f}"
                        if "paired_ratio_to_yellowfin" in entry
                        else ""
                    )
                )
            else:
                print(f"{problem:14s} {name:22s} missing ({entry['missing']})")
    training = time_training_steps(rounds, 20, rng)
    comp = training["components"]
    print(
        f"mlp training step: gradient {comp['gradient_ms']:.2f} ms, linearisation"
        f" {comp['c_lin']:.2f} g, Hessian-vector product {comp['c_hvp']:.2f} g,"
        f" yellowfin update {comp['c_yf']:.2f} g"
    )
    for name, entry in training["steps"].items():
        if "paired_ratio_to_yellowfin" in entry:
            print(
                f"mlp step {name:40s} vs yellowfin x{entry['paired_ratio_to_yellowfin']:.2f}"
                f" (cost model x{entry['predicted_ratio_to_yellowfin']:.2f})"
            )
    dev = jax.devices()[0]
    run = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
        "cpu_count": os.cpu_count(),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "machine": platform.machine(),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": importlib.metadata.version("jaxlib"),
            "optax": optax.__version__,
            "numpy": np.__version__,
        },
        "quick": args.quick,
        "rounds": rounds,
        "statistic": "median over rounds of ms per step (update + apply, donated buffers)",
        "results": results,
        "training_step": training,
    }
    merge_run(args.out, dev.platform, run)
    print(f"wrote {args.out}")
    return run


if __name__ == "__main__":
    main()
