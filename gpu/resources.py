"""Peak memory and steps per second of a training run, measured around its compiled chunks.

A run is a loop of chunk calls ``run(state, data, n)`` (a jitted ``lax.scan`` of ``n`` steps, see
:func:`gpu.train.scan_steps`). :class:`ResourceMeter` wraps each call:

- **Steps per second** = (steps of the timed chunks) / (their wall time). A chunk is timed from the
  call to ``jax.block_until_ready`` of its outputs (the only sync; nothing blocks inside a step).
  The first chunk of a meter is never timed (first dispatch, buffer allocation), nor is any chunk
  during which JAX traced or compiled a program (counted by a ``jax.monitoring`` listener): the
  rate excludes compilation. A run of a single chunk therefore has no rate (``None``).
- **Peak memory**, ``peak_bytes``, with ``memory_source`` naming where it comes from:

  - ``"device_peak_bytes_in_use"`` (devices that report allocator statistics, e.g. a GPU):
    ``device.memory_stats()["peak_bytes_in_use"]`` at the end of the run. JAX cannot reset this
    peak, so it is the process's peak so far: the run's own peak (with every array alive in the
    process at the time) when the run raised it (``device_peak_raised``), an upper bound of the
    run's peak otherwise.
  - ``"compiled_memory_analysis"`` (the CPU, whose allocator reports nothing): XLA's memory
    analysis of the compiled chunk program (``jit(...).lower(...).compile().memory_analysis()``),
    ``footprint = argument + output - alias + temp`` bytes, the largest over the run's chunk
    lengths. The arguments hold the state and the device-resident data set; the donated state
    aliases its output (``alias``); ``temp`` is the program's scratch allocation. It is what the
    program needs while it runs, a property of the program, not a measurement of the process.

  ``compiled`` keeps the analysis on every backend. ``process_peak_rss_bytes`` is the process's
  peak resident set (``resource.getrusage``) at the end of the run: it covers every run, data set
  and compilation of the process before it, so it is not separable per run; it is recorded as the
  context of the other numbers.

:func:`collect` gathers the :class:`RunResources` of every meter that finishes while it is active
(``experiments.gpu_checks`` uses it to record every run of an experiment).
"""

from __future__ import annotations

import contextlib
import numbers
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import jax
import jax.monitoring

#: ``jax.monitoring`` duration events that mark a trace or a compilation.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/backend_compile_duration",
)

_counts = dict.fromkeys(COMPILE_EVENTS, 0)
_collectors: list[list[RunResources]] = []


def _on_event(event: str, duration: float, **_: Any) -> None:
    if event in _counts:
        _counts[event] += 1


jax.monitoring.register_event_duration_secs_listener(_on_event)


def trace_count() -> int:
    """Functions traced to a jaxpr by JAX in this process since ``gpu.resources`` was imported."""
    return _counts[COMPILE_EVENTS[0]]


def compile_count() -> int:
    """Programs compiled by XLA in this process since ``gpu.resources`` was imported."""
    return _counts[COMPILE_EVENTS[1]]


def compiled_memory(compiled: Any) -> dict[str, int] | None:
    """XLA's memory analysis of a compiled program (``jax.stages.Compiled``), or None.

    Returns:
        ``argument_bytes``, ``output_bytes``, ``alias_bytes``, ``temp_bytes``,
        ``generated_code_bytes`` and ``footprint_bytes = argument + output - alias + temp``
        (what the program holds while it runs; donated arguments alias outputs and count once).
    """
    try:
        stats = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if stats is None:
        return None
    names = {
        "argument_bytes": "argument_size_in_bytes",
        "output_bytes": "output_size_in_bytes",
        "alias_bytes": "alias_size_in_bytes",
        "temp_bytes": "temp_size_in_bytes",
        "generated_code_bytes": "generated_code_size_in_bytes",
    }
    out = {k: int(getattr(stats, a, 0) or 0) for k, a in names.items()}
    out["footprint_bytes"] = (
        out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
    )
    return out


def chunk_memory(run: Callable, state: Any, data: Any, length: int) -> dict[str, int] | None:
    """Memory analysis of the program ``run(state, data, length)`` (``run`` a ``jax.jit``).

    After a call with arguments of the same shapes, ``lower(...).compile()`` is served from JAX's
    caches (no trace, no compilation). Returns None when ``run`` cannot be lowered.
    """
    lower = getattr(run, "lower", None)
    if lower is None:
        return None
    return compiled_memory(lower(state, data, length).compile())


def device_peak_bytes(device: jax.Device | None = None) -> int | None:
    """``peak_bytes_in_use`` of the device's allocator (process-wide), None where not reported."""
    dev = jax.devices()[0] if device is None else device
    try:
        stats = dev.memory_stats()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return int(stats["peak_bytes_in_use"])


def process_peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``getrusage``; KiB on Linux, bytes on
    macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


@dataclass(frozen=True)
class RunResources:
    """Speed and memory of one run (see the module docstring for what each number means).

    Attributes:
        steps_per_s: timed steps / timed seconds, compilation excluded; None without a timed chunk.
        timed_steps, timed_s: what the rate is made of.
        untimed_steps: steps of the first chunk and of chunks that traced or compiled.
        chunks: chunk calls measured.
        peak_bytes: the headline peak memory, from ``memory_source``; None when unknown.
        memory_source: ``"device_peak_bytes_in_use"``, ``"compiled_memory_analysis"`` or
            ``"unavailable"``.
        device_peak_bytes: the device allocator's process-wide peak at the end (None on the CPU).
        device_peak_raised: whether the run raised that peak (then it is the run's own peak).
        compiled: the largest :func:`compiled_memory` over the run's chunk programs.
        process_peak_rss_bytes: the process's peak resident set at the end (cumulative).
        platform: the device's platform (``cpu``, ``gpu``, ...).
    """

    steps_per_s: float | None
    timed_steps: int
    timed_s: float
    untimed_steps: int
    chunks: int
    peak_bytes: int | None
    memory_source: str
    device_peak_bytes: int | None
    device_peak_raised: bool | None
    compiled: dict[str, int] | None
    process_peak_rss_bytes: int
    platform: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return asdict(self)


class ResourceMeter:
    """Times the chunks of one run and gathers its memory; :meth:`finish` gives the result.

    Example:
        >>> import jax.numpy as jnp
        >>> run = jax.jit(lambda s, d, n: (s + n * d, {}), static_argnums=2)
        >>> meter = ResourceMeter()
        >>> state = jnp.zeros(3)
        >>> for _ in range(3):
        ...     state, _ = meter.run_chunk(run, state, jnp.ones(3), 5)
        >>> res = meter.finish()
        >>> res.chunks, res.timed_steps, res.untimed_steps, res.steps_per_s > 0
        (3, 10, 5, True)
    """

    def __init__(self, device: jax.Device | None = None) -> None:
        self.device = jax.devices()[0] if device is None else device
        self._peak_start = device_peak_bytes(self.device)
        self._lengths: set[int] = set()
        self._compiled: dict[str, int] | None = None
        self.chunks = self.timed_steps = self.untimed_steps = 0
        self.timed_s = 0.0

    def run_chunk(self, run: Callable, state: Any, data: Any, length: int) -> Any:
        """``run(state, data, length)``, blocked on at the end and timed; returns its output.

        ``run`` returns ``(state, metrics)``; the first time a chunk length is seen, the compiled
        program's memory analysis is read with the returned state (same shapes, served from the
        cache).
        """
        return self._timed(
            length,
            lambda: run(state, data, length),
            lambda out: chunk_memory(run, out[0], data, length),
        )

    def measure(self, fn: Callable, *args: Any, steps: int) -> Any:
        """``fn(*args)``, a compiled call that makes ``steps`` steps, blocked on and timed.

        For loops of another form than ``run(state, data, n)``; the memory analysis comes from
        ``fn.lower(*args)`` when ``fn`` is a ``jax.jit`` whose arguments are not donated.
        """

        def memory(_: Any) -> dict[str, int] | None:
            lower = getattr(fn, "lower", None)
            leaves = jax.tree_util.tree_leaves(args)
            if lower is None or any(getattr(a, "is_deleted", lambda: False)() for a in leaves):
                return None
            return compiled_memory(lower(*args).compile())

        return self._timed(steps, lambda: fn(*args), memory)

    def _timed(self, steps: int, call: Callable[[], Any], memory: Callable[[Any], Any]) -> Any:
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1 (got {steps!r})")
        before = trace_count() + compile_count()
        t0 = time.perf_counter()
        out = call()
        jax.block_until_ready(out)
        elapsed = time.perf_counter() - t0
        if self.chunks > 0 and trace_count() + compile_count() == before:
            self.timed_steps += steps
            self.timed_s += elapsed
        else:
            self.untimed_steps += steps
        self.chunks += 1
        if steps not in self._lengths:
            self._lengths.add(steps)
            mem = memory(out)
            if mem is not None and (
                self._compiled is None or mem["footprint_bytes"] > self._compiled["footprint_bytes"]
            ):
                self._compiled = mem
        return out

    def finish(self) -> RunResources:
        """The run's :class:`RunResources` (also handed to every active :func:`collect`)."""
        peak = device_peak_bytes(self.device)
        if peak is not None:
            headline, source = peak, "device_peak_bytes_in_use"
            raised = self._peak_start is None or peak > self._peak_start
        elif self._compiled is not None:
            headline, source, raised = (
                self._compiled["footprint_bytes"],
                "compiled_memory_analysis",
                None,
            )
        else:
            headline, source, raised = None, "unavailable", None
        res = RunResources(
            steps_per_s=self.timed_steps / self.timed_s if self.timed_s > 0 else None,
            timed_steps=self.timed_steps,
            timed_s=self.timed_s,
            untimed_steps=self.untimed_steps,
            chunks=self.chunks,
            peak_bytes=headline,
            memory_source=source,
            device_peak_bytes=peak,
            device_peak_raised=raised,
            compiled=self._compiled,
            process_peak_rss_bytes=process_peak_rss_bytes(),
            platform=self.device.platform,
        )
        for sink in _collectors:
            sink.append(res)
        return res


@contextlib.contextmanager
def collect() -> Iterator[list[RunResources]]:
    """Context manager yielding a list that receives every run finished inside it (nested
    collectors each receive them)."""
    sink: list[RunResources] = []
    _collectors.append(sink)
    try:
        yield sink
    finally:
        _collectors[:] = [c for c in _collectors if c is not sink]
