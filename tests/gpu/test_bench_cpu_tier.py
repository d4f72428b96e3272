"""benchmarks.bench_cpu_tier: the four sampler x convolution variants, timed against the reference
in the same run and written atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import bench_cpu_tier
from gpu.tasks import SORT_MAX_EXAMPLES


@pytest.mark.slow  # compiles four vmapped ResNet steps: about a minute on 2 cores
def test_quick_run_writes_every_variant_with_paired_speedups(tmp_path):
    out = tmp_path / "cpu_tier.json"
    run = bench_cpu_tier.main(["--quick", "--rounds", "1", "--out", str(out)])
    stored = json.loads(out.read_text())["runs"][run["platform"]]
    assert stored["setting"]["n"] > SORT_MAX_EXAMPLES  # where "auto" stops sorting
    variants = stored["variants"]
    assert set(variants) == set(bench_cpu_tier.VARIANTS)
    (ref,) = variants[bench_cpu_tier.REFERENCE]["chunk_seconds"]
    for res in variants.values():
        # one round: the speedup is the reference's chunk time over this variant's, same round
        assert res["speedup"] == ref / res["chunk_seconds"][0]
        assert np.isfinite(res["seconds_per_member_step"]) and res["seconds_per_member_step"] > 0
        assert len(res["chunk_seconds"]) == 1
