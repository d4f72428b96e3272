"""Every claim of the papers as a reproducible experiment: prediction, measurement and verdict."""

from __future__ import annotations

__all__: list[str] = []
