"""Running experiments: one (``momlab run``) or all that fit the machine (``momlab reproduce``).

Layout of the output directory (``results/`` by default)::

    results/<name>/record.json   the record (written last, atomically: its presence means finished)
    results/<name>/arrays.npz    the record's arrays
    results/<name>/figure.png    the figure (and figure.svg)
    results/report.html          one self-contained page (see experiments.report)
    results/summary.md           the Markdown table

A run writes its files into a fresh directory under ``results/.momlab-staging/`` and, once the
record is complete, swaps that directory in for ``results/<name>/`` (two renames). The previous
run's files are never mixed with the new ones: a run whose plot raises leaves no figure from an
older run behind, and an interrupted run leaves the previous finished record untouched. The record
also stores the SHA-256 of each figure it wrote, and the report shows only figures that match.

Tiers (:data:`experiments.registry.TIERS`): ``quick`` (the default, minutes on a 2-core CPU; every
experiment's quick configuration runs on a CPU), ``full`` (the CPU evidence) and ``gpu`` (each
experiment's paper-scale ``gpu()`` configuration where it declares one, else its full one; chosen
by ``gpu=True``, and automatically for a full run on a machine with a GPU).

A finished record is reused when its configuration, tier, seed and code fingerprint equal the
requested ones and its verdict is not ``"error"``; ``force=True`` reruns everything. The code
fingerprint (:func:`experiments.fingerprint.code_fingerprint`) is a SHA-256 over the sources of
the packages ``theory``, ``optimizers``, ``simulators`` and ``gpu`` and of the experiment's module
(with the modules of :mod:`experiments.library` it imports from), so a record made by other code
is rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import provenance, registry, runtime
from experiments.fingerprint import code_fingerprint
from experiments.record import Record, current_umask, file_digest, to_jsonable
from experiments.report import record_figures

SEED_MAX = registry.SEED_MAX
STAGING_DIR = ".momlab-staging"
_DIR_MODE = 0o777 & ~current_umask()  # what mkdir() would give; mkdtemp alone gives 0700


def check_seed(seed: int) -> int:
    """Validate a seed: an integer in [0, 2**32 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an integer in [0, {SEED_MAX}] (got {seed!r})")
    return seed


def ensure_output_dir(out: str | Path) -> Path:
    """Create ``out`` if needed and check that files can be written there.

    Raises:
        ValueError: naming the directory and the reason when it cannot be created or written.
    """
    if not isinstance(out, (str, Path)) or not str(out):
        raise ValueError("output directory must be a non-empty path (got '')")
    if "\x00" in str(out):
        raise ValueError("output directory must not contain a NUL byte")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".momlab-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"output directory {str(out)!r} is not writable: {_why(out, err)}"
        ) from err
    return out


def _why(path: Path, err: OSError) -> str:
    """A short reason why ``path`` could not be created or written."""
    if err.errno == errno.ENAMETOOLONG:
        return "file name too long"
    existing = path
    for existing in (path, *path.parents):
        try:
            found = existing.exists()
        except OSError:
            continue
        if found:
            if not existing.is_dir():
                return f"{str(existing)!r} is a file, not a directory"
            break
    if err.errno == errno.ENOENT:
        return f"no directory can be created inside {str(existing)!r}"
    return (err.strerror or type(err).__name__).lower()


def _close(fig: Any) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists but belongs to someone else
        return True
    return True


def _sweep(area: Path) -> None:
    """Remove staging directories left by processes that no longer run (a killed run)."""
    for entry in area.iterdir():
        parts = entry.name.split(".")
        if len(parts) >= 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _staging(out: Path, name: str) -> Iterator[Path]:
    """A fresh, empty directory ``out/.momlab-staging/<name>.<pid>.<random>``, removed on exit."""
    area = out / STAGING_DIR
    for attempt in range(2):  # a concurrent run may remove the empty area between the two steps
        area.mkdir(exist_ok=True)
        try:
            path = Path(tempfile.mkdtemp(prefix=f"{name}.{os.getpid()}.", dir=area))
            break
        except FileNotFoundError:
            if attempt:
                raise
    os.chmod(path, _DIR_MODE)
    try:
        yield path
    finally:
        _remove(path)
        _sweep(area)
        with contextlib.suppress(OSError):
            area.rmdir()  # only when empty


def _swap_in(staging: Path, final: Path) -> None:
    """Replace ``final`` by the complete directory ``staging`` (same file system: two renames)."""
    old = staging.with_name(f"{staging.name}.old")
    if final.exists() or final.is_symlink():
        os.replace(final, old)
    os.replace(staging, final)
    _remove(old)


def _error_record(experiment: registry.Experiment, err: Exception) -> Record:
    text = str(err).strip()
    message = f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
    return Record(
        claim=experiment.claim,
        prediction={},
        measurement={"error": message},
        tolerance="",
        verdict="error",
        summary=message,
    )


def _write_figures(experiment: registry.Experiment, record: Record, directory: Path) -> None:
    """Plot ``record`` into ``directory``; note the figure digests (or the error) in provenance."""
    from experiments.style import save_figure  # matplotlib only when a figure is drawn

    try:
        fig = experiment.plot(record)
        try:
            paths = save_figure(fig, directory)
        finally:
            _close(fig)
    except Exception as err:
        for path in directory.glob("figure.*"):
            path.unlink()
        record.provenance["plot_error"] = f"{type(err).__name__}: {err}"
        return
    record.provenance["figures"] = {path.name: file_digest(path) for path in paths}


def run_experiment(
    experiment: registry.Experiment,
    *,
    quick: bool | None = None,
    seed: int,
    out: str | Path,
    tier: str | None = None,
    on_progress: runtime.ProgressCallback | None = None,
) -> Record:
    """Run one experiment, write its record and figure under ``out/<name>/`` and return the record.

    An exception in ``run`` becomes a record with verdict ``"error"`` (message in the summary,
    traceback in the provenance); an exception in ``plot`` is noted in the provenance and leaves the
    verdict alone. The files are written into a staging directory, figures before ``record.json``,
    and the whole directory then replaces ``out/<name>/``: nothing of an earlier run survives, and
    until the swap the earlier run's files stay as they were.

    Give either ``quick`` (quick or full tier) or ``tier`` (``"quick"``, ``"full"``, ``"gpu"``).

    The run happens inside :func:`experiments.runtime.running`: its stages and checkpoints live in
    ``out/.work/<name>/<key>`` (key: tier, seed, configuration, code fingerprint), so a killed run
    resumes from its finished stages; the directory is removed once a record without error is
    written. ``on_progress(fraction, what)`` receives the experiment's progress reports.
    """
    check_seed(seed)
    tier = _tier(quick, tier)
    quick = tier == "quick"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = experiment.config_dict(tier)
    fingerprint = code_fingerprint(experiment)
    git = provenance.git_state()  # what runs is the code at the start (as the fingerprint)
    started = provenance.utc_now()
    t0 = time.perf_counter()
    failure: str | None = None
    work = out / runtime.WORK_DIR / experiment.name
    work = work / runtime.work_key(tier=tier, seed=seed, config=config, code=fingerprint)
    try:
        with runtime.running(work, on_progress):
            record = experiment.run(experiment.make_config(tier), seed)
        if not isinstance(record, Record):
            raise TypeError(f"run() returned {type(record).__name__}, not a Record")
    except Exception as err:
        failure = traceback.format_exc(limit=8)
        record = _error_record(experiment, err)
    wall = time.perf_counter() - t0
    prov = provenance.collect(
        seed=seed, quick=quick, started=started, wall_time_s=wall, tier=tier, git=git
    )
    prov["code_fingerprint"] = fingerprint
    if failure:
        prov["traceback"] = failure
    # The returned record holds what record.json holds (plain JSON values), as Record.load would.
    record = dataclasses.replace(
        record,
        prediction=to_jsonable(record.prediction),
        measurement=to_jsonable(record.measurement),
        tolerance=to_jsonable(record.tolerance),
        arrays={k: np.asarray(v) for k, v in record.arrays.items()},
        name=experiment.name,
        config=config,
        provenance=prov,
        claim=record.claim or experiment.claim,
    )
    with _staging(out, experiment.name) as staging:
        if record.verdict != "error":
            _write_figures(experiment, record, staging)
        record.save(staging)
        _swap_in(staging, out / experiment.name)
    if record.verdict != "error":
        runtime.discard(work)
    return record


def _tier(quick: bool | None, tier: str | None) -> str:
    if (quick is None) == (tier is None):
        raise ValueError("give either quick or tier (not both, not neither)")
    return registry.tier_name(quick if tier is None else tier)


def finished_record(
    experiment: registry.Experiment,
    *,
    quick: bool | None = None,
    seed: int,
    out: str | Path,
    tier: str | None = None,
) -> Record | None:
    """The reusable finished record of ``experiment`` under ``out``, or None.

    Reusable means: same name, configuration, tier, seed and :func:`code_fingerprint`, a verdict
    other than ``"error"``, and every figure the record stored still matching its SHA-256 (a
    figure changed on disk makes the record rerun, not reused). A ``record.json`` that cannot be
    read is not reusable either, so it is rerun.
    """
    tier = _tier(quick, tier)
    quick = tier == "quick"
    directory = Path(out) / experiment.name
    try:
        record = Record.load(directory)
    except (FileNotFoundError, ValueError, KeyError):
        return None
    prov = record.provenance
    same = (
        record.name == experiment.name
        and record.verdict != "error"
        and record.config == to_jsonable(experiment.config_dict(tier))
        and prov.get("quick") == quick
        and prov.get("tier", "quick" if prov.get("quick") else "full") == tier
        and prov.get("seed") == seed
        and prov.get("code_fingerprint") == code_fingerprint(experiment)
    )
    stored = prov.get("figures")
    if same and isinstance(stored, dict) and set(record_figures(record, directory)) != set(stored):
        return None
    return record if same else None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened to one experiment in :func:`reproduce` (status: ran/reused/skipped/error)."""

    name: str
    status: str
    detail: str
    record: Record | None = None


def plan(
    experiments: Sequence[registry.Experiment], *, quick: bool, gpu: bool, gpu_present: bool
) -> list[tuple[registry.Experiment, str]]:
    """Pair each experiment with the tier it runs at.

    ``gpu=True`` asks for the gpu tier; a full run (``quick=False``) on a machine with a GPU is
    upgraded to it. In the gpu tier an experiment without a ``gpu()`` configuration runs its full
    one. Otherwise every experiment runs at the asked tier, quick or full, on any machine.

    Example:
        >>> from experiments.registry import get, discover
        >>> exps = [e for e in discover() if e.name == "robust-region"]
        >>> [(e.name, t) for e, t in plan(exps, quick=True, gpu=False, gpu_present=True)]
        [('robust-region', 'quick')]
    """
    full = "gpu" if gpu_present else "full"
    tier = "gpu" if gpu else ("quick" if quick else full)
    return [(exp, tier) for exp in experiments]


def reproduce(
    *,
    out: str | Path = "results",
    quick: bool = True,
    gpu: bool = False,
    force: bool = False,
    only: Sequence[str] = (),
    seed: int = 0,
    on_start: Callable[[str, str], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    on_progress: runtime.ProgressCallback | None = None,
) -> list[Outcome]:
    """Run (or reuse) every selected experiment that fits the machine, then write the report.

    Args:
        out: the results directory.
        quick: quick configurations (True, the default) or the full ones.
        gpu: the gpu tier (paper-scale configurations where declared); chosen automatically for a
            full run when a GPU is present.
        force: rerun even when a matching finished record exists.
        only: names to run (all registered experiments when empty).
        seed: the seed passed to every experiment.
        on_start: called with ``(name, what)`` before each experiment (progress display).
        on_done: called with each :class:`Outcome`.
        on_progress: called with ``(fraction, what)`` as the running experiment reports progress.

    Returns:
        One :class:`Outcome` per experiment, plus one ``error`` outcome per experiment module that
        failed to import (only when ``only`` is empty).

    Raises:
        ValueError: for an unknown name in ``only``, a bad seed or an unwritable ``out``.
    """
    from experiments.report import write_report

    check_seed(seed)
    out = ensure_output_dir(out)
    known = registry.discover()
    selected = [registry.get(n) for n in dict.fromkeys(only)] if only else known
    outcomes: list[Outcome] = []
    if not only:
        for module, message in registry.import_errors().items():
            outcomes.append(Outcome(module, "error", f"import failed: {message}"))
    for exp, tier in plan(selected, quick=quick, gpu=gpu, gpu_present=provenance.has_gpu()):
        old = None if force else finished_record(exp, tier=tier, seed=seed, out=out)
        if old is not None:
            outcome = Outcome(exp.name, "reused", f"{tier}: {old.verdict}", old)
        else:
            if on_start is not None:
                on_start(exp.name, tier)
            rec = run_experiment(exp, tier=tier, seed=seed, out=out, on_progress=on_progress)
            status = "error" if rec.verdict == "error" else "ran"
            outcome = Outcome(exp.name, status, f"{tier}: {rec.verdict}", rec)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    skipped = {o.name: o.detail for o in outcomes if o.status == "skipped" or o.record is None}
    write_report(out, missing=skipped)
    return outcomes
