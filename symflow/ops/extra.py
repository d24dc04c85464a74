"""Cumulative sums along an axis."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from .subtensor import getitem


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


def cumsum(x: Any, axis: int | None = None) -> Variable:
    """Cumulative sum along ``axis`` (None: of the flattened array)."""
    from .shape import flatten

    x = as_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"cumsum axis {axis} out of range for {x.describe()}")
    return CumSum(axis % x.ndim)(x)  # type: ignore[no-any-return]
