"""Models: shapes on every input size, parameter counts, validation, and a few training steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from gpu.data import load_text
from gpu.models import MLP, CharLSTM, ResNet, init_model
from gpu.tasks import language_model_task
from gpu.train import train
from tests.gpu._helpers import digits_task


def _count(model: nnx.Module) -> int:
    return sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))


def _shape(model: nnx.Module, x: jax.ShapeDtypeStruct) -> tuple[int, ...]:
    """Output shape by abstract evaluation (no arithmetic: keeps the test fast)."""
    graphdef, state = nnx.split(model)
    return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x).shape


def _resnet_params(depth: int, width: int, cin: int, classes: int) -> int:
    """Hand count: 3x3 convolutions without bias, BatchNorm scale+bias, 1x1 projections."""
    n = (depth - 2) // 6
    total = 9 * cin * width + 2 * width
    c = width
    for stage in range(3):
        out = width * 2**stage
        for _ in range(n):
            total += 9 * c * out + 2 * out + 9 * out * out + 2 * out
            if c != out:
                total += c * out + 2 * out
            c = out
    return total + c * classes + classes


@pytest.mark.parametrize("size", [8, 28, 32])
def test_resnet_shapes_on_every_input_size(size: int) -> None:
    net = nnx.eval_shape(lambda: ResNet(depth=8, width=4, num_classes=7, rngs=nnx.Rngs(0)))
    assert _shape(net, jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)) == (2, 7)


def test_resnet20_parameter_count() -> None:
    net = nnx.eval_shape(lambda: ResNet(depth=20, width=16, num_classes=10, rngs=nnx.Rngs(0)))
    # 0.27M in He et al. (2016, Table 6) with parameter-free shortcuts; projections add ~3k
    assert _count(net) == _resnet_params(20, 16, 3, 10)
    assert 0.27e6 < _count(net) < 0.28e6


def test_lstm_and_mlp_shapes() -> None:
    lm = nnx.eval_shape(lambda: CharLSTM(11, embed=5, hidden=7, num_layers=2, rngs=nnx.Rngs(0)))
    assert _shape(lm, jax.ShapeDtypeStruct((3, 9), jnp.int32)) == (3, 9, 11)
    mlp = nnx.eval_shape(lambda: MLP(64, (8, 8), 10, rngs=nnx.Rngs(0)))
    assert _shape(mlp, jax.ShapeDtypeStruct((4, 8, 8, 1), jnp.float32)) == (4, 10)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda r: ResNet(depth=21, rngs=r), "depth"),
        (lambda r: ResNet(depth=8, bn_momentum=1.0, rngs=r), "bn_momentum"),
        (lambda r: ResNet(depth=8, width=0, rngs=r), "width"),
        (lambda r: CharLSTM(vocab_size=1, rngs=r), "vocab_size"),
        (lambda r: MLP(0, (4,), 10, rngs=r), "in_features"),
    ],
)
def test_model_validation(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(nnx.Rngs(0))


def test_resnet_trains_and_batchnorm_statistics_move() -> None:
    net = init_model(lambda r: ResNet(depth=8, width=4, num_classes=10, in_channels=1, rngs=r), 0)
    r = train(net, optax.adam(1e-2), digits_task(), steps=40, chunk=40)
    loss = r.metrics["loss"]
    assert loss[-5:].mean() < 0.7 * loss[:5].mean()
    trained = r.model()
    # momentum 0.9 running averages have moved away from their (0, 1) initialisation
    assert float(np.abs(np.asarray(trained.stem_bn.mean[...])).max()) > 1e-3
    assert r.evals[-1]["test_accuracy"] > 0.3  # running-average evaluation after 40 steps


def test_init_model_validates_seed() -> None:
    with pytest.raises(ValueError, match="seed"):
        init_model(lambda r: MLP(4, (), 2, rngs=r), -1)


def test_char_lstm_trains() -> None:
    ds = load_text()
    task = language_model_task(ds, batch_size=16, seq_len=16)
    lm = CharLSTM(ds.vocab_size, embed=16, hidden=32, rngs=nnx.Rngs(0))
    r = train(lm, optax.adam(1e-2), task, steps=60, chunk=60)
    loss = r.metrics["loss"]
    assert loss[0] == pytest.approx(np.log(ds.vocab_size), rel=0.1)  # uniform start
    assert loss[-10:].mean() < 0.8 * loss[:5].mean()
