"""``T.nnet``: activations and losses for neural networks."""

from __future__ import annotations

from typing import Any

from ..graph import Variable
from ..ops.math import clip, mul, relu, sigmoid, softplus
from ..ops.nnet import (
    binary_crossentropy,
    categorical_crossentropy,
    crossentropy_softmax_1hot,
    log_softmax,
    logsumexp,
    sigmoid_binary_crossentropy,
    softmax,
)


def hard_sigmoid(x: Any) -> Variable:
    """Piecewise-linear sigmoid ``clip(0.2 x + 0.5, 0, 1)``."""
    return clip(mul(x, 0.2) + 0.5, 0, 1)


logsoftmax = log_softmax
ultra_fast_sigmoid = sigmoid

__all__ = [
    "binary_crossentropy", "categorical_crossentropy", "crossentropy_softmax_1hot", "hard_sigmoid",
    "log_softmax", "logsoftmax", "logsumexp", "relu", "sigmoid", "sigmoid_binary_crossentropy", "softmax", "softplus",
    "ultra_fast_sigmoid",
]
