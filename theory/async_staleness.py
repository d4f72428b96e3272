"""Staleness law of asynchronous workers and the first-order momentum it implies.

Model (Mitliagkas, Zhang, Hadjis, Ré, "Asynchrony begets momentum, with an application to deep
learning", arXiv 1605.09774, Sec. 3): ``M`` workers with i.i.d. exponential compute times write
``w_{t+1} = w_t - alpha * grad f(w_{t - tau_t})``. Each update comes from a uniformly chosen worker
and the staleness is geometric, ``P(tau = l) = (1 - q) q^l`` with ``q = 1 - 1/M`` (Theorem 1).
Taking expectations gives momentum SGD with implicit momentum ``1 - 1/M`` and step ``alpha / M``;
with explicit momentum ``mu_l`` the first-order "total momentum" is ``1 - (1 - mu_l)/M``.

Counts: ``lag`` and ``n_workers`` may be Python integers of any size; one beyond the float64 range
gives the limit of the formula (e.g. ``staleness_pmf(10**400, 8) == 0.0``,
``implicit_momentum(10**400) == 1.0``).
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from theory._validate import FloatArray, broadcast, count, integer, momentum, positive

__all__ = [
    "effective_step",
    "implicit_momentum",
    "staleness_mean",
    "staleness_pmf",
    "total_momentum",
]


def workers(n_workers: ArrayLike) -> FloatArray:
    """The worker count ``M >= 1`` as float64 (shared by the asynchrony modules, not re-exported).

    A Python integer beyond float64 is ``inf`` (the limit, ``q = 1 - 1/M = 1``).

    Raises:
        ValueError: naming ``n_workers`` when it is not a real number in ``[1, inf)``.
    """
    return count("n_workers", n_workers, 1.0)


def staleness_pmf(lag: ArrayLike, n_workers: ArrayLike) -> FloatArray:
    """Probability that an update is ``lag`` steps stale with ``n_workers`` exponential workers.

    ``P(tau = l) = (1 - q) q^l`` with ``q = 1 - 1/M`` (Mitliagkas et al. 2016, Theorem 1; steady
    state, ignoring the start-up phase where every worker first reads ``w_0``).

    Args:
        lag: staleness ``l``, integer ``>= 0``.
        n_workers: number of workers ``M >= 1`` (real values give the continuous extension).

    Returns:
        The probabilities, broadcast over both arguments.

    Example:
        >>> float(staleness_pmf(0, 4))
        0.25
    """
    l = integer("lag", lag, 0)  # float64: exact, no int64 wrap for huge lags
    m = workers(n_workers)
    l, m = broadcast(("lag", "n_workers"), l, m)
    q = 1.0 - 1.0 / m
    return (1.0 - q) * q**l


def staleness_mean(n_workers: ArrayLike) -> FloatArray:
    """Mean staleness ``E tau = q / (1 - q) = M - 1`` of the geometric law.

    Example:
        >>> float(staleness_mean(8))
        7.0
    """
    return workers(n_workers) - 1.0


def implicit_momentum(n_workers: ArrayLike) -> FloatArray:
    """Implicit momentum ``1 - 1/M`` of ``M`` asynchronous workers (Mitliagkas et al., Thm 2).

    Example:
        >>> float(implicit_momentum(4))
        0.75
    """
    return 1.0 - 1.0 / workers(n_workers)


def effective_step(alpha: ArrayLike, n_workers: ArrayLike) -> FloatArray:
    """Effective learning rate ``alpha / M`` of the expected asynchronous update.

    Example:
        >>> float(effective_step(0.4, 4))
        0.1
    """
    alpha_, m = broadcast(("alpha", "n_workers"), positive("alpha", alpha), workers(n_workers))
    return alpha_ / m


def total_momentum(mu_l: ArrayLike, n_workers: ArrayLike) -> FloatArray:
    """First-order total momentum ``1 - (1 - mu_l)/M = mu_l + q - mu_l q``.

    It is the coefficient of ``E Delta_t`` in the third-order mean recursion once the
    ``mu_l q E Delta_{t-1}`` term is absorbed; only an approximation of the true dynamics (their
    roots are given by :func:`async_char_poly`).

    Args:
        mu_l: explicit (algorithmic) momentum in ``(-1, 1)``.
        n_workers: number of workers ``M >= 1``.

    Example:
        >>> float(total_momentum(0.5, 2))
        0.75
    """
    mu, m = broadcast(("mu_l", "n_workers"), momentum("mu_l", mu_l), workers(n_workers))
    return 1.0 - (1.0 - mu) / m
