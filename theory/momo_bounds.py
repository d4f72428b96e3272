r"""Guarantees for MoMo (Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates",
arXiv 2305.07583, ICML 2024), derived here with their assumptions.

MoMo without bias correction or weight decay, step ``k = 1, 2, ...``, batch loss ``f_k = f(., s_k)``
and gradient ``g_k`` at ``x_k``, EMA weights ``w_{k,1} = beta^{k-1}``,
``w_{k,j} = (1 - beta) beta^{k-j}`` (``2 <= j <= k``), which sum to one:

    fbar_k = sum_j w_kj f_j(x_j),   d_k = sum_j w_kj g_j,
    h_k = sum_j w_kj [f_j(x_j) + <g_j, x_k - x_j>],
    tau_k = min{alpha, (h_k - f_*)_+ / ||d_k||^2},   x_{k+1} = x_k - tau_k d_k   (paper, Alg. 1).

Assumptions used below. (C) every ``f(., s)`` is convex. (I) interpolation: some ``x*`` has
``f(x*, s) = f_* = min f(., s)`` for every ``s``, and the lower bound given to MoMo is this ``f_*``.
(L) every ``f(., s)`` is ``L``-smooth. (G) ``||g_k|| <= G`` along the run. (S) ``s_k`` is drawn
independently of ``s_1..s_{k-1}`` from the distribution defining ``f = E f(., s)``.
Write ``D^2 = ||x_1 - x*||^2`` and ``u_k = (h_k - f_*)_+``.

(a) Distance certificate [C, I; any beta, any alpha]. By convexity and interpolation,
``f_j(x_j) + <g_j, x* - x_j> <= f_j(x*) = f_*``; averaging with ``w_kj`` and adding
``sum_j w_kj <g_j, x_k - x_j>`` to both sides gives ``h_k + <d_k, x* - x_k> <= f_*``, i.e.
``<d_k, x_k - x*> >= h_k - f_*``. Then

    ||x_{k+1} - x*||^2 = ||x_k - x*||^2 - 2 tau_k <d_k, x_k - x*> + tau_k^2 ||d_k||^2
                      <= ||x_k - x*||^2 - 2 tau_k u_k + tau_k u_k,

using ``tau_k ||d_k||^2 <= u_k`` (``tau_k = 0`` when ``u_k = 0``; ``d_k = 0`` forces ``u_k = 0`` by
the inequality above). Hence ``||x_{k+1} - x*||^2 <= ||x_k - x*||^2 - tau_k u_k`` and, summing,
``sum_k tau_k u_k <= D^2``: the distance to ``x*`` never increases.

How (a) differs from the published result. It is not a theorem quoted from the paper (whose exact
statements could not be confirmed here) but derived above from Alg. 1; it is the standard
Polyak-step argument applied to MoMo's averaged model. It needs the lower bound given to MoMo to
equal the interpolation value ``f_*`` exactly (a lower bound below ``f_*``, e.g. 0 when
``f_* > 0``, voids it), and it covers MoMo without bias correction and without weight decay only.
It is a per-step certificate, not a rate.

(b) beta = 0, rate O(1/K) [C, I, L, S]. Then ``h_k = f_k(x_k)`` and ``d_k = g_k``. An ``L``-smooth
convex function with minimum ``f_*`` satisfies ``f_k(x) - f_* >= ||grad f_k(x)||^2 / (2L)``, so
``u_k / ||g_k||^2 >= 1/(2L)`` and ``tau_k >= m := min{alpha, 1/(2L)}`` whenever ``u_k > 0``. With
(a): ``m sum_k (f_k(x_k) - f_*) <= D^2`` on every run. Taking expectations (by (S),
``E f_k(x_k) = E f(x_k)``) and applying Jensen to ``xbar_K = (1/K) sum_k x_k``:

    E f(xbar_K) - f_* <= (1/K) sum_k E f(x_k) - f_* <= D^2 / (K min{alpha, 1/(2L)}).

How (b) differs from the published result. With ``beta = 0`` MoMo is the Polyak step SPS_max
with ``c = 1``, and (b) has the form of the known O(1/K) bound for that method under
interpolation and smoothness; it is derived above, its constants are ours, and it is not the
paper's MoMo theorem: it holds only for ``beta = 0`` (MoMo's default is 0.9), it adds the
smoothness assumption (L) that the published O(1/sqrt K) claim does not make, and it covers
neither bias correction nor weight decay.

(c) any beta in [0, 1), rate O(1/sqrt K) [C, I, G; and S for the iterate-average form].
(i) ``||d_k|| <= G`` gives ``tau_k >= min{alpha, u_k/G^2}``, so
``sum_k min{alpha u_k, u_k^2/G^2} <= D^2`` by (a). Splitting the sum where
``u_k >= alpha G^2`` and applying Cauchy-Schwarz to the rest,
``sum_k u_k <= D^2/alpha + G D sqrt(K)``. (ii)
``fbar_k - f_* = h_k - f_* - sum_j w_kj <g_j, x_k - x_j> <= u_k + G sum_j w_kj ||x_k - x_j||``.
(iii) With step lengths ``s_i = tau_i ||d_i||``, ``||x_k - x_j|| <= sum_{i=j}^{k-1} s_i``;
exchanging sums, the weight ``sum_{j <= i} w_kj = beta^{k-i}`` summed over ``k > i`` is at most
``beta/(1-beta)``; and ``s_i^2 <= tau_i u_i`` so
``sum_i s_i <= sqrt(K) D``. Altogether, on every run,

    (1/K) sum_{k=1}^K (fbar_k - f_*) <= D^2/(alpha K) + G D / ((1 - beta) sqrt(K)).

Each ``f_j(x_j)`` enters the left side with total weight ``>= 1 - beta``, so with (S) (needed for
``E f_j(x_j) = E f(x_j)``) and Jensen ``E f(xbar_K) - f_* <=`` the same bound divided by
``(1 - beta)``; the pathwise bound on the averaged losses needs no (S). ``G`` may be the largest
gradient norm met along the run; on least squares (a) bounds it by ``max_i ||a_i||^2 D``.

How (c) differs from the published result. The paper states an O(1/sqrt K) rate for convex
problems with interpolation that needs only ``f_*``; its exact statement and constants could not be
confirmed here. The bound above is derived independently: it assumes bounded gradients (G), bounds
the average of MoMo's averaged losses ``fbar_k`` (and, in expectation, the iterate average, at the
cost of a factor ``1/(1-beta)``), covers neither bias correction nor weight decay, and its constants
are not claimed to match the paper's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from theory._validate import (
    FloatArray,
    as_finite,
    broadcast,
    in_range,
    integer,
    nonnegative,
    positive,
)

__all__ = [
    "momo_beta0_bound",
    "momo_certificate_slack",
    "momo_distance_certificate",
    "momo_sqrt_k_bound",
    "momo_step_lower_bound",
]


def momo_distance_certificate(
    dist_sq: ArrayLike, step: ArrayLike, model_value: ArrayLike, lower_bound: ArrayLike = 0.0
) -> FloatArray:
    """Upper bound on the next squared distance: ``||x_k - x*||^2 - tau_k (h_k - f_*)_+``.

    Valid under convexity and interpolation for any ``beta`` (module docstring, (a)).

    Differs from the published theorem: derived here, not quoted from the paper (whose exact
    statements could not be confirmed); it needs ``lower_bound`` to be the interpolation value
    ``f_*`` itself and covers MoMo without bias correction or weight decay only.

    Args:
        dist_sq: ``||x_k - x*||^2 >= 0``.
        step: MoMo's step ``tau_k >= 0``.
        model_value: the model value ``h_k`` (finite).
        lower_bound: ``f_*`` (finite), the interpolation value passed to MoMo.

    Returns:
        The bound on ``||x_{k+1} - x*||^2``, broadcast over the arguments; ``-inf`` where the
        decrease lies beyond float64.

    Example:
        >>> float(momo_distance_certificate(4.0, 0.5, 3.0, 1.0))
        3.0
    """
    d = nonnegative("dist_sq", dist_sq)
    t = nonnegative("step", step)
    h = as_finite("model_value", model_value)
    lb = as_finite("lower_bound", lower_bound)
    d, t, h, lb = broadcast(("dist_sq", "step", "model_value", "lower_bound"), d, t, h, lb)
    with np.errstate(over="ignore"):  # a decrease beyond float64: -inf (no step: none at all)
        gap = np.maximum(h - lb, 0.0)
        return d - np.where((t == 0.0) | (gap == 0.0), 0.0, t * gap)


def momo_certificate_slack(
    dist_sq: ArrayLike, steps: ArrayLike, model_values: ArrayLike, lower_bound: float = 0.0
) -> tuple[FloatArray, float]:
    """Check a recorded MoMo trajectory against the distance certificate.

    The certificate is (a) of the module docstring, derived here (not the paper's theorem, see
    :func:`momo_distance_certificate`). Not broadcast: one trajectory, 1-D arrays.

    Args:
        dist_sq: ``||x_k - x*||^2`` for ``k = 1..K+1``, shape ``(K + 1,)``.
        steps: ``tau_k`` for ``k = 1..K``, shape ``(K,)``.
        model_values: ``h_k`` for ``k = 1..K``, shape ``(K,)``.
        lower_bound: ``f_*``.

    Returns:
        ``(per_step, total)``: ``per_step[k] = bound_k - ||x_{k+1} - x*||^2`` and
        ``total = ||x_1 - x*||^2 - sum_k tau_k (h_k - f_*)_+``; both are ``>= 0`` (up to rounding)
        when the assumptions of the certificate hold.

    Example:
        >>> per_step, total = momo_certificate_slack([4.0, 2.0], [0.5], [3.0])
        >>> per_step.tolist(), total
        ([0.5], 2.5)
    """
    d = nonnegative("dist_sq", dist_sq)
    t = nonnegative("steps", steps)
    h = as_finite("model_values", model_values)
    if d.ndim != 1 or t.shape != (d.size - 1,) or h.shape != t.shape:
        raise ValueError(
            "dist_sq must have shape (K+1,), steps and model_values shape (K,) "
            f"(got {d.shape}, {t.shape}, {h.shape})"
        )
    bound = momo_distance_certificate(d[:-1], t, h, lower_bound)
    decrease = t * np.maximum(h - as_finite("lower_bound", lower_bound), 0.0)
    return bound - d[1:], float(d[0] - decrease.sum())


def momo_step_lower_bound(alpha: ArrayLike, smoothness: ArrayLike) -> FloatArray:
    """``min{alpha, 1/(2L)}``: MoMo's step with ``beta = 0`` is never smaller where it moves.

    Under convexity, interpolation and ``L``-smoothness (module docstring, (b)); it is the step
    bound of the Polyak step SPS_max, which MoMo with ``beta = 0`` is. Derived here, not quoted
    from the MoMo paper; it does not hold for ``beta > 0``.

    Example:
        >>> float(momo_step_lower_bound(1.0, 2.0))
        0.25
    """
    alpha_, l_ = broadcast(
        ("alpha", "smoothness"), positive("alpha", alpha), positive("smoothness", smoothness)
    )
    with np.errstate(over="ignore"):  # 1/(2L) beyond float64 for L < 3e-309: inf, min is alpha
        return np.minimum(alpha_, 0.5 / l_)


def momo_beta0_bound(
    dist0_sq: ArrayLike, alpha: ArrayLike, smoothness: ArrayLike, iterations: ArrayLike
) -> FloatArray:
    """``E f(xbar_K) - f_* <= ||x_1 - x*||^2 / (K min{alpha, 1/(2L)})`` for MoMo with ``beta = 0``.

    Also holds pathwise for ``(1/K) sum_k (f_k(x_k) - f_*)`` (module docstring, (b)).

    Differs from the published theorem: derived here for ``beta = 0`` only (MoMo's default is
    ``0.9``), with the extra assumption of ``L``-smooth losses that the paper's O(1/sqrt K) claim
    does not make, and without bias correction or weight decay; the constants are ours.

    Args:
        dist0_sq: ``||x_1 - x*||^2 >= 0``.
        alpha: learning-rate cap ``> 0``.
        smoothness: ``L > 0``, a smoothness constant of every sampled loss.
        iterations: ``K >= 1``.

    Example:
        >>> float(momo_beta0_bound(1.0, 10.0, 1.0, 100))
        0.02
    """
    d = nonnegative("dist0_sq", dist0_sq)
    k = integer("iterations", iterations, 1)  # float64: exact, no int64 wrap
    m = momo_step_lower_bound(alpha, smoothness)
    d, k, m = broadcast(("dist0_sq", "iterations", "alpha, smoothness"), d, k, m)
    with np.errstate(under="ignore", over="ignore"):
        return d / k / m


def momo_sqrt_k_bound(
    dist0_sq: ArrayLike,
    alpha: ArrayLike,
    grad_bound: ArrayLike,
    beta: ArrayLike,
    iterations: ArrayLike,
    *,
    iterate_average: bool = False,
) -> FloatArray:
    """O(1/sqrt K) bound for MoMo with any ``beta`` under bounded gradients (module docstring, (c)).

    ``(1/K) sum_k (fbar_k - f_*) <= D^2/(alpha K) + G D / ((1 - beta) sqrt K)`` on every run; with
    ``iterate_average=True`` the bound on ``E f(xbar_K) - f_*``: the same divided by ``1 - beta``,
    which also needs the samples to be drawn independently (assumption (S)).

    Differs from the published theorem (module docstring, "How (c) differs"): derived here; it
    assumes bounded gradients, bounds MoMo's averaged losses rather than the iterates unless
    ``iterate_average=True``, covers neither bias correction nor weight decay, and its constants
    are not claimed to match the paper's.

    Args:
        dist0_sq: ``D^2 = ||x_1 - x*||^2 >= 0``.
        alpha: learning-rate cap ``> 0``.
        grad_bound: ``G >= 0`` with ``||g_k|| <= G`` along the run.
        beta: momentum in ``[0, 1)``.
        iterations: ``K >= 1``; a Python integer beyond float64 gives the limit, 0.
        iterate_average: bound ``E f(xbar_K) - f_*`` instead of the averaged losses.

    Example:
        >>> round(float(momo_sqrt_k_bound(1.0, 1.0, 1.0, 0.5, 100)), 12)
        0.21
    """
    d2 = nonnegative("dist0_sq", dist0_sq)
    a = positive("alpha", alpha)
    g = nonnegative("grad_bound", grad_bound)
    b = in_range("beta", beta, 0.0, 1.0, hi_open=True)
    k = integer("iterations", iterations, 1)
    names = ("dist0_sq", "alpha", "grad_bound", "beta", "iterations")
    d2, a, g, b, k = broadcast(names, d2, a, g, b, k)
    limit = np.isinf(k)  # K beyond float64: the limit K -> inf, 0
    k = np.where(limit, 1.0, k)
    with np.errstate(under="ignore", over="ignore"):  # a bound beyond float64 is inf
        bound = d2 / a / k + g * (np.sqrt(d2) / ((1.0 - b) * np.sqrt(k)))
        bound = np.where(limit, 0.0, bound)
        return bound / (1.0 - b) if iterate_average else bound
