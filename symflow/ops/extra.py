"""Theano's extra_ops: cumulative sums along an axis, differences, one-hot encoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from . import math as m
from .shape import arange, as_index_scalar, axis_index, shape_i, zeros
from .subtensor import getitem, set_subtensor


class CumSum(Op):
    """Running sum along ``axis``."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        dtype = "int64" if x.dtype in ("bool", "int8", "int16", "int32") else x.dtype
        return Apply(self, [x], [TensorType(dtype, x.broadcastable)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.cumsum(inputs[0], axis=self.axis).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (x,) = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None]
        reverse = (slice(None),) * self.axis + (slice(None, None, -1),)
        return [getitem(CumSum(self.axis)(getitem(g, reverse)), reverse)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """Seen as (before, axis, after) arrays, so one kernel serves every rank and axis."""
        (x,), y = node.inputs, node.outputs[0]
        dims = cg.shape_tuple(x)
        out = cg.alloc(y, dims, "cumsum")
        around = around_axis(dims, self.axis)
        cg.emit(f"{cg.kernel(cumsum3)}({cg.reshape(cg.value(x), around, node)}, {cg.reshape(out, around, node)})")


def around_axis(dims: list[str], axis: int) -> list[str]:
    """The shape (before, axis, after) of an array of shape ``dims`` seen around ``axis``."""
    return [" * ".join(dims[:axis]) or "1", dims[axis], " * ".join(dims[axis + 1:]) or "1"]


def cumsum3(x, out):  # type: ignore[no-untyped-def]
    """Kernel: running sums along the middle axis, accumulated in the output's dtype as NumPy does."""
    if x.shape[1] == 0:
        return
    for a in range(x.shape[0]):
        for c in range(x.shape[2]):
            out[a, 0, c] = x[a, 0, c]
        for b in range(1, x.shape[1]):
            for c in range(x.shape[2]):
                out[a, b, c] = out[a, b - 1, c] + x[a, b, c]


def cumsum(x: Any, axis: int | None = None) -> Variable:
    """Cumulative sum along ``axis`` (None: of the flattened array)."""
    from .shape import flatten

    x = as_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"cumsum axis {axis} out of range for {x.describe()}")
    return CumSum(axis % x.ndim)(x)  # type: ignore[no-any-return]


def diff(x: Any, n: int = 1, axis: int = -1) -> Variable:
    """NumPy's diff: the ``n``-th differences along ``axis``, ``x[1:] - x[:-1]`` applied ``n``
    times (``!=`` for booleans, as NumPy); the axis gets ``n`` shorter (empty beyond that)."""
    x = as_variable(x)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff order n must be a non-negative Python int, got {n!r}")
    if x.ndim == 0:
        raise ValueError(f"diff needs at least one dimension, got {x.describe()}")
    axis = axis_index(axis, x.ndim, "diff axis")
    before = (slice(None),) * axis
    for _ in range(n):
        later, earlier = getitem(x, before + (slice(1, None),)), getitem(x, before + (slice(None, -1),))
        x = m.neq(later, earlier) if x.dtype == "bool" else m.sub(later, earlier)
    return x


def to_one_hot(y: Any, nb_class: Any, dtype: Any = None) -> Variable:
    """Theano's to_one_hot: a matrix whose row ``i`` is 1 in column ``y[i]`` and 0 elsewhere, of
    ``dtype`` (default ``config.floatX``). Labels index the columns as in Theano: a negative label
    counts from the end, one of ``nb_class`` or more is an index error when run."""
    y = as_variable(y)
    if y.ndim != 1 or not dtypes.is_int(y.dtype):
        raise TypeError(f"to_one_hot needs an integer vector of labels y, got {y.describe()}")
    n_class = as_index_scalar(nb_class, "to_one_hot nb_class")
    n = shape_i(y, 0)
    out = zeros((n, n_class), dtype=dtype if dtype is not None else "floatX")
    return set_subtensor(getitem(out, (arange(n), y)), 1)
