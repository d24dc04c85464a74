"""BLAS updates: ``beta * p + alpha * dot(a, b)``, the new value of a shared matrix ``p``, becomes
one ``Gemm``, which the Numba backend computes in ``p``'s own array (``backend.plan_in_place``).

A momentum step ``mu * v - lr * dot(h.T, d)`` otherwise writes the gradient into a new array
(which OpenBLAS first clears), and a second loop reads it back: two passes over a matrix as
large as the parameter. In place, BLAS adds the product into ``v`` and nothing else is written.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ...graph import Apply, Constant, Variable
from ...ops import math as m
from ...ops.dot import Dot, Gemm
from ...ops.elemwise import Elemwise
from ...ops.shape import DimShuffle
from ...shared import SharedVariable
from ..fgraph import FunctionGraph
from . import register
from .basic import rewrite_nodes

#: shared matrices with fewer elements (at compile time) keep their elementwise update: for them the
#: saved pass is cheap, and the Gemm kernel is one call more. Without this limit the GRU language
#: model's 30 x 30 matrices took Gemms too, and it ran 0.7-0.9 us per token slower (measured here)
MIN_ELEMENTS = 4096


def _scalar(x: Variable) -> float | None:
    """The value of a constant holding one number, else None."""
    data = getattr(x, "data", None)
    if isinstance(x, Constant) and data is not None and np.size(data) == 1:
        return float(np.asarray(data).reshape(()))
    return None


def _runtime_scalar(x: Variable) -> Variable | None:
    """The scalar ``s`` when ``x`` is ``s`` broadcast to more dimensions (a learning rate held in a
    shared variable or given as an argument, in ``lr * g``), else None."""
    node = x.owner
    if node is not None and isinstance(node.op, DimShuffle) and node.inputs[0].ndim == 0:
        return node.inputs[0]
    return None


def _scaled(x: Variable, readers: dict[Variable, list[Apply | None]],
            reader: Apply) -> tuple[float, Variable | None, Variable]:
    """``(alpha, s, y)`` with ``x = alpha * s * y`` (``s`` a run-time scalar, or None for 1):
    through negations and products with a constant or a broadcast scalar that only ``reader``
    reads; else ``(1, None, x)``."""
    node = x.owner
    if node is None or not isinstance(node.op, Elemwise) or readers.get(x) != [reader]:
        return 1.0, None, x
    name = node.op.scalar_op.name
    if name == "neg":
        alpha, scale, y = _scaled(node.inputs[0], readers, node)
        return -alpha, scale, y
    if name == "mul":
        for pos in (0, 1):
            alpha = _scalar(node.inputs[pos])
            if alpha is not None:
                return alpha, None, node.inputs[1 - pos]
            scale = _runtime_scalar(node.inputs[pos])
            if scale is not None and dtypes.is_float(scale.dtype) and dtypes.upcast(scale.dtype, x.dtype) == x.dtype:
                return 1.0, m.cast(scale, x.dtype), node.inputs[1 - pos]  # the product casts it too
    return 1.0, None, x


def as_gemm(e: Variable, target: SharedVariable, readers: dict[Variable, list[Apply | None]]) -> Variable | None:
    """``e`` as a ``Gemm`` adding into ``target``, if ``e`` is ``beta * target + alpha * dot(a, b)``
    (in either order, with ``+`` or ``-``; ``alpha`` may carry a run-time scalar factor), both
    constant coefficients nonzero (``0 * nan`` is nan, which BLAS would not give), every value of
    one dtype and shape pattern, and the product read by nothing else."""
    node = e.owner
    if (node is None or not isinstance(node.op, Elemwise) or node.op.scalar_op.name not in ("add", "sub")
            or target.ndim != 2 or e.broadcastable != target.broadcastable or e.dtype != target.dtype):
        return None
    (c0, s0, x0), (c1, s1, x1) = (_scaled(x, readers, node) for x in node.inputs)
    if node.op.scalar_op.name == "sub":
        c1 = -c1
    for (beta, beta_scale, c), (alpha, scale, product) in (((c0, s0, x0), (c1, s1, x1)), ((c1, s1, x1), (c0, s0, x0))):
        dot_node = product.owner
        if (c is target and beta_scale is None and dot_node is not None and isinstance(dot_node.op, Dot)
                and alpha != 0 and beta != 0 and all(v.ndim == 2 and v.dtype == e.dtype for v in dot_node.inputs)
                and product.broadcastable == e.broadcastable and len(readers.get(product, [])) == 1):
            return Gemm(alpha, beta)(target, *dot_node.inputs, scale)  # type: ignore[no-any-return]
    return None


@register("gemm")
def gemm(fgraph: FunctionGraph) -> FunctionGraph:
    """A shared matrix's update ``beta * p + alpha * dot(a, b)`` (a momentum step, an SGD step,
    also with a learning rate given at run time) becomes one Gemm, computed in place."""
    readers = fgraph.clients()
    targets: dict[Apply, SharedVariable] = {}
    for sv, e in fgraph.updates:
        value = sv.get_value(borrow=True)
        if e.owner is not None and np.ndim(value) == 2 and np.size(value) >= MIN_ELEMENTS:
            targets[e.owner] = sv

    def local(node: Apply) -> list[Variable] | None:
        target = targets.get(node)
        if target is None:
            return None
        new = as_gemm(node.outputs[0], target, readers)
        return None if new is None else [new]

    return rewrite_nodes(fgraph, local)
