"""``momlab theory``: closed-form predictions on the command line (rich tables or ``--json``).

Invalid input raises ``ValueError`` from :mod:`theory` (or from here, when a derived quantity
the command must show cannot be represented in float64), which :func:`experiments.cli.main`
turns into one line on stderr and exit status 2. NumPy floating-point warnings are silenced:
every non-finite result is either reported as such or turned into that one-line error.

Overflow policy. A result beyond the float64 range of a well-posed question is a legitimate
answer: ``rate`` with ``alpha * h`` above ``1.8e308`` is divergent and its radius (about
``alpha h``) is printed as ``inf`` (``null`` in JSON), exit status 0; ``singlestep`` with ``p``
beyond the range shows ``p = inf`` and still solves (the root ``sqrt(mu) ~ 1/p`` is then subnormal
or 0). When a quantity the answer is built from overflows (the robust interval's ends in
``region``, SingleStep's ``alpha``), the input is rejected, naming the curvature that is too small
and the range that works.

Stability in ``rate``. ``stable`` is ``radius < 1`` for the float64 radius shown, so the two never
disagree. Where ``1 - radius`` lies below float64 resolution (``alpha h`` below about
``eps (1 - mu) / 2``, e.g. ``alpha = h = 1e-308``, whose product underflows to 0) the radius
rounds to 1 and the answer is "not stable, does not converge": heavy ball run in float64 does not
move there either (``x - alpha h x`` rounds to ``x``). In exact arithmetic such a point is stable
(:func:`theory.is_stable`), at a rate no float64 computation can resolve; the verdict says so.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text


class _LazyTheory:
    """The :mod:`theory` package, imported on first use (SciPy and SymPy stay out of ``--help``)."""

    def __getattr__(self, name: str) -> Any:
        import theory as module

        return getattr(module, name)


theory = _LazyTheory()

theory_app = typer.Typer(
    name="theory",
    help="Closed-form predictions: robust region, SingleStep tuning, convergence rate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")]


_FLOAT_MAX = float(np.finfo(np.float64).max)


def _clean(value: Any) -> Any:
    """JSON-safe scalars: numpy -> Python, non-finite floats -> None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _emit(title: str, rows: dict[str, Any], verdict: str, as_json: bool) -> None:
    if as_json:
        payload = {k: _clean(v) for k, v in rows.items()} | {"verdict": verdict}
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=title, show_header=True)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float):
            text = f"{value:.6g}"  # inf stays "inf"; JSON has null
        elif value is None:
            text = "-"
        else:
            text = str(value)
        table.add_row(Text(key), Text(text))
    console = Console()
    console.print(table)
    console.print(verdict, markup=False, highlight=False)


def _worst_radius(alpha: float, mu: float, h_min: float, h_max: float) -> float:
    """Largest one-direction radius over [h_min, h_max]; it sits at one of the two ends."""
    return float(np.max(theory.spectral_radius(alpha, mu, [h_min, h_max])))


def _ratio(a: float, b: float) -> float:
    """``a / b`` in float64, ``inf`` beyond the range."""
    with np.errstate(over="ignore"):
        return float(np.float64(a) / np.float64(b))


@theory_app.command("region")
def region(
    mu: Annotated[float, typer.Option(help="Momentum in [0, 1).")],
    h_min: Annotated[float, typer.Option(help="Smallest curvature (> 0).")],
    h_max: Annotated[float, typer.Option(help="Largest curvature (>= h_min).")],
    as_json: JsonFlag = False,
) -> None:
    """Robust learning-rate interval for momentum MU on the spectrum [H_MIN, H_MAX]."""
    with np.errstate(all="ignore"):
        _region(mu, h_min, h_max, as_json)


def _region(mu: float, h_min: float, h_max: float, as_json: bool) -> None:
    lo, hi = (float(x) for x in theory.robust_interval(mu, h_min, h_max))
    for end, name, edge, h in (
        (lo, "h_min", "(1 - sqrt(mu))^2", h_min),
        (hi, "h_max", "(1 + sqrt(mu))^2", h_max),
    ):
        if not math.isfinite(end):
            need = (1.0 + (1.0 if name == "h_max" else -1.0) * math.sqrt(mu)) ** 2 / _FLOAT_MAX
            raise ValueError(
                f"{name} must be >= {need:.3g} for mu = {mu:g}: the robust interval's end "
                f"{edge} / {name} overflows float64 (got {name}={h:g})"
            )
    kappa = _ratio(h_max, h_min)  # inf when beyond float64; not used in any formula
    nonempty = lo <= hi
    # the minimal robust momentum of kappa, from h_min and h_max: Polyak's mu equals
    # min_robust_momentum(h_max / h_min) (see its docstring) and stays finite when kappa is not
    mu_min = float(theory.polyak_tuning(h_min, h_max)[1])
    rows = {
        "mu": mu,
        "h_min": h_min,
        "h_max": h_max,
        "kappa": kappa,
        "alpha_lo": lo,
        "alpha_hi": hi,
        "nonempty": nonempty,
        "rate_sqrt_mu": math.sqrt(mu),
        "radius_at_alpha_lo": _worst_radius(lo, mu, h_min, h_max),
        "radius_at_alpha_hi": _worst_radius(hi, mu, h_min, h_max),
        "min_robust_momentum": mu_min,
        "tolerated_dynamic_range": float(theory.tolerated_dynamic_range(mu)),
    }
    if nonempty:
        verdict = (
            f"non-empty: every alpha in [{lo:.6g}, {hi:.6g}] converges at rate sqrt(mu) = "
            f"{math.sqrt(mu):.6g} on the whole spectrum"
        )
    else:
        verdict = (
            f"empty: mu = {mu:g} is below the minimal robust momentum {mu_min:.6g} "
            f"for kappa = {kappa:.6g}"
        )
    _emit("robust region", rows, verdict, as_json)


@theory_app.command("singlestep")
def singlestep(
    grad_var: Annotated[float, typer.Option(help="Gradient variance C (>= 0).")],
    dist: Annotated[float, typer.Option(help="Distance to the optimum D (>= 0).")],
    h_min: Annotated[float, typer.Option(help="Smallest curvature (> 0).")],
    h_max: Annotated[float, typer.Option(help="Largest curvature (>= h_min).")],
    as_json: JsonFlag = False,
) -> None:
    """YellowFin's SingleStep momentum and learning rate for measured C, D, h_min, h_max."""
    with np.errstate(all="ignore"):
        _singlestep(grad_var, dist, h_min, h_max, as_json)


def _singlestep(grad_var: float, dist: float, h_min: float, h_max: float, as_json: bool) -> None:
    parts = theory._singlestep_parts(grad_var, dist, h_min, h_max)
    mu, alpha = float(parts.mu), float(parts.alpha)
    if not math.isfinite(alpha):  # alpha <= 1 / h_min always
        raise ValueError(
            f"h_min must be >= {1.0 / _FLOAT_MAX:.3g} here: SingleStep's alpha = "
            f"(1 - sqrt(mu))^2 / h_min overflows float64 (got h_min={h_min:g})"
        )
    rows = {
        "grad_var": grad_var,
        "dist_to_opt": dist,
        "h_min": h_min,
        "h_max": h_max,
        "p": float(parts.p),  # inf when C = 0 or beyond float64
        "root_sqrt_mu": float(parts.root),  # the cubic's root, before the bound
        "dynamic_range_bound": float(parts.mu_lb),  # minimal robust momentum of kappa
        "bound_active": bool(parts.bound_active),
        "mu": mu,
        "alpha": alpha,
        "rate": _worst_radius(alpha, mu, h_min, h_max) if alpha > 0 else 1.0,
    }
    verdict = f"mu = {mu:.6g}, alpha = {alpha:.6g}, predicted rate sqrt(mu) = {math.sqrt(mu):.6g}"
    _emit("SingleStep", rows, verdict, as_json)


@theory_app.command("rate")
def rate(
    alpha: Annotated[float, typer.Option(help="Learning rate (> 0).")],
    mu: Annotated[float, typer.Option(help="Momentum.")],
    h: Annotated[float, typer.Option(help="Curvature (> 0).")],
    as_json: JsonFlag = False,
) -> None:
    """Spectral radius, regime and eigenvalues of heavy ball on one curvature direction."""
    with np.errstate(all="ignore"):
        _rate(alpha, mu, h, as_json)


def _rate(alpha: float, mu: float, h: float, as_json: bool) -> None:
    rho = float(theory.spectral_radius(alpha, mu, h))
    kind = str(theory.regime(alpha, mu, h))
    z = theory.eigenvalues(alpha, mu, h)
    rows = {
        "alpha": alpha,
        "mu": mu,
        "h": h,
        "radius": rho,
        "regime": kind,
        "stable": rho < 1.0,  # the radius shown decides (module docstring, "Stability")
        "eig1_re": float(z[0].real),
        "eig1_im": float(z[0].imag),
        "eig2_re": float(z[1].real),
        "eig2_im": float(z[1].imag),
    }
    verdict = f"{kind}: radius {rho:.6g}" + (" (converges)" if rho < 1 else " (does not converge)")
    if rho == 1.0 and bool(theory.is_stable(alpha, mu, h)):
        verdict = (
            f"{kind}: radius rounds to 1 in float64 (1 - radius is below float64 resolution: "
            "stable only in exact arithmetic; does not converge in float64)"
        )
    if not math.isfinite(rho):  # alpha*h beyond float64: divergent, radius ~ alpha*h
        verdict = f"{kind}: radius beyond float64 (alpha*h overflows; does not converge)"
    _emit("heavy-ball rate", rows, verdict, as_json)
