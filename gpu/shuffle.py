"""A keyed random permutation of ``range(n)`` read one position at a time.

``jax.random.permutation`` sorts ``n`` random keys: ``O(n log n)`` work for every step that wants
one batch of an epoch, which on a CPU costs far more than the step of a small network (60000
Fashion-MNIST images, 9 vmapped members: 0.29 s per step for the permutations against about 0.03 s
for ResNet-8's forward and backward pass). :func:`permuted_index` instead evaluates the permutation
only at the positions asked for, in ``O(batch)`` work.

Construction (Black & Rogaway, "Ciphers with Arbitrary Finite Domains", CT-RSA 2002, Sec. 3,
"cycle walking"; Luby & Rackoff 1988 for the Feistel network): a balanced Feistel network
``E`` with ``ROUNDS`` rounds permutes ``[0, 4^h)``, ``h = ceil(log2(n) / 2)``; each round maps
``(L, R) -> (R, L xor F(R xor k_i))`` with ``F`` the ``lowbias32`` integer hash (C. Wellons, 2018)
masked to ``h`` bits and ``k_i`` the round keys drawn from the key. Every Feistel round is a
bijection whatever ``F`` is, so ``E`` is one. Cycle walking restricts it to ``[0, n)``: position
``p < n`` maps to the first of ``E(p), E(E(p)), ...`` that lies below ``n``; the sequence returns to
``p``'s cycle inside ``[0, n)``, so the map is a bijection of ``[0, n)``, and since ``4^h <= 4 n``
the expected number of walks is at most 4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Feistel rounds (four make a pseudo-random permutation from a pseudo-random round function).
ROUNDS = 4


def _hash32(x: jax.Array) -> jax.Array:
    """``lowbias32``: xor-shift / multiply mixing of a uint32 (a bijection of the 32-bit words)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _half_bits(n: int) -> int:
    """``h``: the Feistel network permutes ``[0, 4^h)``, the smallest power of 4 that is >= n."""
    return (max(n - 1, 1).bit_length() + 1) // 2


def _feistel(x: jax.Array, keys: jax.Array, h: int) -> jax.Array:
    mask = jnp.uint32((1 << h) - 1)
    left, right = x >> h, x & mask
    for i in range(ROUNDS):
        left, right = right, left ^ (_hash32(right ^ keys[i]) & mask)
    return (left << h) | right


def permuted_index(key: jax.Array, positions: jax.Array, n: int) -> jax.Array:
    """The entries at ``positions`` of a random permutation of ``range(n)`` chosen by ``key``.

    Args:
        key: a JAX random key; the same key gives the same permutation.
        positions: integer positions in ``[0, n)`` (any shape).
        n: the size of the permuted range, ``1 <= n < 2^31``.

    Returns:
        int32 array of ``positions``' shape: ``pi_key(positions)``; distinct positions give
        distinct entries.

    Raises:
        ValueError: when ``n`` is outside ``[1, 2^31)``.
    """
    if not (1 <= int(n) < 2**31):
        raise ValueError(f"n must lie in [1, 2^31) (got {n!r})")
    n = int(n)
    h = _half_bits(n)
    keys = jax.random.bits(key, (ROUNDS,), jnp.uint32)
    x = _feistel(jnp.asarray(positions).astype(jnp.uint32), keys, h)
    x = jax.lax.while_loop(
        lambda v: jnp.any(v >= n),
        lambda v: jnp.where(v >= n, _feistel(v, keys, h), v),
        x,
    )
    return x.astype(jnp.int32)
