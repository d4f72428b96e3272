"""Real networks on offline data in JAX: datasets, flax nnx models, training, stale gradients.

The same code runs on a GPU when JAX sees one and on the CPU otherwise.
"""

from __future__ import annotations

__all__: list[str] = []
