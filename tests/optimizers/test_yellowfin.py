"""yellowfin: SingleStep solver, oracles and the whole step against float64 references."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import brentq, minimize_scalar

from optimizers import YellowFinState, logged_stats, yellowfin
from optimizers.singlestep_jax import cubic_root, single_step

EPS = 1e-6


# ---------------------------------------------------------------------------------------------
# SingleStep
# ---------------------------------------------------------------------------------------------


def _root64(p: float) -> tuple[float, float]:
    """Float64 reference root of (1-x)^3 = p x, and 1-x, by Brent's method on each unknown."""
    tol = dict(xtol=1e-300, rtol=4 * np.finfo(float).eps)
    x = brentq(lambda t: (1 - t) ** 3 - p * t, 0.0, 1.0, **tol)
    y = brentq(lambda t: t**3 + p * t - p, 0.0, 1.0, **tol)
    return x, y


def test_cubic_root_float32_matches_float64_reference() -> None:
    ps = np.logspace(-8, 12, 161)
    x, y = jax.jit(jax.vmap(cubic_root))(jnp.asarray(ps, jnp.float32))
    ref = np.array([_root64(float(np.float32(p))) for p in ps])
    # float32 carries ~6e-8 relative; the solver converges to a few ulps, so 1e-6 is a safe bound.
    np.testing.assert_allclose(np.asarray(x), ref[:, 0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(y), ref[:, 1], rtol=1e-6)


def test_cubic_root_where_vieta_cancels() -> None:
    # The official closed form in float32 loses x = y + 1 entirely at p = 1e8; we keep it.
    p = np.float32(1e8)
    w3 = (-np.sqrt(p**2 + np.float32(4 / 27) * p**3) - p) / np.float32(2)
    w = np.sign(w3) * np.abs(w3) ** np.float32(1 / 3)
    vieta = w - p / np.float32(3) / w + np.float32(1)
    x, _ = cubic_root(jnp.float32(p))
    ref, _ = _root64(float(p))
    assert abs(float(vieta) - ref) / ref > 0.1
    assert float(x) == pytest.approx(ref, rel=1e-6)


def test_cubic_root_edge_values() -> None:
    x, y = cubic_root(jnp.float32(0.0))
    assert (float(x), float(y)) == (1.0, 0.0)
    x, y = cubic_root(jnp.float32(np.inf))
    assert np.isfinite(float(x)) and 0.0 <= float(x) < 1e-29 and float(y) == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_single_step_minimises_the_objective(seed: int) -> None:
    # Brute-force check of Sec. 3.1: minimise mu D^2 + alpha^2 C over the robust constraint.
    rng = np.random.default_rng(seed)
    h_min = 10 ** rng.uniform(-3, 2)
    h_max = h_min * 10 ** rng.uniform(0, 4)
    c = 10 ** rng.uniform(-4, 3)
    d = 10 ** rng.uniform(-2, 2)
    mu, alpha = single_step(*(jnp.float32(v) for v in (h_min, h_max, c, d)), EPS)
    hm, dd, cc = h_min + EPS, d + EPS, c + EPS
    sdr = math.sqrt(max((h_max + EPS) / hm, 1 + EPS))
    lo = (sdr - 1) / (sdr + 1)

    def objective(x: float) -> float:
        return x**2 * dd**2 + (1 - x) ** 4 * cc / hm**2

    res = minimize_scalar(objective, bounds=(lo, 1.0), method="bounded", options={"xatol": 1e-12})
    mu_ref = res.x**2
    assert float(mu) == pytest.approx(mu_ref, rel=1e-4, abs=1e-9)
    # alpha = (1 - sqrt(mu))^2 / h_min; 1 - x is sensitive near x = 1, hence the looser bound.
    assert float(alpha) == pytest.approx((1 - res.x) ** 2 / hm, rel=2e-3)


# ---------------------------------------------------------------------------------------------
# Whole step against a float64 NumPy transcription of the official algorithm
# ---------------------------------------------------------------------------------------------


def reference_yellowfin(grads, params0, cfg):
    """Straight float64 transcription of YFOptimizer.step (reference/yellowfin.md).

    ``grads`` is a list of lists of arrays (one list of leaves per step), independent of the
    parameters so that the two runs see identical inputs. The move clip follows the official
    PyTorch code: when lr * ||g|| >= the threshold (||g|| measured after the statistics clip,
    before the exploding-gradient clip), the lr handed to the SGD step becomes
    threshold / sqrt(||g||^2 + eps); SGD then adds the weight decay to the gradient, keeps the
    result unscaled in its momentum buffer and moves by lr * buffer. Returns the per-step values
    and iterates, plus ``clipped``, the number of steps whose lr the move clip lowered.
    """
    beta, w, eps = cfg["beta"], cfg["curv_window"], EPS
    lr, mu = cfg["learning_rate"], cfg["momentum"]
    lr_s, mu_s = lr, mu
    x = [p.astype(np.float64).copy() for p in params0]
    vel = [np.zeros_like(p) for p in x]
    g_avg = [np.zeros_like(p) for p in x]
    win = np.zeros(w)
    hmin_avg = hmax_avg = gsq_avg = gnorm_avg = dist_avg = 0.0
    h_max_prev = 0.0
    out = {k: [] for k in ("h_min", "h_max", "grad_var", "dist_to_opt", "lr", "mu")}
    xs, clipped = [], 0
    for t, g in enumerate(grads):
        g = [gi.astype(np.float64) for gi in g]
        norm = math.sqrt(sum(float(np.sum(gi * gi)) for gi in g))
        if cfg["clip_statistics"] and t > 1:
            thresh = math.sqrt(100.0 * h_max_prev) + eps
            if norm > thresh:
                g = [gi * thresh / norm for gi in g]
        gsq = sum(float(np.sum(gi * gi)) for gi in g)
        exploding = cfg["clip_large_grad"] and t >= 1 and gsq >= h_max_prev
        target = math.sqrt(h_max_prev) + eps
        gsq_avg = beta * gsq_avg + (1 - beta) * gsq
        win[t % w] = gsq
        valid = win[: min(w, t + 1)]
        deb = 1 - beta ** (t + 1) if cfg["zero_debias"] else 1.0
        if cfg["log_smoothing"]:
            hmin_avg = beta * hmin_avg + (1 - beta) * math.log(valid.min() + eps)
            hmax_avg = beta * hmax_avg + (1 - beta) * math.log(valid.max() + eps)
            h_min, h_max = math.exp(hmin_avg / deb), math.exp(hmax_avg / deb)
        else:
            hmin_avg = beta * hmin_avg + (1 - beta) * valid.min()
            hmax_avg = beta * hmax_avg + (1 - beta) * valid.max()
            h_min, h_max = hmin_avg / deb, hmax_avg / deb
        g_avg = [beta * a + (1 - beta) * gi for a, gi in zip(g_avg, g, strict=True)]
        var = gsq_avg / deb - sum(float(np.sum(a * a)) for a in g_avg) / deb**2
        var = max(var, eps)
        gnorm_avg = beta * gnorm_avg + (1 - beta) * math.sqrt(gsq)
        dist_avg = beta * dist_avg + (1 - beta) * gnorm_avg / (gsq_avg + eps)
        dist = dist_avg / deb
        if t > 0:
            p = (dist + eps) ** 2 * (h_min + eps) ** 2 / 2 / (var + eps)
            root, _ = _root64(p)
            dr = max((h_max + eps) / (h_min + eps), 1 + eps)
            mu_t = max(root**2, ((math.sqrt(dr) - 1) / (math.sqrt(dr) + 1)) ** 2)
            lr_t = (1 - math.sqrt(mu_t)) ** 2 / (h_min + eps)
            if cfg["slow_start"]:
                lr_t = min(lr_t, lr_t * (t + 1) / (10.0 * w))
            lr_s = beta * lr_s + (1 - beta) * lr_t
            mu_s = beta * mu_s + (1 - beta) * mu_t
            if cfg["smoothed_tuning"]:
                lr_t, mu_t = lr_s, mu_s
        else:
            lr_t, mu_t = lr, mu
        lr_applied = lr_t * cfg["lr_factor"]
        if cfg["clip_move"] and lr_applied * math.sqrt(gsq) >= cfg["max_move"]:
            lr_applied = cfg["max_move"] / math.sqrt(gsq + eps)
            clipped += 1
        if exploding and math.sqrt(gsq) > target:
            g = [gi * target / math.sqrt(gsq) for gi in g]
        g = [gi + cfg["weight_decay"] * xi for gi, xi in zip(g, x, strict=True)]
        if cfg["update_form"] == "velocity":
            vel = [mu_t * v + gi for v, gi in zip(vel, g, strict=True)]
            x = [xi - lr_applied * v for xi, v in zip(x, vel, strict=True)]
        else:
            vel = [mu_t * v - lr_applied * gi for v, gi in zip(vel, g, strict=True)]
            x = [xi + v for xi, v in zip(x, vel, strict=True)]
        h_max_prev = h_max
        for k, v in zip(out, (h_min, h_max, var, dist, lr_applied, mu_t), strict=True):
            out[k].append(v)
        xs.append([xi.copy() for xi in x])
    return {k: np.array(v) for k, v in out.items()}, xs, clipped


DEFAULTS = dict(
    learning_rate=1e-3,
    momentum=0.0,
    beta=0.999,
    curv_window=20,
    zero_debias=True,
    log_smoothing=True,
    slow_start=True,
    lr_factor=1.0,
    update_form="velocity",
    clip_statistics=True,
    clip_large_grad=True,
    clip_move=True,
    max_move=100.0,
    smoothed_tuning=False,
    weight_decay=0.0,
)


def _gradient_stream(steps: int, seed: int):
    """Random gradients on a two-leaf pytree: drifting mean, noise, changing scale, rare spikes."""
    rng = np.random.default_rng(seed)
    mean = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    out = []
    for t in range(steps):
        scale = math.exp(-t / 150) + 0.2
        spike = 30.0 if rng.random() < 0.03 else 1.0
        out.append(
            [
                (scale * m + 0.5 * rng.standard_normal(m.shape)) * spike
                for m in ((1 - t / steps) * mean[0], mean[1])
            ]
        )
    return [[g.astype(np.float32) for g in gs] for gs in out]


# The move clip acts in the last three cases: at least ``min_clipped`` of the 300 steps.
@pytest.mark.parametrize(
    ("override", "min_clipped"),
    [
        ({}, 0),
        ({"update_form": "heavy_ball", "lr_factor": 0.5}, 0),
        ({"log_smoothing": False, "beta": 0.99}, 0),
        ({"zero_debias": False, "smoothed_tuning": True, "max_move": 0.05}, 0),
        ({"slow_start": False, "clip_statistics": False, "clip_large_grad": False, "beta": 0.9}, 0),
        ({"max_move": 0.002, "weight_decay": 0.05}, 100),
        ({"max_move": 0.002, "update_form": "heavy_ball"}, 100),
        (
            {
                "max_move": 0.002,
                "slow_start": False,
                "weight_decay": 0.05,
                "clip_large_grad": False,
            },
            100,
        ),
    ],
)
def test_trajectory_matches_float64_transcription(override: dict, min_clipped: int) -> None:
    cfg = {**DEFAULTS, **override}
    steps = 300
    grads = _gradient_stream(steps, seed=len(override))
    params0 = [np.ones((4, 3), np.float32), -np.ones(5, np.float32)]
    ref, ref_x, clipped = reference_yellowfin(grads, params0, cfg)
    assert clipped >= min_clipped

    opt = yellowfin(**cfg)
    params = [jnp.asarray(p) for p in params0]
    state = opt.init(params)
    step = jax.jit(lambda g, s, p: opt.update(g, s, p))
    got = {k: [] for k in ref}
    for t in range(steps):
        upd, state = step([jnp.asarray(g) for g in grads[t]], state, params)
        params = optax.apply_updates(params, upd)
        stats = logged_stats(state)
        for k, name in (("lr", "learning_rate"), ("mu", "momentum")):
            got[k].append(float(stats[name]))
        for k in ("h_min", "h_max", "grad_var", "dist_to_opt"):
            got[k].append(float(stats[k]))
    # Tolerances: float32 EMAs over 300 steps accumulate ~1e-6 relative error; exp(log-average)
    # turns an absolute error of ~1e-6 in the log into ~1e-6 relative; C and D come from
    # differences/ratios of EMAs and SingleStep amplifies its input error by at most a few,
    # so 1e-4 relative (1e-3 for C, whose two terms partly cancel) is a float32-level match.
    for k, rtol in (("h_min", 1e-4), ("h_max", 1e-4), ("dist_to_opt", 1e-4), ("grad_var", 1e-3)):
        np.testing.assert_allclose(got[k], ref[k], rtol=rtol, err_msg=k)
    np.testing.assert_allclose(got["mu"], ref["mu"], rtol=1e-3, atol=1e-6, err_msg="mu")
    np.testing.assert_allclose(got["lr"], ref["lr"], rtol=1e-3, err_msg="lr")
    for a, b in zip(params, ref_x[-1], strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-3, atol=1e-4)


def test_step_zero_uses_constructor_values() -> None:
    opt = yellowfin(learning_rate=0.05, momentum=0.3)
    x = jnp.array([1.0, 2.0])
    g = jnp.array([0.5, -1.0])
    upd, state = jax.jit(opt.update)(g, opt.init(x), x)
    np.testing.assert_allclose(np.asarray(upd), -0.05 * np.asarray(g), rtol=1e-6)
    assert float(state.momentum) == pytest.approx(0.3)


def test_loss_scale_leaves_mu_and_scales_lr() -> None:
    # Multiplying the loss by c multiplies h by c^2, C by c^2 and D by 1/c: mu is unchanged and
    # alpha scales by 1/c^2 (reference/yellowfin.md). Gradient norms ~1 keep every eps guard
    # below 1e-5 relative.
    grads = _gradient_stream(60, seed=7)
    c = 10.0
    runs = []
    opt = yellowfin(clip_move=False)
    step = jax.jit(opt.update)
    for factor in (1.0, c):
        params = [jnp.zeros((4, 3)), jnp.zeros(5)]
        state = opt.init(params)
        for g in grads:
            _, state = step([jnp.asarray(factor * gi) for gi in g], state, params)
        runs.append(state)
    assert float(runs[1].momentum) == pytest.approx(float(runs[0].momentum), rel=1e-4)
    assert float(runs[1].learning_rate) == pytest.approx(float(runs[0].learning_rate) / c**2, 1e-3)


def test_weight_decay_visibility() -> None:
    grads = _gradient_stream(30, seed=3)
    finals = {}
    for wd, see in ((0.0, False), (0.5, False), (0.5, True)):
        opt = yellowfin(weight_decay=wd, stats_see_weight_decay=see)
        params = [jnp.full((4, 3), 3.0, jnp.float32), jnp.full(5, -3.0, jnp.float32)]
        state = opt.init(params)
        step = jax.jit(opt.update)
        for g in grads:
            upd, state = step([jnp.asarray(gi) for gi in g], state, params)
            params = optax.apply_updates(params, upd)
        finals[(wd, see)] = (float(state.h_max), np.asarray(params[0]))
    plain, hidden, seen = finals[(0.0, False)], finals[(0.5, False)], finals[(0.5, True)]
    # Hidden from the statistics: identical h_max (same gradient stream); seen: different.
    assert hidden[0] == pytest.approx(plain[0], rel=1e-6)
    assert seen[0] != pytest.approx(plain[0], rel=1e-3)
    # Weight decay always acts on the step.
    assert not np.allclose(hidden[1], plain[1])


def test_converges_on_noisy_quadratic() -> None:
    # End to end: minibatch-like noise on a kappa = 100 quadratic; the loss must fall by 100x.
    rng = np.random.default_rng(0)
    h = jnp.asarray(np.geomspace(0.1, 10.0, 20), jnp.float32)
    noise = jnp.asarray(0.01 * rng.standard_normal((1500, 20)), jnp.float32)
    opt = yellowfin(learning_rate=0.01)
    x0 = jnp.ones(20)

    def body(carry, n):
        x, s = carry
        u, s = opt.update(h * x + n, s, x)
        return (x + u, s), 0.5 * jnp.sum(h * x * x)

    (_, state), losses = jax.jit(lambda x: jax.lax.scan(body, (x, opt.init(x)), noise))(x0)
    losses = np.asarray(losses)
    assert losses[-100:].mean() < 1e-2 * losses[0]
    assert 0.0 < float(state.momentum) < 1.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"beta": 1.0}, "beta"),
        ({"beta": -0.1}, "beta"),
        ({"curv_window": 0}, "curv_window"),
        ({"curv_window": True}, "curv_window"),  # a bool is an int, but never a meant window
        ({"curv_window": 20.0}, "curv_window"),
        ({"momentum": False}, "momentum"),
        ({"lr_factor": -1.0}, "lr_factor"),
        ({"update_form": "nesterov"}, "update_form"),
        ({"max_move": 0.0}, "max_move"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        yellowfin(**kwargs)


def test_the_closed_loop_is_a_wrapper_now() -> None:
    # closed-loop YellowFin is optimizers.closed_loop_yellowfin; yellowfin has no loop settings
    for name in (
        "closed_loop",
        "feedback_gain",
        "target_momentum",
        "sensor_convention",
        "effective_workers",
        "sensor_size",
        "max_staleness",
        "sensor_key",
    ):
        with pytest.raises(TypeError, match=name):
            yellowfin(**{name: 1})
    assert isinstance(yellowfin().init(jnp.zeros(3)), YellowFinState)


@pytest.mark.parametrize("update_form", ["velocity", "heavy_ball"])
def test_move_clip_lowers_the_applied_lr(update_form: str) -> None:
    # Official semantics: lr * ||g|| >= max_move sets lr = max_move / sqrt(||g||^2 + eps); the
    # gradient itself is not scaled, so the velocity form stores the unscaled g in v.
    opt = yellowfin(learning_rate=1.0, momentum=0.5, update_form=update_form, max_move=10.0)
    x = jnp.zeros(2)
    g = jnp.array([300.0, 400.0])  # ||g|| = 500: lr ||g|| = 500 >= 10
    upd, state = jax.jit(opt.update)(g, opt.init(x), x)
    lr = 10.0 / math.sqrt(500.0**2 + EPS)
    assert float(state.learning_rate) == pytest.approx(lr, rel=1e-6)
    np.testing.assert_allclose(np.asarray(upd), -lr * np.asarray(g), rtol=1e-6)
    expected_v = g if update_form == "velocity" else -lr * g
    np.testing.assert_allclose(np.asarray(state.velocity), np.asarray(expected_v), rtol=1e-6)
    # Below the threshold nothing changes.
    _, state = jax.jit(opt.update)(g / 100, opt.init(x), x)
    assert float(state.learning_rate) == 1.0
