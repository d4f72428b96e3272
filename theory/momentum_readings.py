"""What the total-momentum sensor reads on optimizers whose momentum is an averaging weight.

The sensor of YellowFin's closed loop (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 4) reads, per
coordinate, r_k = (u_k + a_k g_k) / u_{k-1} with u_k = x_{k+1} - x_k the move of step k, g_k the
gradient it applied and a_k the factor that multiplied g_k in it (median over coordinates).

Heavy ball (Polyak 1964; optax ``sgd(lr, momentum=mu)``: v_k = mu v_{k-1} + g_k, u_k = -lr v_k):
u_k = mu u_{k-1} - lr g_k, so with a_k = lr the reading is mu exactly.

Averaging form (Adam, Kingma & Ba, arXiv 1412.6980, Algorithm 1; MoMo and MoMo-Adam, Schaipp et
al., arXiv 2305.07583, Algorithms 1 and 2): m_k = b m_{k-1} + (1 - b) g_k and
u_k = -c_k m_k / D_k with a scalar step c_k and a per-coordinate scale D_k. Eliminating m
(:func:`derive_averaged_move`, SymPy):

    u_k = b (c_k D_{k-1}) / (c_{k-1} D_k) u_{k-1} - c_k (1 - b) / D_k g_k,

a heavy ball with momentum b (c_k D_{k-1}) / (c_{k-1} D_k) and step c_k (1 - b) / D_k. With
a_k = c_k (1 - b) / D_k the sensor reads, exactly and per coordinate,

    r_k = b * (c_k / c_{k-1}) * (D_{k-1} / D_k).

* Adam: c_k = lr / (1 - b1^k), D_k = sqrt(nu_k / (1 - b2^k)) + eps, nu_k = b2 nu_{k-1}
  + (1 - b2) g_k^2. Neglecting eps and writing rho = nu_k / nu_{k-1}:
  r_k = b1 (1 - b1^(k-1)) / (1 - b1^k) * sqrt((1 - b2^k) / ((1 - b2^(k-1)) rho))
  (:func:`adam_reading`). When nu settles (rho -> 1, k large) r_k -> b1; when the gradients fade
  against nu (deterministic convergence, g^2 << nu) rho -> b2 and r_k -> b1 / sqrt(b2) times the
  bias-correction factors. With stationary gradient noise, g_k^2 / nu_{k-1} is about a chi-square
  variable with one degree of freedom, rho = b2 + (1 - b2) chi2, and the median over coordinates
  is r ~ b1 (1 + (1 - b2) (1 - m_1) / 2) with m_1 = 0.4549 the median of chi2_1, to first order
  in 1 - b2 (:func:`adam_noise_reading`).
* MoMo (without bias correction, no weight decay): c_k = tau_k, D_k = 1, b = beta:
  r_k = beta tau_k / tau_{k-1}; beta while the step is capped at the learning rate (the first step
  averages nothing: beta = 0 there).
* MoMo-Adam: c_k = tau_k (capped at lr / (1 - b1^k)), D_k as Adam's: r_k = b1 (tau_k / tau_{k-1})
  (D_{k-1} / D_k), Adam's reading while the cap is active.

Under M asynchronous workers with geometric staleness the total convention (a / M in the
numerator) reads, to first order, the total momentum 1 - (1 - r)/M of the mean dynamics
(Mitliagkas et al., arXiv 1605.09774; :func:`theory.total_momentum`) with r the synchronous reading.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from theory.symbolic import SymbolicCheckError

__all__ = [
    "CHI2_1_MEDIAN",
    "adam_noise_reading",
    "adam_reading",
    "averaged_reading",
    "derive_averaged_move",
]

# Median of the chi-square distribution with one degree of freedom (scipy.stats.chi2(1).median()).
CHI2_1_MEDIAN = 0.454936423119572


def derive_averaged_move() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """Derive the move recursion of u_k = -c_k m_k / D_k, m_k = b m_{k-1} + (1 - b) g_k.

    Returns:
        ``(momentum, step, reading)``: the coefficients in u_k = momentum * u_{k-1} - step * g_k
        and the sensor reading (u_k + step * g_k) / u_{k-1}, in the symbols b, c_k, c_km1, D_k,
        D_km1.

    Raises:
        SymbolicCheckError: if the elimination does not give the closed form of the module
            docstring.

    Example:
        >>> mom, step, reading = derive_averaged_move()
        >>> str(reading)
        'D_km1*b*c_k/(D_k*c_km1)'
    """
    b, c, cp, d, dp, g, up = sp.symbols("b c_k c_km1 D_k D_km1 g u_km1")
    m_prev = -up * dp / cp  # from u_{k-1} = -c_{k-1} m_{k-1} / D_{k-1}
    u = sp.expand(-c / d * (b * m_prev + (1 - b) * g))
    momentum = sp.simplify(u.coeff(up))
    step = sp.factor(-u.coeff(g))
    reading = sp.simplify((u + step * g) / up)
    if sp.simplify(momentum - b * c * dp / (cp * d)) != 0 or sp.simplify(reading - momentum) != 0:
        raise SymbolicCheckError(f"averaged move: momentum {momentum}, reading {reading}")
    if sp.simplify(step - c * (1 - b) / d) != 0:
        raise SymbolicCheckError(f"averaged move: step {step}")
    return momentum, step, reading


def averaged_reading(
    b: ArrayLike, step_ratio: ArrayLike = 1.0, scale_ratio: ArrayLike = 1.0
) -> np.ndarray:
    """Sensor reading r = b * (c_k / c_{k-1}) * (D_{k-1} / D_k) of the averaging form.

    Args:
        b: averaging weight (Adam's b1, MoMo's beta).
        step_ratio: c_k / c_{k-1} (MoMo: tau_k / tau_{k-1}).
        scale_ratio: D_{k-1} / D_k per coordinate (1 for MoMo).

    Example:
        >>> round(float(averaged_reading(0.9, 1.1, 1.0)), 12)
        0.99
    """
    return np.asarray(b, np.float64) * np.asarray(step_ratio, np.float64) * scale_ratio


def adam_reading(b1: ArrayLike, b2: ArrayLike, k: ArrayLike, nu_ratio: ArrayLike) -> np.ndarray:
    """Adam's sensor reading at step k (1-based) with nu_k / nu_{k-1} = ``nu_ratio`` (eps = 0).

    r_k = b1 (1 - b1^(k-1)) / (1 - b1^k) * sqrt((1 - b2^k) / ((1 - b2^(k-1)) nu_ratio)), k >= 2.

    Example:
        >>> round(float(adam_reading(0.9, 0.999, 10**6, 1.0)), 12)
        0.9
    """
    b1, b2, k, rho = (np.asarray(v, np.float64) for v in (b1, b2, k, nu_ratio))
    bias1 = (1 - b1 ** (k - 1)) / (1 - b1**k)
    bias2 = (1 - b2**k) / (1 - b2 ** (k - 1))
    return b1 * bias1 * np.sqrt(bias2 / rho)


def adam_noise_reading(b1: ArrayLike, b2: ArrayLike) -> np.ndarray:
    """Median reading of Adam at a stationary noise floor, first order in 1 - b2 (k large).

    r = b1 (1 + (1 - b2) (1 - m_1) / 2), m_1 the median of chi2_1 (module docstring).

    Example:
        >>> round(float(adam_noise_reading(0.9, 0.99)), 6)
        0.902453
    """
    b1, b2 = np.asarray(b1, np.float64), np.asarray(b2, np.float64)
    return b1 * (1 + (1 - b2) * (1 - CHI2_1_MEDIAN) / 2)
