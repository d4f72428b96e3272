"""Objectives: closed forms against autodiff, quadrature and brute force; metadata; bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import theory
from simulators.objectives import (
    Objective,
    interpolating_least_squares,
    lessard_counterexample,
    noisy_quadratic_model,
    quadratic,
    rosenbrock,
    separable,
    separable_logistic,
    smooth_nonconvex_1d,
    stitched_nonconvex_1d,
)
from theory.noise_floor import nqm_spectrum


def fprime(obj: Objective):
    g = jax.jit(jax.vmap(lambda v: obj.grad(jnp.atleast_1d(v))[0]))
    return lambda x: np.asarray(g(jnp.asarray(np.atleast_1d(x), jnp.float64)))


@pytest.mark.usefixtures("x64")
def test_quadratic_gradient_hessian_and_minimum() -> None:
    h = np.array([0.5, 2.0, 7.0])
    xs = np.array([1.0, -2.0, 0.5])
    obj = quadratic(h, rotate=True, seed=4, x_star=xs)
    hess = np.asarray(jax.hessian(obj.loss)(jnp.asarray(obj.x0)))
    np.testing.assert_allclose(np.linalg.eigvalsh(hess), np.sort(h), rtol=1e-12)
    np.testing.assert_allclose(obj.grad(xs), 0.0, atol=1e-14)
    assert float(obj.loss(xs)) == obj.f_star == 0.0
    assert np.linalg.norm(obj.x0 - xs) == pytest.approx(1.0)
    assert (obj.h_min, obj.h_max, obj.meta("kappa")) == (0.5, 7.0, 14.0)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("noise", ["gaussian", "rademacher", "uniform"])
def test_quadratic_noise_is_unbiased_with_prescribed_variance(noise: str) -> None:
    std = np.array([0.1, 1.0, 3.0])
    obj = quadratic([1.0, 2.0, 3.0], rotate=True, noise_std=std, noise=noise)
    keys = jax.random.split(jax.random.key(0), 20000)
    x = jnp.asarray(obj.x0)
    g = np.asarray(jax.vmap(lambda k: obj.grad(x, k))(keys))
    q = np.asarray(obj.params["q"])
    noise_eig = (g - np.asarray(obj.grad(x))) @ q  # back to the eigen-basis
    # 20000 samples: the sample variance has relative error sqrt(2/20000) ~ 1% (gaussian)
    np.testing.assert_allclose(noise_eig.var(axis=0), std**2, rtol=0.05)
    assert np.all(np.abs(noise_eig.mean(axis=0)) < 5 * std / np.sqrt(20000))
    assert float(obj.loss(x, None)) == float(obj.loss(x))


def test_noisy_quadratic_model_matches_theory_spectrum() -> None:
    obj = noisy_quadratic_model(10, p=0.5, batch_size=4)
    h, c = nqm_spectrum(10, 0.5, 4)
    np.testing.assert_allclose(obj.spectrum, h, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(obj.params["noise_std"]) ** 2, c, rtol=1e-6)
    assert obj.noisy and obj.meta("batch_size") == 4


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    "obj",
    [
        smooth_nonconvex_1d(),
        smooth_nonconvex_1d(2.0, 5.0, 3.0, 0.1, x_star=1.5),
        stitched_nonconvex_1d(),
        stitched_nonconvex_1d(0.5, 3.0, 2.5, x_star=-1.0),
    ],
)
def test_toy_loss_integrates_its_gradient_and_curvature_range_is_exact(obj: Objective) -> None:
    xs = float(obj.x_star[0])
    fp = fprime(obj)
    loss = jax.jit(lambda v: obj.loss(jnp.atleast_1d(v)))
    # f(x) - f(x*) = int_{x*}^x f' (adaptive quadrature on the autodiff gradient)
    for x in [xs + 0.37, xs - 2.9, xs + 7.3]:
        ref, _ = integrate.quad(lambda s: fp(s)[0], xs, x, limit=400, epsabs=1e-12)
        assert float(loss(x)) == pytest.approx(ref, rel=1e-7, abs=1e-12)
    assert float(loss(xs)) == 0.0 and float(fp(xs)[0]) == 0.0
    # brute force over a log-spaced grid on both sides: range is [h_min, h_max], both attained
    # (|e| >= 1e-5 keeps the rounding of x* + e below 1e-10 relative)
    e = np.concatenate([-np.logspace(-5, 2, 20001), np.logspace(-5, 2, 20001)])
    hs = fp(xs + e) / e
    assert hs.min() >= obj.h_min * (1 - 1e-9) and hs.max() <= obj.h_max * (1 + 1e-9)
    assert hs.min() == pytest.approx(obj.h_min, rel=2e-3)
    assert hs.max() == pytest.approx(obj.h_max, rel=2e-3)
    lo, hi = theory.curvature_range(fp, xs, xs + 0.05, xs + 40.0)
    assert obj.h_min * (1 - 1e-6) <= lo and hi <= obj.h_max * (1 + 1e-6)


@pytest.mark.usefixtures("x64")
def test_stitched_gradient_is_exact_on_shell_boundaries() -> None:
    # On |x - x*| = ratio^k the self-similar gradient is ratio^k h_max exactly (the shells meet
    # there); a clipped shell coordinate would halve or zero the derivative at these points.
    obj = stitched_nonconvex_1d(h_min=1.0, h_max=4.0, ratio=4.0)
    e = 4.0 ** np.arange(-4, 4)
    for sign in (1.0, -1.0):
        np.testing.assert_allclose(fprime(obj)(sign * e), sign * 4.0 * e, rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_toys_are_nonconvex_and_smooth_toy_is_globally_smooth() -> None:
    for obj in [smooth_nonconvex_1d(), stitched_nonconvex_1d()]:
        second = jax.vmap(jax.grad(lambda v, o=obj: o.grad(jnp.atleast_1d(v))[0]))
        curv = np.asarray(second(jnp.linspace(0.01, 30.0, 30001)))
        assert curv.min() < 0
        assert curv.max() <= obj.meta("smoothness") * (1 + 1e-9)
        assert -curv.min() <= obj.meta("smoothness") * (1 + 1e-9)
    assert stitched_nonconvex_1d().meta("slopes") == pytest.approx((-2.0, 7.0))


@pytest.mark.usefixtures("x64")
def test_separable_sums_coordinates() -> None:
    one = stitched_nonconvex_1d()
    obj = separable(one, 4)
    x = jnp.asarray([0.3, -1.7, 5.0, 0.0])
    expected = sum(float(one.loss(jnp.array([v]))) for v in x)
    assert float(obj.loss(x)) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(obj.x_star, 0.0)
    assert obj.curvature_range == one.curvature_range and obj.f_star == 0.0
    np.testing.assert_allclose(obj.x0, 10.0 * np.linspace(1.0, 0.1, 4))


@pytest.mark.usefixtures("x64")
def test_lessard_gradient_pieces_and_curvature() -> None:
    obj = lessard_counterexample()
    fp = fprime(obj)
    x = np.array([-3.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    expected = np.where(x < 1, 25 * x, np.where(x < 2, x + 24, 25 * x - 24))
    np.testing.assert_allclose(fp(x), expected, rtol=1e-12)
    grid = np.linspace(-50, 50, 100001)
    grid = grid[grid != 0]
    hs = fp(grid) / grid
    assert hs.min() == pytest.approx(13.0, rel=1e-3) and hs.max() == pytest.approx(25.0)


@pytest.mark.usefixtures("x64")
def test_interpolating_least_squares_interpolates_and_samples_minibatches() -> None:
    obj = interpolating_least_squares(30, 6, seed=1, batch_size=5)
    xs = jnp.asarray(obj.x_star)
    per = np.asarray(jax.vmap(lambda i: obj.sample_loss(xs, i))(jnp.arange(30)))
    assert np.all(per < 1e-25)
    hess = np.asarray(jax.jit(jax.hessian(obj.loss))(xs))
    np.testing.assert_allclose(
        np.linalg.eigvalsh(hess)[[0, -1]],
        [obj.meta("strong_convexity"), obj.meta("smoothness")],
        rtol=1e-10,
    )
    x = jnp.ones(6)
    # the minibatch loss is an unbiased estimate of the full loss
    keys = jax.random.split(jax.random.key(3), 4000)
    batch = np.asarray(jax.jit(jax.vmap(lambda k: obj.loss(x, k)))(keys))
    full = float(obj.loss(x))
    assert abs(batch.mean() - full) < 5 * batch.std() / np.sqrt(4000)


@pytest.mark.usefixtures("x64")
def test_separable_logistic_has_margin_and_vanishing_infimum() -> None:
    obj = separable_logistic(50, 4, seed=2)
    a, y = np.asarray(obj.params["a"]), np.asarray(obj.params["y"])
    assert np.min(y * (a @ obj.x_star)) >= 0.5 - 1e-12
    assert float(obj.loss(jnp.zeros(4))) == pytest.approx(np.log(2.0))
    assert float(obj.loss(50.0 * jnp.asarray(obj.x_star))) < np.exp(-20)
    assert obj.meta("minimiser_attained") is False


@pytest.mark.usefixtures("x64")
def test_rosenbrock_minimum_and_gradient() -> None:
    obj = rosenbrock(4)
    assert float(obj.loss(jnp.ones(4))) == 0.0
    np.testing.assert_allclose(obj.grad(jnp.ones(4)), 0.0)
    x = np.array([-1.2, 1.0])
    g = np.asarray(rosenbrock(2).grad(jnp.asarray(x)))
    expected = [-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]), 200 * (x[1] - x[0] ** 2)]
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_objective_is_a_pytree_for_jit_and_vmap() -> None:
    obj = quadratic([1.0, 3.0])
    stacked = jax.tree_util.tree_map(lambda v: np.stack([v, 2 * v]), obj)
    out = jax.vmap(lambda o: o.loss(o.x0 * 0 + 1.0))(stacked)
    np.testing.assert_allclose(out, [2.0, 4.0 * 0 + 0.5 * (2 + 6) * 1.0])
    assert float(jax.jit(lambda o: o.loss(o.x_star))(obj)) == 0.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: quadratic([1.0, 0.0]), "spectrum"),
        (lambda: quadratic([1.0, -2.0]), "spectrum"),
        (lambda: quadratic([[1.0, 2.0]]), "spectrum"),
        (lambda: quadratic([1.0, np.nan]), "spectrum"),
        (lambda: quadratic([1.0, 2.0], x0=[1.0]), "x0"),
        (lambda: quadratic([1.0, 2.0], x0=[np.nan, 1.0]), "x0"),
        (lambda: quadratic([1.0, 2.0], noise_std=-1.0), "noise_std"),
        (lambda: quadratic([1.0, 2.0], noise="cauchy"), "noise"),
        (lambda: noisy_quadratic_model(0), "dim"),
        (lambda: noisy_quadratic_model(3, p=0.0), "p"),
        (lambda: noisy_quadratic_model(3, batch_size=0), "batch_size"),
        (lambda: smooth_nonconvex_1d(h_min=0.0), "h_min"),
        (lambda: smooth_nonconvex_1d(2.0, 1.0), "h_max"),
        (lambda: smooth_nonconvex_1d(x0=np.nan), "x0"),
        (lambda: stitched_nonconvex_1d(ratio=1.0), "ratio"),
        (lambda: separable(quadratic([1.0, 2.0]), 3), "objective_1d"),
        (lambda: separable(smooth_nonconvex_1d(), 0), "dim"),
        (lambda: interpolating_least_squares(3, 5), "n"),
        (lambda: separable_logistic(10, 2, margin=0.0), "margin"),
        (lambda: rosenbrock(1), "dim"),
    ],
)
def test_bad_input_names_the_parameter(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()
