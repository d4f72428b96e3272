"""``momlab theory``: closed-form predictions on the command line (rich tables or ``--json``).

Invalid input raises ``ValueError`` from :mod:`theory`, which :func:`experiments.cli.main` turns
into one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

import theory

theory_app = typer.Typer(
    name="theory",
    help="Closed-form predictions: robust region, SingleStep tuning, convergence rate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")]


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
        value = _clean(value)
        if isinstance(value, float):
            text = f"{value:.6g}"
        elif value is None:
            text = "-"
        else:
            text = str(value)
        table.add_row(key, text)
    console = Console()
    console.print(table)
    console.print(verdict)


def _worst_radius(alpha: float, mu: float, h_min: float, h_max: float) -> float:
    """Largest one-direction radius over [h_min, h_max]; it sits at one of the two ends."""
    return float(np.max(theory.spectral_radius(alpha, mu, [h_min, h_max])))


@theory_app.command("region")
def region(
    mu: Annotated[float, typer.Option(help="Momentum in [0, 1).")],
    h_min: Annotated[float, typer.Option(help="Smallest curvature (> 0).")],
    h_max: Annotated[float, typer.Option(help="Largest curvature (>= h_min).")],
    as_json: JsonFlag = False,
) -> None:
    """Robust learning-rate interval for momentum MU on the spectrum [H_MIN, H_MAX]."""
    lo, hi = (float(x) for x in theory.robust_interval(mu, h_min, h_max))
    kappa = h_max / h_min
    nonempty = lo <= hi
    mu_min = float(theory.min_robust_momentum(kappa))
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
    mu, alpha = (float(x) for x in theory.singlestep(grad_var, dist, h_min, h_max))
    kappa = h_max / h_min
    mu_lb = float(theory.min_robust_momentum(kappa))
    p = (dist * h_min) ** 2 / (2.0 * grad_var) if grad_var > 0 else math.inf
    x = float(theory.singlestep_root(p)) if math.isfinite(p) else 0.0
    rows = {
        "grad_var": grad_var,
        "dist_to_opt": dist,
        "h_min": h_min,
        "h_max": h_max,
        "p": p,
        "root_sqrt_mu": x,
        "dynamic_range_bound": mu_lb,
        "bound_active": x * x < mu_lb,
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
    rho = float(theory.spectral_radius(alpha, mu, h))
    kind = str(theory.regime(alpha, mu, h))
    z = theory.eigenvalues(alpha, mu, h)
    rows = {
        "alpha": alpha,
        "mu": mu,
        "h": h,
        "radius": rho,
        "regime": kind,
        "stable": bool(theory.is_stable(alpha, mu, h)),
        "eig1_re": float(z[0].real),
        "eig1_im": float(z[0].imag),
        "eig2_re": float(z[1].real),
        "eig2_im": float(z[1].imag),
    }
    verdict = f"{kind}: radius {rho:.6g}" + (" (converges)" if rho < 1 else " (does not converge)")
    _emit("heavy-ball rate", rows, verdict, as_json)
