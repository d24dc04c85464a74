"""An editable description of a Scan node, for rewrites that add or remove loop inputs/outputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..graph import Apply, Variable
from .op import Scan, ScanInfo


@dataclass
class Seq:
    outer: Variable
    taps: tuple[int, ...]
    inner: list[Variable]


@dataclass
class State:
    init: Variable
    taps: tuple[int, ...]
    inner: list[Variable]  # tap placeholders
    step: Variable  # the inner output (next value)
    keep_all: bool
    out: Variable | None = None  # the node's output for it (None for new states)


@dataclass
class Mapped:
    step: Variable
    out: Variable | None = None


@dataclass
class Sum:
    init: Variable
    step: Variable
    out: Variable | None = None


@dataclass
class NonSeq:
    outer: Variable
    inner: Variable


@dataclass
class Layout:
    """A Scan node as lists of parts; ``build()`` makes the node back."""

    n_steps: Variable
    seqs: list[Seq]
    states: list[State]
    mapped: list[Mapped]
    sums: list[Sum]
    nonseqs: list[NonSeq]
    until: Variable | None
    info: ScanInfo
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, node: Apply) -> Layout:
        op: Scan = node.op  # type: ignore[assignment]
        info = op.info
        outer = op.outer_groups(node.inputs)
        inner = op.inner_groups()
        outs = node.outputs
        ns, nm = info.n_states, info.n_mapped
        return cls(
            n_steps=outer["n_steps"],
            seqs=[Seq(s, t, v) for s, t, v in zip(outer["seqs"], info.seq_taps, inner["seqs"])],
            states=[State(i, t, v, y, k, o) for i, t, v, y, k, o in zip(
                outer["inits"], info.state_taps, inner["states"], op.inner_state_outputs, info.keep_all, outs[:ns])],
            mapped=[Mapped(y, o) for y, o in zip(op.inner_mapped_outputs, outs[ns: ns + nm])],
            sums=[Sum(i, y, o) for i, y, o in zip(outer["sum_inits"], op.inner_sum_outputs, outs[ns + nm:])],
            nonseqs=[NonSeq(x, v) for x, v in zip(outer["nonseqs"], inner["nonseqs"])],
            until=op.inner_until,
            info=info,
        )

    def build(self) -> Apply:
        """A new Scan node for this layout."""
        info = replace(
            self.info,
            seq_taps=tuple(s.taps for s in self.seqs),
            state_taps=tuple(s.taps for s in self.states),
            keep_all=tuple(s.keep_all for s in self.states),
            n_mapped=len(self.mapped),
            n_sums=len(self.sums),
            n_nonseqs=len(self.nonseqs),
            has_until=self.until is not None,
        )
        inner_inputs = [v for s in self.seqs for v in s.inner] + [v for s in self.states for v in s.inner] + \
            [n.inner for n in self.nonseqs]
        inner_outputs = [s.step for s in self.states] + [m.step for m in self.mapped] + [s.step for s in self.sums] + \
            ([self.until] if self.until is not None else [])
        op = Scan(info, inner_inputs, inner_outputs)
        outer = [self.n_steps] + [s.outer for s in self.seqs] + [s.init for s in self.states] + \
            [s.init for s in self.sums] + [n.outer for n in self.nonseqs]
        return op.make_node(*outer)

    def replacements(self, node: Apply) -> dict[Variable, Variable]:
        """Old node outputs -> outputs of ``node`` (built from this layout) for parts that survived."""
        parts = [s.out for s in self.states] + [m.out for m in self.mapped] + [s.out for s in self.sums]
        return {old: new for old, new in zip(parts, node.outputs) if old is not None}
