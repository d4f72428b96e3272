"""Cheap worlds with known answers: objectives, vectorised runs, asynchrony and measurements.

This package never imports :mod:`theory`: it measures, and the comparison with the closed forms
happens in the experiments and the tests.
"""

from __future__ import annotations

__all__: list[str] = []
