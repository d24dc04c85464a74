"""Numerical stability: rewrite expressions that overflow or lose precision into equivalent stable
forms, in the forward graph and in the gradients built from it.

* ``log(softmax(z))`` (also through indexing and dimshuffles, as in the book's
  ``-mean(log(py_x[arange(n), y]))``) becomes indexing of ``log_softmax(z)``;
* ``log(sigmoid(x))`` becomes ``-softplus(-x)`` and ``log(1 - sigmoid(x))`` ``-softplus(x)``;
* the gradient through softmax of such a loss divides by the softmax and multiplies by it
  again; ``SoftmaxGrad`` with an incoming ``G / y[...]`` is rewritten without the division, so
  it stays finite when a probability underflows to zero;
* so does the gradient through ``s = sigmoid(z)``, ``G * (s * (1 - s))``, of ``log(s)`` and
  ``log(1 - s)`` (a binary cross-entropy's): the divisions by ``s`` or ``1 - s`` in ``G`` cancel.
"""

from __future__ import annotations

from ...graph import Apply, Variable, rebuild
from ...ops import math as m
from ...ops.elemwise import Elemwise
from ...ops.nnet import ROW_NORMALISED, LogSoftmax, Softmax, SoftmaxGrad
from ...ops.reduce import sum as sum_
from ...ops.shape import Alloc, DimShuffle, ShapeI, SpecifyBroadcastable, constant_value, dimshuffle, shape_i
from ...ops.subtensor import (
    AdvancedIncSubtensor,
    AdvancedIncSubtensor1,
    AdvancedSubtensor,
    AdvancedSubtensor1,
    IncSubtensor,
    Subtensor,
)
from ..fgraph import FunctionGraph
from . import register
from .basic import is_zeros, rewrite_nodes

#: ops that only select or rearrange elements of their first input
VIEWS = (Subtensor, AdvancedSubtensor, AdvancedSubtensor1, DimShuffle, SpecifyBroadcastable)
#: writing counterpart -> reading op with the same index inputs
READER = {IncSubtensor: Subtensor, AdvancedIncSubtensor1: AdvancedSubtensor1, AdvancedIncSubtensor: AdvancedSubtensor}


def _scalar_name(v: Variable) -> str | None:
    node = v.owner
    if node is not None and isinstance(node.op, Elemwise):
        return node.op.scalar_op.name
    return None


@register("stability", scan_bodies=True)
def stability(fgraph: FunctionGraph) -> FunctionGraph:
    """Stable forms of log-softmax, log-sigmoid and the cross-entropy gradient."""

    def local(node: Apply) -> list[Variable] | None:
        op = node.op
        if isinstance(op, Elemwise) and op.scalar_op.name == "log":
            return _stable_log(node)
        if isinstance(op, Elemwise) and op.scalar_op.name == "mul":
            return _stable_sigmoid_grad(node)
        if isinstance(op, SoftmaxGrad):
            g, y = node.inputs
            yg = times(y, g)
            if yg is not None:
                return [m.sub(yg, m.mul(y, sum_(yg, axis=-1, keepdims=True)))]
        return None

    return rewrite_nodes(fgraph, local)


def _stable_log(node: Apply) -> list[Variable] | None:
    (x,) = node.inputs
    out = node.outputs[0]
    # log(view(softmax(z))) -> view(log_softmax(z))
    chain: list[Apply] = []
    v = x
    while v.owner is not None and isinstance(v.owner.op, VIEWS):
        chain.append(v.owner)
        v = v.owner.inputs[0]
    if v.owner is not None and isinstance(v.owner.op, Softmax):
        result = LogSoftmax()(v.owner.inputs[0])
        for view in reversed(chain):
            result = rebuild(view, [result, *view.inputs[1:]]).outputs[0]
        return [result] if result.dtype == out.dtype and result.ndim == out.ndim else None
    if _scalar_name(x) == "sigmoid":  # negated in sigmoid's float dtype: a bool fails, unsigned ints wrap
        z = m.cast(x.owner.inputs[0], x.dtype)  # type: ignore[union-attr]
        return [m.neg(m.softplus(m.neg(z)))]
    if _scalar_name(x) == "sub" and _is_one(x.owner.inputs[0]) and _scalar_name(x.owner.inputs[1]) == "sigmoid":  # type: ignore[union-attr]
        return [m.neg(m.softplus(x.owner.inputs[1].owner.inputs[0]))]  # type: ignore[union-attr]
    return None


def _stable_sigmoid_grad(node: Apply) -> list[Variable] | None:
    """``G * (s * (1 - s))``, the gradient through ``s = sigmoid(z)``, with each term of ``G`` that
    divides by ``s`` or ``1 - s`` cancelled against it (a term ``H / s`` gives ``H * sigmoid(-z)``)."""
    out = node.outputs[0]
    for g, derivative in (node.inputs, reversed(node.inputs)):
        if _sigmoid_derivative(derivative) is None:
            continue
        result, cancelled = _cancel_sigmoid(g, derivative)
        if cancelled and result.dtype == out.dtype and result.broadcastable == out.broadcastable:
            return [result]
    return None


def _cancel_sigmoid(part: Variable, derivative: Variable) -> tuple[Variable, bool]:
    """``part * derivative`` (``derivative = s * (1 - s)``) term by term through sums and negations,
    and whether a term's division by ``s`` or ``1 - s`` was cancelled."""
    if _scalar_name(part) in ("add", "neg"):
        terms = [_cancel_sigmoid(p, derivative) for p in part.owner.inputs]  # type: ignore[union-attr]
        build = m.add if _scalar_name(part) == "add" else m.neg
        return build(*[t for t, _ in terms]), any(c for _, c in terms)
    s, one_minus_s = _sigmoid_derivative(derivative)  # type: ignore[misc]
    for divisor, other in ((s, m.sigmoid(m.neg(s.owner.inputs[0]))), (one_minus_s, s)):  # type: ignore[union-attr]
        quotient = times(divisor, part)
        if quotient is not None:
            return m.mul(quotient, other), True
    return m.mul(part, derivative), False


def _sigmoid_derivative(v: Variable) -> tuple[Variable, Variable] | None:
    """``(s, 1 - s)`` if ``v`` is ``s * (1 - s)`` for ``s = sigmoid(z)`` (sigmoid's derivative)."""
    if _scalar_name(v) != "mul":
        return None
    a, b = v.owner.inputs  # type: ignore[union-attr]
    for s, c in ((a, b), (b, a)):
        if _scalar_name(s) == "sigmoid" and _scalar_name(c) == "sub" and _is_one(c.owner.inputs[0]) and \
                c.owner.inputs[1] is s:  # type: ignore[union-attr]
            return s, c
    return None


def _is_one(v: Variable) -> bool:
    data = getattr(v, "data", None)
    return data is not None and data.size > 0 and bool((data == 1).all())


def same_expr(a: Variable, b: Variable, depth: int = 8) -> bool:
    """Whether two variables certainly hold the same value (same op applied to the same inputs;
    a dimension length of two arrays that certainly have the same shape)."""
    if a is b:
        return True
    if depth == 0 or a.owner is None or b.owner is None or a.index != b.index:
        return False
    na, nb = a.owner, b.owner
    if na.op != nb.op or na.op.stateful or len(na.inputs) != len(nb.inputs):
        return False
    if isinstance(na.op, ShapeI):
        return same_shape(na.inputs[0], nb.inputs[0], depth - 1)
    return all(same_expr(x, y, depth - 1) for x, y in zip(na.inputs, nb.inputs))


def same_shape(a: Variable, b: Variable, depth: int = 8) -> bool:
    """Whether two arrays certainly have the same shape: the same value; an array made or written
    with the other's shape (``zeros_like(y)``, an increment of such); a (log-)softmax and its
    input; the same view of two arrays of the same shape."""
    if a.ndim != b.ndim:
        return False
    if same_expr(a, b, depth):
        return True
    if depth == 0:
        return False
    for u, v in ((a, b), (b, a)):
        node = u.owner
        if node is None:
            continue
        if isinstance(node.op, Alloc):
            return all(same_expr(n, shape_i(v, d), depth - 1) or _is_length(n, v, d)
                       for d, n in enumerate(node.inputs[1:]))
        if type(node.op) in READER or type(node.op) in ROW_NORMALISED:
            return same_shape(node.inputs[0], v, depth - 1)
    na, nb = a.owner, b.owner
    if na is None or nb is None or not isinstance(na.op, VIEWS) or na.op != nb.op:
        return False
    return same_shape(na.inputs[0], nb.inputs[0], depth - 1) and \
        all(same_expr(x, y, depth - 1) for x, y in zip(na.inputs[1:], nb.inputs[1:]))


def _is_length(n: Variable, v: Variable, d: int) -> bool:
    """Whether ``n`` is ``u.shape[i]`` for an array ``u`` whose dimension ``i`` is dimension ``d`` of
    ``v`` (through transposes), or 1 for a broadcastable dimension."""
    if v.broadcastable[d]:
        return constant_value(n) == 1
    node = n.owner
    return node is not None and isinstance(node.op, ShapeI) and \
        _dimension_source(node.inputs[0], node.op.i) == _dimension_source(v, d)  # type: ignore[attr-defined]


def _dimension_source(v: Variable, d: int) -> tuple[Variable, int]:
    """The array and dimension that dimension ``d`` of ``v`` has its length from."""
    while v.owner is not None and isinstance(v.owner.op, DimShuffle) and v.owner.op.new_order[d] != "x":
        v, d = v.owner.inputs[0], v.owner.op.new_order[d]  # type: ignore[attr-defined]
    return v, d


def times(y: Variable, g: Variable) -> Variable | None:
    """An expression for ``y * g`` that cancels a division by ``y`` inside ``g``, or None.

    Follows ``g`` through additions, writes into zeros (the gradients of indexing) and views
    that select the same elements of ``y`` and ``g`` (arrays proven to have the same shape).
    """
    node = g.owner
    if node is None:
        return None
    op = node.op
    if isinstance(op, Elemwise) and op.scalar_op.name == "true_div" and same_expr(node.inputs[1], y):
        num = node.inputs[0]
        return num if num.broadcastable == g.broadcastable or num.ndim == g.ndim else None
    if isinstance(op, Elemwise) and op.scalar_op.name == "add":
        parts = [times(y, part) for part in node.inputs]
        if any(p is None for p in parts):
            return None
        return m.add(*parts)  # type: ignore[arg-type]
    reader = READER.get(type(op))
    if reader is not None and not op.set_instead_of_inc and is_zeros(node.inputs[0]):  # type: ignore[attr-defined]
        base, value, *index = node.inputs
        if not same_shape(base, y):  # the index selects the same elements of both
            return None
        region = (reader(op.idx) if hasattr(op, "idx") else reader())(y, *index)  # type: ignore[attr-defined]
        region = _align(region, value)
        if region is None:
            return None
        inner = times(region, value)
        return None if inner is None else rebuild(node, [base, inner, *index]).outputs[0]
    if isinstance(op, DimShuffle) and _is_transpose(op.new_order, node.inputs[0].ndim):
        inverse = tuple(op.new_order.index(d) for d in range(g.ndim))  # y * h.T is (y.T * h).T
        inner = times(dimshuffle(y, inverse), node.inputs[0])
        return None if inner is None else dimshuffle(inner, op.new_order)
    if isinstance(op, VIEWS) and y.owner is not None and y.owner.op == op and \
            same_shape(y.owner.inputs[0], node.inputs[0]) and \
            all(same_expr(a, b) for a, b in zip(y.owner.inputs[1:], node.inputs[1:])):
        inner = times(y.owner.inputs[0], node.inputs[0])
        # y's index: g's may read the shape of the very value being replaced (keeping it alive)
        return None if inner is None else rebuild(node, [inner, *y.owner.inputs[1:]]).outputs[0]
    return None


def _is_transpose(order: tuple[int | str, ...], ndim: int) -> bool:
    """Whether a dimshuffle ``order`` of an ``ndim``-d array only reorders its dimensions."""
    return "x" not in order and sorted(order) == list(range(ndim))  # type: ignore[type-var]


def _align(region: Variable, value: Variable) -> Variable | None:
    """``region`` (read from y) shaped like ``value`` (written into g): pad broadcastable dims."""
    if region.ndim == value.ndim:
        return region
    if region.ndim < value.ndim:
        return DimShuffle(region.broadcastable, ("x",) * (value.ndim - region.ndim) + tuple(range(region.ndim)))(
            region)
    return None
