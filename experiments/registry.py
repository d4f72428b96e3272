"""The registry of experiments.

Every module of the package :mod:`experiments.library` registers its experiment at import time with
:func:`register`; :func:`discover` imports them all (and the modules named in the environment
variable ``MOMLAB_EXTRA_EXPERIMENTS``, a comma-separated list of importable module paths: this is
how experiments outside the package are added without touching it).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import re
import traceback
from collections.abc import Callable
from typing import Any

from experiments.record import Record, to_jsonable

SEED_MAX = 2**32 - 1
DEVICES = ("cpu", "gpu")
TIERS = ("quick", "full", "gpu")
EXTRA_ENV = "MOMLAB_EXTRA_EXPERIMENTS"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

_REGISTRY: dict[str, Experiment] = {}
_IMPORT_ERRORS: dict[str, str] = {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One reproducible claim.

    Attributes:
        name: short slug (lower case, digits, dashes), also the results directory name.
        title: a few words for tables and figure titles.
        claim: the claim under test, one sentence.
        config: a frozen dataclass type (``@dataclass(frozen=True)``) with a classmethod
            ``quick``; ``config()`` is the full configuration (the CPU evidence) and
            ``config.quick()`` the quick one (minutes on a 2-core CPU). An optional classmethod
            ``gpu`` gives the paper-scale configuration of the ``gpu`` tier; without it the gpu
            tier runs the full configuration.
        run: ``run(cfg, seed) -> Record``: prediction from theory, measurement from a simulator or a
            trainer, and the verdict.
        plot: ``plot(record) -> matplotlib.figure.Figure``.
        device: ``"cpu"`` or ``"gpu"`` (what the full configuration is meant for). Every quick
            configuration runs on a CPU.
        order: position in listings and in the report.
    """

    name: str
    title: str
    claim: str
    config: type
    run: Callable[[Any, int], Record]
    plot: Callable[[Record], Any]
    device: str = "cpu"
    order: int = 100

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"name must be lower-case letters, digits and dashes (got {self.name!r})"
            )
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)} (got {self.device!r})")
        _check_config(self.name, self.config)
        if not callable(self.run) or not callable(self.plot):
            raise ValueError(f"experiment {self.name!r}: run and plot must be callables")

    @property
    def has_gpu_tier(self) -> bool:
        """Whether the config declares a paper-scale ``gpu()`` configuration of its own."""
        return isinstance(inspect.getattr_static(self.config, "gpu", None), classmethod)

    def make_config(self, tier: bool | str) -> Any:
        """The configuration instance of ``tier`` (``True``/``False`` mean quick/full).

        Raises:
            ValueError: for an unknown tier, or a classmethod returning another type.
        """
        tier = tier_name(tier)
        if tier == "quick":
            cfg, made_by = self.config.quick(), "quick()"
        elif tier == "gpu" and self.has_gpu_tier:
            cfg, made_by = self.config.gpu(), "gpu()"
        else:
            cfg, made_by = self.config(), "the constructor"
        if not isinstance(cfg, self.config):
            raise ValueError(f"{self.name}: config.{made_by} must return a {self.config.__name__}")
        return cfg

    def config_dict(self, tier: bool | str) -> dict[str, Any]:
        """The configuration as plain JSON types (what a record stores and reuse compares)."""
        return to_jsonable(dataclasses.asdict(self.make_config(tier)))


def tier_name(tier: bool | str) -> str:
    """``"quick"``, ``"full"`` or ``"gpu"`` from a tier name or a quick flag.

    Example:
        >>> tier_name(True), tier_name(False), tier_name("gpu")
        ('quick', 'full', 'gpu')
    """
    if isinstance(tier, (bool,)):
        return "quick" if tier else "full"
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)} (got {tier!r})")
    return tier


def _check_config(name: str, config: Any) -> None:
    """Check that ``config`` is a frozen dataclass type with a classmethod ``quick``.

    Frozen, because a configuration must not change after its record was made.

    Raises:
        ValueError: naming the experiment and what is wrong with its config.
    """
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise ValueError(
            f"experiment {name!r}: config must be a dataclass type (got {config!r}); "
            "declare it with @dataclasses.dataclass(frozen=True)"
        )
    if not config.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise ValueError(
            f"experiment {name!r}: config {config.__name__} must be a frozen dataclass "
            "(@dataclasses.dataclass(frozen=True))"
        )
    if not isinstance(inspect.getattr_static(config, "quick", None), classmethod):
        raise ValueError(
            f"experiment {name!r}: config {config.__name__} must define a classmethod quick()"
        )


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry and return it.

    Re-registering the same name from the same module (a re-import) replaces the entry.

    Raises:
        ValueError: when ``experiment`` is not an :class:`Experiment`, its config is not a frozen
            dataclass with a classmethod ``quick``, or another module already registered the name.
    """
    if not isinstance(experiment, Experiment):
        raise ValueError(f"register() takes an Experiment (got {type(experiment).__name__})")
    _check_config(experiment.name, experiment.config)
    old = _REGISTRY.get(experiment.name)
    if old is not None and _origin(old) != _origin(experiment):
        raise ValueError(
            f"experiment name {experiment.name!r} is already registered by {_origin(old)}"
        )
    _REGISTRY[experiment.name] = experiment
    return experiment


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (no error when absent)."""
    _REGISTRY.pop(name, None)


def _origin(experiment: Experiment) -> str:
    return getattr(experiment.run, "__module__", "?") or "?"


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as err:  # a broken module must not hide the others
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        _IMPORT_ERRORS[module] = last
    else:
        _IMPORT_ERRORS.pop(module, None)


def discover() -> list[Experiment]:
    """Import every experiment module and return the registered experiments in report order.

    Modules that fail to import are remembered in :func:`import_errors`, not raised.
    """
    import experiments.library as library

    for info in pkgutil.iter_modules(library.__path__, prefix=f"{library.__name__}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            _import(info.name)
    for module in filter(None, (m.strip() for m in os.environ.get(EXTRA_ENV, "").split(","))):
        _import(module)
    return experiments()


def experiments() -> list[Experiment]:
    """The registered experiments sorted by ``(order, name)``."""
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.name))


def import_errors() -> dict[str, str]:
    """Modules that failed to import during :func:`discover`, with the last line of the error."""
    return dict(_IMPORT_ERRORS)


def get(name: str) -> Experiment:
    """The registered experiment called ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in _REGISTRY:
        known = ", ".join(e.name for e in experiments()) or "none"
        broken = (
            f"; modules that failed to import: {', '.join(_IMPORT_ERRORS)}"
            if _IMPORT_ERRORS
            else ""
        )
        raise ValueError(f"unknown experiment {name!r} (known: {known}{broken})")
    return _REGISTRY[name]
