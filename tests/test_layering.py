"""The import rules of the architecture: who may import whom.

theory/ may import only the standard library, numpy, scipy and sympy. optimizers/, simulators/
and gpu/ must never import theory/ (a measurement that re-evaluates the formula proves nothing),
and each package imports only those below it.
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


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RULES))
def test_import_rules(package: str) -> None:
    allowed_third, allowed_ours = RULES[package]
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    violations = []
    for path in _files(package):
        for lineno, root in _imports(path):
            where = f"{path.relative_to(ROOT)}:{lineno} imports {root}"
            if root in OURS:
                if root not in allowed_ours:
                    violations.append(where)
            elif root in stdlib:
                continue
            elif (package != "experiments" and root in FORBIDDEN_EVERYWHERE_BELOW_EXPERIMENTS) or (
                allowed_third is not None and root not in allowed_third
            ):
                violations.append(where)
    assert not violations, "\n".join(violations)


def test_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import jax\nfrom theory import spectral_radius\n")
    assert [root for _, root in _imports(bad)] == ["jax", "theory"]
