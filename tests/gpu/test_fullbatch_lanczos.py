"""Lanczos extremes against the exact Hessian, the Hessian-free polish, chunked tracked heavy ball
(full batch and minibatch) and the float64 character-LSTM objective."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gpu.data import load_digits, load_text
from gpu.fullbatch import (
    char_lstm_problem,
    digits_mlp_problem,
    heavy_ball_tracked,
    heavy_ball_trajectory,
    hvp_function,
    lanczos_extremes,
    newton_cg_polish,
    polish,
)

EPS = np.finfo(np.float64).eps


@pytest.fixture(scope="module")
def mlp():
    p = digits_mlp_problem(load_digits(), hidden=4, weight_decay=0.05, n_train=300)
    return p, polish(p, p.init)


def test_lanczos_extremes_match_the_exact_hessian_of_the_mlp(mlp) -> None:
    """At the polished minimiser of a 310-parameter MLP: 80 Lanczos steps give both ends of the
    exact spectrum (eigh of jax.hessian) to the size of their residual bounds, which are tiny."""
    p, ref = mlp
    ev = ref.eigenvalues
    hv = hvp_function(p, ref.point)
    # the Hessian-vector product is the exact Hessian's (both float64)
    v = np.random.default_rng(1).standard_normal(p.size)
    h = (ref.eigenvectors * ev) @ ref.eigenvectors.T
    np.testing.assert_allclose(hv(v), h @ v, rtol=0, atol=1e-11 * np.linalg.norm(h @ v))
    rz = lanczos_extremes(hv, p.size, 80, seed=0)
    scale = ev[-1]
    # interlacing: Ritz values lie inside the spectrum (up to rounding)
    assert rz.h_min >= ev[0] - 1e3 * EPS * scale and rz.h_max <= ev[-1] + 1e3 * EPS * scale
    # some eigenvalue lies within the residual bound of each Ritz value; here the extreme ones
    assert abs(rz.h_max - ev[-1]) <= rz.residual_max + 1e3 * EPS * scale
    assert abs(rz.h_min - ev[0]) <= rz.residual_min + 1e3 * EPS * scale
    assert rz.residual_max <= 1e-8 * ev[-1] and rz.residual_min <= 1e-3 * ev[0]
    np.testing.assert_allclose([rz.h_min, rz.h_max], [ev[0], ev[-1]], rtol=1e-3)
    # too few steps leave h_min visibly above the true smallest eigenvalue
    few = lanczos_extremes(hv, p.size, 5, seed=0)
    assert few.h_min > ev[0] * (1 + 1e-3) and few.residual_min > 1e-3 * ev[0]


def test_lanczos_on_a_diagonal_and_validation() -> None:
    d = np.geomspace(1e-3, 1.0, 50)
    rz = lanczos_extremes(lambda v: d * v, 50, 50)
    np.testing.assert_allclose(rz.ritz_values, d, rtol=1e-8)
    with pytest.raises(ValueError, match="steps"):
        lanczos_extremes(lambda v: v, 5, 6)
    with pytest.raises(ValueError, match="size"):
        lanczos_extremes(lambda v: v, 0, 1)


def test_newton_cg_polish_matches_the_exact_newton_polish(mlp) -> None:
    p, ref = mlp
    w, _, gnorm, _, _ = newton_cg_polish(p, p.init)
    assert gnorm < 1e-12
    np.testing.assert_allclose(w, ref.point, rtol=0, atol=1e-9)


def test_tracked_chunks_equal_the_trajectory_and_a_full_minibatch() -> None:
    p = digits_mlp_problem(load_digits(), hidden=3, n_train=100)
    coords = np.array([0, 7, 100, p.size - 1])
    full = heavy_ball_trajectory(p, 0.3, 0.9, 25)
    tracked, w_end = heavy_ball_tracked(p, 0.3, 0.9, 25, coords, chunk=7)
    assert tracked.shape == (29, 4)  # 4 chunks of 7 steps
    np.testing.assert_allclose(tracked[:26], full[:, coords], rtol=1e-12, atol=1e-14)
    # a minibatch of every example is the full batch in another order
    mb, _ = heavy_ball_tracked(p, 0.3, 0.9, 25, coords, chunk=7, batch_size=100, seed=3)
    np.testing.assert_allclose(mb, tracked, rtol=1e-10, atol=1e-12)
    # a real minibatch differs
    small, _ = heavy_ball_tracked(p, 0.3, 0.9, 25, coords, chunk=7, batch_size=10, seed=3)
    assert np.max(np.abs(small - tracked)) > 1e-6
    assert w_end.shape == (p.size,)
    with pytest.raises(ValueError, match="coords"):
        heavy_ball_tracked(p, 0.3, 0.9, 5, np.array([p.size]))
    with pytest.raises(ValueError, match="batch_size"):
        heavy_ball_tracked(p, 0.3, 0.9, 5, coords, batch_size=101)


def test_char_lstm_problem_is_float64_and_batches_add_up() -> None:
    p = char_lstm_problem(load_text(), num_sequences=4, seq_len=8, embed=3, hidden=4)
    assert p.init.dtype == np.float64 and p.num_examples == 4
    with jax.enable_x64(True):
        w = jnp.asarray(p.init)
        full = p.loss(w)
        assert full.dtype == jnp.float64
        halves = [p.batch_loss(w, jnp.array(r)) for r in ([0, 1], [2, 3])]
        reg = 0.5 * p.weight_decay * float(jnp.sum(w * w))
        np.testing.assert_allclose(
            float(full) - reg, np.mean([float(h) - reg for h in halves]), rtol=1e-13
        )
        # float64 all the way: a step of 1e-7 along the gradient changes f by |g|^2 1e-7
        g = jax.grad(p.loss)(w)
        df = float(p.loss(w - 1e-7 * g) - full)
        np.testing.assert_allclose(df, -1e-7 * float(g @ g), rtol=1e-4)
    with pytest.raises(ValueError, match="hidden"):
        char_lstm_problem(load_text(), hidden=0)


def test_char_lstm_input_references_and_fixed_embedding() -> None:
    """The per-window data losses average to the loss without weight decay, the constant
    predictor's losses average to the targets' unigram entropy, zeroing the input kernel (the last
    parameter block, ``embed x 4 hidden``) blinds the network, and a fixed embedding leaves the
    same network with the embedding table out of ``w``."""
    text = load_text()
    p = char_lstm_problem(text, num_sequences=4, seq_len=8, embed=3, hidden=4)
    q = char_lstm_problem(
        text, num_sequences=4, seq_len=8, embed=3, hidden=4, train_embedding=False
    )
    vocab = p.shapes[0][0]
    assert p.shapes[0] == (vocab, 3) and q.shapes == p.shapes[1:] and q.size == p.size - 3 * vocab
    assert p.shapes[-1] == (3, 16) and q.input_kernel == slice(q.size - 48, q.size)
    np.testing.assert_array_equal(q.init, p.init[3 * vocab :])
    w = q.init + 0.1 * np.random.default_rng(0).standard_normal(q.size)
    with jax.enable_x64(True):
        # the fixed embedding is the initial one: the same network as p at (init embedding, w)
        pw = jnp.asarray(np.concatenate([p.init[: 3 * vocab], w]))
        np.testing.assert_allclose(
            float(q.loss(jnp.asarray(w))) - 0.5 * q.weight_decay * float(w @ w),
            float(p.loss(pw)) - 0.5 * p.weight_decay * float(pw @ pw),
            rtol=1e-13,
        )
        full = float(q.loss(jnp.asarray(w))) - 0.5 * q.weight_decay * float(w @ w)
        # blind: no gradient reaches the embedding table any more
        blind_p = p.without_input(np.asarray(pw))
        g = jax.grad(p.loss)(jnp.asarray(blind_p))[: 3 * vocab]
        np.testing.assert_allclose(np.asarray(g), p.weight_decay * blind_p[: 3 * vocab], atol=1e-15)
    assert q.targets.shape == (4, 8)
    np.testing.assert_allclose(q.data_losses(w).mean(), full, rtol=1e-12)
    _, counts = np.unique(q.targets, return_counts=True)
    f = counts / counts.sum()
    np.testing.assert_allclose(q.constant_losses().mean(), -(f * np.log(f)).sum(), rtol=1e-13)
    blind = q.without_input(w)
    assert np.all(blind[q.input_kernel] == 0)
    assert np.array_equal(blind[: q.input_kernel.start], w[: q.input_kernel.start])
