"""Closed-loop YellowFin as ``closed_loop`` around YellowFin: the same numbers as the former branch.

``tests/optimizers/data/closed_loop_yellowfin.npz`` holds, in float64, the trajectories of the
closed loop as it was written inside ``yellowfin`` (``closed_loop=True``) on a stale noisy
quadratic (geometric staleness, M = 4; clip factors of YellowFin active on some steps), for three
settings: SingleStep target, the total convention with M = 4, a fixed target with gain 0.05.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import YELLOWFIN_STATIC_ARGS, closed_loop, closed_loop_yellowfin, yellowfin
from tests.optimizers._stale_loop import geometric_staleness, run_stale

GOLDEN = Path(__file__).parent / "data" / "closed_loop_yellowfin.npz"
CURV = np.geomspace(0.05, 1.0, 32)
SETTINGS = {
    "ss": {},
    "total": {"sensor_convention": "total", "effective_workers": 4.0},
    "fixed": {"target_momentum": 0.5, "gain": 0.05},
}
FIELDS = ("mu_algo", "mu_hat", "mu_target", "learning_rate", "momentum")
# float64: the two code paths round differently (a g with a = lr * clip factors, against
# lr * (clip factors * g)); measured deviations stay below 1e-14 over 400 steps, and the
# median sensor amplifies a rounding difference by at most 1 / |d_prev| relative to the move.
RTOL, ATOL = 1e-9, 1e-12


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_wrapper_reproduces_the_recorded_closed_loop(name: str) -> None:
    golden = np.load(GOLDEN)
    taus = geometric_staleness(4, 400, seed=1)
    with jax.enable_x64(True):
        r = run_stale(
            closed_loop_yellowfin(**SETTINGS[name]), taus, CURV, noise=0.5, dtype=jnp.float64
        )
    for field in FIELDS:
        np.testing.assert_allclose(
            r[field], golden[f"{name}_{field}"], rtol=RTOL, atol=ATOL, err_msg=field
        )
    np.testing.assert_allclose(r["x"][-1], golden[f"{name}_x"], rtol=RTOL, atol=ATOL)
    assert int(r["loop_skipped"][-1]) == 0


def test_helper_is_the_plain_composition() -> None:
    taus = geometric_staleness(4, 200, seed=2)
    make = optax.inject_hyperparams(yellowfin, static_args=YELLOWFIN_STATIC_ARGS)
    composed = closed_loop(
        make(tune_momentum=False), hyperparam="momentum", target_momentum="tuned_momentum"
    )
    a = run_stale(composed, taus, CURV, noise=0.1)
    b = run_stale(closed_loop_yellowfin(), taus, CURV, noise=0.1)
    for field in ("updates", *FIELDS):
        np.testing.assert_array_equal(a[field], b[field], err_msg=field)


def test_controller_drives_the_applied_momentum() -> None:
    # the applied momentum of each step is the controller's value from the step before
    taus = geometric_staleness(8, 300, seed=3)
    r = run_stale(closed_loop_yellowfin(), taus, CURV, noise=0.1)
    np.testing.assert_array_equal(r["momentum"][1:], r["mu_algo"][:-1])
    np.testing.assert_array_equal(r["hp_momentum"], r["momentum"])
    np.testing.assert_array_equal(r["mu_target"], r["tuned_momentum"])
    assert np.ptp(r["mu_algo"]) > 0.01  # the loop acts


def test_tune_momentum_false_applies_the_given_momentum() -> None:
    taus = np.zeros(50, np.int64)
    r = run_stale(yellowfin(tune_momentum=False, momentum=0.3), taus, CURV)
    np.testing.assert_allclose(r["momentum"], 0.3, rtol=1e-7)
    assert np.ptp(r["tuned_momentum"][1:]) > 0  # SingleStep still tunes and records its mu


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gain": 0.0}, "gain"),
        ({"sensor_convention": "mean"}, "sensor_convention"),
        ({"effective_workers": 0.5}, "effective_workers"),
        ({"sensor_size": 0}, "sensor_size"),
        ({"sensor_size": True}, "sensor_size"),
        ({"max_staleness": -1}, "max_staleness"),
        ({"key": False}, "key"),
        ({"target_momentum": 1.5}, "target_momentum"),
        ({"momentum": 1.0}, "momentum"),
        ({"curv_window": 0}, "curv_window"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        closed_loop_yellowfin(**kwargs)
