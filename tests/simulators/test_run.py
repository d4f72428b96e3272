"""simulate and sweep: agreement with plain NumPy recursions, recording, divergence, bad input."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from optimizers import heavy_ball, momo
from simulators.objectives import interpolating_least_squares, quadratic, rosenbrock
from simulators.run import Trajectory, simulate
from simulators.sweep import product_grid, sweep


def numpy_heavy_ball(h, q, x0, alpha, mu, steps):
    """Reference recursion x_{t+1} = x_t - alpha g_t + mu (x_t - x_{t-1}), x_{-1} = x_0."""
    hess = q @ np.diag(h) @ q.T
    x_prev, x = x0.copy(), x0.copy()
    out = [x0.copy()]
    for _ in range(steps):
        x, x_prev = x - alpha * hess @ x + mu * (x - x_prev), x
        out.append(x.copy())
    return np.array(out)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("make", [lambda a, m: optax.sgd(a, m), heavy_ball])
def test_simulate_matches_numpy_heavy_ball(make) -> None:
    h = np.array([0.3, 1.0, 4.0])
    obj = quadratic(h, rotate=True, seed=2)
    tr = simulate(obj, make(0.3, 0.6), 40, jax.random.key(0))
    ref = numpy_heavy_ball(h, np.asarray(obj.params["q"]), np.asarray(obj.x0), 0.3, 0.6, 40)
    np.testing.assert_allclose(tr.iterates, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tr.distances, np.linalg.norm(ref, axis=1), rtol=1e-12)
    losses = 0.5 * np.einsum(
        "ti,ij,tj->t", ref, obj.params["q"] @ np.diag(h) @ obj.params["q"].T, ref
    )
    np.testing.assert_allclose(tr.losses, losses, rtol=1e-12, atol=1e-300)
    assert not tr.diverged and tr.diverged_at == -1
    np.testing.assert_array_equal(tr.steps, np.arange(41))


@pytest.mark.usefixtures("x64")
def test_strided_records_and_coordinates_subsample_the_full_run() -> None:
    obj = rosenbrock(3)
    opt = heavy_ball(1e-4, 0.9)
    full = simulate(obj, opt, 60, jax.random.key(0))
    strided = simulate(obj, opt, 60, jax.random.key(0), record_every=15, record_coords=[2, 0])
    np.testing.assert_array_equal(strided.steps, [0, 15, 30, 45, 60])
    np.testing.assert_allclose(strided.losses, full.losses[::15], rtol=1e-13)
    np.testing.assert_allclose(strided.iterates, full.iterates[::15][:, [2, 0]], rtol=1e-13)
    assert strided.iterates.shape == (5, 2)
    np.testing.assert_allclose(strided.stats["learning_rate"], 1e-4)
    np.testing.assert_allclose(strided.stats["momentum"], 0.9)


def test_noise_depends_only_on_the_key() -> None:
    obj = quadratic([1.0, 2.0], noise_std=0.5)
    opt = optax.sgd(0.1)
    a = simulate(obj, opt, 30, jax.random.key(1))
    b = simulate(obj, opt, 30, jax.random.key(1))
    c = simulate(obj, opt, 30, jax.random.key(2))
    np.testing.assert_array_equal(a.iterates, b.iterates)
    assert not np.allclose(a.iterates[1:], c.iterates[1:])


@pytest.mark.usefixtures("x64")
def test_value_is_passed_to_loss_aware_optimizers() -> None:
    obj = interpolating_least_squares(20, 4, batch_size=2)
    tr = simulate(obj, momo(1.0, beta=0.0), 50, jax.random.key(0))
    assert tr.distances[-1] < tr.distances[0]
    assert np.all(tr.stats["step_size"][1:] > 0)
    with pytest.raises(ValueError, match="value"):
        simulate(obj, momo(1.0), 5, jax.random.key(0), pass_value=False)


@pytest.mark.usefixtures("x64")
def test_divergence_is_flagged_frozen_and_recorded_as_inf() -> None:
    obj = quadratic([1.0])
    tr = simulate(obj, heavy_ball(2.5, 0.0), 100, jax.random.key(0))  # |1 - 2.5| = 1.5 per step
    # ||x_t|| = 1.5^t exceeds 1e10 first at t = ceil(10 ln 10 / ln 1.5) = 57
    assert tr.diverged and tr.diverged_at == 57
    assert np.all(np.isfinite(tr.distances[:57])) and np.all(np.isinf(tr.distances[57:]))
    assert np.all(np.isinf(tr.losses[57:]))
    frozen = np.broadcast_to(tr.iterates[56], tr.iterates[57:].shape)
    np.testing.assert_array_equal(tr.iterates[57:], frozen)  # frozen at the last accepted iterate
    # without a threshold, overflow is caught. The loss x^2/2 is evaluated as x * x first, which
    # overflows float64 once 2 t ln 1.5 > ln(DBL_MAX) = 709.78, i.e. from x_876 on: the step from
    # x_876 is the first that cannot be taken, with or without passing the loss to the optimizer
    # (an optimizer that skips non-finite losses must not freeze the run unflagged). The iterate
    # alone would stay finite until t = 1750 (1.5^1750 ~ 1.5e308).
    for pass_value in (True, False):
        inf = simulate(
            obj, heavy_ball(2.5, 0.0), 2000, jax.random.key(0), blowup=np.inf, pass_value=pass_value
        )
        assert inf.diverged and inf.diverged_at == 877
        assert np.isfinite(inf.losses[875]) and np.isinf(inf.losses[876])
        assert np.all(np.isfinite(inf.iterates))


@pytest.mark.usefixtures("x64")
def test_sweep_equals_simulate_per_point_and_seed() -> None:
    obj = quadratic([1.0, 5.0], noise_std=0.1)
    g = product_grid(learning_rate=[0.05, 0.2, 0.45], momentum=[0.0, 0.7])
    tr = sweep(heavy_ball, g, obj, 30, jax.random.key(3), seeds=2, record_coords=None)
    assert tr.distances.shape == (3, 2, 2, 31) and tr.iterates.shape == (3, 2, 2, 31, 2)
    assert tr.diverged.shape == (3, 2, 2) and tr.stats["learning_rate"].shape == (3, 2, 2, 31)
    keys = jax.random.split(jax.random.key(3), 2)
    for i, j, s in [(0, 0, 0), (2, 1, 1)]:
        one = simulate(obj, heavy_ball(g["learning_rate"][i, j], g["momentum"][i, j]), 30, keys[s])
        np.testing.assert_allclose(tr.iterates[i, j, s], one.iterates, rtol=1e-10, atol=1e-14)
    assert not np.allclose(tr.iterates[0, 0, 0], tr.iterates[0, 0, 1])


def test_sweep_survives_divergent_points_in_float32() -> None:
    obj = quadratic([1.0, 10.0])
    g = product_grid(learning_rate=np.linspace(0.01, 0.5, 8), momentum=np.linspace(0.0, 0.9, 5))
    tr = sweep(heavy_ball, g, obj, 200, jax.random.key(0))
    assert tr.diverged.any() and not tr.diverged.all()
    ok = ~tr.diverged
    assert np.all(np.isfinite(tr.distances[ok]))
    assert np.all(tr.diverged_at[tr.diverged] > 0) and np.all(tr.diverged_at[ok] == -1)


def test_trajectory_is_a_named_tuple_of_numpy_arrays() -> None:
    tr = simulate(quadratic([1.0]), optax.sgd(0.5), 4, jax.random.key(0))
    assert isinstance(tr, Trajectory)
    assert all(isinstance(getattr(tr, f), np.ndarray) for f in ("steps", "losses", "distances"))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"x0": [np.nan, 1.0]}, "x0"),
        ({"x0": [1.0, 2.0, 3.0]}, "x0"),
        ({"record_every": 0}, "record_every"),
        ({"steps": 10, "record_every": 3}, "record_every"),
        ({"record_coords": [5]}, "record_coords"),
        ({"blowup": 0.5}, "blowup"),
    ],
)
def test_bad_run_arguments(kwargs, name: str) -> None:
    args = {"steps": 10, **kwargs}
    steps = args.pop("steps")
    with pytest.raises(ValueError, match=name):
        simulate(quadratic([1.0, 2.0]), optax.sgd(0.1), steps, jax.random.key(0), **args)


def test_bad_sweep_arguments() -> None:
    obj = quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match="seeds"):
        sweep(
            heavy_ball,
            {"learning_rate": [0.1], "momentum": [0.5]},
            obj,
            5,
            jax.random.key(0),
            seeds=0,
        )
    with pytest.raises(ValueError, match="grid"):
        sweep(
            heavy_ball,
            {"learning_rate": [0.1, 0.2], "momentum": [0.5, 0.6, 0.7]},
            obj,
            5,
            jax.random.key(0),
        )
    with pytest.raises(ValueError, match="grid"):
        sweep(heavy_ball, {}, obj, 5, jax.random.key(0))
    with pytest.raises(ValueError, match="learning_rate"):
        product_grid(learning_rate=[])


def test_sweep_grid_names_must_fit_the_factory() -> None:
    obj = quadratic([1.0, 2.0])
    key = jax.random.key(0)
    # a name the factory does not take: ValueError naming it and the accepted names
    with pytest.raises(ValueError, match=r"'lr'.*accepted names.*'learning_rate', 'momentum'"):
        sweep(heavy_ball, {"lr": [0.1], "momentum": [0.5]}, obj, 5, key)
    # a required parameter the grid does not give
    with pytest.raises(ValueError, match=r"required.*'momentum'"):
        sweep(heavy_ball, {"learning_rate": [0.1]}, obj, 5, key)
    # factories with **kwargs or defaults are accepted as they are
    tr = sweep(lambda **kw: optax.sgd(kw["learning_rate"]), {"learning_rate": [0.1]}, obj, 5, key)
    assert tr.distances.shape == (1, 1, 6)
    tr = sweep(
        lambda learning_rate, momentum=0.0: optax.sgd(learning_rate, momentum),
        {"learning_rate": [0.1]},
        obj,
        5,
        key,
    )
    assert tr.distances.shape == (1, 1, 6)


def test_sweep_compiles_once_per_objective_instance() -> None:
    """What the README and the docstring state about the compilation cache."""
    from simulators.sweep import _sweep_jit

    obj = quadratic([1.0, 3.0])
    key = jax.random.key(0)
    g = {"learning_rate": [0.1, 0.2], "momentum": [0.5, 0.5]}
    sweep(heavy_ball, g, obj, 7, key)
    size = _sweep_jit._cache_size()
    sweep(heavy_ball, {"learning_rate": [0.3, 0.1], "momentum": [0.1, 0.2]}, obj, 7, key)
    sweep(heavy_ball, g, obj, 7, jax.random.key(1), x0=[2.0, 2.0])
    assert _sweep_jit._cache_size() == size  # new values, same instance and shapes: reused
    sweep(heavy_ball, g, quadratic([1.0, 3.0]), 7, key)
    assert _sweep_jit._cache_size() == size + 1  # an identical new instance compiles again
