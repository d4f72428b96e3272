"""The settled-trace mean and its batch-means standard error (closed-loop-any-optimizer)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from experiments.library._cl_any_measure import settled


def test_batch_means_error_matches_independent_samples() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[np.full(4000, 9.0), 0.3 + rng.standard_normal(4000)]
    mean, se = settled(x)
    # Independent unit-variance samples: the mean's standard error is 1 / sqrt(4000) = 0.0158;
    # 20 batch means estimate it with a relative spread of about 1 / sqrt(2 * 19) = 16%.
    assert abs(mean - 0.3) < 4 / math.sqrt(4000)
    assert 0.6 / math.sqrt(4000) < se < 1.5 / math.sqrt(4000)


def test_short_traces_use_fewer_batches_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, se = settled(np.r_[np.zeros(10), np.arange(10.0)])
        assert mean == 4.5 and math.isfinite(se) and se > 0
        assert settled(np.r_[np.zeros(3), np.ones(1)]) == (0.5, 0.5)
        assert settled(np.r_[np.zeros(1), np.ones(1)]) == (1.0, math.inf)
        m, s = settled(np.array([np.nan, np.nan]))
        assert math.isnan(m) and s == math.inf


def test_non_finite_entries_are_left_out() -> None:
    x = np.r_[np.zeros(50), np.ones(48), np.nan, np.inf]
    assert settled(x) == (1.0, 0.0)


def test_an_unknown_standard_error_leaves_the_tracking_check_unresolved() -> None:
    from experiments.library import closed_loop_any_optimizer as exp

    cfg = exp.ClosedLoopAnyConfig.quick()
    n = len(cfg.track_lrs)
    trk = {
        "lrs": list(cfg.track_lrs),
        "mu": [0.2] * n,
        "se": [math.inf] * n,
        "capped": [1.0] * n,
    }
    assert exp._tracking_check(cfg, trk).outcome == "unresolved"
    trk["se"] = [1e-4] * n
    assert exp._tracking_check(cfg, trk).outcome == "pass"
