"""Generic passes: merge identical computations, fold constants, compute a softmax and a
log-softmax of the same rows once, read a log-softmax only where a graph reads it, and fold the
logits' bias and the gradient's factor per row into the pass that computes the rows' softmax."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ...graph import Apply, Constant, Variable, ancestors, built_at, clone_replace, rebuild, toposort
from ...ops import math as m
from ...ops.elemwise import Elemwise
from ...ops.nnet import LogSoftmax, LogSumExp, Softmax, SoftmaxAndLog
from ...ops.shape import Alloc, ShapeI, patternbroadcast, shape_i, zeros_like
from ...ops.subtensor import AdvancedSubtensor, is_pairs
from ..fgraph import FunctionGraph
from . import register, skipped_if_failing

LocalRewrite = Callable[[Apply], "list[Variable] | None"]


def rewire(node: Apply, inputs: list[Variable]) -> Apply:
    """``node``'s operation on ``inputs`` that compute the same values as its current inputs.

    When every input keeps its type, the outputs keep theirs, so the node is copied without
    rerunning the op's type inference (most of a warm compile's rewrite time). Only for
    value-preserving rewrites: an op's output type may depend on an input's value (a constant
    shape), which a rewrite never changes but a user's substitution may (``rebuild`` is for that).
    """
    if any(a.type != b.type for a, b in zip(inputs, node.inputs)):
        return rebuild(node, inputs)
    return Apply(node.op, inputs, [y.type for y in node.outputs], trace=node.trace)


def is_value(x: Variable, value: float) -> bool:
    """Whether ``x`` is a constant holding ``value`` in every entry."""
    data = getattr(x, "data", None)
    return isinstance(x, Constant) and data is not None and data.size > 0 and bool((data == value).all())


def is_zeros(x: Variable) -> bool:
    """A constant zero, or an Alloc filling with a constant zero."""
    if is_value(x, 0):
        return True
    return x.owner is not None and isinstance(x.owner.op, Alloc) and is_value(x.owner.inputs[0], 0)


def rewrite_nodes(fgraph: FunctionGraph, local: LocalRewrite) -> FunctionGraph:
    """Visit nodes inputs-first; ``local(node)`` may return replacement outputs for it.

    Each node is first rebuilt on its (already rewritten) inputs, so a rewrite sees the
    graph as transformed so far. A replacement must keep each output's dtype and ndim.
    """
    memo: dict[Variable, Variable] = {}
    for node in fgraph.nodes():
        inputs = [memo.get(x, x) for x in node.inputs]
        current = node if all(a is b for a, b in zip(inputs, node.inputs)) else rewire(node, inputs)
        replacement = None
        with built_at(current.trace), skipped_if_failing(functools.partial(_describe_rewrite, current)):
            replacement = local(current)  # what replaces a node is its: errors point at the user's line
        replacement = replacement or current.outputs
        for old, new in zip(node.outputs, replacement):
            if new is old:
                continue
            if new.dtype != old.dtype or new.ndim != old.ndim:
                raise RuntimeError(f"rewrite of {node.op} changed {old.type} into {new.type}")
            if new.broadcastable != old.broadcastable:
                new = patternbroadcast(new, old.broadcastable)
            memo[old] = new
    if not memo:
        return fgraph
    return fgraph.replace_outputs([memo.get(y, y) for y in fgraph.all_outputs])


def _describe_rewrite(node: Apply) -> str:
    where = f" (built at {node.trace})" if node.trace is not None else ""
    return f"a rewrite of {node.op}{where}"


@register("merge", scan_bodies=True)
def merge(fgraph: FunctionGraph) -> FunctionGraph:
    """Compute identical subgraphs (same op on the same inputs) and equal constants once."""
    constants: dict[Any, Constant] = {}
    seen: dict[Any, list[Variable]] = {}

    def local(node: Apply) -> list[Variable] | None:
        inputs = []
        for x in node.inputs:
            if isinstance(x, Constant):
                x = constants.setdefault((x.signature(), x.broadcastable), x)
            inputs.append(x)
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            node = rewire(node, inputs)
        if node.op.stateful:
            return node.outputs
        key = (node.op, tuple(id(x) for x in node.inputs))
        return seen.setdefault(key, node.outputs)

    return rewrite_nodes(fgraph, local)


_FOLD_LIMIT = 10_000  # elements; larger results stay computed at run time


@register("constant_fold", scan_bodies=True)
def constant_fold(fgraph: FunctionGraph) -> FunctionGraph:
    """Evaluate operations whose inputs are all constants (small results only)."""

    def local(node: Apply) -> list[Variable] | None:
        if node.op.stateful or not all(isinstance(x, Constant) for x in node.inputs):
            return None
        try:
            with np.errstate(all="ignore"):
                results = node.op.perform(node, [x.data for x in node.inputs])  # type: ignore[attr-defined]
        except Exception:
            return None  # leave it to fail at run time with the full error message
        if any(np.asarray(r).size > _FOLD_LIMIT for r in results):
            return None
        return [Constant(np.asarray(r), dtype=y.dtype, broadcastable=y.broadcastable)
                for r, y in zip(results, node.outputs)]

    return rewrite_nodes(fgraph, local)


@register("share_softmax", scan_bodies=True)
def share_softmax(fgraph: FunctionGraph) -> FunctionGraph:
    """A softmax and a log-softmax of the same rows come from one kernel (one exp per element)."""
    kinds: dict[Variable, set[type]] = {}
    for node in fgraph.nodes():
        if type(node.op) in (Softmax, LogSoftmax):
            kinds.setdefault(node.inputs[0], set()).add(type(node.op))
    both = {x for x, found in kinds.items() if len(found) == 2}
    if not both:
        return fgraph
    made: dict[Variable, list[Variable]] = {}

    def local(node: Apply) -> list[Variable] | None:
        if type(node.op) not in (Softmax, LogSoftmax) or node.inputs[0] not in both:
            return None
        softmax, log_softmax = made.setdefault(node.inputs[0], SoftmaxAndLog()(node.inputs[0]))
        return [softmax if type(node.op) is Softmax else log_softmax]

    return rewrite_nodes(fgraph, local)


@register("pick_log_softmax", scan_bodies=True)
def pick_log_softmax(fgraph: FunctionGraph) -> FunctionGraph:
    """A log-softmax read only at one entry per row (``lsm[rows, cols]``, as a cross-entropy reads
    it) becomes ``x[rows, cols] - lse[rows, 0]``, with ``lse`` the rows' log-sum-exp (``LogSumExp``,
    which also gives the softmax when the graph needs it): the whole log-softmax is never written."""
    clients = fgraph.clients()
    picked = set()  # log-softmax outputs whose every reader is such a pick
    for node in fgraph.nodes():
        if type(node.op) in (LogSoftmax, SoftmaxAndLog) and node.outputs[-1].ndim == 2:
            lsm = node.outputs[-1]
            readers = clients.get(lsm, [])
            if readers and all(_picks_pairs(r, lsm) for r in readers):
                picked.add(lsm)
    if not picked:
        return fgraph
    made: dict[Variable, list[Variable]] = {}

    def lse_of(x: Variable, with_softmax: bool) -> list[Variable]:
        return made.setdefault(x, LogSumExp(with_softmax).make_node(x).outputs)

    def local(node: Apply) -> list[Variable] | None:
        if type(node.op) is SoftmaxAndLog and node.outputs[1] in picked:
            return [lse_of(node.inputs[0], True)[0], node.outputs[1]]  # the log-softmax is left unread
        if isinstance(node.op, AdvancedSubtensor) and node.inputs[0] in picked:
            x = node.inputs[0].owner.inputs[0]  # type: ignore[union-attr]
            lse = lse_of(x, type(node.inputs[0].owner.op) is SoftmaxAndLog)[-1]  # type: ignore[union-attr]
            rows, cols = node.inputs[1:]
            # the same pairs (lengths, repeats, range checks) pick each row's log-sum-exp
            return [m.sub(node.op(x, rows, cols), node.op(lse, rows, zeros_like(cols)))]
        return None

    return rewrite_nodes(fgraph, local)


def _picks_pairs(reader: Apply | None, x: Variable) -> bool:
    """Whether ``reader`` is ``x[rows, cols]``, a pick of one entry per pair of indices."""
    return (reader is not None and isinstance(reader.op, AdvancedSubtensor) and reader.inputs[0] is x
            and x not in reader.inputs[1:] and is_pairs(reader.op.idx, x, reader.inputs[1:]))


def _is_elementwise(node: Apply | None, name: str) -> bool:
    return node is not None and isinstance(node.op, Elemwise) and node.op.scalar_op.name == name


def _matrix_plus_row(z: Variable) -> tuple[Variable, Variable] | None:
    """``(x, b)`` when ``z = x + b`` adds a row ``b`` to a matrix ``x`` of z's own type."""
    node = z.owner
    if not _is_elementwise(node, "add") or len(node.inputs) != 2 or z.ndim != 2:  # type: ignore[union-attr]
        return None
    a, b = node.inputs  # type: ignore[union-attr]
    for x, row in ((a, b), (b, a)):
        if x.type == z.type and row.dtype == z.dtype and row.broadcastable == (True, z.broadcastable[1]):
            return x, row
    return None


@register("softmax_bias", scan_bodies=True)
def softmax_bias(fgraph: FunctionGraph) -> FunctionGraph:
    """The rows' log-sum-exp (and softmax) of ``x + b``, logits with their bias row, come from
    ``x`` and ``b`` in one pass, and picks ``(x + b)[r, c]`` (a cross-entropy's) read
    ``x[r, c] + b[0, c]``: the sum is never written."""
    clients = fgraph.clients()
    sums = set()  # x + b read only by LogSumExps, picks and shape lookups
    for node in fgraph.nodes():
        if type(node.op) is LogSumExp and not node.op.with_bias and _matrix_plus_row(node.inputs[0]):
            z = node.inputs[0]
            if all((r is not None and r.inputs[0] is z and z not in r.inputs[1:]
                    and (type(r.op) is LogSumExp and not r.op.with_bias or type(r.op) is ShapeI))
                   or _picks_pairs(r, z) for r in clients[z]):
                sums.add(z)
    if not sums:
        return fgraph

    def local(node: Apply) -> list[Variable] | None:
        z = node.inputs[0] if node.inputs else None
        if z not in sums:
            return None
        x, b = _matrix_plus_row(z)  # type: ignore[misc]
        if type(node.op) is ShapeI:
            return [length_by_rule(node)]
        if type(node.op) is LogSumExp:
            with built_at(z.owner.trace):  # type: ignore[union-attr]  # a bias that does not fit is the sum's error
                op = LogSumExp(node.op.with_softmax, True, node.op.scaled)
                return op.make_node(x, b, *node.inputs[1:]).outputs
        rows, cols = node.inputs[1:]  # the same pairs (lengths, repeats, range checks) pick the bias;
        return [m.add(node.op(x, rows, cols), node.op(b, zeros_like(rows), cols))]  # bad ones are the pick's error

    return rewrite_nodes(fgraph, local)


def _scaled_softmax(node: Apply, clients: dict[Variable, list[Apply | None]]) -> tuple[Variable, Variable] | None:
    """For a LogSumExp whose softmax ``y`` is read only as ``y * s`` or ``-(y * s)`` (and its shape),
    with ``s`` a product of columns and numbers: that value and ``s`` (negated for the second form)."""
    y = node.outputs[0]
    readers = [r for r in clients.get(y, []) if r is None or type(r.op) is not ShapeI]
    if len(readers) != 1 or not _is_elementwise(readers[0], "mul") or sum(v is y for v in readers[0].inputs) != 1:  # type: ignore[union-attr]
        return None
    product = readers[0].outputs[0]  # type: ignore[union-attr]
    factors = [v for v in readers[0].inputs if v is not y]  # type: ignore[union-attr]
    if product.type != y.type or not all(v.dtype == y.dtype and (v.ndim == 0 or v.broadcastable[-1]) for v in factors):
        return None
    scale = m.mul(*factors) if len(factors) > 1 else factors[0]
    after = clients.get(product, [])
    if len(after) == 1 and _is_elementwise(after[0], "neg") and after[0].outputs[0].type == y.type:  # type: ignore[union-attr]
        product, scale = after[0].outputs[0], m.neg(scale)  # type: ignore[union-attr]
    if scale.broadcastable != (y.broadcastable[0], True):
        return None
    return product, scale


def length_by_rule(shape_node: Apply) -> Variable:
    """``u.shape[i]`` for a ``ShapeI(i)(u)`` node, from the shape rule of the op that made ``u``
    (so that it no longer reads ``u`` itself)."""
    u = shape_node.inputs[0]
    maker = u.owner
    shapes = [tuple(shape_i(x, d) for d in range(x.ndim)) for x in maker.inputs]  # type: ignore[union-attr]
    rule = maker.op.infer_shape(maker, shapes)  # type: ignore[union-attr]
    return rule[maker.outputs.index(u)][shape_node.op.i]  # type: ignore[union-attr,attr-defined,no-any-return]


def _apart_from(v: Variable, avoid: set[Variable], depth: int = 8) -> Variable | None:
    """``v`` computed without the values in ``avoid`` where it reads only their shapes (each
    ``u.shape[i]`` through ``length_by_rule``), or None if it cannot be."""
    nodes = toposort([v])
    reading = set(avoid)  # the values that depend on those in ``avoid``
    for node in nodes:
        if not reading.isdisjoint(node.inputs):
            reading.update(node.outputs)
    if v not in reading:
        return v
    lengths = {node.outputs[0]: length_by_rule(node) for node in nodes
               if type(node.op) is ShapeI and node.inputs[0] in reading and node.inputs[0].owner is not None}
    if not lengths or depth == 0:
        return None
    return _apart_from(clone_replace([v], lengths)[0], avoid, depth - 1)


@register("softmax_scale", scan_bodies=True)
def softmax_scale(fgraph: FunctionGraph) -> FunctionGraph:
    """A LogSumExp's softmax read only times a column (a cross-entropy's gradient is
    ``-softmax * row totals``) is written already multiplied, in the pass that computes it: the
    softmax itself is never written."""
    clients = fgraph.clients()
    replace: dict[Variable, Variable] = {}
    for node in fgraph.nodes():
        if type(node.op) is LogSumExp and node.op.with_softmax and not node.op.scaled:
            found = _scaled_softmax(node, clients)
            scale = None if found is None else _apart_from(found[1], set(node.outputs))  # the column counts rows
            if scale is None:
                continue
            with built_at(node.trace):
                y, lse = LogSumExp(True, node.op.with_bias, True).make_node(*node.inputs, scale).outputs
            replace[found[0]], replace[node.outputs[1]] = y, lse  # type: ignore[index]
            for r in clients[node.outputs[0]]:
                if r is not None and type(r.op) is ShapeI:  # y has the shape of the rows it is made from
                    replace[r.outputs[0]] = length_by_rule(r)
    if not replace or any(v in replace for v in ancestors(list(replace.values()), stop_at=replace)):
        return fgraph  # a new value built on another's replaced one: leave the graph as it is
    return fgraph.replace_outputs(clone_replace(fgraph.all_outputs, replace))
