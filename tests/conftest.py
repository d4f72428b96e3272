"""Test-wide configuration: the ``x64`` fixture (float64 in JAX for one test), the gpu marker and
a session-wide XLA compilation cache."""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import shutil
import tempfile

import pytest

# One XLA compilation cache per test session, shared by the xdist workers (they inherit the
# environment) and removed when the session ends. Many tests build the same computation again
# (an experiment's run rebuilds its closures; a resumed run compiles what the interrupted one
# did), and jit's own cache is per function object: the on-disk cache is keyed by the compiled
# program, so an identical program compiles once per session. A directory given by the user
# (JAX_COMPILATION_CACHE_DIR) is used as it is and kept.
_SESSION_CACHE: str | None = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _SESSION_CACHE = tempfile.mkdtemp(prefix="momlab-test-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")


def _has_gpu() -> bool:
    try:
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture
def x64():
    """Enable float64 in JAX for one test (``@pytest.mark.usefixtures("x64")``), then restore."""
    import jax

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


@pytest.fixture(autouse=True)
def _x64_flag_restored():
    """Fail the test that leaves JAX's process-wide float64 flag changed (and restore it).

    A leaked ``jax_enable_x64 = True`` makes later tests of the same worker trace in float64 and
    fail far from the cause; this names the test that leaked it.
    """
    import jax

    before = jax.config.jax_enable_x64
    yield
    after = jax.config.jax_enable_x64
    if after != before:
        jax.config.update("jax_enable_x64", before)
        pytest.fail(f"the test left jax_enable_x64 = {after} (it was {before})")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run when importing the test modules switched JAX to float64 process-wide."""
    import sys

    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_enable_x64 and not os.environ.get("JAX_ENABLE_X64"):
        raise pytest.UsageError(
            "a test module switched jax_enable_x64 on when it was imported; set it inside the "
            "test (the x64 fixture or jax.enable_x64) instead"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's compilation cache (in the process that created it)."""
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
