"""Canonical forms and algebraic simplification: small local rewrites registered per op type.

Each rule takes a node and returns replacement outputs (same dtype and ndim) or None. The
``canonicalize`` pass applies all rules for a node's op type, in and out of scan bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...graph import Apply, Constant, Variable
from ...ops import math as m
from ...ops.elemwise import Elemwise
from ...ops.shape import DimShuffle, Shape, ShapeI, SpecifyBroadcastable, constant_value, dimshuffle
from ...ops.subtensor import Subtensor
from ..fgraph import FunctionGraph
from . import register
from .basic import rewrite_nodes

Rule = Callable[[Apply], "list[Variable] | None"]
RULES: dict[type, list[Rule]] = {}


def rule(*op_types: type) -> Callable[[Rule], Rule]:
    """Register a local rewrite for nodes of the given op types."""

    def deco(fn: Rule) -> Rule:
        for t in op_types:
            RULES.setdefault(t, []).append(fn)
        return fn

    return deco


@register("canonicalize", scan_bodies=True)
def canonicalize(fgraph: FunctionGraph) -> FunctionGraph:
    """Simplify: x*1, x+0, double negation, nested dimshuffles, shape lookups, constant switches."""

    def local(node: Apply) -> list[Variable] | None:
        for fn in RULES.get(type(node.op), ()):
            out = fn(node)
            if out is not None:
                return out
        return None

    return rewrite_nodes(fgraph, local)


def _same_type(new: Variable, old: Variable) -> bool:
    return new.dtype == old.dtype and new.broadcastable == old.broadcastable


def _is_value(x: Variable, value: float) -> bool:
    data = getattr(x, "data", None)
    return isinstance(x, Constant) and data is not None and data.size > 0 and bool((data == value).all())


_NEUTRAL: dict[str, list[tuple[int, float]]] = {
    # op: (position of the neutral operand, its value)
    "add": [(0, 0), (1, 0)], "mul": [(0, 1), (1, 1)], "sub": [(1, 0)], "true_div": [(1, 1)], "pow": [(1, 1)],
}


@rule(Elemwise)
def drop_neutral_operand(node: Apply) -> list[Variable] | None:
    """``x + 0``, ``x * 1``, ``x - 0``, ``x / 1``, ``x ** 1`` are ``x`` (when no broadcasting is involved)."""
    out = node.outputs[0]
    for pos, value in _NEUTRAL.get(node.op.scalar_op.name, ()):  # type: ignore[attr-defined]
        if _is_value(node.inputs[pos], value):
            other = node.inputs[1 - pos]
            if _same_type(other, out):
                return [other]
    return None


@rule(Elemwise)
def double_negation(node: Apply) -> list[Variable] | None:
    """``-(-x)`` is ``x``."""
    (x, *rest) = node.inputs
    if node.op.scalar_op.name == "neg" and x.owner is not None and isinstance(x.owner.op, Elemwise) \
            and x.owner.op.scalar_op.name == "neg" and _same_type(x.owner.inputs[0], node.outputs[0]):
        return [x.owner.inputs[0]]
    return None


@rule(Elemwise)
def power_to_square(node: Apply) -> list[Variable] | None:
    """``x ** 2`` is ``sqr(x)``; ``x * -1`` is ``-x``."""
    name = node.op.scalar_op.name  # type: ignore[attr-defined]
    out = node.outputs[0]
    if name == "pow" and _is_value(node.inputs[1], 2):
        new = m.sqr(node.inputs[0])
        return [new] if _same_type(new, out) else None
    if name == "mul":
        for pos in (0, 1):
            if _is_value(node.inputs[pos], -1):
                new = m.neg(node.inputs[1 - pos])
                return [new] if _same_type(new, out) else None
    return None


@rule(Elemwise)
def constant_switch(node: Apply) -> list[Variable] | None:
    """``switch(c, a, b)`` with a constant condition is ``a`` or ``b``."""
    if node.op.scalar_op.name != "switch" or not isinstance(node.inputs[0], Constant):  # type: ignore[attr-defined]
        return None
    data = node.inputs[0].data
    if data.size and (data.all() or not data.any()):
        chosen = node.inputs[1] if data.all() else node.inputs[2]
        out = node.outputs[0]
        if chosen.dtype == out.dtype and chosen.broadcastable == out.broadcastable:
            return [chosen]
    return None


@rule(DimShuffle)
def merge_dimshuffles(node: Apply) -> list[Variable] | None:
    """A dimshuffle of a dimshuffle is one dimshuffle; the identity one disappears."""
    op: Any = node.op
    x = node.inputs[0]
    if op.new_order == tuple(range(x.ndim)):
        return [x]
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    inner: Any = x.owner.op
    source = x.owner.inputs[0]
    composed = tuple("x" if d == "x" else inner.new_order[d] for d in op.new_order)
    return [dimshuffle(source, composed)]


@rule(SpecifyBroadcastable)
def useless_specify(node: Apply) -> list[Variable] | None:
    """Marking a pattern the input already has does nothing."""
    x = node.inputs[0]
    if x.broadcastable == node.outputs[0].broadcastable:
        return [x]
    return None


@rule(Subtensor)
def shape_entry(node: Apply) -> list[Variable] | None:
    """``x.shape[i]`` with a constant ``i`` is ``ShapeI(i)(x)`` (or 1 for broadcastable dims)."""
    x = node.inputs[0]
    if node.op.idx != ("i",) or x.owner is None or not isinstance(x.owner.op, Shape):  # type: ignore[attr-defined]
        return None
    i = constant_value(node.inputs[1])
    source = x.owner.inputs[0]
    if i is None or not -source.ndim <= i < source.ndim:
        return None
    i %= source.ndim
    if source.broadcastable[i]:
        return [Constant(1, dtype="int64")]
    return [ShapeI(i)(source)]
