"""The import rules of the architecture: who may import whom.

theory/ may import only the standard library, numpy, scipy and sympy. optimizers/, simulators/
and gpu/ must never import theory/ (a measurement that re-evaluates the formula proves nothing),
and each package imports only those below it.

DESIGN.md's further rule, cross-package imports through each package's ``__init__`` public names
only, is checked by :func:`private_reaches`: an import from another of our packages must name a
package (a directory with an ``__init__.py``, such as ``gpu``, ``gpu.data`` or
``simulators.asynchrony``), never one of its modules (``gpu.train``) or a private name.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"theory", "optimizers", "simulators", "gpu", "experiments", "benchmarks", "tests"}

# package -> (allowed third-party roots or None for any, allowed packages of ours)
RULES: dict[str, tuple[set[str] | None, set[str]]] = {
    "theory": ({"numpy", "scipy", "sympy"}, {"theory"}),
    "optimizers": ({"numpy", "jax", "jaxlib", "optax", "chex"}, {"optimizers"}),
    "simulators": (
        {"numpy", "jax", "jaxlib", "optax", "chex", "scipy"},
        {"simulators", "optimizers"},
    ),
    "gpu": (None, {"gpu", "optimizers"}),
    "experiments": (None, {"experiments", "theory", "optimizers", "simulators", "gpu"}),
}
FORBIDDEN_EVERYWHERE_BELOW_EXPERIMENTS = {"matplotlib", "typer", "rich"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _files(root: Path, package: str) -> list[Path]:
    return sorted((root / package).rglob("*.py"))


def violations(root: Path, package: str) -> list[str]:
    """Imports in ``root/package`` that break the package's rule, as ``path:line imports x``."""
    allowed_third, allowed_ours = RULES[package]
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    found = []
    for path in _files(root, package):
        for lineno, name in _imports(path):
            where = f"{path.relative_to(root)}:{lineno} imports {name}"
            if name in OURS:
                if name not in allowed_ours:
                    found.append(where)
            elif name in stdlib:
                continue
            elif (package != "experiments" and name in FORBIDDEN_EVERYWHERE_BELOW_EXPERIMENTS) or (
                allowed_third is not None and name not in allowed_third
            ):
                found.append(where)
    return found


def private_reaches(root: Path, package: str) -> list[str]:
    """Imports in ``root/package`` that reach into another package of ours past an ``__init__``.

    ``from a.b import c`` / ``import a.b`` with ``a`` another of our packages is allowed only when
    ``a/b`` is a package directory with an ``__init__.py`` and ``c`` does not start with ``_``.
    """
    found = []
    for path in _files(root, package):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [(node.module, [alias.name for alias in node.names])]
            else:
                continue
            for module, names in targets:
                top = module.split(".")[0]
                if top not in OURS or top == package or top == "tests":
                    continue
                where = f"{path.relative_to(root)}:{node.lineno} imports {module}"
                if not (root / module.replace(".", "/") / "__init__.py").is_file():
                    found.append(where)
                elif any(n.startswith("_") for n in names):
                    found.append(f"{where} private name")
    return found


@pytest.mark.parametrize("package", [*sorted(RULES), "benchmarks"])
def test_cross_package_imports_go_through_init(package: str) -> None:
    found = private_reaches(ROOT, package)
    assert not found, "\n".join(found)


def test_init_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    files = {
        "gpu/__init__.py": "from gpu.train import train\n",
        "gpu/data/__init__.py": "",
        "gpu/train.py": "",
        "experiments/__init__.py": "",
        "experiments/a.py": (
            "import gpu\nfrom gpu.data import load\nfrom gpu.train import train\n"
            "import gpu.train\nfrom gpu import _secret\nfrom experiments.b import c\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert private_reaches(tmp_path, "gpu") == []  # a package may use its own modules
    assert private_reaches(tmp_path, "experiments") == [
        "experiments/a.py:3 imports gpu.train",
        "experiments/a.py:4 imports gpu.train",
        "experiments/a.py:5 imports gpu private name",
    ]


@pytest.mark.parametrize("package", sorted(RULES))
def test_import_rules(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
    found = violations(ROOT, package)
    assert not found, "\n".join(found)


def test_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    """A simulated tree with planted violations: each is reported, the allowed imports are not."""
    files = {
        "simulators/__init__.py": "import numpy as np\nfrom optimizers import heavy_ball\n",
        "simulators/objectives/leak.py": (
            "import jax.numpy as jnp\n\n\ndef f():\n    from theory import spectral_radius\n"
        ),
        "theory/__init__.py": "import scipy.linalg\nimport sympy as sp\n",
        "theory/plot.py": "import math\nimport matplotlib.pyplot as plt\nfrom jax import numpy\n",
        "theory/up.py": "from experiments import registry\nimport theory.heavy_ball\n",
        "optimizers/__init__.py": "import optax\nimport theory.singlestep\n",
        "gpu/__init__.py": "import flax\nfrom simulators import run\n",
        "experiments/__init__.py": "import matplotlib\nimport theory\nimport gpu\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert violations(tmp_path, "simulators") == [
        "simulators/objectives/leak.py:5 imports theory"  # even inside a function
    ]
    assert violations(tmp_path, "theory") == [
        "theory/plot.py:2 imports matplotlib",
        "theory/plot.py:3 imports jax",
        "theory/up.py:1 imports experiments",
    ]
    assert violations(tmp_path, "optimizers") == ["optimizers/__init__.py:2 imports theory"]
    assert violations(tmp_path, "gpu") == ["gpu/__init__.py:2 imports simulators"]
    assert violations(tmp_path, "experiments") == []
