"""A small ResNet family (He et al. 2016, CIFAR variant of Sec. 4.2) in flax nnx.

Depth ``6 n + 2``: a 3x3 stem, three stages of ``n`` basic blocks with ``width``, ``2 width`` and
``4 width`` channels (stride 2 between stages, 1x1 projection shortcuts), global average pooling
and a linear head. ResNet-20 is ``depth=20, width=16``. Global pooling makes it work on any input
of at least 4x4 pixels (8x8 digits, 28x28 Fashion-MNIST, 32x32 CIFAR).

BatchNorm uses momentum 0.9 (not flax's 0.99) so its running statistics settle within a few dozen
steps: short runs then evaluate sensibly. ``model.eval()`` uses the running averages; the trainer
can instead evaluate with batch statistics (``eval_batch_stats=True``).
"""

from __future__ import annotations

import jax
from flax import nnx

from gpu.models._conv import conv_function

#: BatchNorm momentum for the running averages (see the module docstring).
BN_MOMENTUM = 0.9


class BasicBlock(nnx.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut (identity or 1x1 projection)."""

    def __init__(
        self, cin: int, cout: int, stride: int, *, bn_momentum: float, conv_fn, rngs: nnx.Rngs
    ) -> None:
        conv = dict(
            kernel_size=(3, 3),
            padding="SAME",
            use_bias=False,
            conv_general_dilated=conv_fn,
            rngs=rngs,
        )
        self.conv1 = nnx.Conv(cin, cout, strides=(stride, stride), **conv)
        self.bn1 = nnx.BatchNorm(cout, momentum=bn_momentum, rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, **conv)
        self.bn2 = nnx.BatchNorm(cout, momentum=bn_momentum, rngs=rngs)
        if stride != 1 or cin != cout:
            self.proj = nnx.Conv(
                cin,
                cout,
                kernel_size=(1, 1),
                strides=(stride, stride),
                use_bias=False,
                conv_general_dilated=conv_fn,
                rngs=rngs,
            )
            self.proj_bn = nnx.BatchNorm(cout, momentum=bn_momentum, rngs=rngs)
        else:
            self.proj = None
            self.proj_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        short = x if self.proj is None else self.proj_bn(self.proj(x))
        return jax.nn.relu(y + short)


class ResNet(nnx.Module):
    """CIFAR-style ResNet of depth ``6 n + 2``.

    Args:
        depth: total depth, ``6 n + 2`` with ``n >= 1`` (8, 14, 20, 32, 56, 110, ...).
        width: channels of the first stage (16 in the paper).
        num_classes: output classes.
        in_channels: input channels (1 for grey images, 3 for colour).
        bn_momentum: BatchNorm running-average momentum in [0, 1).
        conv: how convolutions are computed: ``"xla"`` (``lax.conv_general_dilated``),
            ``"shifted"`` (shifted views times the kernel, :func:`gpu.models._conv.shifted_conv`:
            the same function, 2.5x faster on a CPU at the CPU tiers' widths) or ``"auto"``
            (``"shifted"`` on a CPU backend, ``"xla"`` elsewhere).
        rngs: flax random streams for the initialisation.

    Example:
        >>> from flax import nnx
        >>> net = ResNet(depth=8, width=4, num_classes=10, in_channels=1, rngs=nnx.Rngs(0))
    """

    def __init__(
        self,
        depth: int = 20,
        width: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        bn_momentum: float = BN_MOMENTUM,
        conv: str = "auto",
        rngs: nnx.Rngs,
    ) -> None:
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6 n + 2 with n >= 1 (8, 14, 20, ...), got {depth!r}")
        if width < 1 or in_channels < 1 or num_classes < 2:
            raise ValueError(
                "width and in_channels must be >= 1 and num_classes >= 2 "
                f"(got {width}, {in_channels}, {num_classes})"
            )
        if not (0.0 <= bn_momentum < 1.0):
            raise ValueError(f"bn_momentum must lie in [0, 1) (got {bn_momentum!r})")
        conv_fn = conv_function(conv)
        n = (depth - 2) // 6
        self.stem = nnx.Conv(
            in_channels,
            width,
            kernel_size=(3, 3),
            padding="SAME",
            use_bias=False,
            conv_general_dilated=conv_fn,
            rngs=rngs,
        )
        self.stem_bn = nnx.BatchNorm(width, momentum=bn_momentum, rngs=rngs)
        blocks = []
        cin = width
        for stage in range(3):
            cout = width * 2**stage
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(
                    BasicBlock(
                        cin, cout, stride, bn_momentum=bn_momentum, conv_fn=conv_fn, rngs=rngs
                    )
                )
                cin = cout
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(cin, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(axis=(1, 2)))
