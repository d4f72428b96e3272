"""Checks: the one place a verdict comes from.

An experiment's record holds a list of :class:`Check`. Each check has a *kind* (DESIGN.md, "What a
verdict rests on"):

- ``precondition``: the setting the claim needs (the synchronous control does not rebound, training
  left chance loss, the best baseline is not on the grid's edge). When one fails the outcome is
  ``not applicable``, with the check's note as the measured reason.
- ``identity``: true by the algebra of the update (synchronous heavy ball's sensor reads mu; MoMo's
  beta = 0 certificate factor of 3). Recorded and shown, never deciding: identities belong in unit
  tests.
- ``verification``: theory against simulation; fails only on a bug.
- ``reproduction``: a published or derived claim that could be false.

Each check has an outcome: ``pass``, ``fail`` or ``unresolved`` (the difference is smaller than the
measured spread, so the data cannot say). :func:`decide` turns the list into the verdict:

1. a failed precondition gives ``not applicable``;
2. a failed verification gives ``fails`` (a bug shows even in a smoke run);
3. a smoke run (a quick configuration too small to decide) gives ``smoke``;
4. a failed reproduction gives ``fails``; an unresolved deciding check gives ``unresolved``;
5. otherwise ``holds``.

A verdict needs at least one verification or reproduction check: identities alone decide nothing.

Example:
    >>> checks = [
    ...     Check("rate", "verification", "pass", predicted=0.9, measured=0.9004, tolerance=1e-3),
    ...     Check("sign", "reproduction", "unresolved", note="interval [-0.3, 0.05] holds 0"),
    ... ]
    >>> decide(checks)
    'unresolved'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

KINDS = ("precondition", "identity", "verification", "reproduction")
DECIDING = ("verification", "reproduction")
OUTCOMES = ("pass", "fail", "unresolved")
VERDICTS = ("holds", "fails", "unresolved", "not applicable", "smoke", "error")


@dataclasses.dataclass(frozen=True)
class Check:
    """One comparison in a record.

    Attributes:
        name: short snake_case name, unique within the record.
        kind: one of :data:`KINDS`.
        outcome: ``"pass"``, ``"fail"`` or ``"unresolved"``.
        predicted: what theory (or the claim) says; any JSON-able value.
        measured: what the run measured; any JSON-able value.
        tolerance: the allowed gap, an interval, or a sentence.
        note: one sentence: what the check means, or the measured reason of its outcome.
        headline: whether this is the record's headline (at most one per record).
    """

    name: str
    kind: str
    outcome: str
    predicted: Any = None
    measured: Any = None
    tolerance: Any = None
    note: str = ""
    headline: bool = False

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name must be a non-empty string (got {self.name!r})")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)} (got {self.outcome!r})")

    @property
    def passed(self) -> bool:
        """Whether the outcome is ``pass``."""
        return self.outcome == "pass"

    def to_json(self) -> dict[str, Any]:
        """The check as plain JSON types (non-finite numbers as :func:`to_jsonable` writes them)."""
        from experiments.record import to_jsonable

        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        """The check written by :meth:`to_json`.

        Raises:
            ValueError: when ``data`` is not a check (naming the missing or bad field).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a check must be a JSON object (got {type(data).__name__})")
        missing = [k for k in ("name", "kind", "outcome") if k not in data]
        if missing:
            raise ValueError(f"check is missing {', '.join(missing)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def outcome(ok: bool | None) -> str:
    """``"pass"`` for true, ``"fail"`` for false, ``"unresolved"`` for None.

    Example:
        >>> outcome(True), outcome(False), outcome(None)
        ('pass', 'fail', 'unresolved')
    """
    if ok is None:
        return "unresolved"
    return "pass" if bool(ok) else "fail"


def check(
    name: str,
    kind: str,
    ok: bool | None,
    *,
    predicted: Any = None,
    measured: Any = None,
    tolerance: Any = None,
    note: str = "",
    headline: bool = False,
) -> Check:
    """A :class:`Check` whose outcome is :func:`outcome` of ``ok``.

    Example:
        >>> c = check("mu", "verification", abs(0.91 - 0.9) <= 0.02, predicted=0.9, measured=0.91)
        >>> c.outcome
        'pass'
    """
    return Check(
        name,
        kind,
        outcome(ok),
        predicted=predicted,
        measured=measured,
        tolerance=tolerance,
        note=note,
        headline=headline,
    )


def interval_check(
    name: str,
    kind: str,
    interval: Sequence[float],
    *,
    predicted: float | None = None,
    lower: float | None = None,
    upper: float | None = None,
    measured: Any = None,
    note: str = "",
    headline: bool = False,
) -> Check:
    """A check decided by a measured confidence interval ``(lo, hi)``.

    With ``predicted``: pass when the interval contains it, fail otherwise. With ``lower`` (and/or
    ``upper``), the claim is "the quantity exceeds ``lower``" (is below ``upper``): pass when the
    whole interval is on the claimed side, fail when the whole interval is on the other side, and
    ``unresolved`` when the interval straddles the threshold. A non-finite end is unresolved.

    Example:
        >>> interval_check("speedup", "reproduction", (0.9, 1.4), lower=1.0).outcome
        'unresolved'
        >>> interval_check("speedup", "reproduction", (1.1, 1.4), lower=1.0).outcome
        'pass'
    """
    lo, hi = (float(v) for v in interval)
    if (predicted is None) == (lower is None and upper is None):
        raise ValueError("give either predicted or lower/upper (not both, not neither)")
    if lo > hi:
        raise ValueError(f"interval must have lo <= hi (got {lo}, {hi})")
    ok: bool | None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        ok = None
    elif predicted is not None:
        ok = lo <= predicted <= hi
    else:
        sides = []
        if lower is not None:
            sides.append(True if lo > lower else (False if hi <= lower else None))
        if upper is not None:
            sides.append(True if hi < upper else (False if lo >= upper else None))
        ok = False if False in sides else (None if None in sides else True)
    if predicted is not None:
        tolerance: Any = {"interval": [lo, hi]}
    else:
        tolerance = {"interval": [lo, hi], "lower": lower, "upper": upper}
    return check(
        name,
        kind,
        ok,
        predicted=predicted if predicted is not None else {"lower": lower, "upper": upper},
        measured=measured if measured is not None else [lo, hi],
        tolerance=tolerance,
        note=note,
        headline=headline,
    )


def decide(checks: Iterable[Check], *, smoke: bool = False) -> str:
    """The verdict of a list of checks (rules in the module docstring).

    Args:
        checks: the record's checks.
        smoke: whether the configuration is too small to decide (quick runs that cannot defend a
            verdict).

    Raises:
        ValueError: when no verification or reproduction check is given.

    Example:
        >>> pre = Check("control_settles", "precondition", "fail", note="control rebounds 40x")
        >>> decide([pre, Check("speedup", "reproduction", "pass")])
        'not applicable'
    """
    checks = list(checks)
    for c in checks:
        if not isinstance(c, Check):
            raise ValueError(f"checks must be Check instances (got {type(c).__name__})")
    deciding = [c for c in checks if c.kind in DECIDING]
    if not deciding:
        raise ValueError("a verdict needs at least one verification or reproduction check")
    if any(c.kind == "precondition" and not c.passed for c in checks):
        return "not applicable"
    if any(c.kind == "verification" and c.outcome == "fail" for c in deciding):
        return "fails"
    if smoke:
        return "smoke"
    if any(c.outcome == "fail" for c in deciding):
        return "fails"
    if any(c.outcome == "unresolved" for c in deciding):
        return "unresolved"
    return "holds"


def reasons(checks: Iterable[Check]) -> list[str]:
    """Why the verdict is what it is: ``name: note`` of each failed precondition, else of each
    failed or unresolved deciding check."""
    checks = list(checks)
    pre = [c for c in checks if c.kind == "precondition" and not c.passed]
    chosen = pre or [c for c in checks if c.kind in DECIDING and not c.passed]
    return [f"{c.name}: {c.note}" if c.note else c.name for c in chosen]


def headline(checks: Iterable[Check]) -> Check | None:
    """The check marked ``headline`` (None when there is none)."""
    return next((c for c in checks if c.headline), None)


def validate(checks: Iterable[Check]) -> list[Check]:
    """The checks as a list, after checking names are unique and at most one is the headline.

    Raises:
        ValueError: naming the repeated check name, or when several checks are headlines.
    """
    checks = list(checks)
    seen: set[str] = set()
    for c in checks:
        if not isinstance(c, Check):
            raise ValueError(f"checks must be Check instances (got {type(c).__name__})")
        if c.name in seen:
            raise ValueError(f"check name {c.name!r} appears twice")
        seen.add(c.name)
    if sum(c.headline for c in checks) > 1:
        raise ValueError("at most one check may be the headline")
    return checks
