"""The code fingerprint of an experiment: which version of the code produced a record.

A record made by other code must not be reused, even when its configuration and seed match. The
git commit in the provenance does not tell (a dirty checkout, an installed copy without git), so
every record also stores :func:`code_fingerprint`: a SHA-256 over the sources of the packages that
compute predictions and measurements (:data:`FINGERPRINT_PACKAGES`) and of the experiment's own
module, with the :mod:`experiments.library` modules it takes names from.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from experiments.registry import Experiment

FINGERPRINT_PACKAGES = ("theory", "optimizers", "simulators", "gpu")
_LIBRARY = "experiments.library"


def _hash_source(digest: Any, label: str, data: bytes) -> None:
    digest.update(f"{label}\0{len(data)}\0".encode())
    digest.update(data)


@functools.lru_cache(maxsize=1)
def _packages_fingerprint() -> str:
    """SHA-256 over every ``*.py`` file of :data:`FINGERPRINT_PACKAGES` (once per process)."""
    digest = hashlib.sha256()
    for package in FINGERPRINT_PACKAGES:
        spec = importlib.util.find_spec(package)
        roots = list(spec.submodule_search_locations or []) if spec is not None else []
        if not roots:
            _hash_source(digest, f"{package} (absent)", b"")
        for root in map(Path, roots):
            for path in sorted(root.rglob("*.py")):
                _hash_source(
                    digest, f"{package}/{path.relative_to(root).as_posix()}", path.read_bytes()
                )
    return digest.hexdigest()


def _imported_library_modules(module: types.ModuleType) -> set[str]:
    """Modules of :mod:`experiments.library` named in ``module``'s import statements."""
    file = getattr(module, "__file__", None)
    try:
        tree = ast.parse(Path(file).read_bytes()) if file else None
    except (OSError, SyntaxError, ValueError):
        return set()
    found = set()
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith(f"{_LIBRARY}.") and n in sys.modules)
    return found


def _library_dependencies(module: types.ModuleType) -> set[str]:
    """Modules of :mod:`experiments.library` that ``module`` imports or takes globals from.

    Both the modules named in its import statements (a name re-exported by one module is a
    dependency on that module too) and the modules that define its globals (one level).
    """
    found = _imported_library_modules(module)
    for value in list(vars(module).values()):
        try:
            name = value.__name__ if isinstance(value, types.ModuleType) else value.__module__
        except Exception:  # objects without a module, or with an unusual __getattr__
            continue
        if isinstance(name, str) and name.startswith(f"{_LIBRARY}.") and name in sys.modules:
            found.add(name)
    return found


@functools.cache
def _module_fingerprint(module_name: str) -> str:
    """SHA-256 over the source of ``module_name`` and, transitively, the library modules it uses."""
    seen: set[str] = set()
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        module = sys.modules.get(name)
        if module is not None:
            todo.extend(_library_dependencies(module) - seen)
    digest = hashlib.sha256()
    for name in sorted(seen):
        file = getattr(sys.modules.get(name), "__file__", None)
        source = Path(file).read_bytes() if file and Path(file).is_file() else b""
        _hash_source(digest, name, source)
    return digest.hexdigest()


def code_fingerprint(experiment: Experiment) -> str:
    """The version of the code an experiment runs, as a SHA-256 hex digest.

    It covers the sources of :data:`FINGERPRINT_PACKAGES` and of the module that defines
    ``experiment.run`` together with the :mod:`experiments.library` modules that module imports
    from. Both parts are computed once per process: a record stores the fingerprint of the code it
    was made with, and :func:`experiments.reproduce.finished_record` reuses a record only when it
    matches.

    Example:
        >>> from experiments import registry
        >>> len(code_fingerprint(registry.get("robust-region")))  # doctest: +SKIP
        64
    """
    module = getattr(experiment.run, "__module__", None) or "?"
    digest = hashlib.sha256()
    _hash_source(digest, "packages", _packages_fingerprint().encode())
    _hash_source(digest, module, _module_fingerprint(module).encode())
    return digest.hexdigest()
