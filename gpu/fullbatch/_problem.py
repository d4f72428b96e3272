"""Deterministic full-batch problems on flat float64 parameter vectors.

The per-variable rate protocol (YellowFin, Zhang & Mitliagkas, arXiv 1706.03471, Sec. 3.1) needs a
real network whose minimiser is known to float64 precision and whose Hessian there is exact:

- :func:`digits_mlp_problem`: a one-hidden-layer ``tanh`` MLP on the digits training set with
  weight decay, ``f(w) = mean_i CE(softmax(W2 tanh(W1 x_i + b1) + b2), y_i) + (lambda / 2) |w|^2``.
  ``tanh`` keeps ``f`` smooth (a ReLU unit that dies is pulled by the weight decay onto its kink,
  where the Hessian is not defined), and the weight decay makes a minimiser exist.
- :func:`heavy_ball_trajectory`: full-batch momentum SGD (``optax.sgd(lr, momentum=mu)``, heavy ball
  ``w_{t+1} = w_t - alpha grad f(w_t) + mu (w_t - w_{t-1})`` with ``alpha = lr``) in float64, every
  iterate kept.
- :func:`polish`: L-BFGS (:func:`scipy.optimize.minimize`, float64) from a point near the
  minimiser, then Newton steps with the exact Hessian down to the float64 floor of the gradient;
  the polished point is the reference ``w*``.
- :func:`hessian_eigenvalues`: eigenvalues of the exact Hessian ``jax.hessian(f)(w*)``.

Every function computes in float64 inside ``jax.enable_x64(True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from gpu.data import Dataset


@dataclass(frozen=True)
class FlatProblem:
    """A smooth objective on a flat float64 parameter vector.

    Attributes:
        name: what the problem is, for records.
        loss: ``f(w)`` as a traceable function of a float64 vector of length ``size``.
        init: the initial point (numpy float64).
        shapes: the parameter blocks' shapes in the order they are packed into ``w``.
        weight_decay: the ``lambda`` of the ``(lambda / 2) |w|^2`` term.
        batch_loss: ``f_B(w, rows)``, the same objective over the examples ``rows`` only (for
            minibatch runs), or None.
        num_examples: the number of examples ``loss`` averages over (0 when unknown).
    """

    name: str
    loss: Callable[[jax.Array], jax.Array]
    init: np.ndarray
    shapes: tuple[tuple[int, ...], ...]
    weight_decay: float
    batch_loss: Callable[[jax.Array, jax.Array], jax.Array] | None = None
    num_examples: int = 0

    @property
    def size(self) -> int:
        """Number of scalar parameters."""
        return int(self.init.size)


def _unpack(w: jax.Array, shapes: tuple[tuple[int, ...], ...]) -> list[jax.Array]:
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(w[i : i + n].reshape(s))
        i += n
    return out


def digits_mlp_problem(
    ds: Dataset,
    hidden: int = 16,
    weight_decay: float = 1e-2,
    seed: int = 0,
    n_train: int | None = None,
) -> FlatProblem:
    """The full-batch ``tanh`` MLP of the module docstring on ``ds``'s training set.

    Initialisation: ``W1 ~ N(0, 1 / d)``, ``W2 ~ N(0, 1 / hidden)`` (LeCun normal, from
    ``jax.random.key(seed)``), zero biases.

    Args:
        ds: a classification data set (inputs flattened to ``d`` features).
        hidden: hidden units, >= 1.
        weight_decay: ``lambda > 0``.
        seed: initialisation seed, >= 0.
        n_train: use the first ``n_train`` training examples (all when None), in [1, N].

    Raises:
        ValueError: naming the argument out of range.

    Example:
        >>> from gpu.data import load_digits
        >>> p = digits_mlp_problem(load_digits(), hidden=4)
        >>> p.size  # 64 * 4 + 4 + 4 * 10 + 10
        310
    """
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be an integer >= 1 (got {hidden!r})")
    if not weight_decay > 0:
        raise ValueError(f"weight_decay must be > 0 (got {weight_decay!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (got {seed!r})")
    n = len(ds.y_train) if n_train is None else n_train
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(ds.y_train):
        raise ValueError(f"n_train must be an integer in [1, {len(ds.y_train)}] (got {n!r})")
    x = np.asarray(ds.x_train[:n], np.float64).reshape(n, -1)
    y = np.asarray(ds.y_train[:n], np.int32)
    d, c = x.shape[1], int(ds.num_classes)
    shapes = ((d, hidden), (hidden,), (hidden, c), (c,))
    k1, k2 = jax.random.split(jax.random.key(seed))
    with jax.enable_x64(True):
        w1 = np.asarray(jax.random.normal(k1, (d, hidden), jnp.float64)) / np.sqrt(d)
        w2 = np.asarray(jax.random.normal(k2, (hidden, c), jnp.float64)) / np.sqrt(hidden)
    init = np.concatenate([w1.ravel(), np.zeros(hidden), w2.ravel(), np.zeros(c)])
    lam = float(weight_decay)

    def loss(w: jax.Array) -> jax.Array:
        a, b, v, e = _unpack(w, shapes)
        logits = jnp.tanh(jnp.asarray(x) @ a + b) @ v + e
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y)).mean()
        return ce + 0.5 * lam * jnp.sum(w * w)

    def batch_loss(w: jax.Array, rows: jax.Array) -> jax.Array:
        a, b, v, e = _unpack(w, shapes)
        logits = jnp.tanh(jnp.asarray(x)[rows] @ a + b) @ v + e
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y)[rows]).mean()
        return ce + 0.5 * lam * jnp.sum(w * w)

    name = f"{ds.name}[:{n}]-tanh-mlp-{hidden}"
    return FlatProblem(name, loss, init, shapes, lam, batch_loss, n)


def heavy_ball_trajectory(
    problem: FlatProblem, learning_rate: float, momentum: float, steps: int
) -> np.ndarray:
    """Every iterate of full-batch ``optax.sgd(learning_rate, momentum)`` from ``problem.init``.

    Returns:
        ``(steps + 1, size)`` float64 array, row ``t`` is ``w_t`` (row 0 the start).

    Raises:
        ValueError: for ``learning_rate <= 0``, ``momentum`` outside ``[0, 1)`` or ``steps < 1``.

    Example:
        >>> from gpu.data import load_digits
        >>> p = digits_mlp_problem(load_digits(), hidden=2)
        >>> heavy_ball_trajectory(p, 0.5, 0.9, 3).shape
        (4, 160)
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0 (got {learning_rate!r})")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1) (got {momentum!r})")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (got {steps!r})")
    tx = optax.sgd(float(learning_rate), momentum=float(momentum))
    grad = jax.grad(problem.loss)
    with jax.enable_x64(True):
        w0 = jnp.asarray(problem.init, jnp.float64)

        def step(carry, _):
            w, state = carry
            updates, state = tx.update(grad(w), state, w)
            w = optax.apply_updates(w, updates)
            return (w, state), w

        @jax.jit
        def run(w):
            _, ws = jax.lax.scan(step, (w, tx.init(w)), None, length=steps)
            return ws

        ws = np.asarray(run(w0), np.float64)
    return np.concatenate([problem.init[None], ws])


@dataclass(frozen=True)
class Polished:
    """Result of :func:`polish`.

    Attributes:
        point: the polished minimiser ``w*``.
        loss: ``f(w*)``.
        grad_norm: ``|grad f(w*)|``.
        iterations: L-BFGS iterations.
        newton_steps: Newton steps taken after L-BFGS.
        eigenvalues: ascending eigenvalues of the exact Hessian at ``w*``.
        eigenvectors: the matching orthonormal eigenvectors (columns).
    """

    point: np.ndarray
    loss: float
    grad_norm: float
    iterations: int
    newton_steps: int
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def float64_value_and_grad(
    problem: FlatProblem,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``w -> (f(w), grad f(w))`` on host float64 arrays, jitted once, evaluated in float64."""
    with jax.enable_x64(True):
        value_and_grad = jax.jit(jax.value_and_grad(problem.loss))

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        with jax.enable_x64(True):
            v, g = value_and_grad(jnp.asarray(w, jnp.float64))
        return float(v), np.asarray(g, np.float64)

    return fun


def lbfgs_float64(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray, gtol: float
) -> scipy.optimize.OptimizeResult:
    """The L-BFGS start of both polishes: at most 20000 iterations, stop at ``|grad f|_inf <= gtol``
    or when the line search can no longer decrease ``f`` (``ftol = 0``)."""
    return scipy.optimize.minimize(
        fun,
        np.asarray(start, np.float64),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "gtol": gtol, "ftol": 0.0, "maxcor": 30},
    )


def polish(
    problem: FlatProblem,
    start: np.ndarray,
    *,
    gtol: float = 1e-13,
    max_newton: int = 5,
    step_tol: float = 1e-13,
) -> Polished:
    """L-BFGS in float64 from ``start``, then Newton steps with the exact Hessian.

    L-BFGS (``scipy.optimize.minimize(method="L-BFGS-B")``, 20000 iterations at most) stops when the
    largest gradient component is below ``gtol`` or when its line search can no longer decrease
    ``f``. That happens at ``|grad f| ~ sqrt(2 h_min eps |f|)`` (``eps`` the float64 resolution),
    which leaves ``|grad f| / h_min`` along the softest direction: ``4e-7`` for ``h_min = 1e-3``
    and ``f ~ 1``, too far for a reference point. Newton's steps ``w <- w - H^{-1} grad f(w)`` need
    gradients only, converge quadratically, and stop once a step is shorter than ``step_tol |w|``
    (the float64 floor); the Hessian of the last step's start is the one returned, so the
    eigenvalues are those at ``w*`` exactly.

    Example:
        >>> from gpu.data import load_digits
        >>> p = digits_mlp_problem(load_digits(), hidden=2, weight_decay=0.1, n_train=200)
        >>> out = polish(p, p.init)
        >>> bool(out.grad_norm < 1e-12), bool(out.eigenvalues[0] > 0)
        (True, True)
    """
    if isinstance(max_newton, bool) or not isinstance(max_newton, int) or max_newton < 1:
        raise ValueError(f"max_newton must be an integer >= 1 (got {max_newton!r})")
    fun = float64_value_and_grad(problem)
    res = lbfgs_float64(fun, start, gtol)
    with jax.enable_x64(True):
        hess = jax.jit(jax.hessian(problem.loss))
        w = np.asarray(res.x, np.float64)
        steps = 0
        for _ in range(max_newton):
            h = np.asarray(hess(jnp.asarray(w)), np.float64)
            h = 0.5 * (h + h.T)
            step = np.linalg.solve(h, fun(w)[1])
            if np.linalg.norm(step) <= step_tol * max(np.linalg.norm(w), 1.0):
                break
            w, steps = w - step, steps + 1
        else:  # no step was short enough: the returned spectrum is still the one at w
            h = np.asarray(hess(jnp.asarray(w)), np.float64)
            h = 0.5 * (h + h.T)
        v, g = fun(w)
    ev, vec = np.linalg.eigh(h)
    return Polished(w, v, float(np.linalg.norm(g)), int(res.nit), steps, ev, vec)


def hessian_eigenvalues(problem: FlatProblem, point: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of the exact Hessian ``jax.hessian(problem.loss)(point)`` (float64).

    Example:
        >>> from gpu.data import load_digits
        >>> p = digits_mlp_problem(load_digits(), hidden=2, weight_decay=0.1)
        >>> bool(hessian_eigenvalues(p, p.init).shape == (p.size,))
        True
    """
    with jax.enable_x64(True):
        h = np.asarray(jax.jit(jax.hessian(problem.loss))(jnp.asarray(point, jnp.float64)))
    return np.linalg.eigvalsh(0.5 * (h + h.T))
