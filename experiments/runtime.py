"""What a running experiment may ask of its runner: a work directory that survives an interruption,
stage results that resume, and progress reports with an estimated time to finish.

An experiment's ``run(cfg, seed)`` is a plain function; long ones (the real-network full tier runs
for tens of minutes) use this module to resume after a kill and to say how far they are:

* :func:`stage` computes a named stage once and keeps its arrays in the work directory; a rerun of
  the same experiment, tier, seed, configuration and code finds them and skips the stage.
* :func:`work_dir` gives that directory for finer checkpoints (e.g. ``gpu.train``'s
  ``checkpoint_dir``), or None when nothing is kept.
* :func:`progress` reports the fraction of the run's work done; the CLI shows it with an ETA.

:func:`running` (used by ``experiments.reproduce.run_experiment``) installs the context: the work
directory is ``<out>/.work/<name>/<key>`` where ``key`` hashes the tier, seed, configuration and the
experiment's code fingerprint, so a changed configuration or code never reuses a stale stage. The
runner removes the directory once the record is written. Outside :func:`running` (a test calling
``run`` directly) stages are computed every time and progress goes nowhere.

Stage files are ``.npz`` written to a temporary file and renamed (atomic on POSIX): a kill leaves a
stage either complete or absent.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ProgressCallback = Callable[[float, str], None]
WORK_DIR = ".work"
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$")


@dataclass
class RunContext:
    """The runner's side of one experiment run.

    Attributes:
        work_dir: where stages and checkpoints live (None: keep nothing).
        on_progress: called with ``(fraction done in [0, 1], what)``.
        started: ``time.monotonic()`` at the start of the run.
        reused: names of the stages found complete in ``work_dir``.
    """

    work_dir: Path | None = None
    on_progress: ProgressCallback | None = None
    started: float = field(default_factory=time.monotonic)
    reused: list[str] = field(default_factory=list)


_CONTEXT: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "momlab_run_context", default=None
)


def work_key(**parts: object) -> str:
    """A short stable hash of JSON-serialisable ``parts`` (sorted keys), e.g. tier, seed, config."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def running(
    work_dir: str | Path | None, on_progress: ProgressCallback | None = None
) -> Iterator[RunContext]:
    """Install a :class:`RunContext` for the code inside the ``with`` block."""
    ctx = RunContext(Path(work_dir) if work_dir is not None else None, on_progress)
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


def current() -> RunContext | None:
    """The context installed by :func:`running`, or None."""
    return _CONTEXT.get()


def work_dir(*parts: str) -> Path | None:
    """``<work dir>/<parts...>`` (created); None outside :func:`running` or without a work dir."""
    ctx = current()
    if ctx is None or ctx.work_dir is None:
        return None
    path = ctx.work_dir.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def progress(done: float, total: float = 1.0, what: str = "") -> None:
    """Report that ``done`` of ``total`` units of the run's work are finished.

    Raises:
        ValueError: if ``total`` is not positive.
    """
    if not total > 0:
        raise ValueError(f"total must be > 0 (got {total!r})")
    ctx = current()
    if ctx is not None and ctx.on_progress is not None:
        ctx.on_progress(min(max(float(done) / float(total), 0.0), 1.0), what)


def stage(name: str, compute: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of stage ``name``: read from the work directory when complete, else computed.

    ``compute()`` returns a mapping of names to arrays (scalars are kept as 0-d arrays); the result
    is written atomically before it is returned, so a later run of the same key skips the stage.

    Raises:
        ValueError: if ``name`` is not a plain file-name stem (letters, digits, ``_.=-``).
    """
    if not _STAGE_NAME.match(name):
        raise ValueError(f"stage name must be letters, digits and _.=- (got {name!r})")
    ctx = current()
    folder = work_dir("stages")
    if folder is not None:
        path = folder / f"{name}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {k: data[k] for k in data.files}
            except (OSError, ValueError, zipfile.BadZipFile):
                path.unlink(missing_ok=True)  # not written by stage (which renames): recompute
            else:
                if ctx is not None:
                    ctx.reused.append(name)
                return arrays
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    if folder is not None:
        _write_npz(folder / f"{name}.npz", arrays)
    return arrays


def discard(path: str | Path) -> None:
    """Remove a finished run's work directory (and its experiment folder when that is empty)."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
        path.parent.parent.rmdir()


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
