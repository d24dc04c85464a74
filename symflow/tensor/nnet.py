"""``T.nnet``: activations and losses for neural networks."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Variable, as_variable
from ..ops import math as m
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


def elu(x: Any, alpha: Any = 1.0) -> Variable:
    """Exponential linear unit: ``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (Theano's).
    The exponential only sees ``minimum(x, 0)``, so large inputs give no inf and no NaN gradient."""
    x = as_variable(x)
    return m.switch(m.gt(x, 0), x, m.mul(alpha, m.expm1(m.minimum(x, 0))))


#: the constants of the self-normalising ELU (Klambauer et al. 2017), as Theano's ``selu`` uses them
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Any) -> Variable:
    """Scaled exponential linear unit ``SELU_SCALE * elu(x, SELU_ALPHA)``, as Theano's (float32 stays float32)."""
    return m.mul(SELU_SCALE, elu(x, SELU_ALPHA))


def softsign(x: Any) -> Variable:
    """``x / (1 + |x|)``, as Theano's, computed in floats; +-inf give +-1 with gradient 0, not NaN
    (``x`` is held to the largest finite value of its dtype, which gives exactly +-1)."""
    x = as_variable(x)
    x = m.cast(x, dtypes.upgrade_to_float(x.dtype))  # an integer 1 + |x| could wrap around
    largest = float(np.finfo(x.dtype).max)
    x = m.clip(x, -largest, largest)
    return m.true_div(x, m.add(1, m.abs(x)))


logsoftmax = log_softmax
ultra_fast_sigmoid = sigmoid

__all__ = [
    "binary_crossentropy", "categorical_crossentropy", "crossentropy_softmax_1hot", "elu", "hard_sigmoid",
    "log_softmax", "logsoftmax", "logsumexp", "relu", "selu", "sigmoid", "sigmoid_binary_crossentropy", "softmax",
    "softplus", "softsign", "ultra_fast_sigmoid",
]
