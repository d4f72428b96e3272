"""Exact and fast asynchronous simulators against brute force and the asynchrony theory.

Mitliagkas et al. (arXiv 1605.09774): the ensemble mean of asynchronous SGD with M geometric
workers is heavy ball with momentum 1 - 1/M and step alpha/M after a full first step; a fixed delay
tau is stable iff alpha h < 2 sin(pi / (2 (2 tau + 1))).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats as st

from simulators import quadratic
from simulators.asynchrony import (
    async_ensemble,
    fixed,
    geometric,
    simulate_async_exact,
    simulate_async_fast,
    staleness_histogram,
)
from theory.asynchrony import effective_step, fixed_delay_limit, implicit_momentum


class Quad:
    """f(x) = 1/2 (x - x*)^T A (x - x*), optional additive Gaussian gradient noise (test-local)."""

    def __init__(self, a: np.ndarray, x0: np.ndarray, noise_std: float = 0.0) -> None:
        self.a = jnp.asarray(a, jnp.float32)
        self.a64 = np.asarray(a, np.float64)
        self.x_star = jnp.zeros(self.a.shape[0], jnp.float32)
        self.x0 = jnp.asarray(x0, jnp.float32)
        self.noise_std = noise_std

    def loss(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return 0.5 * x @ self.a @ x

    def value_and_grad(self, x: jax.Array, key: jax.Array | None = None) -> Any:
        g = self.a @ x
        if key is not None and self.noise_std > 0:
            g = g + self.noise_std * jax.random.normal(key, g.shape, g.dtype)
        return self.loss(x), g


def rotated(h: np.ndarray, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((h.size, h.size)))
    return q @ np.diag(h) @ q.T


def brute_force_async(a: np.ndarray, x0: np.ndarray, stale: np.ndarray, lr: float, mu: float):
    """Plain float64 loop: keep every version, gradient at version max(n - tau, 0), SGD-momentum."""
    xs = [np.asarray(x0, np.float64)]
    v = np.zeros_like(xs[0])
    for n, tau in enumerate(stale):
        g = a @ xs[max(n - int(tau), 0)]
        v = mu * v + g  # optax.sgd trace
        xs.append(xs[-1] - lr * v)
    return np.array(xs)


# ---------------------------------------------------------------- exactness of the update loop


def test_exact_mode_matches_brute_force_loop() -> None:
    a = rotated(np.array([0.1, 0.3, 0.7, 1.0, 2.0]))
    obj = Quad(a, np.array([1.0, -2.0, 0.5, 3.0, -1.0]))
    tr = simulate_async_exact(obj, optax.sgd(0.05, momentum=0.3), 400, 6, seed=3)
    # staleness recomputed from the writers by brute force
    w = np.asarray(tr.worker)
    stale = np.array(
        [n - next((p + 1 for p in range(n - 1, -1, -1) if w[p] == w[n]), 0) for n in range(w.size)]
    )
    np.testing.assert_array_equal(np.asarray(tr.staleness), stale)
    assert stale.max() > 10  # the ring buffer really is exercised
    ref = brute_force_async(a, np.asarray(obj.x0), stale, 0.05, 0.3)
    # float32 simulation vs float64 loop on a contracting recursion: relative 1e-5 of the scale
    np.testing.assert_allclose(np.asarray(tr.iterates), ref, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(
        np.asarray(tr.distances), np.linalg.norm(ref, axis=1), atol=1e-5 * np.abs(ref).max()
    )


def test_one_worker_is_synchronous() -> None:
    obj = Quad(rotated(np.array([0.5, 1.0, 1.5])), np.ones(3))
    opt = optax.sgd(0.1, momentum=0.5)
    tr = simulate_async_exact(obj, opt, 50, 1, seed=0)
    assert np.all(np.asarray(tr.staleness) == 0)
    x, state = obj.x0, opt.init(obj.x0)
    for _ in range(50):
        upd, state = opt.update(obj.value_and_grad(x)[1], state, x)
        x = optax.apply_updates(x, upd)
    np.testing.assert_allclose(np.asarray(tr.iterates[-1]), np.asarray(x), rtol=1e-5, atol=1e-7)


def test_fast_mode_matches_brute_force_with_its_staleness() -> None:
    a = rotated(np.array([0.2, 0.5, 1.0, 1.5]), seed=1)
    obj = Quad(a, np.array([1.0, 2.0, -1.0, 0.5]))
    tr = simulate_async_fast(obj, optax.sgd(0.1), 300, jax.random.key(4), geometric(5))
    stale = np.asarray(tr.staleness)
    assert np.all(stale <= np.arange(300))  # never older than w_0
    ref = brute_force_async(a, np.asarray(obj.x0), stale, 0.1, 0.0)
    np.testing.assert_allclose(np.asarray(tr.iterates), ref, atol=1e-5 * np.abs(ref).max())


def test_fast_mode_is_vmappable_over_keys() -> None:
    obj = Quad(np.diag([0.5, 1.0]), np.array([1.0, -1.0]))
    opt = optax.sgd(0.2)
    keys = jax.random.split(jax.random.key(0), 4)
    batched = jax.vmap(lambda k: simulate_async_fast(obj, opt, 64, k, geometric(4)))(keys)
    assert batched.iterates.shape == (4, 65, 2)
    one = simulate_async_fast(obj, opt, 64, keys[2], geometric(4))
    np.testing.assert_allclose(np.asarray(batched.iterates[2]), np.asarray(one.iterates), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(batched.staleness[2]), np.asarray(one.staleness))


class _Probe(NamedTuple):
    staleness: jax.Array
    value: jax.Array

    LOGGED = ("staleness", "value")


def _probe() -> optax.GradientTransformationExtraArgs:
    """SGD that stores the extra arguments it was given (to check what the simulator passes)."""

    def init(params):
        return _Probe(jnp.asarray(-1, jnp.int32), jnp.asarray(0.0, jnp.float32))

    def update(g, state, params=None, *, staleness=-1, value=0.0, **extra):
        return jax.tree_util.tree_map(lambda u: -0.05 * u, g), _Probe(
            jnp.asarray(staleness, jnp.int32), jnp.asarray(value, jnp.float32)
        )

    return optax.GradientTransformationExtraArgs(init, update)


def test_extra_args_staleness_and_value_reach_the_optimizer() -> None:
    obj = Quad(np.diag([1.0, 2.0]), np.array([1.0, 1.0]))
    tr = simulate_async_exact(obj, _probe(), 200, 4, seed=1, pass_staleness=True, record_grads=True)
    np.testing.assert_array_equal(np.asarray(tr.stats["staleness"][1:]), np.asarray(tr.staleness))
    # value = loss at the version the gradient was computed on
    it = np.asarray(tr.iterates, np.float64)
    read = np.arange(200) - np.asarray(tr.staleness)
    want = 0.5 * np.einsum("ti,ij,tj->t", it[read], obj.a64, it[read])
    np.testing.assert_allclose(np.asarray(tr.stats["value"][1:]), want, rtol=1e-5)
    # applied gradients are the stale ones, fresh gradients are at the current iterate
    np.testing.assert_allclose(np.asarray(tr.grads), it[read] @ obj.a64, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(tr.fresh_grads), it[:-1] @ obj.a64, rtol=1e-5, atol=1e-7)
    off = simulate_async_exact(obj, _probe(), 20, 4, seed=1, pass_value=False)
    assert np.all(np.asarray(off.stats["staleness"][1:]) == -1)
    assert np.all(np.asarray(off.stats["value"][1:]) == 0.0)


def test_recording_stride_and_coordinates() -> None:
    obj = Quad(np.diag([0.5, 1.0, 2.0]), np.ones(3))
    tr = simulate_async_fast(
        obj,
        optax.sgd(0.1),
        120,
        jax.random.key(0),
        geometric(3),
        record_every=40,
        record_coords=[2, 0],
    )
    assert tr.steps.tolist() == [0, 40, 80, 120]
    assert tr.iterates.shape == (4, 2) and tr.staleness.shape == (120,)
    full = simulate_async_fast(obj, optax.sgd(0.1), 120, jax.random.key(0), geometric(3))
    np.testing.assert_allclose(
        np.asarray(tr.iterates), np.asarray(full.iterates)[::40][:, [2, 0]], rtol=1e-6
    )


# ---------------------------------------------------------------- mean dynamics vs theory


def mean_prediction(a: np.ndarray, x0: np.ndarray, alpha: float, mu_l: float, m: int, steps: int):
    """E w_t from the mean recursion of the asynchrony reference (float64).

    E grad(w_{t - tau_t}) = G_t with G_0 = g_0 and G_t = q G_{t-1} + (1 - q) g_t (geometric lags,
    versions before 0 are w_0); the server applies Delta_{t+1} = mu_l Delta_t - alpha G_t.
    """
    q = float(implicit_momentum(m))
    xs, v, big_g = [np.asarray(x0, np.float64)], np.zeros(x0.size), None
    for t in range(steps):
        g = a @ xs[-1]
        big_g = g if t == 0 else q * big_g + (1.0 - q) * g
        v = mu_l * v - alpha * big_g
        xs.append(xs[-1] + v)
    return np.array(xs)


def heavy_ball_full_first_step(a: np.ndarray, x0: np.ndarray, alpha: float, m: int, steps: int):
    """Heavy ball with momentum 1 - 1/M and step alpha/M, after a first step x1 = x0 - alpha g0."""
    mu, step = float(implicit_momentum(m)), float(effective_step(alpha, m))
    xs = [np.asarray(x0, np.float64), x0 - alpha * (a @ x0)]
    for _ in range(steps - 1):
        xs.append(xs[-1] - step * (a @ xs[-1]) + mu * (xs[-1] - xs[-2]))
    return np.array(xs)


@pytest.mark.parametrize("mode", ["fast", "exact"])
@pytest.mark.parametrize("mu_l", [0.0, 0.5])
def test_ensemble_mean_matches_mean_dynamics(mode: str, mu_l: float) -> None:
    m, alpha, steps, seeds = 4, 0.6, 50, 3000
    a = rotated(np.array([0.3, 1.0]), seed=2)
    x0 = np.array([1.0, -1.0])
    obj = Quad(a, x0)
    opt = optax.sgd(alpha, momentum=mu_l if mu_l else None)
    mode_kw = {"law": geometric(m)} if mode == "fast" else {"n_workers": m}
    ens = async_ensemble(obj, opt, steps, seeds, seed=7, **mode_kw)
    pred = mean_prediction(a, x0, alpha, mu_l, m, steps)
    if mu_l == 0.0:  # the reference's statement: heavy ball (1 - 1/M, alpha/M), full first step
        np.testing.assert_allclose(
            pred, heavy_ball_full_first_step(a, x0, alpha, m, steps), atol=1e-12
        )
    # Bonferroni over every compared entry: a correct simulator fails with probability <= 1e-3.
    k = st.norm.isf(1e-3 / (2 * pred.size))
    # float32 rounding of the runs is ~1e-6 of the scale; it bounds the deterministic first steps
    tol = k * ens.sem_iterates + 1e-5
    err = np.abs(ens.mean_iterates - pred)
    assert np.all(err <= tol), f"max err/tol {np.max(err / tol):.2f}"
    # power: plain synchronous SGD (no implicit momentum) is rejected by the same test
    sync = brute_force_async(a, x0, np.zeros(steps, int), alpha, mu_l)
    assert np.any(np.abs(ens.mean_iterates - sync) > 5 * tol)
    if mode == "exact":
        tau = np.asarray(ens.runs.staleness)[:, 20:]
        assert abs(tau.mean() - (m - 1)) < 0.2


def test_noisy_project_quadratic_mean_matches_mean_dynamics() -> None:
    # simulators.quadratic (rotated, additive gradient noise): the noise is zero-mean, so the
    # ensemble mean still follows the mean recursion; the Hessian comes from jax.hessian.
    m, alpha, steps, seeds = 3, 0.5, 40, 2000
    obj = quadratic([0.4, 1.0, 1.5], rotate=True, seed=3, noise_std=0.3)
    hess = np.asarray(jax.hessian(lambda x: obj.loss(x))(jnp.asarray(obj.x_star)), np.float64)
    x_star = np.asarray(obj.x_star, np.float64)
    ens = async_ensemble(obj, optax.sgd(alpha), steps, seeds, law=geometric(m), seed=1)
    pred = mean_prediction(hess, np.asarray(obj.x0, np.float64) - x_star, alpha, 0.0, m, steps)
    k = st.norm.isf(1e-3 / (2 * pred.size))  # Bonferroni, as above
    err = np.abs(ens.mean_iterates - x_star - pred)
    tol = k * ens.sem_iterates + 1e-5
    assert np.all(err <= tol), f"max err/tol {np.max(err / tol):.2f}"
    assert np.all(ens.sem_iterates[5:] > 0)  # the noise really is there


# ---------------------------------------------------------------- fixed-delay stability limit


def _late_rate(dist: np.ndarray, block: int, start: int) -> float:
    """Per-step growth factor from the slope of log(block maxima of |x_t|) after ``start``."""
    d = dist[start : start + (dist.size - start) // block * block].reshape(-1, block).max(axis=1)
    slope = np.polyfit(np.arange(d.size) * block, np.log(d), 1)[0]
    return float(np.exp(slope))


def _root_radius(a: float, tau: int) -> float:
    coeffs = np.zeros(tau + 2)
    coeffs[0], coeffs[1] = 1.0, -1.0
    coeffs[-1] += a
    return float(np.abs(np.roots(coeffs)).max())


@pytest.mark.parametrize("tau", [1, 3, 7])
def test_fixed_delay_diverges_exactly_beyond_the_limit(tau: int) -> None:
    limit = float(fixed_delay_limit(tau))
    obj = Quad(np.array([[1.0]]), np.array([1.0]))  # a = alpha * h = alpha
    steps = 12_000
    block = 2 * 2 * (2 * tau + 1)  # two periods of the critical oscillation
    for factor, should_diverge in [(0.98, False), (1.02, True)]:
        alpha = factor * limit
        tr = simulate_async_fast(
            obj, optax.sgd(alpha), steps, jax.random.key(0), fixed(tau), blowup=1e6
        )
        assert bool(tr.diverged) is should_diverge
        dist = np.asarray(tr.distances, np.float64)
        stop = int(tr.diverged_at) if should_diverge else steps + 1
        # float32 underflows near 1e-38: stop the fit where the iterate is still resolved
        tiny = np.flatnonzero(dist[:stop] < 1e-30)
        stop = int(tiny[0]) if tiny.size else stop
        rate = _late_rate(dist[:stop], block, start=stop // 3)
        # the measured per-step factor is the largest root modulus of z^{tau+1} - z^tau + a
        assert rate == pytest.approx(_root_radius(alpha, tau), abs=2e-4)
        assert (rate > 1.0) is should_diverge


def test_exact_deterministic_workers_follow_the_fixed_delay_limit() -> None:
    m = 4  # round-robin: staleness m - 1 = 3 after the first round
    limit = float(fixed_delay_limit(m - 1))
    obj = Quad(np.array([[1.0]]), np.array([1.0]))
    for factor, should_diverge in [(0.98, False), (1.02, True)]:
        tr = simulate_async_exact(
            obj, optax.sgd(factor * limit), 8000, m, seed=0, compute="deterministic", blowup=1e6
        )
        assert bool(tr.diverged) is should_diverge


# ---------------------------------------------------------------- divergence, noise, bad input


def test_divergence_is_flagged_and_frozen_inside_an_ensemble() -> None:
    obj = Quad(np.diag([1.0, 2.0]), np.array([1.0, 1.0]))
    ens = async_ensemble(obj, optax.sgd(3.0), 200, 16, law=geometric(4), seed=0)
    assert ens.diverged_fraction == 1.0
    runs = ens.runs
    for i in range(16):
        at = int(runs.diverged_at[i])
        d = np.asarray(runs.distances[i])
        assert 0 < at <= 200
        assert np.all(np.isfinite(d[:at])) and np.all(np.isinf(d[at:]))
        assert np.all(d[:at] <= 1e10 * np.sqrt(2.0))
    calm = async_ensemble(obj, optax.sgd(0.05), 200, 16, law=geometric(4), seed=0)
    assert calm.diverged_fraction == 0.0 and np.all(np.asarray(calm.runs.diverged_at) == -1)


def test_gradient_noise_uses_a_fresh_key_per_update() -> None:
    obj = Quad(np.diag([1.0, 1.0]), np.array([1.0, 1.0]), noise_std=0.5)
    opt = optax.sgd(0.1)
    a = simulate_async_fast(obj, opt, 100, jax.random.key(0), geometric(2))
    c = simulate_async_fast(obj, opt, 100, jax.random.key(0), geometric(2))
    np.testing.assert_array_equal(np.asarray(a.iterates), np.asarray(c.iterates))  # reproducible
    g = simulate_async_exact(obj, opt, 400, 2, seed=0, record_grads=True)
    read = np.arange(400) - np.asarray(g.staleness)
    noise = np.asarray(g.grads, np.float64) - np.asarray(g.iterates, np.float64)[read]
    assert np.std(noise) == pytest.approx(0.5, rel=0.1)  # 800 draws: relative sd error ~2.5%
    # a fresh key per update: successive noise vectors are uncorrelated (|r| < 4 / sqrt(n))
    r = np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]
    assert abs(r) < 4.0 / np.sqrt(noise[1:].size)


def test_empirical_law_replays_an_exact_histogram() -> None:
    from simulators.asynchrony import empirical

    obj = Quad(np.diag([1.0]), np.array([1.0]))
    ex = simulate_async_exact(obj, optax.sgd(0.01), 20_000, 6, seed=0)
    hist = staleness_histogram(ex.staleness, burn_in=200)
    fa = simulate_async_fast(obj, optax.sgd(0.01), 20_000, jax.random.key(1), empirical(hist))
    h2 = staleness_histogram(fa.staleness, burn_in=200, max_lag=hist.size - 1)
    # two samples from the same law: chi-square test of homogeneity on bins with enough counts
    keep = (hist >= 20) & (h2 >= 20)
    table = np.stack([hist[keep], h2[keep]])
    assert st.chi2_contingency(table).pvalue > 1e-3


def test_bad_input_raises_with_parameter_name() -> None:
    obj = Quad(np.diag([1.0, 2.0]), np.array([1.0, 1.0]))
    opt = optax.sgd(0.1)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="steps"):
        simulate_async_fast(obj, opt, 0, key, geometric(2))
    with pytest.raises(ValueError, match="n_workers"):
        simulate_async_exact(obj, opt, 10, 0, seed=0)
    with pytest.raises(ValueError, match="x0"):
        simulate_async_exact(obj, opt, 10, 2, seed=0, x0=np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="x0"):
        simulate_async_fast(obj, opt, 10, key, geometric(2), x0=np.ones(3))
    with pytest.raises(ValueError, match="record_every"):
        simulate_async_fast(obj, opt, 10, key, geometric(2), record_every=3)
    with pytest.raises(ValueError, match="record_coords"):
        simulate_async_fast(obj, opt, 10, key, geometric(2), record_coords=[5])
    with pytest.raises(ValueError, match="law"):
        simulate_async_fast(obj, opt, 10, key, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        simulate_async_exact(obj, opt, 10, 2, seed=-1)
    with pytest.raises(ValueError, match="blowup"):
        simulate_async_exact(obj, opt, 10, 2, seed=0, blowup=0.0)
    with pytest.raises(ValueError, match="law"):
        async_ensemble(obj, opt, 10, 4, law=geometric(2), n_workers=2)
    with pytest.raises(ValueError, match="n_seeds"):
        async_ensemble(obj, opt, 10, 0, law=geometric(2))
