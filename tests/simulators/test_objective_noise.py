"""Optional gradient noise on every non-quadratic objective: unbiased, with the stated variance.

With ``noise_std = s`` the gradient is ``f'(x) + s xi`` with i.i.d. unit noise ``xi``. From ``N``
draws at a fixed point: the sample mean of ``g - f'(x)`` has standard deviation ``s / sqrt(N)``;
the mean of ``(g - f'(x))^2`` estimates ``s^2`` with standard deviation
``s^2 sqrt((E xi^4 - 1) / N)``; the sample correlation of two coordinates has standard deviation
``1 / sqrt(N)``. Every check allows 5 standard deviations (two-sided normal tail 6e-7).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from simulators import simulate
from simulators.objectives import (
    Objective,
    lessard_counterexample,
    rosenbrock,
    separable,
    smooth_nonconvex_1d,
    stitched_nonconvex_1d,
)
from simulators.objectives.base import NOISE_FOURTH_MOMENT

N = 20_000
Z = 5.0

CONSTRUCTORS: dict[str, Callable[..., Objective]] = {
    "smooth": lambda **kw: smooth_nonconvex_1d(**kw),
    "stitched": lambda **kw: stitched_nonconvex_1d(**kw),
    "separable": lambda **kw: separable(stitched_nonconvex_1d(), 3, **kw),
    "lessard": lambda **kw: lessard_counterexample(**kw),
    "rosenbrock": lambda **kw: rosenbrock(3, **kw),
}


def _draws(obj: Objective, x: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    keys = jax.random.split(jax.random.key(1), N)
    vals, grads = jax.jit(jax.vmap(lambda k: obj.value_and_grad(x, k)))(keys)
    return np.asarray(vals), np.asarray(grads)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    ("name", "noise"),
    [(name, "gaussian") for name in CONSTRUCTORS]
    + [("rosenbrock", "rademacher"), ("rosenbrock", "uniform"), ("smooth", "uniform")],
)
def test_noise_is_unbiased_with_the_stated_variance(name: str, noise: str) -> None:
    probe = CONSTRUCTORS[name]()
    std = np.linspace(0.5, 1.5, probe.dim) if probe.dim > 1 else np.array([0.7])
    obj = CONSTRUCTORS[name](noise_std=std if probe.dim > 1 else float(std[0]), noise=noise)
    assert obj.noisy and not probe.noisy
    # a generic point off the minimiser (the start point of the Lessard toy is on a kink)
    x = jnp.asarray(np.asarray(obj.x0) + 0.1)
    exact_value, exact_grad = (np.asarray(a) for a in obj.value_and_grad(x))
    np.testing.assert_array_equal(np.asarray(obj.grad(x, None)), exact_grad)
    vals, grads = _draws(obj, x)
    dev = grads - exact_grad
    assert np.all(np.abs(dev.mean(axis=0)) < Z * std / np.sqrt(N)), (dev.mean(axis=0), std)
    spread = std**2 * np.sqrt((NOISE_FOURTH_MOMENT[noise] - 1.0) / N)
    second = (dev**2).mean(axis=0)
    assert np.all(np.abs(second - std**2) <= Z * spread + 1e-12), (second, std**2)
    if obj.dim > 1:
        corr = np.corrcoef(dev.T)[np.triu_indices(obj.dim, 1)]
        assert np.all(np.abs(corr) < Z / np.sqrt(N)), corr
    # the noisy loss is unbiased too: its noise is <s xi, x - x*>
    e = np.asarray(x) - np.asarray(obj.x_star)
    sd_value = np.sqrt(np.sum(std**2 * e**2) / N)
    assert abs(vals.mean() - exact_value) < Z * sd_value
    assert np.std(vals) > 0


def test_noiseless_by_default_and_keys_change_nothing() -> None:
    for name, make in CONSTRUCTORS.items():
        obj = make()
        assert not obj.noisy, name
        x = jnp.asarray(obj.x0, jnp.float32) + 0.1
        np.testing.assert_array_equal(obj.grad(x, jax.random.key(0)), obj.grad(x), err_msg=name)
        assert not make(noise_std=0.0).noisy


def test_noisy_runs_differ_by_key_noiseless_do_not() -> None:
    noisy = rosenbrock(2, noise_std=0.1)
    clean = rosenbrock(2)
    opt = optax.sgd(1e-3, 0.5)
    a, b = (simulate(noisy, opt, 20, jax.random.key(s)) for s in (0, 1))
    assert not np.array_equal(a.distances, b.distances)
    c, d = (simulate(clean, opt, 20, jax.random.key(s)) for s in (0, 1))
    np.testing.assert_array_equal(c.distances, d.distances)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: smooth_nonconvex_1d(noise_std=-0.1), "noise_std"),
        (lambda: stitched_nonconvex_1d(noise_std=float("nan")), "noise_std"),
        (lambda: lessard_counterexample(noise="cauchy"), "noise"),
        (lambda: rosenbrock(3, noise_std=[0.1, 0.2]), "noise_std"),
        (lambda: separable(smooth_nonconvex_1d(), 2, noise_std=[0.1, -0.2]), "noise_std"),
        (lambda: separable(smooth_nonconvex_1d(noise_std=0.1), 2), "noiseless"),
    ],
)
def test_noise_validation(call: Callable[[], Objective], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_noise_kinds_are_defined_once() -> None:
    """One ``NoiseKind`` type, in ``base``, annotates every constructor's ``noise``; the tuple and
    the fourth moments list exactly its kinds."""
    import importlib
    import inspect
    import typing

    base = importlib.import_module("simulators.objectives.base")
    assert typing.get_args(base.NoiseKind) == base.NOISE_KINDS
    assert set(base.NOISE_FOURTH_MOMENT) == set(base.NOISE_KINDS)
    n_annotated = 0
    for name in ("quadratic", "nonconvex"):
        module = importlib.import_module(f"simulators.objectives.{name}")
        assert module.NoiseKind is base.NoiseKind
        for fn in vars(module).values():
            if (
                inspect.isfunction(fn)
                and not fn.__name__.startswith("_")
                and fn.__module__ == module.__name__
            ):
                hints = typing.get_type_hints(fn)
                if "noise" in hints:
                    assert hints["noise"] is base.NoiseKind, fn.__name__
                    n_annotated += 1
    assert n_annotated >= 7
