"""A static table of the experiments, so that ``momlab list`` and ``--help`` import no science.

Discovering the registry imports every experiment module, and with them JAX, optax, flax, SciPy,
SymPy and matplotlib (seconds of start-up). ``momlab list`` only needs each experiment's name,
device, tiers and title, so it reads :data:`CATALOG` instead. The table is generated from the live
registry (``python -m experiments.catalog`` rewrites this module's table) and a test checks that
it equals the registry, so it cannot drift. Experiments added through ``MOMLAB_EXTRA_EXPERIMENTS``
are not in the table: with that variable set, :func:`entries` discovers the registry.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Entry:
    """What ``momlab list`` shows of one experiment."""

    name: str
    title: str
    device: str
    tiers: tuple[str, ...]
    order: int


# BEGIN GENERATED (python -m experiments.catalog)
CATALOG: tuple[Entry, ...] = (
    Entry("robust-region", "Robust region map and measured rates", "cpu", ("quick", "full"), 1),
    Entry(
        "sqrt-mu-rate",
        "sqrt(mu) rate on quadratics over mu, kappa and alpha",
        "cpu",
        ("quick", "full"),
        2,
    ),
    Entry(
        "nonconvex-constant-rate",
        "Constant rate on non-convex toys via generalised curvature",
        "cpu",
        ("quick", "full"),
        3,
    ),
    Entry("rate-failures", "Where the sqrt(mu) rate fails", "cpu", ("quick", "full"), 4),
    Entry("transients", "Transients: peak effect vs matched start", "cpu", ("quick", "full"), 5),
    Entry(
        "noise-floor",
        "Noise floor of stochastic heavy ball and the NQM",
        "cpu",
        ("quick", "full"),
        6,
    ),
    Entry(
        "singlestep-yellowfin-nqm",
        "YellowFin's oracles, tuning and speed on the NQM",
        "cpu",
        ("quick", "full"),
        7,
    ),
    Entry("asynchrony-momentum", "Asynchrony begets momentum", "cpu", ("quick", "full"), 8),
    Entry("total-momentum", "Total momentum: sync vs async", "cpu", ("quick", "full", "gpu"), 9),
    Entry("closed-loop", "Closing the momentum loop", "cpu", ("quick", "full", "gpu"), 10),
    Entry(
        "yellowfin-vs-adam",
        "YellowFin vs tuned Adam and momentum SGD",
        "cpu",
        ("quick", "full", "gpu"),
        11,
    ),
    Entry(
        "per-variable-rate",
        "Per-variable rate on a real network",
        "cpu",
        ("quick", "full", "gpu"),
        12,
    ),
    Entry("momo-robustness", "MoMo: learning-rate robustness", "cpu", ("quick", "full"), 13),
    Entry("momo-bounds", "MoMo bounds and MoMo* estimate", "cpu", ("quick", "full"), 14),
    Entry(
        "yellowfin-curvature-oracle",
        "YellowFin with Hessian-vector curvature vs SingleStep at the truth",
        "cpu",
        ("quick", "full"),
        16,
    ),
    Entry(
        "closed-loop-any-optimizer",
        "Closed-loop momentum for any optimizer",
        "cpu",
        ("quick", "full"),
        17,
    ),
)
# END GENERATED


def live_entries() -> list[Entry]:
    """The entries of the discovered registry (imports every experiment module)."""
    from experiments import registry

    return [
        Entry(
            e.name,
            e.title,
            e.device,
            ("quick", "full", "gpu") if e.has_gpu_tier else ("quick", "full"),
            e.order,
        )
        for e in registry.discover()
    ]


def entries() -> list[Entry]:
    """The static table, or the live registry when extra experiment modules are named."""
    from experiments.registry import EXTRA_ENV

    if os.environ.get(EXTRA_ENV, "").strip() or not CATALOG:
        return live_entries()
    return list(CATALOG)


def render(found: list[Entry]) -> str:
    """The Python source of the generated table."""
    lines = ["CATALOG: tuple[Entry, ...] = ("]
    for e in found:
        lines.append(f"    Entry({e.name!r}, {e.title!r}, {e.device!r}, {e.tiers!r}, {e.order}),")
    lines.append(")")
    return "\n".join(lines)


def write(path: Path = Path(__file__)) -> None:
    """Rewrite the generated table of this module from the live registry."""
    text = path.read_text(encoding="utf-8")
    block = re.compile(r"(# BEGIN GENERATED.*?\n).*?(# END GENERATED)", re.DOTALL)
    table = render(live_entries())
    path.write_text(block.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text))


if __name__ == "__main__":
    write()
    sys.exit(0)
