"""The experiment framework: registry, records (JSON + NPZ round trip), provenance, style."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest
from _fake_experiments import BROKEN, FAST, FakeConfig

from experiments import registry, reproduce
from experiments.framework import Experiment, Record, figure, register, style, verdict
from experiments.record import LazyArrays, number, to_jsonable
from experiments.style import render


class _Color(str, enum.Enum):  # noqa: UP042  (like theory.Regime)
    RED = "red"


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    fresh: dict = {}
    monkeypatch.setattr(registry, "_REGISTRY", fresh)
    monkeypatch.setattr(registry, "discover", registry.experiments)
    return fresh


def _record() -> Record:
    return Record(
        claim="c",
        prediction={"rate": np.float64(0.9), "grid": np.linspace(0, 1, 3)},
        measurement={"rate": 0.91, "bad": float("nan"), "big": float("inf"), "n": np.int64(3)},
        tolerance={"abs": 0.02},
        verdict=verdict(abs(0.91 - 0.9) <= 0.02),
        summary="predicted 0.9, measured 0.91",
        arrays={"a": np.arange(6.0).reshape(2, 3), "b": np.array([True, False])},
    )


def test_verdict_and_validation() -> None:
    assert verdict(True) == "holds" and verdict(np.bool_(False)) == "fails"
    assert verdict(np.array(True)) == "holds"
    with pytest.raises(ValueError, match="ok"):
        verdict(np.array([True, False]))
    with pytest.raises(ValueError, match="verdict"):
        Record(claim="c", prediction={}, measurement={}, tolerance="", verdict="maybe")
    with pytest.raises(ValueError, match="prediction"):
        Record(claim="c", prediction=[1], measurement={}, tolerance="", verdict="holds")


def test_to_jsonable_converts_numpy_and_non_finite() -> None:
    out = to_jsonable({"x": np.float32(1.5), "v": np.array([1.0, np.nan, -np.inf]), 3: (1, 2)})
    assert out == {"x": 1.5, "v": [1.0, "nan", "-inf"], "3": [1, 2]}
    assert [number(v) for v in out["v"][1:]] == [pytest.approx(float("nan"), nan_ok=True), -np.inf]
    assert to_jsonable(FakeConfig()) == {"n": 64, "scale": 1.0}
    assert to_jsonable(jnp.arange(3.0)) == [0.0, 1.0, 2.0]
    assert to_jsonable({"z": 1 + 2j, "e": _Color.RED}) == {"z": {"re": 1.0, "im": 2.0}, "e": "red"}
    assert type(to_jsonable(_Color.RED)) is str
    with pytest.raises(ValueError, match="object"):
        to_jsonable(object())


def test_record_round_trip(tmp_path) -> None:
    rec = _record()
    path = rec.save(tmp_path / "r")
    assert path.name == "record.json"
    json.loads(path.read_text())  # strict JSON: NaN/inf were converted
    assert not list((tmp_path / "r").glob("*.tmp")), "temporary files must not survive"
    umask = os.umask(0)
    os.umask(umask)
    for name in ("record.json", "arrays.npz"):  # same mode as a file written with open()
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o666 & ~umask
    back = Record.load(tmp_path / "r")
    assert isinstance(back.arrays, LazyArrays) and not back.arrays.loaded
    assert sorted(back.arrays) == ["a", "b"]
    np.testing.assert_array_equal(back.arrays["a"], rec.arrays["a"])
    np.testing.assert_array_equal(back.arrays["b"], rec.arrays["b"])
    assert back.arrays.loaded
    assert back.prediction == {"rate": 0.9, "grid": [0.0, 0.5, 1.0]}
    assert back.measurement["bad"] == "nan" and back.measurement["big"] == "inf"
    assert back.verdict == "holds" and back.summary == rec.summary
    # Saving what was loaded gives the same JSON again.
    back.save(tmp_path / "r2")
    assert (tmp_path / "r2" / "record.json").read_text() == path.read_text()


def test_load_rejects_missing_and_foreign(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no finished record"):
        Record.load(tmp_path)
    (tmp_path / "record.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="schema"):
        Record.load(tmp_path)


def test_registry_register_get_and_errors(clean_registry) -> None:
    register(FAST)
    register(FAST)  # re-import of the same module replaces silently
    assert registry.get("fake-fast") is FAST
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'.*fake-fast"):
        registry.get("nope")
    clash = dataclasses.replace(FAST, run=lambda cfg, seed: None)
    with pytest.raises(ValueError, match="already registered"):
        register(clash)
    assert [e.name for e in registry.experiments()] == ["fake-fast"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"device": "tpu"}, "device"),
        ({"config": dict}, "config"),
        ({"run": 3}, "run"),
    ],
)
def test_experiment_validation(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(FAST, **change)


@dataclasses.dataclass
class _MutableConfig:
    n: int = 1

    @classmethod
    def quick(cls) -> _MutableConfig:
        return cls()


@dataclasses.dataclass(frozen=True)
class _StaticQuick:
    n: int = 1

    @staticmethod
    def quick() -> _StaticQuick:
        return _StaticQuick()


@dataclasses.dataclass(frozen=True)
class _NoQuick:
    n: int = 1


@dataclasses.dataclass(frozen=True)
class _InheritedQuick(FakeConfig):
    pass


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (_MutableConfig, "'fake-fast'.*_MutableConfig must be a frozen dataclass"),
        (_StaticQuick, "'fake-fast'.*_StaticQuick must define a classmethod quick"),
        (_NoQuick, "'fake-fast'.*_NoQuick must define a classmethod quick"),
        (FakeConfig(), "'fake-fast'.*must be a dataclass type"),
    ],
)
def test_config_must_be_frozen_with_a_classmethod_quick(
    clean_registry, config: object, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        register(dataclasses.replace(FAST, config=config))
    assert clean_registry == {}
    register(dataclasses.replace(FAST, config=_InheritedQuick))  # inherited quick() is fine


def test_package_exports() -> None:
    import experiments

    assert experiments.__all__
    for name in experiments.__all__:
        assert getattr(experiments, name) is not None, name
    from experiments import Record as PackageRecord
    from experiments import get, load_records, run_experiment, write_report
    from experiments import reproduce as reproduce_module

    assert (
        PackageRecord is Record
        and get is registry.get
        and run_experiment is reproduce.run_experiment
    )
    assert reproduce_module is reproduce and callable(reproduce_module.reproduce)
    assert write_report.__module__ == load_records.__module__ == "experiments.report"
    with pytest.raises(AttributeError, match="nope"):
        experiments.nope  # noqa: B018


def test_discover_imports_library_and_extra_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_IMPORT_ERRORS", {})
    monkeypatch.setenv(registry.EXTRA_ENV, "no_such_module_for_momlab")
    registry.discover()
    assert "no_such_module_for_momlab" in registry.import_errors()
    with pytest.raises(ValueError, match=r"failed to import: .*no_such_module_for_momlab"):
        registry.get("robust-region-typo")


def test_run_experiment_writes_record_and_figures(tmp_path, clean_registry) -> None:
    rec = reproduce.run_experiment(FAST, quick=True, seed=3, out=tmp_path)
    d = tmp_path / "fake-fast"
    files = {p.name for p in d.iterdir()}
    assert files == {"record.json", "arrays.npz", "figure.png", "figure.svg"}
    back = Record.load(d)
    assert back.config == {"n": 16, "scale": 1.0} and rec.verdict == back.verdict == "holds"
    prov = back.provenance
    assert prov["seed"] == 3 and prov["quick"] is True and prov["wall_time_s"] >= 0
    assert set(prov["versions"]) >= {"python", "numpy", "scipy", "jax", "jaxlib", "optax", "flax"}
    assert prov["device"]["backend"] in {"cpu", "gpu", "tpu"}
    assert isinstance(prov["git_commit"], str) and prov["git_commit"]
    assert "host" not in json.dumps(prov).lower()
    # Same seed -> same measurement: randomness flows only from the seed.
    again = reproduce.run_experiment(FAST, quick=True, seed=3, out=tmp_path / "again")
    assert again.measurement == back.measurement
    assert reproduce.finished_record(FAST, quick=True, seed=3, out=tmp_path) is not None
    assert reproduce.finished_record(FAST, quick=False, seed=3, out=tmp_path) is None
    assert reproduce.finished_record(FAST, quick=True, seed=4, out=tmp_path) is None


def test_provenance_names_the_commit_the_run_started_from(
    tmp_path, clean_registry, monkeypatch
) -> None:
    """A commit made while a long run runs is not the code it ran: the record keeps the first."""
    from experiments import provenance

    states = iter([("commit-at-start", False)])
    monkeypatch.setattr(provenance, "git_state", lambda: next(states, ("commit-later", True)))
    rec = reproduce.run_experiment(FAST, quick=True, seed=3, out=tmp_path)
    assert rec.provenance["git_commit"] == "commit-at-start"
    assert rec.provenance["git_dirty"] is False


def test_a_raising_experiment_becomes_an_error_record(tmp_path) -> None:
    rec = reproduce.run_experiment(BROKEN, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "error" and "always raises" in rec.summary
    back = Record.load(tmp_path / "fake-broken")
    assert "RuntimeError" in back.provenance["traceback"]
    assert not (tmp_path / "fake-broken" / "figure.png").exists()
    assert reproduce.finished_record(BROKEN, quick=True, seed=0, out=tmp_path) is None


def test_check_seed_and_output_dir(tmp_path) -> None:
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            reproduce.check_seed(bad)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="not writable"):
        reproduce.ensure_output_dir(blocker / "sub")


def test_style_table_and_reproducible_figures() -> None:
    for method in ("sgd", "sgdm", "adam", "yellowfin", "yellowfin-closed", "momo", "momo-adam"):
        assert style(method)["color"].startswith("#")
    assert style("heavy-ball", lw=2)["lw"] == 2
    assert style("theory")["linestyle"] == "--"
    with pytest.raises(ValueError, match="method"):
        style("rmsprop")
    with pytest.raises(ValueError, match="ncols"):
        figure(ncols=0)
    fig, axes = figure(ncols=2)
    assert axes.shape == (2,)
    x = np.linspace(0, 2 * math.pi, 50)
    for ax in axes:
        ax.plot(x, np.sin(x), **style("momo"))
    svg1, svg2 = render(fig, "svg"), render(fig, "svg")
    assert svg1 == svg2 and b"<dc:date>" not in svg1
    assert render(fig, "png") == render(fig, "png")


@dataclasses.dataclass(frozen=True)
class _TieredConfig:
    n: int = 64

    @classmethod
    def quick(cls) -> _TieredConfig:
        return cls(n=16)

    @classmethod
    def gpu(cls) -> _TieredConfig:
        return cls(n=4096)


def test_plan_picks_one_tier_and_every_experiment_runs() -> None:
    gpu_exp = dataclasses.replace(FAST, name="fake-g", device="gpu", config=_TieredConfig)
    exps = [FAST, gpu_exp]

    def tiers(**kw):
        return [t for _, t in reproduce.plan(exps, **kw)]

    assert tiers(quick=True, gpu=False, gpu_present=False) == ["quick", "quick"]
    assert tiers(quick=True, gpu=False, gpu_present=True) == ["quick", "quick"]
    assert tiers(quick=False, gpu=False, gpu_present=False) == ["full", "full"]
    assert tiers(quick=False, gpu=False, gpu_present=True) == ["gpu", "gpu"]
    assert tiers(quick=True, gpu=True, gpu_present=False) == ["gpu", "gpu"]
    # the gpu tier is the gpu() config where declared, the full config elsewhere
    assert gpu_exp.has_gpu_tier and not FAST.has_gpu_tier
    assert gpu_exp.make_config("gpu").n == 4096 and FAST.make_config("gpu").n == 64
    assert gpu_exp.make_config(True).n == 16 and gpu_exp.make_config("full").n == 64
    with pytest.raises(ValueError, match="tier must be one of"):
        FAST.make_config("huge")


def test_framework_exports() -> None:
    assert Experiment is registry.Experiment


def test_moving_average_skips_non_finite_samples_like_a_direct_window_mean() -> None:
    from experiments.framework import moving_average

    rng = np.random.default_rng(0)
    x = rng.normal(size=97)
    x[rng.choice(97, 20, replace=False)] = np.nan
    x[:9] = np.inf  # a window with no finite sample gives NaN
    for width in (1, 4, 7):
        got = moving_average(x, width)
        # np.convolve(..., "same") centres the window at offset (width - 1) // 2 from its start
        lo = np.arange(x.size) - (width - 1) // 2 - (1 - width % 2)
        for t in range(x.size):
            w = x[max(lo[t], 0) : max(lo[t] + width, 0)]
            w = w[np.isfinite(w)]
            if w.size:
                assert got[t] == pytest.approx(w.mean(), rel=1e-12)
            else:
                assert np.isnan(got[t])
    with pytest.raises(ValueError, match=r"^width must be an integer >= 1"):
        moving_average(x, 0)
