"""Every claim of the papers as a reproducible experiment: prediction, measurement, verdict, figure."""

from __future__ import annotations

__all__: list[str] = []
