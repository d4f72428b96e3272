"""The training loop: determinism, checkpoint/resume, budgets, stale-gradient emulation."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from gpu import stale
from gpu.checkpoint import load_checkpoint, save_checkpoint
from gpu.train import train
from tests.gpu._helpers import digits_task, leaves_equal, mlp


def test_same_seed_same_run_and_loss_falls() -> None:
    task = digits_task()
    a = train(mlp(), optax.sgd(0.1, 0.9), task, steps=60, chunk=30)
    b = train(mlp(), optax.sgd(0.1, 0.9), task, steps=60, chunk=30)
    assert leaves_equal(a.state, b.state)
    np.testing.assert_array_equal(a.metrics["loss"], b.metrics["loss"])
    assert a.metrics["loss"].shape == (60,)
    assert a.metrics["loss"][-10:].mean() < 0.6 * a.metrics["loss"][:10].mean()
    assert a.evals[-1]["step"] == 60 and a.evals[-1]["test_accuracy"] > 0.5
    k0, k1 = (jax.random.fold_in(jax.random.key(s), 0) for s in (0, 1))
    b0, b1 = (task.sample(task.train_data, k, jnp.int32(0)) for k in (k0, k1))
    assert not np.array_equal(b0[1], b1[1])  # another seed draws other batches


def test_checkpoint_resume_is_bitwise_identical(tmp_path: Path) -> None:
    task = digits_task()
    tx = optax.adam(3e-3)
    full = train(mlp(), tx, task, steps=40, chunk=10, eval_every=20)
    calls = []
    part = train(
        mlp(),
        tx,
        task,
        steps=40,
        chunk=10,
        eval_every=20,
        checkpoint_dir=tmp_path,
        step_budget=20,
        progress=lambda s, n, m: calls.append((s, n)),
    )
    assert part.stopped == "step_budget" and part.steps_done == 20
    assert calls == [(10, 40), (20, 40)]
    # a fresh model object (different init seed) proves the state comes from the checkpoint
    rest = train(mlp(seed=5), tx, task, steps=40, chunk=10, eval_every=20, checkpoint_dir=tmp_path)
    assert rest.stopped == "done" and rest.steps_done == 40
    assert leaves_equal(full.state, rest.state)
    np.testing.assert_array_equal(full.metrics["loss"], rest.metrics["loss"])
    assert full.evals == rest.evals
    assert not list(tmp_path.glob("*.tmp"))


def test_time_budget_stops_after_a_chunk() -> None:
    r = train(mlp(), optax.sgd(0.1), digits_task(), steps=1000, chunk=10, time_budget_s=1e-9)
    assert r.stopped == "time_budget" and r.steps_done == 0


def test_nonfinite_loss_stops_the_run() -> None:
    tx = optax.chain(optax.sgd(0.1), optax.scale(float("nan")))
    r = train(mlp(), tx, digits_task(), steps=100, chunk=10)
    assert r.stopped == "nonfinite" and r.steps_done < 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 5, "chunk": 0}, "chunk"),
        ({"steps": 5, "time_budget_s": 0.0}, "time_budget_s"),
        ({"steps": 5, "step_budget": -1}, "step_budget"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train(mlp(), optax.sgd(0.1), digits_task(), **kwargs)


def test_checkpoint_roundtrip_and_mismatch(tmp_path: Path) -> None:
    tree = {"a": jnp.arange(3.0), "b": (jnp.ones((2, 2), jnp.int32),)}
    path = save_checkpoint(tmp_path / "c.npz", tree, {"hist": np.arange(4)})
    back, extra = load_checkpoint(path, tree)
    assert leaves_equal(back, tree) and np.array_equal(extra["hist"], np.arange(4))
    with pytest.raises(ValueError, match="leaf 0"):
        load_checkpoint(path, {"a": jnp.arange(4.0), "b": (jnp.ones((2, 2), jnp.int32),)})
    with pytest.raises(ValueError, match="holds 2 arrays"):
        load_checkpoint(path, {"a": jnp.arange(3.0)})
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.npz", tree)
    with pytest.raises(ValueError, match="typed PRNG key"):
        save_checkpoint(tmp_path / "k.npz", {"k": jax.random.key(0)})


def test_tau_zero_equals_synchronous_training_exactly() -> None:
    task = digits_task()
    sync = train(mlp(), optax.sgd(0.05, 0.9), task, steps=30, chunk=15)
    asyn = train(mlp(), optax.sgd(0.05, 0.9), task, steps=30, chunk=15, staleness=stale.fixed(0))
    assert leaves_equal(sync.state.params, asyn.state.params)
    np.testing.assert_array_equal(sync.metrics["loss"], asyn.metrics["loss"])
    np.testing.assert_array_equal(asyn.metrics["tau"], 0)


@pytest.mark.parametrize("law", [stale.fixed(3), stale.uniform(4)])
def test_stale_gradients_match_a_plain_reference_loop(law: stale.StalenessLaw) -> None:
    """Independent re-implementation: keep every past parameter in a Python list."""
    task, lr, steps = digits_task(), 0.2, 12
    r = train(mlp(), optax.sgd(lr), task, steps=steps, chunk=steps, staleness=law)
    graphdef, params = nnx.split(mlp(), nnx.Param)
    key = jax.random.key(0)

    def loss(p, batch):
        logits = nnx.merge(graphdef, p)(batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    history = [params]
    for t in range(steps):
        batch = task.sample(task.train_data, jax.random.fold_in(key, 0), jnp.int32(t))
        tau = int(r.metrics["tau"][t])
        assert 0 <= tau <= min(t, law.max_tau)
        g = jax.grad(loss)(history[t - tau], batch)
        history.append(jax.tree_util.tree_map(lambda p, g: p - lr * g, history[t], g))
    if law.kind == "fixed":
        np.testing.assert_array_equal(r.metrics["tau"], np.minimum(np.arange(steps), 3))
    for a, b in zip(
        jax.tree_util.tree_leaves(r.state.params),
        jax.tree_util.tree_leaves(history[-1]),
        strict=True,
    ):
        # float32 sums in a different fusion order: a few ulps per step over 12 steps
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_geometric_staleness_law() -> None:
    from scipy import stats

    M = 4
    law = stale.geometric(M)
    q = 1 - 1 / M
    assert q ** (law.max_tau + 1) <= stale.GEOMETRIC_TAIL < q**law.max_tau
    keys = jax.random.split(jax.random.key(0), 20000)
    taus = np.asarray(jax.vmap(law.sample)(keys))
    # mean M - 1 = 3; sd of the mean sqrt(q)/(1-q)/sqrt(n) = 0.025: allow 6 sd
    assert abs(taus.mean() - (M - 1)) < 0.15
    counts = np.bincount(taus, minlength=law.max_tau + 1)[:8]
    expected = law.pmf()[:8] * len(taus)
    chi2 = (((counts - expected) ** 2) / expected).sum()
    assert chi2 < stats.chi2.ppf(0.999, df=7)
    assert law.pmf().sum() == pytest.approx(1.0)
    assert stale.geometric(1).max_tau == 0
    u = np.asarray(jax.vmap(stale.uniform(3).sample)(keys[:4000]))
    assert set(np.unique(u)) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stale.geometric(0), "workers"),
        (lambda: stale.fixed(-1), "tau"),
        (lambda: stale.uniform(1.5), "max_tau"),
        (lambda: stale.geometric(4, max_tau=-2), "max_tau"),
    ],
)
def test_staleness_validation(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
