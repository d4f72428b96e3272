"""The shifted-views convolution equals XLA's, in value and gradient, and inside the ResNet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from gpu.models import ResNet
from gpu.models._conv import conv_function, shifted_conv

DN = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
def test_equals_lax_convolution_and_its_gradient(kernel, stride, size):
    """float64, so the two summation orders agree to ~1e-15 relative."""
    with jax.enable_x64(True):
        kx, kw = jax.random.split(jax.random.key(0))
        x = jax.random.normal(kx, (3, size, size, 5), jnp.float64)
        w = jax.random.normal(kw, (kernel, kernel, 5, 4), jnp.float64)
        s = (stride, stride)

        def ref(x, w):
            return lax.conv_general_dilated(x, w, s, "SAME", dimension_numbers=DN)

        def ours(x, w):
            return shifted_conv(x, w, s, "SAME", dimension_numbers=DN)

        np.testing.assert_allclose(ours(x, w), ref(x, w), rtol=1e-12, atol=1e-12)
        g_ref = jax.grad(lambda x, w: jnp.sum(jnp.sin(ref(x, w))), argnums=(0, 1))(x, w)
        g_ours = jax.grad(lambda x, w: jnp.sum(jnp.sin(ours(x, w))), argnums=(0, 1))(x, w)
        for a, b in zip(g_ours, g_ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_explicit_padding_pairs():
    x = jnp.arange(2 * 6 * 6 * 2, dtype=jnp.float32).reshape(2, 6, 6, 2) / 50
    w = jnp.ones((3, 3, 2, 3), jnp.float32)
    pad = [(0, 2), (1, 0)]
    want = lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=DN)
    np.testing.assert_allclose(shifted_conv(x, w, (1, 1), pad), want, rtol=1e-6)


def test_resnet_is_the_same_function_with_either_convolution():
    x = jax.random.normal(jax.random.key(1), (2, 12, 12, 1))
    outs = []
    for conv in ("xla", "shifted"):
        net = ResNet(depth=8, width=4, num_classes=10, in_channels=1, conv=conv, rngs=nnx.Rngs(0))
        outs.append(np.asarray(nnx.jit(lambda m, x: m(x))(net, x)))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_auto_is_shifted_on_the_cpu_backend():
    want = shifted_conv if jax.default_backend() == "cpu" else lax.conv_general_dilated
    assert conv_function("auto") is want


def test_rejects_what_it_does_not_compute():
    x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="dilation"):
        shifted_conv(x, w, (1, 1), "SAME", rhs_dilation=(2, 2))
    with pytest.raises(ValueError, match="NHWC"):
        shifted_conv(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    with pytest.raises(ValueError, match="conv must be"):
        conv_function("fft")
