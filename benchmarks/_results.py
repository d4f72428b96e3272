"""Writing benchmark results: JSON through a temporary file renamed over the target, one run per
platform."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace`` (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_run(path: Path, platform: str, run: dict[str, Any]) -> None:
    """Store ``run`` under ``runs[platform]`` of the JSON at ``path``, keeping the other platforms'
    runs (an unreadable or foreign file is replaced), written atomically."""
    payload: dict[str, Any] = {"runs": {}}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and isinstance(old.get("runs"), dict):
                payload = old
        except (json.JSONDecodeError, OSError):
            pass
    payload["runs"][platform] = run
    write_atomic(path, payload)
