"""The :class:`Objective` container shared by every test problem, and input validation helpers.

An objective is a frozen dataclass registered as a JAX pytree: its arrays (minimiser, start point,
problem data) are leaves, its functions and descriptive metadata are static. It can therefore be
passed through ``jax.jit`` and ``jax.vmap`` like any other argument.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

LossFn = Callable[[Mapping[str, Any], jax.Array, jax.Array | None], jax.Array]
SampleLossFn = Callable[[Mapping[str, Any], jax.Array, jax.Array], jax.Array]

#: Distributions of the unit gradient noise ``xi`` (zero mean, unit variance), as a type.
NoiseKind = Literal["gaussian", "rademacher", "uniform"]
#: The same distributions as a tuple of names, for validation.
NOISE_KINDS: tuple[str, ...] = get_args(NoiseKind)
#: Fourth moment ``E xi^4`` of each kind (``Var(xi^2) = E xi^4 - 1``).
NOISE_FOURTH_MOMENT: dict[str, float] = {"gaussian": 3.0, "rademacher": 1.0, "uniform": 1.8}


@dataclasses.dataclass(frozen=True)
class Objective:
    """A test objective with a known minimiser ``x_star`` and minimum ``f_star``.

    Attributes:
        x_star: minimiser, shape ``(dim,)`` (for problems whose infimum is not attained, the point
            documented by the constructor).
        x0: default starting point, shape ``(dim,)``.
        params: problem data (arrays), pytree leaves.
        name: short identifier.
        dim: number of coordinates.
        f_star: minimum (or infimum) of the exact loss.
        loss_fn: ``loss_fn(params, x, key)``; ``key=None`` gives the exact loss.
        noisy: whether a key changes the loss (minibatch or additive gradient noise).
        sample_loss_fn: ``sample_loss_fn(params, x, i)``, the loss of sample ``i`` (finite sums).
        n_samples: number of samples of a finite sum, 0 otherwise.
        info: descriptive metadata as ``(name, value)`` pairs, e.g. ``h_min``, ``h_max``,
            ``curvature_range``; read them with :meth:`meta` or the properties.
    """

    x_star: Any
    x0: Any
    params: Any
    name: str
    dim: int
    f_star: float
    loss_fn: LossFn
    noisy: bool = False
    sample_loss_fn: SampleLossFn | None = None
    n_samples: int = 0
    info: tuple[tuple[str, Any], ...] = ()

    def loss(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Exact loss when ``key`` is None or the objective is noiseless, else a noisy sample."""
        params = jax.tree_util.tree_map(jnp.asarray, self.params)
        return self.loss_fn(params, jnp.asarray(x), key if self.noisy else None)

    def grad(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Gradient of :meth:`loss` with respect to ``x`` (same ``key`` convention)."""
        return jax.grad(self.loss)(x, key)

    def value_and_grad(
        self, x: jax.Array, key: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """``(loss, grad)`` at ``x`` in one pass (same ``key`` convention)."""
        return jax.value_and_grad(self.loss)(x, key)

    def sample_loss(self, x: jax.Array, i: jax.Array) -> jax.Array:
        """Loss of sample ``i`` of a finite-sum objective."""
        if self.sample_loss_fn is None:
            raise ValueError(f"objective {self.name!r} has no per-sample losses")
        params = jax.tree_util.tree_map(jnp.asarray, self.params)
        return self.sample_loss_fn(params, jnp.asarray(x), jnp.asarray(i))

    def meta(self, name: str) -> Any:
        """Metadata entry ``name`` (raises ``KeyError`` listing the known entries)."""
        table = dict(self.info)
        if name not in table:
            raise KeyError(f"{self.name!r} has no metadata {name!r}; known: {sorted(table)}")
        return table[name]

    @property
    def spectrum(self) -> np.ndarray:
        """Hessian eigenvalues of a quadratic objective."""
        return np.asarray(self.params["h"])

    @property
    def h_min(self) -> float:
        """Smallest curvature (quadratics) or generalised curvature (1-D toys)."""
        return float(self.meta("h_min"))

    @property
    def h_max(self) -> float:
        """Largest curvature (quadratics) or generalised curvature (1-D toys)."""
        return float(self.meta("h_max"))

    @property
    def curvature_range(self) -> tuple[float, float]:
        """``(h_min, h_max)`` of the (generalised) curvature, where known in closed form."""
        return (self.h_min, self.h_max)


jax.tree_util.register_dataclass(
    Objective,
    data_fields=["x_star", "x0", "params"],
    meta_fields=[
        "name",
        "dim",
        "f_star",
        "loss_fn",
        "noisy",
        "sample_loss_fn",
        "n_samples",
        "info",
    ],
)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int ``>= minimum`` or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def check_real(
    name: str, value: Any, lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False
) -> float:
    """Return ``value`` as a finite float in ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number (got {value!r})") from err
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        left = "(" if lo_open else "["
        raise ValueError(f"{name} must be finite and lie in {left}{lo:g}, {hi:g}] (got {value!r})")
    return v


def as_vector(name: str, value: ArrayLike, dim: int | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 vector (of length ``dim`` when given)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of real numbers") from err
    if arr.ndim == 0 and dim is not None:
        arr = np.full(dim, float(arr))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (got shape {arr.shape})")
    if dim is not None and arr.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},) (got {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    return arr


def info_pairs(**entries: Any) -> tuple[tuple[str, Any], ...]:
    """Metadata as hashable ``(name, value)`` pairs (NumPy scalars become Python floats)."""
    out = []
    for k, v in entries.items():
        if isinstance(v, np.generic):
            v = v.item()
        out.append((k, v))
    return tuple(out)


def minibatch_mean(
    sample_loss: SampleLossFn,
    params: Mapping[str, Any],
    x: jax.Array,
    key: jax.Array,
    n: int,
    b: int,
) -> jax.Array:
    """Mean of ``b`` per-sample losses, indices drawn uniformly with replacement from ``key``."""
    idx = jax.random.randint(key, (b,), 0, n)
    return jnp.mean(jax.vmap(lambda i: sample_loss(params, x, i))(idx))


def unit_noise(kind: str, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Zero-mean, unit-variance noise ``xi`` of the given kind (one of :data:`NOISE_KINDS`).

    ``gaussian``: ``N(0, 1)``; ``rademacher``: ``+-1`` with probability 1/2 each; ``uniform``: on
    ``[-sqrt(3), sqrt(3)]``, whose variance is ``(2 sqrt(3))^2 / 12 = 1``. ``E xi^4`` of each kind
    is :data:`NOISE_FOURTH_MOMENT` (3, 1 and 9/5). This is the unit noise of the stochastic
    heavy-ball model, gradient ``h x + sqrt(c) xi`` (heavy-ball reference, "Stochastic heavy ball:
    noise floor").

    Example:
        >>> key = jax.random.key(0)
        >>> xi = unit_noise("rademacher", key, (5,), jnp.float32)
        >>> sorted(set(np.abs(np.asarray(xi)).tolist()))
        [1.0]
        >>> u = np.asarray(unit_noise("uniform", key, (100_000,), jnp.float32))
        >>> bool(np.abs(u).max() <= np.sqrt(3.0)), round(float(u.var()), 1)
        (True, 1.0)
    """
    if kind == "gaussian":
        return jax.random.normal(key, shape, dtype)
    if kind == "rademacher":
        return jax.random.rademacher(key, shape, dtype)
    # uniform on [-sqrt(3), sqrt(3)] has variance 1
    return jax.random.uniform(key, shape, dtype, -jnp.sqrt(3.0), jnp.sqrt(3.0))


def check_noise(noise_std: ArrayLike, noise: str, dim: int) -> np.ndarray:
    """Validate the gradient-noise arguments shared by the objectives; return the std vector.

    Args:
        noise_std: per-coordinate standard deviation ``s_i >= 0`` (a scalar is broadcast to
            ``dim`` coordinates), so that the noise variance is ``c_i = s_i^2``.
        noise: one of :data:`NOISE_KINDS`.
        dim: number of coordinates.

    Raises:
        ValueError: naming ``noise_std`` (wrong shape, not finite, or negative: the valid range is
            ``[0, inf)``) or ``noise`` (with the accepted kinds).

    Example:
        >>> check_noise(0.5, "gaussian", 3).tolist()
        [0.5, 0.5, 0.5]
        >>> check_noise([0.1, -1.0], "gaussian", 2)
        Traceback (most recent call last):
        ...
        ValueError: noise_std must lie in [0, inf)
    """
    std = as_vector("noise_std", noise_std, dim)
    if np.any(std < 0):
        raise ValueError("noise_std must lie in [0, inf)")
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS} (got {noise!r})")
    return std


def with_gradient_noise(
    value: jax.Array, e: jax.Array, noise_std: jax.Array, kind: str, key: jax.Array
) -> jax.Array:
    """``value + sum(stop_gradient(noise_std * xi) * e)`` with unit noise ``xi`` drawn from ``key``.

    The gradient with respect to ``e`` (``x - x*``, or its coordinates in an orthonormal basis)
    gains ``noise_std * xi``: zero mean, variance ``noise_std^2`` per coordinate of ``e``; the loss
    value gains a zero-mean term, so both stay unbiased estimates of the exact ones. For
    ``value = h e^2 / 2`` this is the stochastic heavy-ball model, gradient ``h e + xi`` with noise
    variance ``c = noise_std^2`` (heavy-ball reference, "Stochastic heavy ball: noise floor").

    Example:
        >>> key, e, std = jax.random.key(0), jnp.array([1.0, -1.0]), jnp.array([0.0, 2.0])
        >>> noisy = lambda e: with_gradient_noise(jnp.sum(e**2) / 2, e, std, "rademacher", key)
        >>> xi = unit_noise("rademacher", key, e.shape, e.dtype)  # the same draw
        >>> bool(jnp.allclose(jax.grad(noisy)(e), e + std * xi))
        True
    """
    xi = unit_noise(kind, key, e.shape, e.dtype)
    return value + jnp.sum(jax.lax.stop_gradient(noise_std * xi) * e)
