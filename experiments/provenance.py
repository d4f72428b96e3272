"""Provenance of a record: code version, package versions, device, seed and timing.

No host name, user name or path is recorded, so records from different machines compare cleanly.
"""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "scipy", "jax", "jaxlib", "optax", "flax", "matplotlib")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, bool | None]:
    """The checkout's commit and whether it has uncommitted changes.

    Returns:
        ``(commit, dirty)``; ``("unknown", None)`` when the code does not run from a git checkout.
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown", None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the numerical stack and of Python (``"absent"`` for a missing package)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def device_description() -> dict[str, str]:
    """JAX's default backend and the kind of its first device, e.g. ``{"backend": "cpu", ...}``."""
    import jax

    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "kind": str(getattr(device, "device_kind", "unknown")),
    }


def has_gpu() -> bool:
    """Whether JAX sees a GPU."""
    import jax

    try:
        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


def utc_now() -> str:
    """The current time as an ISO 8601 UTC timestamp with second resolution."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def collect(
    *,
    seed: int,
    quick: bool,
    started: str,
    wall_time_s: float,
    tier: str | None = None,
    git: tuple[str, bool | None] | None = None,
) -> dict[str, Any]:
    """The provenance dict stored in every record (``tier``: quick/full from ``quick`` if None).

    ``git``: :func:`git_state` read when the run started (read now if None). A run that lasts an
    hour must name the commit it ran, not one committed while it ran.
    """
    commit, dirty = git_state() if git is None else git
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": package_versions(),
        "seed": int(seed),
        "quick": bool(quick),
        "tier": tier or ("quick" if quick else "full"),
        "device": device_description(),
        "started": started,
        "wall_time_s": round(float(wall_time_s), 3),
    }
