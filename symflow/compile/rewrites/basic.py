"""Generic passes: merge identical computations, fold constants, compute a softmax and a
log-softmax of the same rows once, and read a log-softmax only where a graph reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...graph import Apply, Constant, Variable, rebuild
from ...ops import math as m
from ...ops.nnet import LogSoftmax, LogSumExp, Softmax, SoftmaxAndLog
from ...ops.shape import patternbroadcast, zeros_like
from ...ops.subtensor import AdvancedSubtensor, is_pairs
from ..fgraph import FunctionGraph
from . import register

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


def rewrite_nodes(fgraph: FunctionGraph, local: LocalRewrite) -> FunctionGraph:
    """Visit nodes inputs-first; ``local(node)`` may return replacement outputs for it.

    Each node is first rebuilt on its (already rewritten) inputs, so a rewrite sees the
    graph as transformed so far. A replacement must keep each output's dtype and ndim.
    """
    memo: dict[Variable, Variable] = {}
    for node in fgraph.nodes():
        inputs = [memo.get(x, x) for x in node.inputs]
        current = node if all(a is b for a, b in zip(inputs, node.inputs)) else rewire(node, inputs)
        replacement = local(current) or current.outputs
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
            if readers and all(r is not None and r.inputs[0] is lsm and lsm not in r.inputs[1:]
                               and isinstance(r.op, AdvancedSubtensor) and is_pairs(r.op.idx, lsm, r.inputs[1:])
                               for r in readers):
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
