"""Checks that need a GPU (skipped without one): the same code runs there and reports memory."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from gpu.models import ResNet, init_model
from gpu.train import train
from tests.gpu._helpers import digits_task


@pytest.mark.gpu
def test_resnet_trains_on_the_gpu_and_reports_peak_memory() -> None:
    dev = jax.devices()[0]
    assert dev.platform == "gpu"
    net = init_model(lambda r: ResNet(depth=20, width=16, num_classes=10, in_channels=1, rngs=r), 0)
    r = train(net, optax.adam(1e-2), digits_task(128), steps=100, chunk=50)
    assert r.metrics["loss"][-10:].mean() < 0.5 * r.metrics["loss"][:10].mean()
    assert "GPU" in r.info["device"].upper() or "CUDA" in r.info["device"].upper()
    stats = dev.memory_stats()
    assert stats and stats["peak_bytes_in_use"] > 0
    assert np.isfinite(r.evals[-1]["test_loss"])
