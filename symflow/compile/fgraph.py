"""FunctionGraph: what a compiled function computes, the unit that rewrites transform."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, toposort
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
        self._nodes: list[Apply] | None = None  # the graph never changes, so one walk serves every pass
        self._shared_inputs: list[SharedVariable] | None = None

    @property
    def shared_inputs(self) -> list[SharedVariable]:
        """The shared variables the graph reads, in order of first use (the compiled argument order)."""
        if self._shared_inputs is None:
            found: dict[SharedVariable, None] = {}
            for node in self.nodes():
                for x in node.inputs:
                    if isinstance(x, SharedVariable):
                        found.setdefault(x)
            for y in self.all_outputs:
                if isinstance(y, SharedVariable):
                    found.setdefault(y)
            self._shared_inputs = list(found)
        return self._shared_inputs

    @property
    def update_values(self) -> list[Variable]:
        return [e for _, e in self.updates]

    @property
    def all_outputs(self) -> list[Variable]:
        """Outputs followed by update values: everything the function computes."""
        return self.outputs + self.update_values

    def nodes(self) -> list[Apply]:
        """The nodes computing the outputs and update values, each after its inputs (do not modify)."""
        if self._nodes is None:
            self._nodes = toposort(self.all_outputs, stop_at=self.inputs)
        return self._nodes

    def clients(self) -> dict[Variable, list[Apply | None]]:
        """Who uses each variable: the nodes reading it, and ``None`` once per graph output."""
        users: dict[Variable, list[Apply | None]] = {}
        for node in self.nodes():
            for x in node.inputs:
                users.setdefault(x, []).append(node)
        for y in self.all_outputs:
            users.setdefault(y, []).append(None)
        return users

    def replace_outputs(self, new_all: Sequence[Variable]) -> FunctionGraph:
        """A FunctionGraph computing ``new_all`` (same layout as ``all_outputs``) instead."""
        n = len(self.outputs)
        updates = [(sv, e) for (sv, _), e in zip(self.updates, new_all[n:])]
        return FunctionGraph(self.inputs, list(new_all[:n]), updates)
