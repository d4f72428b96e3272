"""Real networks on offline data in JAX: datasets, flax nnx models, training, stale gradients.

The same code runs on a GPU when JAX sees one and on the CPU otherwise.
"""

from __future__ import annotations

from gpu.checkpoint import load_checkpoint, save_checkpoint
from gpu.lr_sweep import SweepResult, sweep_learning_rates
from gpu.rates import (
    Coordinates,
    RateReport,
    gather_coordinates,
    per_variable_rates,
    sample_coordinates,
)
from gpu.resources import (
    ResourceMeter,
    RunResources,
    chunk_memory,
    device_peak_bytes,
    process_peak_rss_bytes,
)
from gpu.resources import collect as collect_resources
from gpu.stale import StalenessLaw, empirical, fixed, geometric, uniform
from gpu.tasks import (
    SORT_MAX_EXAMPLES,
    Task,
    classification_task,
    eval_graphdef,
    evaluate,
    forward_loss,
    language_model_task,
)
from gpu.train import (
    TrainResult,
    TrainState,
    as_extra_args,
    chunk_runner,
    init_state,
    make_step,
    scan_steps,
    train,
)

__all__ = [
    "SORT_MAX_EXAMPLES",
    "Coordinates",
    "RateReport",
    "ResourceMeter",
    "RunResources",
    "StalenessLaw",
    "SweepResult",
    "Task",
    "TrainResult",
    "TrainState",
    "as_extra_args",
    "chunk_memory",
    "chunk_runner",
    "classification_task",
    "collect_resources",
    "device_peak_bytes",
    "empirical",
    "eval_graphdef",
    "evaluate",
    "fixed",
    "forward_loss",
    "gather_coordinates",
    "geometric",
    "init_state",
    "language_model_task",
    "load_checkpoint",
    "make_step",
    "per_variable_rates",
    "process_peak_rss_bytes",
    "sample_coordinates",
    "save_checkpoint",
    "scan_steps",
    "sweep_learning_rates",
    "train",
    "uniform",
]
