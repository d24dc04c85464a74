"""The NumPy reference backend: run a graph node by node with each Op's ``perform``.

Slow but simple and exact; every op's result is checked against its declared type, which
makes this backend the oracle the Numba backend is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SymflowError, runtime_error
from ..graph import Apply, Constant, Variable, toposort


class PyProgram:
    """A graph from ``inputs`` to ``outputs`` prepared for repeated evaluation."""

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        nodes = toposort(self.outputs, stop_at=self.inputs)
        slot: dict[Variable, int] = {}
        for v in self.inputs:
            slot.setdefault(v, len(slot))
        self.constants: list[tuple[int, np.ndarray]] = []
        for node in nodes:
            for x in node.inputs:
                if x in slot:
                    continue
                if not isinstance(x, Constant):
                    raise ValueError(f"the graph needs {x.describe()}, which is neither an input nor a constant")
                slot[x] = len(slot)
                self.constants.append((slot[x], x.data))
            for y in node.outputs:
                slot[y] = len(slot)
        for y in self.outputs:
            if y not in slot:
                if not isinstance(y, Constant):
                    raise ValueError(f"output {y.describe()} is neither computed nor an input")
                slot[y] = len(slot)
                self.constants.append((slot[y], y.data))
        self.n_slots = len(slot)
        last_use = self._last_uses(nodes, slot)
        keep = {slot[v] for v in self.outputs}
        self.steps: list[tuple[Apply, list[int], list[int], list[int]]] = []
        for i, node in enumerate(nodes):
            free = [s for s, at in last_use.items() if at == i and s not in keep]
            self.steps.append((node, [slot[x] for x in node.inputs], [slot[y] for y in node.outputs], free))
        self.output_slots = [slot[y] for y in self.outputs]

    @staticmethod
    def _last_uses(nodes: list[Apply], slot: dict[Variable, int]) -> dict[int, int]:
        last: dict[int, int] = {}
        for i, node in enumerate(nodes):
            for x in node.inputs:
                last[slot[x]] = i
        return last

    def run(self, values: Sequence[Any]) -> list[Any]:
        storage: list[Any] = [None] * self.n_slots
        storage[: len(values)] = values
        for s, data in self.constants:
            storage[s] = data
        for node, ins, outs, free in self.steps:
            args = [storage[i] for i in ins]
            try:
                results = node.op.perform(node, args)
            except SymflowError:
                raise
            except Exception as exc:
                raise runtime_error(node, args, exc) from exc
            check_results(node, results)
            for s, r in zip(outs, results):
                storage[s] = r
            for s in free:
                storage[s] = None
        return [storage[s] for s in self.output_slots]


def check_results(node: Apply, results: Sequence[Any]) -> None:
    """An op's results must match its declared output types (a bug in the op otherwise)."""
    if len(results) != len(node.outputs):
        raise RuntimeError(f"internal error: {node.op} returned {len(results)} results for {len(node.outputs)} outputs")
    for y, r in zip(node.outputs, results):
        if not isinstance(r, np.ndarray) or r.dtype.name != y.dtype or r.ndim != y.ndim:
            got = f"{r.dtype.name} array of ndim {r.ndim}" if isinstance(r, np.ndarray) else type(r).__name__
            raise RuntimeError(f"internal error: {node.op} produced {got} for its output of type {y.type}")
        for d, b in enumerate(y.broadcastable):
            if b and r.shape[d] != 1:
                raise RuntimeError(f"internal error: {node.op} produced shape {r.shape} for {y.type}")
