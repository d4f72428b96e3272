"""Measurements of the simulators against the closed forms of :mod:`theory`.

Both sides are independent: the simulators only run the optimizers, the theory only evaluates
formulas; the tolerances below come from the measurement error, explained at each assertion.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import theory
from optimizers import heavy_ball, momo
from simulators.measure import measure_rate, peak_transient, stationary_estimate
from simulators.objectives import (
    interpolating_least_squares,
    lessard_counterexample,
    noisy_quadratic_model,
    quadratic,
    separable,
    smooth_nonconvex_1d,
    stitched_nonconvex_1d,
)
from simulators.run import simulate
from simulators.sweep import product_grid, sweep
from theory.noise_floor import nqm_floor, nqm_spectrum, stationary_loss


def hb(learning_rate, momentum):
    return heavy_ball(learning_rate, momentum)


def robust_alphas(mu: float, h_min: float, h_max: float, fractions) -> np.ndarray:
    lo, hi = theory.robust_interval(mu, h_min, h_max)
    assert lo < hi
    return lo + np.asarray(fractions) * (hi - lo)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("mu", [0.81, 0.9])
def test_rate_is_sqrt_mu_and_flat_in_alpha_inside_robust_region(mu: float) -> None:
    spectrum = np.logspace(0.0, 2.0, 12)  # kappa = 100; sqrt(mu) >= 9/11 makes the region non-empty
    obj = quadratic(spectrum, rotate=True, seed=3)
    alphas = robust_alphas(mu, 1.0, 100.0, np.linspace(0.05, 0.95, 7))
    assert np.all(theory.regime(alphas[:, None], mu, spectrum) == "robust")
    tr = sweep(
        hb, {"learning_rate": alphas, "momentum": np.full(7, mu)}, obj, 1500, jax.random.key(0)
    )
    est = measure_rate(tr.distances[:, 0], kappa=100.0)
    # float64 runs: the window ends at the 1e-13 precision floor, 150-300 points of clean decay;
    # the jackknife error is ~1e-3 relative: 1% is a real test, and the spread bound shows flatness
    np.testing.assert_allclose(est.rate, np.sqrt(mu), rtol=0.01)
    assert np.all(est.stderr < 0.003)
    assert np.ptp(est.rate) / np.sqrt(mu) < 0.01


@pytest.mark.usefixtures("x64")
def test_rate_follows_spectral_radius_outside_robust_region() -> None:
    h_min, h_max = 1.0, 10.0
    obj = quadratic([h_min, h_max], rotate=True, seed=1)
    g = product_grid(learning_rate=np.linspace(0.01, 0.39, 20), momentum=np.linspace(0.0, 0.8, 9))
    a, m = g["learning_rate"], g["momentum"]
    rho_lo = theory.spectral_radius(a, m, h_min)
    rho_hi = theory.spectral_radius(a, m, h_max)
    rho = np.maximum(rho_lo, rho_hi)
    # keep points where one root clearly dominates: the other direction and the other root of the
    # dominant direction (modulus mu/rho) at most 85% of it, so that their contamination of the
    # log-slope over the late window is far below 1%; and decay slow enough to give a window
    other = np.minimum(rho_lo, rho_hi)
    keep = (rho > 0.3) & (rho < 0.985) & (other < 0.85 * rho) & (m / rho**2 < 0.85)
    kinds = theory.regime(a, m, np.where(rho_lo >= rho_hi, h_min, h_max))
    assert {"lazy", "overstep"} <= set(kinds[keep].tolist())
    tr = sweep(hb, g, obj, 1500, jax.random.key(0))
    np.testing.assert_array_equal(tr.diverged[..., 0], ~theory.is_stable(a, m, h_max))
    est = measure_rate(tr.distances[:, :, 0], start=20)
    np.testing.assert_allclose(est.rate[keep], rho[keep], rtol=0.01)
    assert keep.sum() > 40


@pytest.mark.usefixtures("x64")
def test_unstable_points_are_flagged_without_spoiling_the_sweep() -> None:
    obj = quadratic([1.0, 10.0])
    g = product_grid(learning_rate=[0.05, 0.25, 0.5], momentum=[0.0, 0.5])
    tr = sweep(hb, g, obj, 400, jax.random.key(0))
    stable = theory.is_stable(g["learning_rate"], g["momentum"], 10.0)
    np.testing.assert_array_equal(tr.diverged[..., 0], ~stable)
    assert np.all(np.isfinite(tr.distances[stable]))
    assert np.all(tr.diverged_at[~stable] > 0)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    ("alpha", "mu", "h"), [(0.1, 0.81, 1.0), (0.4, 0.3, 2.0), (0.02, 0.5, 3.0)]
)
def test_one_direction_matches_exact_error_gain(alpha: float, mu: float, h: float) -> None:
    tr = simulate(quadratic([h]), hb(alpha, mu), 60, jax.random.key(0))
    gain = theory.error_gain(alpha, mu, h, np.arange(61))
    # the closed-form 2x2 power and the recursion agree to rounding (60 steps, float64)
    np.testing.assert_allclose(tr.distances / tr.distances[0], gain, rtol=1e-9, atol=1e-14)


@pytest.mark.usefixtures("x64")
def test_peak_transient_of_polyak_tuning_matches_theory() -> None:
    h_min, h_max = 1.0, 100.0
    alpha, mu = theory.polyak_tuning(h_min, h_max)
    # a single worst direction h_max started from rest: its gain peak is theory's peak at that h
    tr = simulate(quadratic([h_max]), hb(float(alpha), float(mu)), 200, jax.random.key(0))
    peak, t_peak = peak_transient(tr.distances)
    gains = theory.error_gain(alpha, mu, h_max, np.arange(201))
    assert peak == pytest.approx(gains.max(), rel=1e-9)
    assert t_peak == int(np.argmax(gains))
    assert peak > 1.5  # the peak effect is real at kappa = 100


def _in_robust(alpha: float, mu: float, lo: float, hi: float, *, closed: bool = False) -> bool:
    allowed = ["robust", "boundary"] if closed else ["robust"]
    return bool(np.all(np.isin(theory.regime(alpha, mu, np.linspace(lo, hi, 201)), allowed)))


@pytest.mark.usefixtures("x64")
def test_smooth_toy_shows_sqrt_mu_rate_where_curvature_stays_robust() -> None:
    obj = separable(smooth_nonconvex_1d(1.0, 25.0, 0.5), 3)
    mu = 0.81
    alphas = robust_alphas(mu, obj.h_min, obj.h_max, [0.1, 0.25, 0.4, 0.55])
    for a in alphas:
        assert _in_robust(a, mu, obj.h_min, obj.h_max)
    tr = sweep(
        hb,
        {"learning_rate": alphas, "momentum": np.full(4, mu)},
        obj,
        2000,
        jax.random.key(0),
        record_coords=None,
    )
    est = measure_rate(tr.distances[:, 0], start=20)
    # x0 ~ 10 down to the 1e-13 floor crosses ~10 curvature oscillations (log-periodic profile);
    # the measured rate is sqrt(mu) within the 1% of the quadratic case (jackknife error ~0.1%)
    np.testing.assert_allclose(est.rate, np.sqrt(mu), rtol=0.01)
    # the generalised curvature actually visited covers most of [h_min, h_max]
    e = tr.iterates[:, 0, 1:300].reshape(-1)
    e = e[np.abs(e) > 1e-9]
    hs = (
        np.asarray(jax.vmap(jax.grad(lambda x: obj.loss(x)))(np.tile(e[:, None], (1, 3))))[:, 0] / e
    )
    assert hs.min() >= obj.h_min - 1e-9 and hs.max() <= obj.h_max + 1e-9
    assert hs.min() < 3.0 and hs.max() > 20.0


@pytest.mark.usefixtures("x64")
def test_robust_curvature_does_not_guarantee_the_rate() -> None:
    """Spectral radius is not sub-multiplicative: documented failures, kept as regression facts."""
    mu = 0.81
    smooth = smooth_nonconvex_1d(1.0, 25.0, 0.5)
    stitched = stitched_nonconvex_1d(1.0, 4.0, 4.0)
    # near the top of the robust interval the smooth toy is trapped in a cycle (rate 1), and the
    # stitched toy (abrupt curvature jumps) converges visibly slower than sqrt(mu) = 0.9
    for obj, frac, slowest in [(smooth, 0.95, 0.99), (stitched, 0.75, 0.93)]:
        (a,) = robust_alphas(mu, obj.h_min, obj.h_max, [frac])
        assert _in_robust(a, mu, obj.h_min, obj.h_max)
        tr = simulate(obj, hb(a, mu), 2000, jax.random.key(0))
        assert measure_rate(tr.distances, start=20).rate > slowest
    # ... whereas low in the interval the stitched toy keeps the rate too
    alphas = robust_alphas(mu, 1.0, 4.0, [0.05, 0.15, 0.25])
    tr = sweep(
        hb, {"learning_rate": alphas, "momentum": np.full(3, mu)}, stitched, 2000, jax.random.key(0)
    )
    np.testing.assert_allclose(measure_rate(tr.distances[:, 0], start=20).rate, 0.9, rtol=0.01)


@pytest.mark.usefixtures("x64")
def test_lessard_counterexample_cycles_with_robust_curvature() -> None:
    obj = lessard_counterexample()
    alpha, mu = obj.meta("tuning")
    a_ref, mu_ref = theory.polyak_tuning(1.0, 25.0)
    assert (alpha, mu) == pytest.approx((float(a_ref), float(mu_ref)), rel=1e-12)
    # Polyak's tuning puts h = 25 exactly on the edge alpha h = (1 + sqrt(mu))^2 (a double root)
    assert _in_robust(alpha, mu, *obj.curvature_range, closed=True)
    tr = simulate(obj, hb(alpha, mu), 600, jax.random.key(0))
    x = tr.iterates[:, 0]
    # a limit cycle of period 3 (Lessard, Recht, Packard 2016, Sec. 4.6): no convergence at all
    np.testing.assert_allclose(x[-30:-3], x[-27:], atol=1e-9)
    assert np.min(np.abs(x[-3:])) > 0.5


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    ("noise", "seeds", "steps"),
    [
        ("gaussian", 128, 3000),
        pytest.param("rademacher", 64, 2000, marks=pytest.mark.slow),
        pytest.param("uniform", 64, 2000, marks=pytest.mark.slow),
    ],
)
def test_noise_floor_matches_stationary_loss(noise: str, seeds: int, steps: int) -> None:
    obj = noisy_quadratic_model(8, p=1.0, batch_size=2, noise=noise)
    h, c = nqm_spectrum(8, 1.0, 2)
    np.testing.assert_allclose(obj.spectrum, h, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(obj.params["noise_std"]) ** 2, c, rtol=1e-12)
    points = {"learning_rate": np.array([0.5, 0.2, 1.0]), "momentum": np.array([0.0, 0.5, 0.8])}
    tr = sweep(
        hb, points, obj, steps, jax.random.key(7), seeds=seeds, record_every=2, x0=np.zeros(8)
    )
    for i in range(3):
        a, m = points["learning_rate"][i], points["momentum"][i]
        predicted = float(nqm_floor(a, m, h, c))
        # the slowest variance mode relaxes like rho^2 <= 0.995 per step: 1000 steps of burn-in
        mean, err = stationary_estimate(tr.losses[i], burn_in=500)
        # independent seeds x (steps - 1000) steps: the standard error is 0.3% (128 seeds, 2000
        # stationary steps) to 0.6% (64 seeds, 1000 steps), well below the 2% band
        assert err < 0.0075 * predicted
        assert mean == pytest.approx(predicted, rel=0.02)
        assert predicted == pytest.approx(float(np.sum(stationary_loss(a, m, h, c))), rel=1e-12)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_momo_never_increases_distance_on_interpolating_problem(beta: float) -> None:
    obj = interpolating_least_squares(40, 8, seed=2, batch_size=2)
    lrs = np.array([1e-2, 1e-1, 1.0, 10.0, 1e3])

    def make(learning_rate):
        return momo(learning_rate, beta=beta, lower_bound=0.0)

    tr = sweep(make, {"learning_rate": lrs}, obj, 300, jax.random.key(1), seeds=4)
    d = tr.distances
    assert not tr.diverged.any()
    # ||x_{k+1} - x*||^2 <= ||x_k - x*||^2 - tau_k (h_k - f*)_+ (MoMo reference, derived facts);
    # float64 rounding of the squared norms is the only slack
    sq = d**2
    tau, model = tr.stats["step_size"][..., 1:], tr.stats["h"][..., 1:]
    slack = 1e-10 * sq[..., :-1] + 1e-14
    assert np.all(sq[..., 1:] <= sq[..., :-1] - tau * np.maximum(model, 0.0) + slack)
    assert np.all(np.diff(d, axis=-1) <= 1e-12 * d[..., :-1])
    assert np.all(d[2:, :, -1] < 0.1 * d[2:, :, 0])  # and it does make progress with a usable cap
