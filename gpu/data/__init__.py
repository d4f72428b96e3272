"""Offline data sets: every loader returns numpy arrays with a fixed split and a checksum."""

from __future__ import annotations

from gpu.data._common import Dataset, checksum
from gpu.data.cifar import cifar_layout, find_cifar, load_cifar
from gpu.data.digits import load_digits
from gpu.data.fashion_mnist import DEFAULT_ROOT as FASHION_MNIST_ROOT
from gpu.data.fashion_mnist import FILES as FASHION_MNIST_FILES
from gpu.data.fashion_mnist import load_fashion_mnist, parse_idx
from gpu.data.mnist1d_data import load_mnist1d
from gpu.data.text import TextDataset, load_text

__all__ = [
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_ROOT",
    "Dataset",
    "TextDataset",
    "checksum",
    "cifar_layout",
    "find_cifar",
    "load_cifar",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist1d",
    "load_text",
    "parse_idx",
]
