"""The Theano-style tensor namespace: ``import symflow.tensor as T``.

Variable constructors (``T.matrix('X')``, ``T.ivector``, ``T.fmatrix`` ...), elementwise math,
reductions, shape and indexing functions, products, and ``T.nnet``.
"""

from __future__ import annotations

from typing import Any

from .. import dtypes
from ..gradient import grad, hessian, jacobian
from ..graph import Constant, Variable, as_variable
from ..ops.dot import batched_dot, dot, outer, tensordot
from ..ops.elemwise import cast
from ..ops.extra import argsort, cumprod, cumsum, diff, sort, to_one_hot
from ..ops.gradflow import disconnected_grad, grad_clip, stop_gradient
from ..ops.math import (
    abs,
    add,
    allclose,
    and_,
    arccos,
    arcsin,
    arctan,
    arctan2,
    ceil,
    clip,
    cos,
    cosh,
    eq,
    erf,
    erfc,
    exp,
    exp2,
    expm1,
    floor,
    floor_div,
    ge,
    gt,
    int_div,
    invert,
    isclose,
    isinf,
    isnan,
    largest,
    le,
    log,
    log1p,
    log2,
    log10,
    lt,
    maximum,
    minimum,
    mod,
    mul,
    neg,
    neq,
    or_,
    pow,
    reciprocal,
    relu,
    round,
    sgn,
    sigmoid,
    sin,
    sinh,
    smallest,
    softplus,
    sqr,
    sqrt,
    sub,
    switch,
    tan,
    tanh,
    true_div,
    where,
    xor,
)
from ..ops.matrix import (
    diag,
    diagonal,
    eye,
    fill_diagonal,
    fill_diagonal_offset,
    identity_like,
    roll,
    trace,
    tril,
    triu,
)
from ..ops.nnet import logsumexp
from ..ops.reduce import all, any, argmax, argmin, max, max_and_argmax, mean, min, norm, prod, std, sum, var
from ..ops.selection import bincount, compress, flatnonzero, nonzero, nonzero_values, searchsorted, unique
from ..ops.shape import (
    addbroadcast,
    alloc,
    arange,
    concatenate,
    dimshuffle,
    fill,
    flatten,
    horizontal_stack,
    join,
    ones,
    ones_like,
    patternbroadcast,
    repeat,
    reshape,
    second,
    shape,
    shape_i,
    specify_shape,
    split,
    squeeze,
    stack,
    stacklists,
    swapaxes,
    tensor_copy,
    tile,
    transpose,
    unbroadcast,
    vertical_stack,
    zeros,
    zeros_like,
)
from ..ops.subtensor import flip, getitem, inc_subtensor, set_subtensor, take
from ..types import TensorType
from . import extra_ops, nnet

abs_ = abs
bitwise_and, bitwise_or, bitwise_xor = and_, or_, xor
divide = true_div


def tensor(dtype: Any = "floatX", broadcastable: tuple[bool, ...] = (), name: str | None = None) -> Variable:
    """A fresh input of the given dtype and broadcastable pattern (``T.tensor('float32', (False,) * 3)``)."""
    return Variable(TensorType(dtypes.as_dtype(dtype), tuple(broadcastable)), name=name)


def _constructor(pattern: tuple[bool, ...], fixed_dtype: str | None, kind: str) -> Any:
    def make(name: str | None = None, dtype: Any = None) -> Variable:
        if fixed_dtype is not None and dtype is not None:
            raise TypeError(f"this constructor always makes {fixed_dtype}; use T.{kind}(name, dtype=...) instead")
        chosen = fixed_dtype or dtypes.as_dtype(dtype or "floatX")
        return Variable(TensorType(chosen, pattern), name=name)

    make.__doc__ = f"A symbolic {kind} input ({'dtype ' + fixed_dtype if fixed_dtype else 'dtype floatX by default'})."
    return make


_PATTERNS = {
    "scalar": (), "vector": (False,), "matrix": (False, False), "row": (True, False), "col": (False, True),
    "tensor3": (False,) * 3, "tensor4": (False,) * 4, "tensor5": (False,) * 5,
}
for _kind, _pattern in _PATTERNS.items():
    globals()[_kind] = _constructor(_pattern, None, _kind)
    for _prefix, _dtype in dtypes.PREFIX.items():
        globals()[_prefix + _kind] = _constructor(_pattern, _dtype, _kind)


def constant(value: Any, name: str | None = None, dtype: Any = None) -> Variable:
    """A constant tensor."""
    return Constant(value, dtype=dtypes.as_dtype(dtype) if dtype is not None else None, name=name)


def as_tensor_variable(x: Any, name: str | None = None, ndim: int | None = None) -> Variable:
    v = as_variable(x, name=name)
    if ndim is not None and v.ndim != ndim:
        raise TypeError(f"expected a {ndim}-d tensor, got {v.describe()}")
    return v


as_tensor = as_tensor_variable


def shape_padleft(x: Any, n_ones: int = 1) -> Variable:
    x = as_variable(x)
    return dimshuffle(x, ("x",) * n_ones + tuple(range(x.ndim)))


def shape_padright(x: Any, n_ones: int = 1) -> Variable:
    x = as_variable(x)
    return dimshuffle(x, tuple(range(x.ndim)) + ("x",) * n_ones)


def shape_padaxis(x: Any, axis: int) -> Variable:
    x = as_variable(x)
    axis %= x.ndim + 1
    return dimshuffle(x, tuple(range(axis)) + ("x",) + tuple(range(axis, x.ndim)))


def square(x: Any) -> Variable:
    return sqr(x)


def inv(x: Any) -> Variable:
    return reciprocal(x)


def sum_squares(x: Any) -> Variable:
    return sum(sqr(x))
