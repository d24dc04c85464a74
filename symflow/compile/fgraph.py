"""FunctionGraph: what a compiled function computes, the unit that rewrites transform."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, graph_inputs, toposort
from ..shared import SharedVariable


class FunctionGraph:
    """Explicit inputs, outputs, and ``(shared, new_value)`` updates of one function.

    Rewrites never mutate a FunctionGraph or its nodes; they build new graphs and return a new
    FunctionGraph with ``replace_outputs``.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
                 updates: Sequence[tuple[SharedVariable, Variable]]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.updates = list(updates)
        self.shared_inputs = [v for v in graph_inputs(self.all_outputs) if isinstance(v, SharedVariable)]

    @property
    def update_values(self) -> list[Variable]:
        return [e for _, e in self.updates]

    @property
    def all_outputs(self) -> list[Variable]:
        """Outputs followed by update values: everything the function computes."""
        return self.outputs + self.update_values

    def nodes(self) -> list[Apply]:
        return toposort(self.all_outputs, stop_at=self.inputs)

    def replace_outputs(self, new_all: Sequence[Variable]) -> FunctionGraph:
        """A FunctionGraph computing ``new_all`` (same layout as ``all_outputs``) instead."""
        n = len(self.outputs)
        updates = [(sv, e) for (sv, _), e in zip(self.updates, new_all[n:])]
        return FunctionGraph(self.inputs, list(new_all[:n]), updates)
