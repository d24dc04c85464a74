"""Graph rewrites: small named passes run in order before a graph is compiled.

Each pass is a function ``FunctionGraph -> FunctionGraph`` registered with ``@register``;
``PIPELINE`` says in which order they run. A function built with ``rewrite=False`` runs none;
``rewrite=["merge", ...]`` runs only the named ones. ``REWRITES`` maps each name to its pass and
one-line description.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ...config import config
from ..fgraph import FunctionGraph

Pass = Callable[[FunctionGraph], FunctionGraph]


@dataclass
class Rewrite:
    name: str
    run: Pass
    doc: str
    scan_bodies: bool


REWRITES: dict[str, Rewrite] = {}

#: the order passes run in (a pass may run more than once, cleaning up after later ones)
PIPELINE = [
    "scan_merge",
    "merge",
    "constant_fold",
    "canonicalize",
    "scan_dead_outputs",
    "scan_hoist",
    "scan_push_out",
    "scan_dead_outputs",
    "stability",
    "merge",
    "constant_fold",
    "canonicalize",
    "stability",  # again: views of per-step values are only comparable once canonical
    "canonicalize",
    "share_softmax",
    "pick_log_softmax",
    "softmax_bias",
    "softmax_scale",
    "gemm",
    "fusion",
    "merge",
]


def register(name: str, scan_bodies: bool = False) -> Callable[[Pass], Pass]:
    """Register a pass under ``name``, to run after those registered before it.

    With ``scan_bodies=True`` the pass also rewrites the inner graph of every scan.
    """

    def deco(fn: Pass) -> Pass:
        if name in REWRITES:
            raise ValueError(f"rewrite {name!r} is already registered")
        REWRITES[name] = Rewrite(name, fn, (fn.__doc__ or "").strip().split("\n")[0], scan_bodies)
        return fn

    return deco


@contextlib.contextmanager
def skipped_if_failing(what: str | Callable[[], str]) -> Iterator[None]:
    """Run a rewrite of a graph that was valid: if it raises, that is a symflow bug, which should
    cost the rewrite, not the function. Warn and go on without it (``config.rewrite_errors="warn"``,
    the default) or raise (``"raise"``, as symflow's tests do). ``what`` names the rewrite, or makes
    its name when needed (a node's description took 15% of a warm compile's rewriting)."""
    try:
        yield
    except Exception as exc:
        if config.rewrite_errors == "raise":
            raise
        what = what if isinstance(what, str) else what()
        warnings.warn(f"symflow: {what} failed and was skipped ({type(exc).__name__}: {exc}). This is a symflow "
                      "bug; please report it (symflow.config.rewrite_errors = 'raise' makes it an error)",
                      stacklevel=3)


def in_scan_bodies(fgraph: FunctionGraph, run: Pass) -> FunctionGraph:
    """Apply ``run`` to the inner graph of every scan in ``fgraph`` (recursively)."""
    from ...scan.op import Scan
    from .basic import rewrite_nodes

    def local(node: Any) -> Any:
        op = node.op
        if not isinstance(op, Scan):
            return None
        inner = FunctionGraph(op.inner_inputs, op.inner_outputs, [])
        new_inner = in_scan_bodies(run(inner), run)
        if all(a is b for a, b in zip(new_inner.outputs, op.inner_outputs)):
            return None
        new_op = Scan(op.info, op.inner_inputs, new_inner.outputs)
        return new_op.make_node(*node.inputs).outputs

    return rewrite_nodes(fgraph, local)


def rewrite_graph(fgraph: FunctionGraph, only: Iterable[str] | None = None) -> FunctionGraph:
    """Run the PIPELINE (or only the passes named in ``only``, in pipeline order)."""
    wanted = None if only is None else set(only)
    if wanted is not None:
        unknown = wanted - set(REWRITES)
        if unknown:
            raise ValueError(f"unknown rewrites {sorted(unknown)}; known: {sorted(REWRITES)}")
    for name in PIPELINE:
        if name not in REWRITES or (wanted is not None and name not in wanted):
            continue
        r = REWRITES[name]
        with skipped_if_failing(f"the rewrite pass {name!r}"):
            fgraph = r.run(fgraph)
        if r.scan_bodies:
            with skipped_if_failing(f"the rewrite pass {name!r} in scan bodies"):
                fgraph = in_scan_bodies(fgraph, r.run)
    return fgraph


from . import basic, canonical, fusion, gemm, scan, stability  # noqa: E402,F401  (registers the passes)
