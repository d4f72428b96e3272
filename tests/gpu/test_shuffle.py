"""gpu.shuffle: a keyed permutation evaluated position by position, and the epoch sampler on it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gpu.data import Dataset
from gpu.shuffle import permuted_index
from gpu.tasks import SORT_MAX_EXAMPLES, classification_task


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17, 1000, 4097, 60000])
def test_is_a_permutation_of_range_n(n):
    """Every position of [0, n) maps into [0, n), and no two to the same entry (a bijection),
    including sizes just above a power of 4 where cycle walking does most work."""
    idx = np.asarray(permuted_index(jax.random.key(3), jnp.arange(n), n))
    assert idx.dtype == np.int32
    assert np.array_equal(np.sort(idx), np.arange(n))


def test_key_decides_the_order():
    n = 1000
    a = np.asarray(permuted_index(jax.random.key(0), jnp.arange(n), n))
    b = np.asarray(permuted_index(jax.random.key(0), jnp.arange(n), n))
    c = np.asarray(permuted_index(jax.random.key(1), jnp.arange(n), n))
    assert np.array_equal(a, b)
    # Two independent uniform permutations agree at about one position (Poisson(1)).
    assert np.sum(a == c) <= 8


def test_entry_position_is_uniform_across_keys():
    """Where a fixed entry lands is uniform over [0, n) across keys (Kolmogorov-Smirnov at the 1%
    level), and the entries of neighbouring positions are uncorrelated (|r| < 4 / sqrt(keys))."""
    n, keys = 5000, 400
    perms = jax.vmap(lambda k: permuted_index(k, jnp.arange(n), n))(
        jax.random.split(jax.random.key(7), keys)
    )
    perms = np.asarray(perms)
    where = np.argmax(perms == 123, axis=1)
    assert stats.kstest((where + 0.5) / n, "uniform").pvalue > 0.01
    r = np.corrcoef(perms[:, 10], perms[:, 11])[0, 1]
    assert abs(r) < 4 / np.sqrt(keys)


def test_rejects_bad_n():
    with pytest.raises(ValueError, match="n must lie in"):
        permuted_index(jax.random.key(0), jnp.arange(3), 0)


def _dataset(n: int) -> Dataset:
    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.arange(n, dtype=np.int32)
    return Dataset("ramp", x, y, x[:4], y[:4], num_classes=n, checksum="0")


@pytest.mark.parametrize("shuffle", ["sort", "feistel"])
def test_epoch_visits_every_example_once(shuffle):
    """Within an epoch the batches are disjoint and cover ``(n // B) B`` examples; the next epoch
    uses another order."""
    n, batch = 103, 10
    task = classification_task(_dataset(n), batch, shuffle=shuffle)
    key = jax.random.key(5)
    draw = jax.jit(lambda s: task.sample(task.train_data, key, s)[1])
    epoch0 = np.concatenate([np.asarray(draw(s)) for s in range(n // batch)])
    epoch1 = np.concatenate([np.asarray(draw(s)) for s in range(n // batch, 2 * (n // batch))])
    assert len(np.unique(epoch0)) == len(epoch0) == (n // batch) * batch
    assert len(np.unique(epoch1)) == len(epoch1)
    assert not np.array_equal(epoch0, epoch1)


def test_auto_sorts_small_sets_only():
    """``auto`` keeps ``jax.random.permutation`` up to SORT_MAX_EXAMPLES examples and uses the
    Feistel bijection above."""
    key = jax.random.key(2)
    small, large = SORT_MAX_EXAMPLES, SORT_MAX_EXAMPLES + 1
    for n, want in ((small, "sort"), (large, "feistel")):
        auto = classification_task(_dataset(n), 8)
        explicit = classification_task(_dataset(n), 8, shuffle=want)
        a = auto.sample(auto.train_data, key, jnp.asarray(3))[1]
        b = explicit.sample(explicit.train_data, key, jnp.asarray(3))[1]
        assert np.array_equal(np.asarray(a), np.asarray(b))
    sorted_small = jax.random.permutation(jax.random.fold_in(key, 0), small)[24:32]
    a = classification_task(_dataset(small), 8).sample(
        (jnp.arange(small)[:, None], jnp.arange(small)), key, jnp.asarray(3)
    )[1]
    assert np.array_equal(np.asarray(a), np.asarray(sorted_small))


def test_rejects_unknown_shuffle():
    with pytest.raises(ValueError, match="shuffle must be"):
        classification_task(_dataset(10), 2, shuffle="random")
