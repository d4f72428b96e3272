"""Measurements against series whose answer is known analytically."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.measure import (
    integrated_autocorrelation_time,
    measure_rate,
    peak_transient,
    per_coordinate_rates,
    stationary_estimate,
)


def ar1(rng: np.random.Generator, phi: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) x_t = phi x_{t-1} + eps_t with unit innovations, along the last axis."""
    eps = rng.standard_normal(shape)
    x = np.empty(shape)
    x[..., 0] = eps[..., 0] / np.sqrt(1 - phi**2)
    for t in range(1, shape[-1]):
        x[..., t] = phi * x[..., t - 1] + eps[..., t]
    return x


def test_geometric_series_gives_exact_rate() -> None:
    est = measure_rate(3.0 * 0.93 ** np.arange(300.0))
    assert est.rate == pytest.approx(0.93, rel=1e-12)
    assert est.stderr < 1e-12
    assert (est.start, est.stop) == (150, 300)


def test_oscillating_decay_and_precision_floor() -> None:
    t = np.arange(3000.0)
    d = 0.95**t * np.abs(np.cos(0.7 * t + 0.3)) + 1e-300
    d = np.maximum(d, 1e-15 * (1 + 0.5 * np.sin(t)))  # a noisy floor, as rounding leaves it
    est = measure_rate(d)
    # the window stops before the floor (1e3 eps of the peak); the oscillation's log|cos| term is
    # bounded above and integrable, leaving a bias far below 0.1% over ~300 points
    assert est.stop < 700
    assert est.rate == pytest.approx(0.95, rel=1e-3)
    assert abs(est.rate - 0.95) < 4 * est.stderr + 1e-4


def test_jackknife_error_is_calibrated_for_iid_and_correlated_residuals() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(2000.0)
    for noise in (0.3 * rng.standard_normal((400, 2000)), 0.3 * ar1(rng, 0.8, (400, 2000))):
        est = measure_rate(np.exp(t * np.log(0.99) + noise), start=0)
        spread = np.std(est.rate, ddof=1)
        rms = np.sqrt(np.mean(est.stderr**2))
        # 400 replicates: the empirical spread is known to ~4%; the jackknife with 8 blocks of 250
        # points (>> correlation time 9) matches it within Monte-Carlo error
        assert rms == pytest.approx(spread, rel=0.2)
        assert np.mean(est.rate) == pytest.approx(0.99, abs=3 * spread / np.sqrt(400))


def test_strided_steps_kappa_start_divergence_and_short_series() -> None:
    steps = np.arange(0, 1000, 5)
    est = measure_rate(0.98**steps, steps=steps, kappa=400.0)
    assert est.rate == pytest.approx(0.98, rel=1e-12)
    assert est.start == 100  # half of the 200 usable records, later than 10 sqrt(400) = 200 steps
    late = measure_rate(0.98**steps, steps=steps, kappa=3600.0)
    assert late.start == 120  # 10 sqrt(3600) = 600 steps = record 120, after the half

    growing = np.concatenate([1.1 ** np.arange(100.0), np.full(50, np.inf)])
    assert measure_rate(growing).rate == pytest.approx(1.1, rel=1e-12)
    # 0.3^t reaches the 1e3 eps floor at t = 24: a 12-point window is below min_points = 16
    assert np.isnan(measure_rate(0.3 ** np.arange(40.0)).rate)


def test_batched_and_per_coordinate_rates() -> None:
    t = np.arange(400.0)
    rates = np.array([0.9, 0.95, 0.97])
    iterates = 1.0 + rates[None, :] ** t[:, None] * np.array([1.0, -2.0, 0.5])
    est = per_coordinate_rates(iterates, np.ones(3), start=50, stop=300)
    # x - x* cancels against x* = 1: near the 1e3 eps floor the errors carry ~1e-3 relative
    # rounding, which moves the fitted slope by ~1e-7
    np.testing.assert_allclose(est.rate, rates, rtol=1e-6)
    batch = np.stack([iterates, iterates])
    assert per_coordinate_rates(batch, 1.0, start=50, stop=300).rate.shape == (2, 3)
    d = np.stack([0.9**t, 0.8**t])
    np.testing.assert_allclose(measure_rate(d, start=10).rate, [0.9, 0.8], rtol=1e-12)


def test_stationary_estimate_of_ar1_mean() -> None:
    rng = np.random.default_rng(1)
    phi, n = 0.9, 100_000
    x = 2.0 + ar1(rng, phi, (n,))
    # integrated autocorrelation time of AR(1): (1 + phi)/(1 - phi) = 19
    assert integrated_autocorrelation_time(x) == pytest.approx(19.0, rel=0.1)
    mean, err = stationary_estimate(x, burn_in=1000)
    true_err = np.sqrt(1.0 / (1 - phi) ** 2 / (n - 1000))  # long-run variance / n
    assert err == pytest.approx(true_err, rel=0.15)
    assert abs(mean - 2.0) < 4 * true_err
    seeds = 2.0 + ar1(rng, phi, (64, 2000))
    mean, err = stationary_estimate(seeds, burn_in=0)
    # per-seed means have variance ~ 1/((1-phi)^2 2000) (minus an O(tau/n) correction)
    assert err == pytest.approx(np.sqrt(100.0 / 2000 / 64), rel=0.25)
    assert abs(mean - 2.0) < 4 * err


def test_peak_transient() -> None:
    assert peak_transient([2.0, 3.0, 5.0, 1.0, np.inf]) == (2.5, 2)
    assert peak_transient([2.0, 1.0], steps=[0, 10]) == (1.0, 0)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: measure_rate([1.0, 0.5]), "distances"),
        (lambda: measure_rate(np.ones(10), steps=np.arange(9)), "steps"),
        (lambda: measure_rate(np.ones(10), kappa=0.5), "kappa"),
        (lambda: measure_rate(np.ones(10), start=11), "start"),
        (lambda: measure_rate(np.ones(10), rel_floor=1.5), "rel_floor"),
        (lambda: measure_rate(np.ones(10), blocks=1), "blocks"),
        (lambda: measure_rate(np.ones(10), blocks=2.5), "blocks"),
        (lambda: measure_rate(np.ones(10), blocks=True), "blocks"),
        (lambda: measure_rate(np.ones(10), start=2.5), "start"),
        (lambda: measure_rate(np.ones(10), stop=7.0), "stop"),
        (lambda: measure_rate(np.ones(10), min_points=3.5), "min_points"),
        (lambda: per_coordinate_rates(np.ones(10), 0.0), "iterates"),
        (lambda: per_coordinate_rates(np.ones((10, 3)), np.zeros(2)), "x_star"),
        (lambda: stationary_estimate(np.ones(10), burn_in=9), "burn_in"),
        (lambda: stationary_estimate(np.ones((2, 2, 10)), burn_in=0), "values"),
        (lambda: stationary_estimate([1.0, np.nan, 1.0], burn_in=0), "values"),
        (lambda: peak_transient([0.0, 1.0]), "distances"),
        (lambda: peak_transient([1.0, 1.0], steps=[0]), "steps"),
    ],
)
def test_bad_input_names_the_parameter(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("bad", [-1, 11, 2.5, True, "3", None])
@pytest.mark.parametrize("name", ["start", "stop"])
def test_window_bounds_state_the_range(name: str, bad) -> None:
    if bad is None:  # None means "default window": accepted
        measure_rate(np.ones(10), **{name: bad})
        return
    with pytest.raises(ValueError, match=rf"^{name} must be an integer in \[0, 10\]"):
        measure_rate(np.ones(10), **{name: bad})


def test_window_bounds_accept_numpy_integers() -> None:
    d = 0.9 ** np.arange(100.0)
    est = measure_rate(d, start=np.int64(10), stop=np.int32(100), min_points=3)
    assert (est.start, est.stop) == (10, 100)
    assert type(est.start) is int and type(est.stop) is int
