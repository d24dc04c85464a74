"""symflow: Theano-style symbolic differentiation with scan, compiled with Numba.

    import symflow as theano
    import symflow.tensor as T
"""

from __future__ import annotations

from . import printing, tensor, updates
from .compile.function import Function, In, function
from .config import config
from .gradient import grad, hessian, jacobian
from .graph import Apply, Constant, Op, Variable
from .ops.gradflow import disconnected_grad, grad_clip, stop_gradient
from .random import RandomStreams
from .scan import foldl, foldr, map, reduce, scan, scan_until, until
from .shared import SharedVariable, shared

__version__ = "0.1.0"

__all__ = [
    "Apply", "Constant", "RandomStreams", "Function", "In", "Op", "SharedVariable", "Variable", "config",
    "disconnected_grad", "foldl", "foldr", "function", "grad", "grad_clip", "hessian", "jacobian", "map", "printing",
    "reduce", "scan", "scan_until", "shared", "stop_gradient", "tensor", "until", "updates",
]
