"""Canonical forms and algebraic simplification: small local rewrites registered per op type.

Each rule takes a node and returns replacement outputs (same dtype and ndim) or None. The
``canonicalize`` pass applies all rules for a node's op type, in and out of scan bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...graph import Apply, Constant, Variable, ancestors
from ...ops import math as m
from ...ops.dot import dot
from ...ops.elemwise import Elemwise
from ...ops.nnet import ROW_NORMALISED, LogSoftmax, Softmax, SoftmaxGrad
from ...ops.reduce import ArgReduce, Reduce
from ...ops.shape import DimShuffle, Shape, ShapeI, SpecifyBroadcastable, alloc, constant_value, dimshuffle
from ...ops.subtensor import AdvancedIncSubtensor, AdvancedIncSubtensor1, Subtensor, length_one_picks
from ..fgraph import FunctionGraph
from . import register
from .basic import is_value, is_zeros, length_by_rule, rewrite_nodes
from .stability import same_shape

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
    """Simplify: x*1, x+0, double negation, nested dimshuffles, shape lookups, constant switches.

    Each rule below says what it does; among them, the argmax of a softmax is read from its logits."""

    def local(node: Apply) -> list[Variable] | None:
        for fn in RULES.get(type(node.op), ()):
            out = fn(node)
            if out is not None:
                return out
        return None

    return rewrite_nodes(fgraph, local)


def _same_type(new: Variable, old: Variable) -> bool:
    return new.dtype == old.dtype and new.broadcastable == old.broadcastable


_NEUTRAL: dict[str, list[tuple[int, float]]] = {
    # op: (position of the neutral operand, its value)
    "add": [(0, 0), (1, 0)], "mul": [(0, 1), (1, 1)], "sub": [(1, 0)], "true_div": [(1, 1)], "pow": [(1, 1)],
}


@rule(Elemwise)
def drop_neutral_operand(node: Apply) -> list[Variable] | None:
    """``x + 0``, ``x * 1``, ``x - 0``, ``x / 1``, ``x ** 1`` are ``x`` (when no broadcasting is involved,
    and the constant has one element: ``ones((5,)) * x`` also checks that x has 5 entries)."""
    out = node.outputs[0]
    for pos, value in _NEUTRAL.get(node.op.scalar_op.name, ()):  # type: ignore[attr-defined]
        if is_value(node.inputs[pos], value) and node.inputs[pos].data.size == 1:  # type: ignore[attr-defined]
            other = node.inputs[1 - pos]
            if _same_type(other, out):
                return [other]
    return None


@rule(Elemwise)
def add_zeros(node: Apply) -> list[Variable] | None:
    """``zeros + x`` and ``x - zeros`` are ``x`` (gradient accumulators start as zeros) when x has
    the result's type, and the zeros have no length of their own (``_sized_apart``)."""
    name = node.op.scalar_op.name  # type: ignore[attr-defined]
    if name not in ("add", "sub"):
        return None
    out = node.outputs[0]
    for pos in (0, 1) if name == "add" else (1,):
        zeros, other = node.inputs[pos], node.inputs[1 - pos]
        if is_zeros(zeros) and _same_type(other, out) and not _sized_apart(zeros, other):
            return [other]
    return None


def _sized_apart(zeros: Variable, other: Variable) -> bool:
    """Whether ``zeros`` may have a length ``other`` lacks (``zeros((5,))``, ``zeros((k,))``,
    ``zeros_like(y)``): adding them checks that length, which dropping them would not. Zeros of
    length 1, or known to be shaped like ``other`` (as a gradient accumulator is), are dropped."""
    if isinstance(zeros, Constant):
        return zeros.data.size > 1
    lengths = zeros.owner.inputs[1:]  # type: ignore[union-attr]  # an Alloc of zeros
    return not all(constant_value(n) == 1 for n in lengths) and not same_shape(zeros, other)


@rule(Elemwise)
def finite_times_zeros(node: Apply) -> list[Variable] | None:
    """``c * zeros`` is ``zeros`` for a finite constant ``c`` (a learning rate times the zeros a
    scattered gradient starts from, see ``through_row_increment``)."""
    if node.op.scalar_op.name != "mul":  # type: ignore[attr-defined]
        return None
    out = node.outputs[0]
    for pos in (0, 1):
        zeros, c = node.inputs[pos], node.inputs[1 - pos]
        data = getattr(c, "data", None)
        if (is_zeros(zeros) and isinstance(c, Constant) and data is not None and bool(np.isfinite(data).all())
                and _same_type(zeros, out)):
            return [zeros]
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
    if name == "pow" and is_value(node.inputs[1], 2):
        new = m.sqr(node.inputs[0])
        return [new] if _same_type(new, out) else None
    if name == "mul":
        for pos in (0, 1):
            if is_value(node.inputs[pos], -1) and _same_type(node.inputs[1 - pos], out):  # not bool * -1
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
def full_slices(node: Apply) -> list[Variable] | None:
    """``x[0:len(x)]`` and ``x[::1]`` are ``x``: drop slices that cover their whole dimension."""
    x, *components = node.inputs
    it = iter(components)
    keep: list[Any] = []
    kept_components: list[Variable] = []
    changed = False
    for d, entry in enumerate(node.op.idx):  # type: ignore[attr-defined]
        parts = [next(it) for _ in range(1 if entry == "i" else sum(entry[1:]))]
        if entry != "i":
            start, stop, step = (parts.pop(0) if has else None for has in entry[1:])
            full = ((start is None or constant_value(start) == 0)
                    and (stop is None or _is_length(stop, x, d))
                    and (step is None or constant_value(step) == 1))
            if full and (start is not None or stop is not None or step is not None):
                keep.append(("s", False, False, False))
                changed = True
                continue
            parts = [p for p in (start, stop, step) if p is not None]
        keep.append(entry)
        kept_components += parts
    if not changed:
        return None
    while keep and keep[-1] == ("s", False, False, False):
        keep.pop()
    if not keep:
        return [x]
    return [Subtensor(tuple(keep))(x, *kept_components)]


def _is_length(v: Variable, x: Variable, d: int) -> bool:
    """Whether ``v`` is the length of dimension ``d`` of ``x``."""
    return v.owner is not None and isinstance(v.owner.op, ShapeI) and v.owner.op.i == d and v.owner.inputs[0] is x


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


@rule(Reduce)
def summed_outer_product(node: Apply) -> list[Variable] | None:
    """``sum_t a[t, :, None] * b[t, None, :]`` over ``t`` is the matrix product ``a.T . b``
    (per-step weight gradients summed over a sequence become one product)."""
    op: Any = node.op
    (x,) = node.inputs
    if op.kind != "sum" or op.axis != (0,) or op.keepdims or x.ndim != 3:
        return None
    slices = _first_axis_slices(x)  # a backward loop's product, read reversed and cut: sliced sources
    for sl in slices:
        x = sl.inputs[0]
    prod = x.owner
    if prod is None or not isinstance(prod.op, Elemwise) or prod.op.scalar_op.name != "mul":
        return None
    sources = [_dimshuffled_matrix(v) for v in prod.inputs]
    if any(s is None for s in sources):
        return None
    (a, pa), (b, pb) = sources  # type: ignore[misc]
    if slices:  # to slice the sources, their rows must be the product's, and the bounds not need it
        bounds = [c for sl in slices for c in sl.inputs[1:]]
        if a.broadcastable[0] or b.broadcastable[0] or x in ancestors(bounds):
            return None
        for sl in reversed(slices):
            a, b = sl.op(a, *sl.inputs[1:]), sl.op(b, *sl.inputs[1:])
    if pa == (0, 1, "x") and pb == (0, "x", 1):
        left, right = a, b
    elif pa == (0, "x", 1) and pb == (0, 1, "x"):
        left, right = b, a
    else:
        return None
    out = dot(left.T, right)
    return [out] if out.dtype == node.outputs[0].dtype else [m.cast(out, node.outputs[0].dtype)]


@rule(Elemwise)
def scattered_minus_row_share(node: Apply) -> list[Variable] | None:
    """``G - y * G.sum(-1, keepdims=True)``, where ``G`` adds values into zeros shaped like ``y``
    at (row, column) pairs, is ``-y * s`` with the values added at the pairs, where ``s`` holds
    each row's total of the values. This is the cross-entropy gradient through log-softmax
    (``-mean(log p[arange(n), t])``): one pass over ``y`` instead of building ``G``, summing its
    rows and combining them."""
    if node.op.scalar_op.name != "sub":  # type: ignore[attr-defined]
        return None
    g, share = node.inputs
    scatter, product = g.owner, share.owner
    if (scatter is None or not isinstance(scatter.op, AdvancedIncSubtensor) or scatter.op.idx != ("a", "a")
            or scatter.op.set_instead_of_inc or product is None or not isinstance(product.op, Elemwise)
            or product.op.scalar_op.name != "mul"):
        return None
    zeros, values, rows, cols = scatter.inputs
    if not is_zeros(zeros) or zeros.owner is None or g.dtype != node.outputs[0].dtype:
        return None
    for y, total in (product.inputs, product.inputs[::-1]):
        summed = total.owner
        if (y.ndim == 2 and summed is not None and isinstance(summed.op, Reduce) and summed.op.kind == "sum"
                and summed.op.axis == (1,) and summed.op.keepdims and summed.inputs[0] is g
                and same_shape(zeros, y)
                and y.dtype == g.dtype):
            # the same pairs with every column 0: each row's total, as a column
            column = alloc(Constant(np.zeros((), g.dtype)), zeros.owner.inputs[1], 1)
            totals = AdvancedIncSubtensor(("a", "a"), False)(column, values, rows, m.mul(cols, 0))
            out = AdvancedIncSubtensor(("a", "a"), False)(m.neg(m.mul(y, totals)), values, rows, cols)
            return [out] if _same_type(out, node.outputs[0]) else None
    return None


def _row_increment(x: Variable) -> tuple[Variable, Variable, Variable] | None:
    """``(base, rows, idx)`` if ``x`` adds ``rows`` into ``base`` at row indices ``idx``."""
    node = x.owner
    if node is None or not isinstance(node.op, AdvancedIncSubtensor1) or node.op.set_instead_of_inc:
        return None
    base, rows, idx = node.inputs
    return base, rows, idx


def _fits_into(x: Variable, base: Variable) -> bool:
    """Whether ``x`` broadcasts into ``base`` without changing its shape."""
    if x.ndim > base.ndim:
        return False
    return all(bx or not bb for bx, bb in zip(x.broadcastable, base.broadcastable[base.ndim - x.ndim:]))


@rule(Elemwise)
def through_row_increment(node: Apply) -> list[Variable] | None:
    """``s * inc``, ``x + inc``, ``x - inc``, ``inc - x`` and ``-inc``, where ``inc`` adds rows
    into ``base`` at indices, are increments of ``s * base``, ``x + base``, ... by the (scaled)
    rows. An update with a scattered gradient (an embedding's, ``p - lr * g``, momentum's
    ``mu * v - lr * g``) then adds its rows into a dense pass that reads no gradient array; the
    zeros ``g`` starts from are read as a scalar. ``s`` is a scalar (all axes broadcastable)."""
    name = node.op.scalar_op.name  # type: ignore[attr-defined]
    if name not in ("mul", "add", "sub", "neg"):
        return None
    out = node.outputs[0]
    for pos, x in enumerate(node.inputs):
        found = _row_increment(x)
        if found is None:
            continue
        base, rows, idx = found
        others = node.inputs[:pos] + node.inputs[pos + 1:]
        if name == "neg":
            new_base, new_rows = m.neg(base), m.neg(rows)
        elif name == "mul":
            (s,) = others
            if not all(s.broadcastable) or s.ndim > base.ndim:
                continue
            new_base, new_rows = m.mul(s, base), m.mul(s, rows)
        else:
            (other,) = others
            if not _fits_into(other, base):
                continue
            if name == "add":
                new_base, new_rows = m.add(other, base), rows
            elif pos == 1:  # other - inc
                new_base, new_rows = m.sub(other, base), m.neg(rows)
            else:  # inc - other
                new_base, new_rows = m.sub(base, other), rows
        if new_base.dtype != out.dtype or new_base.ndim != out.ndim:
            continue
        return [AdvancedIncSubtensor1(False)(new_base, new_rows, idx)]
    return None


@rule(AdvancedIncSubtensor1)
def merge_row_increments(node: Apply) -> list[Variable] | None:
    """Two increments at the same indices are one, by the sum of their rows (Nesterov's step adds
    an embedding's scattered gradient twice, see ``through_row_increment``)."""
    inner = _row_increment(node.inputs[0])
    if node.op.set_instead_of_inc or inner is None or inner[2] is not node.inputs[2]:  # type: ignore[attr-defined]
        return None
    base, rows, idx = inner
    out = AdvancedIncSubtensor1(False)(base, m.add(rows, node.inputs[1]), idx)
    return [out] if _same_type(out, node.outputs[0]) else None


def _first_axis_slices(v: Variable) -> list[Apply]:
    """The chain of ``Subtensor`` nodes slicing only the first axis that ends in ``v``, outermost first."""
    slices: list[Apply] = []
    node = v.owner
    while node is not None and isinstance(node.op, Subtensor) and len(node.op.idx) == 1 \
            and node.op.idx[0][0] == "s":  # type: ignore[attr-defined]
        slices.append(node)
        node = node.inputs[0].owner
    return slices


def _dimshuffled_matrix(v: Variable) -> tuple[Variable, tuple[Any, ...]] | None:
    """``(x, order)`` if ``v`` is ``x.dimshuffle(order)`` for a matrix ``x``. (Slices of a backward
    loop's pushed-out sequence, ``x[:, :, None][::-1][:n]``, were moved under the dimshuffle by
    ``slices_before_dimshuffle``.)"""
    node = v.owner
    if node is None or not isinstance(node.op, DimShuffle) or node.inputs[0].ndim != 2:
        return None
    return node.inputs[0], node.op.new_order  # type: ignore[attr-defined]


@rule(Softmax, LogSoftmax)
def softmax_of_view(node: Apply) -> list[Variable] | None:
    """A row-wise softmax of a dimshuffle that keeps the last axis last is the dimshuffle of the
    softmax (so the kernel runs on the plain array, with no reshaping)."""
    (x,) = node.inputs
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    order = x.owner.op.new_order  # type: ignore[attr-defined]
    z = x.owner.inputs[0]
    if z.ndim == 0 or order[-1] != z.ndim - 1:
        return None
    return [dimshuffle(type(node.op)()(z), order)]


@rule(SoftmaxGrad)
def softmax_grad_of_views(node: Apply) -> list[Variable] | None:
    """The softmax gradient of two alike dimshuffles that keep the last axis last is the
    dimshuffle of the gradient (rows stay rows), as ``softmax_of_view`` does for the softmax."""
    g, y = node.inputs
    if g.owner is None or y.owner is None or not isinstance(g.owner.op, DimShuffle) \
            or not isinstance(y.owner.op, DimShuffle):
        return None
    order = y.owner.op.new_order  # type: ignore[attr-defined]
    a, b = g.owner.inputs[0], y.owner.inputs[0]
    if g.owner.op.new_order != order or b.ndim == 0 or a.ndim != b.ndim or order[-1] != b.ndim - 1:  # type: ignore[attr-defined]
        return None
    out = dimshuffle(SoftmaxGrad()(a, b), order)
    return [out] if _same_type(out, node.outputs[0]) else None


@rule(Subtensor)
def slices_before_dimshuffle(node: Apply) -> list[Variable] | None:
    """A slice of the first axis of a dimshuffle that keeps that axis first is the dimshuffle of
    the sliced input (``x[:, None][a:b]`` is ``x[a:b][:, None]``), so rules looking for
    dimshuffles (a backward loop reads its sequences sliced) see them."""
    op: Any = node.op
    x = node.inputs[0]
    if len(op.idx) != 1 or op.idx[0] == "i" or x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    order = x.owner.op.new_order  # type: ignore[attr-defined]
    if not order or order[0] != 0:
        return None
    out = dimshuffle(op(x.owner.inputs[0], *node.inputs[1:]), order)
    return [out] if _same_type(out, node.outputs[0]) else None


@rule(ShapeI)
def shape_of_softmax(node: Apply) -> list[Variable] | None:
    """A dimension of a (log-)softmax is that of its input: counting its rows (``T.arange(lp.shape[0])``)
    does not keep the whole (log-)softmax for the passes that avoid writing it."""
    x = node.inputs[0]
    if x.owner is None or type(x.owner.op) not in ROW_NORMALISED:
        return None
    return [length_by_rule(node)]


@rule(ArgReduce)
def argmax_of_softmax(node: Apply) -> list[Variable] | None:
    """The (log-)softmax keeps the order within each row, so its argmax (or argmin) along the rows
    is the logits' (where rounding made two entries equal, the index of the larger logit)."""
    op: Any = node.op
    x = node.inputs[0]
    if x.owner is None or type(x.owner.op) not in ROW_NORMALISED:
        return None
    if op.axis != x.ndim - 1 and not (op.axis is None and x.ndim == 1):
        return None
    return [ArgReduce(op.kind, op.axis, op.keepdims)(x.owner.inputs[0])]


@rule(ShapeI)
def shape_through_dimshuffle(node: Apply) -> list[Variable] | None:
    """A dimension of a dimshuffle is a dimension of its input (or 1 where it inserts an axis)."""
    x = node.inputs[0]
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    source = x.owner.op.new_order[node.op.i]  # type: ignore[attr-defined]
    return [Constant(1, dtype="int64") if source == "x" else ShapeI(source)(x.owner.inputs[0])]


@rule(Subtensor)
def index_of_inserted_axis(node: Apply) -> list[Variable] | None:
    """``x[:, None][:, 0]`` is ``x``: an index 0 or -1 of an axis that a dimshuffle inserted takes
    that axis out of the dimshuffle (whole slices elsewhere)."""
    op: Any = node.op
    x = node.inputs[0]
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    order = x.owner.op.new_order  # type: ignore[attr-defined]
    kept = length_one_picks(op.idx, node.inputs[1:], [d == "x" for d in order])
    if kept is None:
        return None
    out = dimshuffle(x.owner.inputs[0], (*[order[d] for d in kept], *order[len(op.idx):]))
    return [out] if _same_type(out, node.outputs[0]) else None
