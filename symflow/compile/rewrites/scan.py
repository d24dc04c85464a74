"""Passes specific to Scan loops."""

from __future__ import annotations

from ...graph import Apply, Variable
from ...scan.op import Scan
from ..fgraph import FunctionGraph
from . import register
from .basic import rewrite_nodes


@register("scan_merge")
def scan_merge(fgraph: FunctionGraph) -> FunctionGraph:
    """Run a forward scan once when grad added an augmented copy of it (same inputs, more outputs)."""
    augmented: dict[tuple[int, tuple[int, ...]], Apply] = {}
    for node in fgraph.nodes():
        op = node.op
        if isinstance(op, Scan) and op.base is not None:
            augmented.setdefault((id(op.base), tuple(id(x) for x in node.inputs)), node)

    def local(node: Apply) -> list[Variable] | None:
        op = node.op
        if not isinstance(op, Scan):
            return None
        aug = augmented.get((id(op), tuple(id(x) for x in node.inputs)))
        if aug is None:
            return None
        info = op.info
        ns, nm = info.n_states, info.n_mapped
        extra = aug.op.info.n_mapped - nm  # type: ignore[attr-defined]
        outs = aug.outputs
        return outs[:ns] + outs[ns: ns + nm] + outs[ns + nm + extra:]

    return rewrite_nodes(fgraph, local)
