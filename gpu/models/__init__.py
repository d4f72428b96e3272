"""flax nnx models: a CIFAR-style ResNet family, an MLP and a character-level LSTM."""

from __future__ import annotations

from gpu.models._init import init_model
from gpu.models.lstm import CharLSTM
from gpu.models.mlp import MLP
from gpu.models.resnet import ResNet

__all__ = ["MLP", "CharLSTM", "ResNet", "init_model"]
