"""The result of one experiment: claim, prediction, measurement, verdict, arrays and provenance.

A :class:`Record` is written under ``results/<name>/`` as ``record.json`` (all but the arrays) and
``arrays.npz`` (the arrays). Both files are written atomically (a temporary file in the same
directory, then :func:`os.replace`), and ``record.json`` is written last: a directory holds a
*finished* record exactly when its ``record.json`` exists, which is what lets ``momlab reproduce``
resume after an interruption without ever trusting a half-written result.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from experiments.checks import VERDICTS, Check, decide, validate

RECORD_FILE = "record.json"
ARRAYS_FILE = "arrays.npz"
SCHEMA = 1


__all__ = ["VERDICTS", "Record", "number", "to_jsonable", "verdict"]


def verdict(ok: bool | np.bool_) -> str:
    """The verdict of a comparison: ``"holds"`` when ``ok`` is true, ``"fails"`` otherwise.

    Example:
        >>> verdict(abs(0.91 - 0.9) <= 0.02)
        'holds'
    """
    if isinstance(ok, np.ndarray):
        if ok.size != 1:
            raise ValueError(f"ok must be a single boolean, not an array of shape {ok.shape}")
        ok = ok.item()
    return "holds" if bool(ok) else "fails"


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` into plain JSON types.

    NumPy scalars become Python numbers, arrays and tuples become lists, dataclasses and mappings
    become dicts with string keys. Non-finite numbers, which JSON cannot write, become the strings
    ``"nan"``, ``"inf"`` and ``"-inf"``, everywhere (alone or inside lists); :func:`number` reads
    them back. JSON ``null`` (``None``) is kept for what the record leaves *undefined* (a value
    that does not exist for this run, whose check note says why), never for a computed NaN.

    Example:
        >>> to_jsonable({"rate": np.float32(0.5), "v": np.array([1.0, np.nan, -np.inf])})
        {'rate': 0.5, 'v': [1.0, 'nan', '-inf']}

    Raises:
        ValueError: for a value with no JSON form (naming its type).
    """
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, (complex, np.complexfloating)):
        return {"re": to_jsonable(value.real), "im": to_jsonable(value.imag)}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()] if value.ndim else to_jsonable(value.item())
    if hasattr(value, "__array__") and hasattr(value, "shape"):  # jax arrays
        return to_jsonable(np.asarray(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    raise ValueError(f"value of type {type(value).__name__} has no JSON form")


def number(value: Any) -> float | None:
    """A number written by :func:`to_jsonable` as a float (``"nan"``/``"inf"``/``"-inf"`` too).

    ``None`` (undefined) stays ``None``.

    Raises:
        ValueError: for a value that is not a number, naming it.

    Example:
        >>> number("inf"), number(2), number(None)
        (inf, 2.0, None)
    """
    if value is None:
        return None
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"value must be a number or 'nan'/'inf'/'-inf' (got {value!r})")


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~current_umask()  # what open() would give; mkstemp alone gives 0600


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, sync it, then ``os.replace`` it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes as a hex string (how a record names its own figures)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and os.replace."""
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


class LazyArrays(Mapping[str, np.ndarray]):
    """Read-only mapping over an ``arrays.npz`` that is opened only on first access."""

    def __init__(self, path: Path, names: list[str]) -> None:
        self._path = Path(path)
        self._names = list(names)
        self._data: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._data is None:
            with np.load(self._path, allow_pickle=False) as npz:
                self._data = {k: npz[k] for k in npz.files}
        return self._data

    @property
    def loaded(self) -> bool:
        """Whether the NPZ file has been read."""
        return self._data is not None

    def __getitem__(self, key: str) -> np.ndarray:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names if self._data is None else self._data)

    def __len__(self) -> int:
        return len(self._names if self._data is None else self._data)


@dataclasses.dataclass
class Record:
    """One experiment's outcome.

    Attributes:
        claim: the claim under test, one sentence.
        prediction: what theory predicts (JSON-able after :func:`to_jsonable`).
        measurement: what the simulator or trainer measured.
        tolerance: the tolerance of the comparison (a dict of numbers or a sentence).
        verdict: one of :data:`VERDICTS`. Leave it empty when ``checks`` are given: it is then
            :func:`experiments.checks.decide` of them (a verdict given next to checks must equal
            it, so the verdict, the report row and the README line come from one place).
        summary: one line, e.g. ``"predicted 0.900, measured 0.901"``.
        arrays: named NumPy arrays (written to ``arrays.npz``, loaded back lazily).
        name: the experiment's registry name (filled by the runner).
        config: the configuration as a dict (filled by the runner from the config dataclass).
        provenance: git commit, dirty flag, package versions, seed, device, wall time, start time
            and quick flag (filled by the runner).
        checks: the :class:`~experiments.checks.Check` list the verdict is decided from.
        smoke: why the configuration is too small to decide (empty when it can decide); a
            non-empty reason makes the verdict ``"smoke"`` unless a precondition or a verification
            fails.
    """

    claim: str
    prediction: dict[str, Any]
    measurement: dict[str, Any]
    tolerance: dict[str, Any] | str
    verdict: str = ""
    summary: str = ""
    arrays: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    name: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: list[Check] = dataclasses.field(default_factory=list)
    smoke: str = ""

    def __post_init__(self) -> None:
        self.checks = validate(self.checks)
        if self.checks and self.verdict != "error":
            decided = decide(self.checks, smoke=bool(self.smoke))
            if self.verdict and self.verdict != decided:
                raise ValueError(
                    f"verdict {self.verdict!r} disagrees with its checks, which decide {decided!r}"
                )
            self.verdict = decided
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)} (got {self.verdict!r})")
        for field in ("prediction", "measurement"):
            if not isinstance(getattr(self, field), Mapping):
                raise ValueError(f"{field} must be a dict")
        if not isinstance(self.tolerance, (str, Mapping)):
            raise ValueError("tolerance must be a dict or a string")
        if not isinstance(self.arrays, Mapping):
            raise ValueError("arrays must be a dict of numpy arrays")

    def to_json(self) -> dict[str, Any]:
        """Everything but the arrays as plain JSON types (arrays are listed by name and shape)."""
        arrays = {
            k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)}
            for k, v in self.arrays.items()
        }
        return {
            "schema": SCHEMA,
            "name": self.name,
            "claim": self.claim,
            "verdict": self.verdict,
            "summary": self.summary,
            "prediction": to_jsonable(self.prediction),
            "measurement": to_jsonable(self.measurement),
            "tolerance": to_jsonable(self.tolerance),
            "config": to_jsonable(self.config),
            "provenance": to_jsonable(self.provenance),
            "arrays": arrays,
            "checks": [c.to_json() for c in self.checks],
            "smoke": self.smoke,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``arrays.npz``, then ``record.json``, atomically into ``directory`` (created).

        Returns:
            The path of ``record.json``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        arrays = {k: np.asarray(v) for k, v in self.arrays.items()}
        if any(a.dtype == object for a in arrays.values()):
            raise ValueError("arrays must be numeric numpy arrays (got an object array)")
        _atomic_write(directory / ARRAYS_FILE, lambda handle: np.savez_compressed(handle, **arrays))
        path = directory / RECORD_FILE
        atomic_write_text(path, payload)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Record:
        """Read a record written by :meth:`save`; its arrays are read only when first accessed.

        Raises:
            FileNotFoundError: when ``directory`` holds no finished record.
            ValueError: when ``record.json`` is not a record of this schema.
        """
        directory = Path(directory)
        path = directory / RECORD_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no finished record in {directory} ({RECORD_FILE} missing)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"{path} is not a record of schema {SCHEMA}")
        names = list(data.get("arrays", {}))
        arrays: Mapping[str, np.ndarray] = LazyArrays(directory / ARRAYS_FILE, names)
        return cls(
            claim=data["claim"],
            prediction=data["prediction"],
            measurement=data["measurement"],
            tolerance=data["tolerance"],
            verdict=data["verdict"],
            summary=data.get("summary", ""),
            arrays=arrays,
            name=data.get("name", ""),
            config=data.get("config", {}),
            provenance=data.get("provenance", {}),
            checks=[Check.from_json(c) for c in data.get("checks", [])],
            smoke=data.get("smoke", ""),
        )
