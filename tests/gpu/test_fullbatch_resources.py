"""Full-batch heavy-ball runs (per-variable-rate) report steps/s and memory as gpu.train does."""

from __future__ import annotations

import numpy as np

from gpu import collect_resources
from gpu.data import load_digits
from gpu.fullbatch import digits_mlp_problem
from gpu.fullbatch._tracked import heavy_ball_tracked


def test_a_tracked_run_is_metered_without_changing_its_iterates() -> None:
    problem = digits_mlp_problem(load_digits(), hidden=2)
    coords = np.array([0, 5])
    with collect_resources() as runs:
        tracked, w_end = heavy_ball_tracked(problem, 0.5, 0.9, 30, coords, chunk=10)
    assert len(runs) == 1
    run = runs[0]
    assert run.chunks == 3 and run.steps_per_s is not None and run.steps_per_s > 0
    assert run.memory_source in ("compiled_memory_analysis", "device_peak_bytes_in_use")
    assert run.peak_bytes > 0
    again, w_again = heavy_ball_tracked(problem, 0.5, 0.9, 30, coords, chunk=10)
    np.testing.assert_array_equal(tracked, again)
    np.testing.assert_array_equal(w_end, w_again)
