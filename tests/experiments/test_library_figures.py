"""Every figure of these experiments reads well on the data of a quick run (legends off the data,
every drawn line in a legend, no hidden markers or lines, readable ticks; see
``_figure_checks.py``), and the panel titles of asynchrony-momentum name their M.

The figures are drawn from stored quick-run records (``figure_records/<name>/``: the record's
config, prediction and measurement in ``record.json``, its arrays compressed in ``arrays.npz``),
so no experiment runs here. After a change to an experiment's arrays, store a fresh quick run::

    momlab run NAME --out /tmp/quick
    python tests/experiments/test_library_figures.py /tmp/quick NAME
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _figure_checks import assert_figure_reads_well

from experiments.record import Record, to_jsonable

HERE = Path(__file__).parent
RECORDS = HERE / "figure_records"
NAMES = (
    "robust-region",
    "sqrt-mu-rate",
    "transients",
    "noise-floor",
    "rate-failures",
    "momo-bounds",
    "momo-robustness",
    "nonconvex-constant-rate",
    "singlestep-yellowfin-nqm",
    "asynchrony-momentum",
)
_FIELDS = ("config", "prediction", "measurement")


def stored_record(name: str) -> Record:
    """The stored quick-run record of experiment ``name`` (enough of it to draw its figure)."""
    folder = RECORDS / name
    data = json.loads((folder / "record.json").read_text(encoding="utf-8"))
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k].astype(np.float64) if npz[k].dtype == np.float32 else npz[k]
                  for k in npz.files}  # fmt: skip
    return Record(
        claim="",
        prediction=data["prediction"],
        measurement=data["measurement"],
        tolerance={},
        verdict="holds",
        arrays=arrays,
        name=name,
        config=data["config"],
    )


def _experiment(name: str):
    from experiments.registry import discover, get

    discover()
    return get(name)


@pytest.mark.parametrize("name", NAMES)
def test_figure_reads_well(name: str) -> None:
    assert_figure_reads_well(_experiment(name).plot(stored_record(name)))


def test_asynchrony_panel_titles_name_their_m() -> None:
    record = stored_record("asynchrony-momentum")
    fig = _experiment("asynchrony-momentum").plot(record)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4, titles
    keys = ("hist_workers", "mean_workers", "opt_workers", "best_workers")
    for title, key in zip(titles, keys, strict=True):
        ms = np.ravel(record.config[key]) if key in record.config else record.arrays[key]
        assert "M=" + ", ".join(str(int(m)) for m in ms) in title, (title, key)


def store(results: Path, name: str) -> None:
    """Write ``figure_records/<name>/`` from the quick run in ``results/<name>/``."""
    record = Record.load(results / name)
    folder = RECORDS / name
    folder.mkdir(parents=True, exist_ok=True)
    payload = {f: to_jsonable(getattr(record, f)) for f in _FIELDS}
    (folder / "record.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    np.savez_compressed(
        folder / "arrays.npz", **{k: _small(record.arrays[k]) for k in record.arrays}
    )


def _small(a: np.ndarray) -> np.ndarray:
    """float32 where every finite non-zero value lies in [1e-30, 1e30] (a figure cannot tell)."""
    if a.dtype != np.float64:
        return a
    mag = np.abs(a[np.isfinite(a) & (a != 0)])
    return a.astype(np.float32) if not mag.size or (mag.min() > 1e-30 and mag.max() < 1e30) else a


if __name__ == "__main__":
    for experiment in sys.argv[2:] or NAMES:
        store(Path(sys.argv[1]), experiment)
