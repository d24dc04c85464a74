"""Elementwise fusion: chains of elementwise operations become one FusedElemwise loop."""

from __future__ import annotations

from ...graph import Apply, Variable, built_at
from ...ops.elemwise import Composite, Elemwise, FusedElemwise
from ..fgraph import FunctionGraph
from . import register
from .basic import rewire


def _is_elementwise(node: Apply | None) -> bool:
    return node is not None and isinstance(node.op, (Elemwise, FusedElemwise)) and node.outputs[0].ndim > 0


@register("fusion", scan_bodies=True)
def fusion(fgraph: FunctionGraph) -> FunctionGraph:
    """Fuse each elementwise operation with the elementwise producers only it uses."""
    nodes = fgraph.nodes()
    clients = fgraph.clients()
    groups: dict[Apply, list[Apply]] = {}  # root -> members in topological order
    absorbed: set[Apply] = set()
    for node in reversed(nodes):
        if node in absorbed or not _is_elementwise(node):
            continue
        space = node.outputs[0].broadcastable
        members = {node}
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for x in current.inputs:
                producer = x.owner
                if (producer is None or producer in members or not _is_elementwise(producer)
                        or x.broadcastable != space
                        or any(c is None or c not in members for c in clients.get(x, [None]))):
                    continue
                members.add(producer)
                frontier.append(producer)
        if len(members) > 1:
            order = [n for n in nodes if n in members]
            groups[node] = order
            absorbed.update(members - {node})
    if not groups:
        return fgraph

    memo: dict[Variable, Variable] = {}
    for node in nodes:
        if node in absorbed:
            continue
        if node in groups:
            new = _fuse(groups[node], memo)
        else:
            inputs = [memo.get(x, x) for x in node.inputs]
            if all(a is b for a, b in zip(inputs, node.inputs)):
                continue
            new = rewire(node, inputs)
        for old, out in zip(node.outputs, new.outputs):
            memo[old] = out
    return fgraph.replace_outputs([memo.get(y, y) for y in fgraph.all_outputs])


def _fuse(members: list[Apply], memo: dict[Variable, Variable]) -> Apply:
    """One FusedElemwise node computing the group (members in topological order, root last)."""
    produced = {n.outputs[0] for n in members}
    externals: list[Variable] = []
    for n in members:
        for x in n.inputs:
            if x not in produced and x not in externals:
                externals.append(x)
    ref: dict[Variable, int] = {x: i for i, x in enumerate(externals)}
    steps: list[tuple[str, tuple[int, ...], str]] = []
    n_in = len(externals)
    for n in members:
        args = tuple(ref[x] for x in n.inputs)
        if isinstance(n.op, Elemwise):
            steps.append((n.op.scalar_op.name, args, n.outputs[0].dtype))
        else:  # inline an already fused program
            inner = n.op.composite  # type: ignore[attr-defined]
            base = n_in + len(steps)
            k = len(inner.input_dtypes)

            def remap(r: int, args: tuple[int, ...] = args, base: int = base, k: int = k) -> int:
                return args[r] if r < k else base + (r - k)

            for name, inner_args, dtype in inner.steps:
                steps.append((name, tuple(remap(a) for a in inner_args), dtype))
            ref[n.outputs[0]] = remap(inner.output)
            continue
        ref[n.outputs[0]] = n_in + len(steps) - 1
    composite = Composite(tuple(x.dtype for x in externals), tuple(steps), ref[members[-1].outputs[0]])
    with built_at(members[-1].trace):  # its errors name the line that built the group's result
        return FusedElemwise(composite).make_node(*[memo.get(x, x) for x in externals])
