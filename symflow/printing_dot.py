"""Graph pictures with Graphviz: ``pydotprint`` (re-exported by ``symflow.printing``).

The dot source is built with the ``graphviz`` Python package and needs nothing else; turning it
into SVG, PNG or PDF needs Graphviz's ``dot`` program on the PATH.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import graphviz

from .graph import Apply, Constant, Variable, graph_inputs, toposort
from .shared import SharedVariable

INSTALL_HELP = (
    "Graphviz's 'dot' program is needed to render graph pictures and was not found on the PATH. "
    "Install Graphviz: 'sudo apt-get install graphviz' (Debian, Ubuntu), 'brew install graphviz' (macOS), "
    "'conda install graphviz', or an installer from graphviz.org. Without it, .source still gives the dot "
    "text and save('graph.dot') writes it."
)

#: fill colours and shapes of each kind of node (also listed in the docs' legend)
STYLE: dict[str, dict[str, str]] = {
    "input": {"shape": "ellipse", "style": "filled", "fillcolor": "#b2f2bb"},
    "shared": {"shape": "cylinder", "style": "filled", "fillcolor": "#a5d8ff"},
    "constant": {"shape": "box", "style": "rounded,filled", "fillcolor": "#f1f3f5", "fontsize": "9"},
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff3bf"},
    "scan": {"shape": "box3d", "style": "filled", "fillcolor": "#ffd8a8"},
    "output": {"shape": "invhouse", "style": "filled", "fillcolor": "#ffc9c9"},
    "update": {"shape": "cylinder", "style": "dashed,filled", "fillcolor": "#e5dbff", "color": "#7048e8"},
    "step_input": {"shape": "ellipse", "style": "dashed,filled", "fillcolor": "#e9ecef"},
    "step_output": {"shape": "invhouse", "style": "dashed,filled", "fillcolor": "#ffe3e3"},
}
_CLUSTER_FILLS = ("#fff9db", "#e7f5ff", "#f3f0ff", "#ebfbee")
_UPDATE_EDGE = {"style": "dashed", "color": "#7048e8", "fontcolor": "#7048e8"}
_ENTRY_EDGE = {"style": "dashed", "color": "#868e96", "fontcolor": "#868e96"}
_FEEDBACK_EDGE = {"style": "dotted", "color": "#e8590c", "fontcolor": "#e8590c", "constraint": "false"}


class GraphvizNotFoundError(RuntimeError):
    """Rendering a picture needs Graphviz's ``dot`` program, which is not installed."""


class GraphPicture:
    """A drawn graph: ``.source`` is the dot text; ``render`` and ``save`` turn it into a picture.

    In a Jupyter notebook the object displays itself as SVG.
    """

    def __init__(self, digraph: graphviz.Digraph, n_nodes: int, n_clusters: int) -> None:
        self.digraph = digraph
        self.n_nodes = n_nodes
        self.n_clusters = n_clusters

    @property
    def source(self) -> str:
        """The Graphviz dot source."""
        return str(self.digraph.source)

    def render(self, format: str = "svg") -> bytes:  # noqa: A002
        """The picture as bytes in ``format`` (``svg``, ``png``, ``pdf`` ...; ``dot`` gives the source)."""
        fmt = _check_format(format)
        if fmt in ("dot", "gv"):
            return self.source.encode("utf-8")
        try:
            return bytes(self.digraph.pipe(format=fmt))
        except graphviz.ExecutableNotFound as exc:
            raise GraphvizNotFoundError(INSTALL_HELP) from exc

    def save(self, path: str | os.PathLike[str], format: str | None = None) -> Path:  # noqa: A002
        """Write the picture to ``path``, in ``format`` or else the format its suffix names; returns the path."""
        path = Path(path)
        fmt = format or path.suffix.lstrip(".") or "svg"
        data = self.render(fmt)
        path.write_bytes(data)
        return path

    def _repr_svg_(self) -> str:
        return self.render("svg").decode("utf-8")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """SVG for notebooks; without Graphviz installed, the dot source and how to install it."""
        try:
            return {"image/svg+xml": self._repr_svg_(), "text/plain": repr(self)}
        except GraphvizNotFoundError as exc:
            return {"text/plain": f"{self.source}\n// {exc}"}

    def __repr__(self) -> str:
        clusters = f"{self.n_clusters} scan cluster" + ("" if self.n_clusters == 1 else "s")
        return f"<GraphPicture: {self.n_nodes} nodes, {clusters}>"


def _check_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt not in graphviz.FORMATS and fmt not in ("dot", "gv"):
        raise ValueError(f"unknown picture format {fmt!r}; use svg, png, pdf or dot")
    return fmt


def pydotprint(
    obj: Any,
    outfile: str | os.PathLike[str] | None = None,
    format: str | None = None,  # noqa: A002
    *,
    rewritten: bool | None = None,
    expand_scan: bool = True,
    rankdir: str = "TB",
    max_label_size: int = 70,
) -> GraphPicture:
    """Draw a graph with Graphviz; returns a GraphPicture and writes ``outfile`` when given.

    ``obj`` is a compiled function, a variable or a list of variables. A function is drawn
    after its rewrites (``rewritten=True``, the default) or as built (``rewritten=False``);
    variables are drawn as built unless ``rewritten=True``. Scan loops are clusters holding
    their step graph, or single nodes with ``expand_scan=False``. ``format`` defaults to the
    suffix of ``outfile``, else ``svg``.
    """
    from .compile.fgraph import FunctionGraph
    from .compile.function import Function

    if isinstance(obj, Function):
        fgraph = obj.fgraph if rewritten is None or rewritten else obj.fgraph_before_rewrites
        title = f"function {obj.name}" if obj.name else "function"
    elif isinstance(obj, FunctionGraph):
        fgraph, title = obj, "graph"
    else:
        if isinstance(obj, Variable):
            outputs = [obj]
        elif isinstance(obj, (list, tuple)) and obj and all(isinstance(v, Variable) for v in obj):
            outputs = list(obj)
        else:
            raise TypeError(f"pydotprint takes a function, a variable or a list of variables, got {type(obj).__name__}")
        free = [v for v in graph_inputs(outputs) if not isinstance(v, (Constant, SharedVariable))]
        fgraph = FunctionGraph(free, outputs, [])
        if rewritten:
            from .compile.rewrites import rewrite_graph

            fgraph = rewrite_graph(fgraph)
        title = ""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    drawer = _Drawer(expand_scan, max_label_size, rankdir, title)
    picture = drawer.draw(fgraph.inputs, fgraph.outputs, fgraph.updates)
    if outfile is not None:
        picture.save(outfile, format)
    elif format is not None:
        _check_format(format)
    return picture


# ---------------------------------------------------------------------------------------------
# building the dot graph
# ---------------------------------------------------------------------------------------------
Scope = tuple[Apply, ...]  # the scan nodes (outermost first) whose step graph holds a drawing


def _esc(text: str) -> str:
    """Text made safe inside a dot label (backslashes are dot's escape character)."""
    return text.replace("\\", "\\\\")


def _shape_text(broadcastable: tuple[bool, ...]) -> str:
    if not broadcastable:
        return "scalar"
    return "(" + ", ".join("1" if b else "?" for b in broadcastable) + ")"


def _scan_input_roles(op: Any) -> list[str]:
    """How a scan uses each of its outer inputs, in their order."""
    info = op.info
    return (["n_steps"] + [f"sequence {i}" for i in range(info.n_seqs)]
            + [f"initial {j}" for j in range(info.n_states)] + [f"sum init {k}" for k in range(info.n_sums)]
            + [f"non-sequence {k}" for k in range(info.n_nonseqs)])


def _scan_output_roles(op: Any) -> list[str]:
    """What each inner output of a scan is, in their order."""
    info = op.info
    states = [f"state {j} ({'all steps' if info.keep_all[j] else 'last value'})" for j in range(info.n_states)]
    return (states + [f"output {k} (per step)" for k in range(info.n_mapped)]
            + [f"sum {k}" for k in range(info.n_sums)] + (["until"] if info.has_until else []))


class _Drawer:
    def __init__(self, expand_scan: bool, max_label_size: int, rankdir: str, title: str) -> None:
        self.expand_scan = expand_scan
        self.max_label_size = max(8, int(max_label_size))
        self.root = graphviz.Digraph(
            "symflow",
            graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "fontsize": "11", "label": _esc(title),
                        "labelloc": "t", "newrank": "true"},
            node_attr={"fontname": "Helvetica", "fontsize": "10"},
            edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": "#495057"},
        )
        self.graphs: dict[Scope, graphviz.Digraph] = {(): self.root}
        self.ids: dict[tuple[Scope, Any], str] = {}
        self.scan_outs: dict[tuple[Scope, Apply], list[str]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.n_nodes = 0
        self.n_clusters = 0

    # -- nodes and edges ---------------------------------------------------------------------------
    def _label(self, lines: Sequence[str]) -> str:
        out = []
        for line in lines:
            if len(line) > self.max_label_size:
                line = line[: self.max_label_size - 3] + "..."
            out.append(_esc(line))
        return graphviz.nohtml("\\n".join(out))

    def _node(self, scope: Scope, key: Any, kind: str, lines: Sequence[str], tooltip: str = "") -> str:
        nid = f"n{self.n_nodes}"
        self.n_nodes += 1
        attrs = dict(STYLE[kind])
        if tooltip:
            attrs["tooltip"] = _esc(tooltip)
        self.graphs[scope].node(nid, self._label(lines), **attrs)
        if key is not None:
            self.ids[(scope, key)] = nid
        return nid

    def _edge(self, tail: str, head: str, label: str = "", **attrs: str) -> None:
        if label:
            attrs["label"] = _esc(label)
        self.edges.append((tail, head, attrs))

    def _leaf(self, scope: Scope, v: Variable, inputs: Sequence[Variable]) -> str:
        if isinstance(v, SharedVariable):
            value = v.get_value(borrow=True)
            shape = "scalar" if value.ndim == 0 else str(tuple(value.shape))
            return self._node(scope, v, "shared", [v.name or "shared", f"shared {v.dtype} {shape}"],
                              _where(v))
        if isinstance(v, Constant):
            return self._node(scope, v, "constant", [repr(v), f"{v.dtype} {_shape_text(v.broadcastable)}"])
        lines = [v.name or "(unnamed input)", v.type.describe()]
        if v in inputs:
            lines.insert(0, f"input {list(inputs).index(v)}")
        return self._node(scope, v, "input", lines, _where(v))

    def _source(self, scope: Scope, v: Variable, inputs: Sequence[Variable] = ()) -> tuple[str, str]:
        """The node an edge carrying ``v`` starts from, and a label for that edge."""
        if (scope, v) in self.ids:
            return self.ids[(scope, v)], ""
        owner = v.owner
        if owner is not None and (scope, owner) in self.scan_outs:
            return self.scan_outs[(scope, owner)][v.index or 0], v.name or ""
        if owner is not None and (scope, owner) in self.ids:
            label = f"out {v.index}" + (f" {v.name}" if v.name else "") if len(owner.outputs) > 1 else ""
            return self.ids[(scope, owner)], label
        return self._leaf(scope, v, inputs), ""

    def _op_node(self, scope: Scope, node: Apply) -> None:
        lines = [str(node.op)]
        if len(node.outputs) == 1:
            y = node.outputs[0]
            if y.name:
                lines[0] += f"  '{y.name}'"
            lines.append(f"{y.dtype} {_shape_text(y.broadcastable)}")
        else:
            roles = _scan_output_roles(node.op)[: len(node.outputs)] if _is_scan(node) else []
            for k, y in enumerate(node.outputs):
                role = roles[k] if roles else f"out {k}"
                lines.append(f"{role}: {y.dtype} {_shape_text(y.broadcastable)}" + (f" '{y.name}'" if y.name else ""))
        kind = "scan" if _is_scan(node) else "op"
        tooltip = f"built at {node.trace.filename}:{node.trace.lineno}" if node.trace is not None else ""
        nid = self._node(scope, node, kind, lines, tooltip)
        roles = _scan_input_roles(node.op) if _is_scan(node) else []
        for i, x in enumerate(node.inputs):
            src, label = self._source(scope, x)
            if roles:
                label = roles[i] + (f" ({label})" if label else "")
            self._edge(src, nid, label)

    def _nodes(self, scope: Scope, outputs: Sequence[Variable], stop_at: Sequence[Variable]) -> None:
        for node in toposort(outputs, stop_at=stop_at):
            if _is_scan(node) and self.expand_scan:
                self._scan_cluster(scope, node)
            else:
                self._op_node(scope, node)

    # -- scan loops ----------------------------------------------------------------------------------
    def _scan_cluster(self, scope: Scope, node: Apply) -> None:
        op: Any = node.op
        info = op.info
        inner: Scope = scope + (node,)
        cluster = graphviz.Digraph(name=f"cluster_{self.n_clusters}")
        self.n_clusters += 1
        direction = "backward" if info.go_backwards else "forward"
        parts = [f"{op}: {direction} loop"]
        if info.truncate_gradient != -1:
            parts.append(f"gradient truncated to {info.truncate_gradient} steps")
        cluster.attr(label=_esc(", ".join(parts)), style="rounded,filled", color="#adb5bd",
                     fillcolor=_CLUSTER_FILLS[len(scope) % len(_CLUSTER_FILLS)], fontsize="11", labeljust="l")
        self.graphs[inner] = cluster

        outer = op.outer_groups(node.inputs)
        groups = op.inner_groups()
        steps = self._node(inner, None, "step_input", ["n_steps"])
        src, _ = self._source(scope, outer["n_steps"])
        self._edge(src, steps, "n_steps", **_ENTRY_EDGE)
        for i, (seq, taps) in enumerate(zip(outer["seqs"], groups["seqs"], strict=True)):
            src, _ = self._source(scope, seq)
            for tap, v in zip(info.seq_taps[i], taps, strict=True):
                pid = self._node(inner, v, "step_input", [v.name or "?", f"sequence {i}, tap {tap:+d}",
                                                          f"{v.dtype} {_shape_text(v.broadcastable)}"])
                self._edge(src, pid, "sequence", **_ENTRY_EDGE)
        for j, (init, taps) in enumerate(zip(outer["inits"], groups["states"], strict=True)):
            src, _ = self._source(scope, init)
            for tap, v in zip(info.state_taps[j], taps, strict=True):
                pid = self._node(inner, v, "step_input", [v.name or "?", f"state {j}, tap {tap:+d}",
                                                          f"{v.dtype} {_shape_text(v.broadcastable)}"])
                self._edge(src, pid, "initial", **_ENTRY_EDGE)
        for k, (x, v) in enumerate(zip(outer["nonseqs"], groups["nonseqs"], strict=True)):
            src, _ = self._source(scope, x)
            pid = self._node(inner, v, "step_input", [v.name or "?", f"non-sequence {k}",
                                                      f"{v.dtype} {_shape_text(v.broadcastable)}"])
            self._edge(src, pid, "non-sequence", **_ENTRY_EDGE)

        self._nodes(inner, op.inner_outputs, op.inner_inputs)

        out_ids: list[str] = []
        roles = _scan_output_roles(op)
        for k, (role, y) in enumerate(zip(roles, op.inner_outputs, strict=True)):
            oid = self._node(inner, None, "step_output", [role, f"{y.dtype} {_shape_text(y.broadcastable)}"])
            src, label = self._source(inner, y)
            self._edge(src, oid, label)
            out_ids.append(oid)
            if k < info.n_states:
                for v in groups["states"][k]:
                    self._edge(oid, self.ids[(inner, v)], "next step", **_FEEDBACK_EDGE)
        for k, init in enumerate(outer["sum_inits"]):
            src, _ = self._source(scope, init)
            self._edge(src, out_ids[info.n_states + info.n_mapped + k], "initial sum", **_ENTRY_EDGE)
        self.scan_outs[(scope, node)] = out_ids
        self.graphs[scope].subgraph(cluster)

    # -- the whole picture ---------------------------------------------------------------------------
    def draw(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             updates: Sequence[tuple[SharedVariable, Variable]]) -> GraphPicture:
        for v in inputs:
            self._leaf((), v, inputs)
        everything = list(outputs) + [e for _, e in updates]
        self._nodes((), everything, inputs)
        for i, y in enumerate(outputs):
            oid = self._node((), None, "output", [f"output {i}"] + ([y.name] if y.name else [])
                             + [f"{y.dtype} {_shape_text(y.broadcastable)}"])
            src, label = self._source((), y, inputs)
            self._edge(src, oid, label)
        for sv, e in updates:
            value = sv.get_value(borrow=True)
            shape = "scalar" if value.ndim == 0 else str(tuple(value.shape))
            uid = self._node((), None, "update", [f"{sv.name or 'shared'} := new value", f"shared {sv.dtype} {shape}"])
            src, _ = self._source((), e, inputs)
            self._edge(src, uid, "update", **_UPDATE_EDGE)
        for tail, head, attrs in self.edges:
            self.root.edge(tail, head, **attrs)
        return GraphPicture(self.root, self.n_nodes, self.n_clusters)


def _is_scan(node: Apply) -> bool:
    from .scan.op import Scan

    return isinstance(node.op, Scan)


def _where(v: Variable) -> str:
    loc = v.location
    return f"created at {loc.filename}:{loc.lineno}" if loc is not None else ""
