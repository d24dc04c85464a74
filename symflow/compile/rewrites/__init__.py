"""Graph rewrites: small named passes run in order before a graph is compiled.

Each pass is a function ``FunctionGraph -> FunctionGraph`` registered with ``@register``. A
function built with ``rewrite=False`` runs none; ``rewrite=["merge", ...]`` runs only the named
ones. ``REWRITES`` lists them all, in order, with a one-line description each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..fgraph import FunctionGraph

Pass = Callable[[FunctionGraph], FunctionGraph]


@dataclass
class Rewrite:
    name: str
    run: Pass
    doc: str


REWRITES: list[Rewrite] = []


def register(name: str) -> Callable[[Pass], Pass]:
    """Register a pass under ``name``, to run after those registered before it."""

    def deco(fn: Pass) -> Pass:
        if any(r.name == name for r in REWRITES):
            raise ValueError(f"rewrite {name!r} is already registered")
        REWRITES.append(Rewrite(name, fn, (fn.__doc__ or "").strip().split("\n")[0]))
        return fn

    return deco


def rewrite_graph(fgraph: FunctionGraph, only: Iterable[str] | None = None) -> FunctionGraph:
    """Apply the registered passes (or just those named in ``only``) in order."""
    wanted = None if only is None else set(only)
    if wanted is not None:
        unknown = wanted - {r.name for r in REWRITES}
        if unknown:
            raise ValueError(f"unknown rewrites {sorted(unknown)}; known: {[r.name for r in REWRITES]}")
    for r in REWRITES:
        if wanted is None or r.name in wanted:
            fgraph = r.run(fgraph)
    return fgraph


from . import basic, scan  # noqa: E402,F401  (registers the passes, in order)
