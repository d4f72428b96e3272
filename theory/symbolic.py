"""Symbolic derivations (SymPy) of the closed forms used throughout :mod:`theory`.

Each entry of :func:`derivations` is derived from its definition (a determinant, a stationarity
condition, a linear solve, an expectation) and checked against the closed form that the numeric
modules implement; construction raises :class:`SymbolicCheckError` if SymPy cannot confirm an
identity (explicit checks, kept under ``python -O``).

Entries: ``heavy_ball_char_poly``, ``heavy_ball_discriminant``, ``robust_boundaries``,
``complex_root_modulus`` (heavy ball: Polyak 1964; Zhang & Mitliagkas, arXiv 1706.03471, Sec. 2),
``singlestep_cubic``, ``singlestep_root`` (YellowFin's SingleStep, Sec. 3.1, Eq. (7)),
``noise_floor_recursion``, ``noise_floor_fixed_point`` (stochastic heavy ball on a quadratic, see
:mod:`theory.noise_floor`) and ``async_char_poly`` (Mitliagkas et al., arXiv 1605.09774, Sec. 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import sympy as sp

__all__ = ["Derivation", "SymbolicCheckError", "derivations"]


class SymbolicCheckError(RuntimeError):
    """A derivation did not reproduce the closed form it is checked against."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SymbolicCheckError(f"symbolic identity failed: {what}")


@dataclass(frozen=True)
class Derivation:
    """One derived formula.

    Attributes:
        name: key in :func:`derivations`.
        expression: the SymPy result (an expression, a ``Tuple`` or a ``Matrix``).
        latex: LaTeX of ``lhs = expression``.
        assumptions: what the derivation assumes, in words.
        args: the free symbols, in the order :meth:`lambdify` expects them.
    """

    name: str
    expression: Any
    latex: str
    assumptions: str
    args: tuple[sp.Symbol, ...]

    def lambdify(self) -> Callable[..., Any]:
        """NumPy function of ``args`` (positional) evaluating :attr:`expression`.

        Example:
            >>> f = derivations()["heavy_ball_discriminant"].lambdify()
            >>> float(f(1.0, 0.25, 1.0))  # (1 + mu - alpha h)^2 - 4 mu
            -0.9375
        """
        return sp.lambdify(self.args, self.expression, modules="numpy")


def _same(a: Any, b: Any) -> None:
    diff = (
        sp.simplify(sp.Matrix(a) - sp.Matrix(b))
        if isinstance(a, sp.MatrixBase)
        else (sp.simplify(a - b))
    )
    zero = diff.is_zero_matrix if isinstance(diff, sp.MatrixBase) else diff == 0
    _check(bool(zero), f"difference {diff} is not zero")


def _make(
    name: str, lhs: str, expr: Any, assumptions: str, args: tuple[sp.Symbol, ...]
) -> Derivation:
    return Derivation(name, expr, f"{lhs} = {sp.latex(expr)}", assumptions, args)


def _heavy_ball() -> list[Derivation]:
    z = sp.Symbol("z")
    alpha, h = sp.symbols("alpha h", positive=True)
    mu = sp.Symbol("mu", real=True)
    A = sp.Matrix([[1 - alpha * h + mu, -mu], [1, 0]])
    poly = sp.expand((z * sp.eye(2) - A).det())
    b = 1 + mu - alpha * h
    _same(poly, z**2 - b * z + mu)
    disc = sp.expand(sp.discriminant(poly, z))
    _same(disc, b**2 - 4 * mu)

    a = sp.Symbol("a", positive=True)  # a = alpha h
    mu_nn = sp.Symbol("mu", nonnegative=True)
    edges = sorted(sp.solve(sp.Eq((1 + mu_nn - a) ** 2 - 4 * mu_nn, 0), a), key=sp.default_sort_key)
    lo, hi = (1 - sp.sqrt(mu_nn)) ** 2, (1 + sp.sqrt(mu_nn)) ** 2
    _check(len(edges) == 2, f"expected two robust-region edges, got {edges}")
    is_lo = [sp.simplify(sp.expand(e - lo)) == 0 for e in edges]
    is_hi = [sp.simplify(sp.expand(e - hi)) == 0 for e in edges]
    _check(sorted(is_lo) == [False, True], f"edges {edges} do not contain (1 - sqrt(mu))^2 once")
    _check(any(is_hi), f"edges {edges} do not contain (1 + sqrt(mu))^2")
    boundaries = sp.Tuple(lo, hi)

    # Complex regime: 4 mu - b^2 = w^2 > 0, roots (b +- i w)/2.
    bb, w = sp.Symbol("b", real=True), sp.Symbol("w", positive=True)
    lam = (bb + sp.I * w) / 2
    # lam is a root when mu = (b^2 + w^2) / 4
    _check(sp.expand(lam**2 - bb * lam + (bb**2 + w**2) / 4) == 0, "(b + i w)/2 is not a root")
    modsq = sp.simplify(sp.expand(lam * sp.conjugate(lam)).subs(w**2, 4 * mu - bb**2))
    modsq = sp.simplify(modsq.subs(w, sp.sqrt(4 * mu - bb**2)))
    _same(modsq, mu)

    return [
        _make(
            "heavy_ball_char_poly",
            r"\det(z I - A)",
            sp.collect(poly, z),
            "A = [[1 - alpha h + mu, -mu], [1, 0]], the heavy-ball transition matrix",
            (z, alpha, mu, h),
        ),
        _make(
            "heavy_ball_discriminant",
            r"\Delta",
            disc,
            "discriminant in z of the characteristic polynomial; roots complex iff it is < 0",
            (alpha, mu, h),
        ),
        _make(
            "robust_boundaries",
            r"(\alpha h)_{\mathrm{lo}}, (\alpha h)_{\mathrm{hi}}",
            boundaries,
            "mu >= 0; the zeros in a = alpha h of the discriminant (1 + mu - a)^2 - 4 mu",
            (mu_nn,),
        ),
        _make(
            "complex_root_modulus",
            r"|\lambda|^2",
            modsq,
            "complex regime (1 - sqrt(mu))^2 < alpha h < (1 + sqrt(mu))^2, where 4 mu > b^2",
            (alpha, mu, h),
        ),
    ]


def _singlestep() -> list[Derivation]:
    x = sp.Symbol("x", real=True)  # x = sqrt(mu)
    D, C, hmin, p = sp.symbols("D C h_min p", positive=True)
    F = x**2 * D**2 + (1 - x) ** 4 * C / hmin**2
    cubic = (1 - x) ** 3 - p * x
    p_def = D**2 * hmin**2 / (2 * C)
    _same(sp.diff(F, x), -4 * C / hmin**2 * cubic.subs(p, p_def))
    # y = x - 1 depresses it: y^3 + p y + p = 0; Cardano with w^3 = (-p - sqrt(p^2 + 4p^3/27))/2.
    y = sp.Symbol("y", real=True)
    _same(sp.expand(-cubic.subs(x, y + 1)), y**3 + p * y + p)
    s = sp.sqrt(p**2 + 4 * p**3 / 27)
    r = sp.cbrt((p + s) / 2)  # real positive; w = -r is the real cube root
    y_root = -r + p / (3 * r)
    u3, v3 = -(r**3), (p / (3 * r)) ** 3  # y = u + v with u v = -p/3
    # y^3 + p y + p = u^3 + v^3 + p, and (s - p)(s + p) = 4 p^3 / 27 makes this vanish.
    resid = sp.simplify(sp.radsimp(sp.together(u3 + v3 + p)))
    _same(resid, 0)
    x_root = 1 + y_root
    return [
        _make(
            "singlestep_cubic",
            r"-\frac{h_{\min}^2}{4C}\frac{dF}{dx}",
            cubic,
            "F(x) = x^2 D^2 + (1 - x)^4 C / h_min^2 with x = sqrt(mu); p = D^2 h_min^2 / (2 C) > 0",
            (x, p),
        ),
        _make(
            "singlestep_root",
            r"x^\star",
            x_root,
            "p > 0; the unique real root of (1 - x)^3 = p x, in (0, 1) (Vieta/Cardano)",
            (p,),
        ),
    ]


def _noise_floor() -> list[Derivation]:
    alpha, h, c = sp.symbols("alpha h c", positive=True)
    mu = sp.Symbol("mu", real=True)
    X, V, XV, xi, xs, vs = sp.symbols("X V XV xi x v", real=True)
    a = alpha * h
    x_new = (1 - a) * xs + mu * vs - alpha * xi
    v_new = -a * xs + mu * vs - alpha * xi

    def expect(e: sp.Expr) -> sp.Expr:
        # xi has mean 0, variance c and is independent of (x, v).
        poly = sp.Poly(sp.expand(e), xs, vs, xi)
        moments = {(2, 0, 0): X, (0, 2, 0): V, (1, 1, 0): XV, (0, 0, 2): c}
        out = sp.Integer(0)
        for mono, coef in poly.terms():
            if mono[2] == 1:
                continue
            out += coef * moments[mono]
        return sp.expand(out)

    rhs = [expect(x_new**2), expect(v_new**2), expect(x_new * v_new)]
    state = (X, V, XV)
    T = sp.Matrix([[sp.diff(r, s) for s in state] for r in rhs])
    forcing = sp.Matrix([r.subs({X: 0, V: 0, XV: 0}) for r in rhs])
    _same(forcing, sp.Matrix([alpha**2 * c] * 3))
    _same(
        T,
        sp.Matrix(
            [
                [(1 - a) ** 2, mu**2, 2 * (1 - a) * mu],
                [a**2, mu**2, -2 * a * mu],
                [-(1 - a) * a, mu**2, (1 - 2 * a) * mu],
            ]
        ),
    )
    fixed = (sp.eye(3) - T).LUsolve(forcing).applyfunc(sp.factor)
    closed = (1 + mu) * alpha * c / ((1 - mu) * h * (2 * (1 + mu) - alpha * h))
    _same(fixed[0], closed)
    fixed[0] = closed  # same value, in the form used by theory.noise_floor
    return [
        _make(
            "noise_floor_recursion",
            "T",
            T,
            "gradient h x + xi, xi i.i.d. mean 0 variance c; "
            "state (E x^2, E v^2, E x v), v_t = x_t - x_{t-1}",
            (alpha, mu, h),
        ),
        _make(
            "noise_floor_fixed_point",
            r"(E x^2, E v^2, E x v)_\infty",
            fixed,
            "stable heavy ball (|mu| < 1, 0 < alpha h < 2 (1 + mu)); "
            "solves (I - T) p = alpha^2 c (1, 1, 1)",
            (alpha, mu, h, c),
        ),
    ]


def _asynchrony() -> list[Derivation]:
    z = sp.Symbol("z")
    alpha, h, M = sp.symbols("alpha h M", positive=True)
    mu = sp.Symbol("mu_l", real=True)
    q = 1 - 1 / M
    # State (x_t, Delta_t, G_{t-1}); G_t = (1 - q) h x_t + q G_{t-1} is the expected stale gradient,
    # Delta_{t+1} = mu Delta_t - alpha G_t, x_{t+1} = x_t + Delta_{t+1}.
    g_row = sp.Matrix([[(1 - q) * h, 0, q]])
    d_row = sp.Matrix([[0, mu, 0]]) - alpha * g_row
    x_row = sp.Matrix([[1, 0, 0]]) + d_row
    B = sp.Matrix.vstack(x_row, d_row, g_row)
    poly = sp.expand((z * sp.eye(3) - B).det())
    a = alpha * (1 - q) * h
    _same(poly, z**3 - (1 + mu + q - a) * z**2 + (mu + q + mu * q) * z - mu * q)
    return [
        _make(
            "async_char_poly",
            r"\det(z I - B)",
            sp.collect(poly, z, sp.factor),
            "M workers, geometric staleness with q = 1 - 1/M, explicit momentum mu_l, curvature h",
            (z, alpha, mu, h, M),
        )
    ]


@cache
def derivations() -> dict[str, Derivation]:
    """All derivations, keyed by name (computed once; a few seconds of SymPy).

    Example:
        >>> d = derivations()["complex_root_modulus"]
        >>> print(d.latex)
        |\\lambda|^2 = \\mu
    """
    out = _heavy_ball() + _singlestep() + _noise_floor() + _asynchrony()
    return {d.name: d for d in out}
