"""Closed forms and symbolic derivations for heavy-ball momentum, YellowFin and MoMo.

Everything here is float64 NumPy/SciPy/SymPy, vectorised over arrays; no JAX, no plotting and no
other package of this project is imported (the simulators must measure what theory predicts, not
re-evaluate it).
"""

from __future__ import annotations

__all__: list[str] = []
