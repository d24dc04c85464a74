"""Views of graphs: ``debugprint`` (indented text trees) and ``pydotprint`` (Graphviz pictures).

Both show scan loops with their step graphs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .graph import Apply, Constant, Variable
from .printing_dot import GraphPicture, GraphvizNotFoundError, pydotprint
from .shared import SharedVariable

__all__ = ["GraphPicture", "GraphvizNotFoundError", "debugprint", "pp", "pydotprint"]


def _ids() -> Any:
    """A, B, ..., Z, BA, BB, ... (Theano's style of node ids)."""
    n = 0
    while True:
        k, s = n, ""
        while True:
            s = chr(ord("A") + k % 26) + s
            k //= 26
            if k == 0:
                break
        yield s
        n += 1


class _Printer:
    def __init__(self, print_type: bool, print_location: bool) -> None:
        self.names: dict[Any, str] = {}
        self.gen = _ids()
        self.print_type = print_type
        self.print_location = print_location
        self.inner: list[Apply] = []
        self.lines: list[str] = []

    def ident(self, key: Any) -> str:
        if key not in self.names:
            self.names[key] = next(self.gen)
        return self.names[key]

    def label(self, v: Variable) -> str:
        if isinstance(v, SharedVariable):
            text = f"{v.name or 'shared'} [shared]"
        elif isinstance(v, Constant):
            text = repr(v)
        elif v.owner is None:
            text = v.name or "<input>"
        else:
            node = v.owner
            text = str(node.op)
            if len(node.outputs) > 1:
                text += f".{v.index}"
            if v.name:
                text += f" '{v.name}'"
        key = v.owner if v.owner is not None else v
        text += f" [id {self.ident(key)}]"
        if self.print_type:
            text += f" {v.type}"
        if self.print_location and v.location is not None:
            loc = v.location
            text += f"  <{loc.filename.rsplit('/', 1)[-1]}:{loc.lineno}>"
        return text

    def walk(self, v: Variable, prefix: str, child_prefix: str, seen: set[Apply], depth: int) -> None:
        self.lines.append(prefix + self.label(v))
        node = v.owner
        if node is None or depth == 0:
            return
        if node in seen:
            return  # printed above; its id tells which
        seen.add(node)
        from .scan.op import Scan

        if isinstance(node.op, Scan) and node not in self.inner:
            self.inner.append(node)
        for x in node.inputs:
            self.walk(x, child_prefix + " |", child_prefix + " |", seen, depth - 1)

    def render(self, roots: Sequence[tuple[str, Variable]], depth: int) -> str:
        seen: set[Apply] = set()
        for heading, v in roots:
            if heading:
                self.lines.append(heading)
            self.walk(v, "", "", seen, depth)
        done = 0
        while done < len(self.inner):
            node = self.inner[done]
            done += 1
            op = node.op
            self.lines.append("")
            info = op.info  # type: ignore[attr-defined]
            direction = " (backward)" if info.go_backwards else ""
            self.lines.append(f"Inner graph of {op}{direction} [id {self.ident(node)}]:")
            groups = op.inner_groups()  # type: ignore[attr-defined]
            ins = [f"{v.name or '?'}" for g in groups["seqs"] for v in g] + \
                [f"{v.name or '?'}" for g in groups["states"] for v in g] + [v.name or "?" for v in groups["nonseqs"]]
            self.lines.append(f"  step inputs: {', '.join(ins)}")
            kinds = ([f"state {j}" for j in range(info.n_states)] + [f"output {k}" for k in range(info.n_mapped)]
                     + [f"sum {k}" for k in range(info.n_sums)] + (["until"] if info.has_until else []))
            inner_seen: set[Apply] = set()
            for kind, y in zip(kinds, op.inner_outputs, strict=True):  # type: ignore[attr-defined]
                self.lines.append(f"  -> {kind}:")
                self.walk(y, "  ", "  ", inner_seen, depth)
        return "\n".join(self.lines) + "\n"


def debugprint(obj: Any, file: TextIO | str | os.PathLike[str] | None = None, print_type: bool = True,
               depth: int = -1, print_location: bool = False) -> str:
    """Print a graph as an indented tree; returns the text.

    ``obj`` is a variable, a list of variables, or a compiled function (then its rewritten graph
    with outputs and updates is shown). Scan bodies follow as "Inner graph" sections. ``file`` is
    where it goes: standard output (None), an open file, a path to write, or ``'str'`` to only
    return the text.
    """
    from .compile.fgraph import FunctionGraph
    from .compile.function import Function

    roots: list[tuple[str, Variable]] = []
    if isinstance(obj, Function):
        obj = obj.fgraph
    if isinstance(obj, FunctionGraph):
        for i, y in enumerate(obj.outputs):
            roots.append((f"output {i}:", y))
        for sv, e in obj.updates:
            roots.append((f"update of {sv.name or 'shared'}:", e))
    elif isinstance(obj, Variable):
        roots.append(("", obj))
    elif isinstance(obj, (list, tuple)) and all(isinstance(v, Variable) for v in obj):
        roots.extend(("", v) for v in obj)
    else:
        raise TypeError(f"debugprint takes a variable, a list of variables or a function, got {type(obj).__name__}")
    text = _Printer(print_type, print_location).render(roots, depth)
    if isinstance(file, (str, os.PathLike)) and file != "str":
        Path(file).write_text(text)
    elif file != "str":
        (file or sys.stdout).write(text)  # type: ignore[union-attr]
    return text


pp = debugprint
