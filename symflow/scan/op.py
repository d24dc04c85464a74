"""The Scan op: a loop whose body is an inner graph.

Per step, the inner graph maps ``[sequence taps..., state taps..., non-sequences...]`` to
``[next states..., mapped outputs..., sum contributions..., (stop condition)]``.

* a *state* is fed back: its taps read earlier steps (``-1`` the previous one); the op returns
  all steps stacked (``keep_all``) or only the last value;
* a *mapped* output is just collected, one entry per step;
* a *sum* output is accumulated in place (``init + sum over steps``); backward loops use these
  for parameter gradients so no per-step arrays are kept.

Outer inputs are ``[n_steps, sequences..., state inits..., sum inits..., non-sequences...]``;
outer outputs are ``[states..., mapped..., sums...]``. A state with taps ``(-1,)`` has a bare
initial value; any other taps take an initial block whose first ``max_lag`` rows are the
values at steps ``-max_lag .. -1``. Taps are kept in the order the user gave them, which is the
order of their inner inputs; ``seq_offsets`` says where a sequence's taps read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import SymflowError
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType


@dataclass(frozen=True)
class ScanInfo:
    """The static layout of a scan loop."""

    seq_taps: tuple[tuple[int, ...], ...]
    state_taps: tuple[tuple[int, ...], ...]
    keep_all: tuple[bool, ...]
    n_mapped: int
    n_sums: int
    n_nonseqs: int
    go_backwards: bool = False
    truncate_gradient: int = -1
    has_until: bool = False
    name: str | None = None

    @property
    def n_seqs(self) -> int:
        return len(self.seq_taps)

    @property
    def n_states(self) -> int:
        return len(self.state_taps)

    def max_lag(self, j: int) -> int:
        return -min(self.state_taps[j])

    def single_tap(self, j: int) -> bool:
        """States with taps ``(-1,)`` take a bare initial value rather than a block."""
        return self.state_taps[j] == (-1,)

    @property
    def n_inner_inputs(self) -> int:
        return sum(len(t) for t in self.seq_taps) + sum(len(t) for t in self.state_taps) + self.n_nonseqs

    @property
    def n_outer_outputs(self) -> int:
        return self.n_states + self.n_mapped + self.n_sums


@dataclass(eq=False)
class Scan(Op):
    """A loop over an inner graph (see the module docstring for the layout)."""

    info: ScanInfo
    inner_inputs: list[Variable]
    inner_outputs: list[Variable]
    #: for a scan built by grad with extra saved outputs: the scan it extends
    base: Scan | None = None
    _program: Any = field(default=None, repr=False)
    _shape_program: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        info = self.info
        if len(self.inner_inputs) != info.n_inner_inputs:
            raise ValueError(f"scan: {len(self.inner_inputs)} inner inputs for a layout needing {info.n_inner_inputs}")
        expected = info.n_states + info.n_mapped + info.n_sums + int(info.has_until)
        if len(self.inner_outputs) != expected:
            raise ValueError(f"scan: {len(self.inner_outputs)} inner outputs for a layout needing {expected}")

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __str__(self) -> str:
        return f"Scan{{{self.info.name}}}" if self.info.name else "Scan"

    # -- views of the layout ---------------------------------------------------------------------
    def inner_groups(self) -> dict[str, list[Any]]:
        """Inner inputs grouped: per sequence its tap variables, per state its tap variables, nonseqs."""
        info = self.info
        it = iter(self.inner_inputs)
        seqs = [[next(it) for _ in taps] for taps in info.seq_taps]
        states = [[next(it) for _ in taps] for taps in info.state_taps]
        nonseqs = [next(it) for _ in range(info.n_nonseqs)]
        return {"seqs": seqs, "states": states, "nonseqs": nonseqs}

    def outer_groups(self, inputs: Sequence[Any]) -> dict[str, Any]:
        info = self.info
        i = 1
        seqs = list(inputs[i:i + info.n_seqs])
        i += info.n_seqs
        inits = list(inputs[i:i + info.n_states])
        i += info.n_states
        sum_inits = list(inputs[i:i + info.n_sums])
        i += info.n_sums
        nonseqs = list(inputs[i:i + info.n_nonseqs])
        return {"n_steps": inputs[0], "seqs": seqs, "inits": inits, "sum_inits": sum_inits, "nonseqs": nonseqs}

    @property
    def inner_state_outputs(self) -> list[Variable]:
        return self.inner_outputs[: self.info.n_states]

    @property
    def inner_mapped_outputs(self) -> list[Variable]:
        n = self.info.n_states
        return self.inner_outputs[n: n + self.info.n_mapped]

    @property
    def inner_sum_outputs(self) -> list[Variable]:
        n = self.info.n_states + self.info.n_mapped
        return self.inner_outputs[n: n + self.info.n_sums]

    @property
    def inner_until(self) -> Variable | None:
        return self.inner_outputs[-1] if self.info.has_until else None

    # -- type rule -----------------------------------------------------------------------------
    def make_node(self, *inputs: Variable) -> Apply:
        info = self.info
        inputs = tuple(as_variable(x) for x in inputs)
        n_expected = 1 + info.n_seqs + info.n_states + info.n_sums + info.n_nonseqs
        if len(inputs) != n_expected:
            raise ValueError(f"scan takes {n_expected} outer inputs, got {len(inputs)}")
        outer = self.outer_groups(inputs)
        inner = self.inner_groups()
        n_steps = outer["n_steps"]
        if n_steps.ndim != 0 or not dtypes.is_int(n_steps.dtype):
            raise TypeError(f"scan n_steps must be an integer scalar, got {n_steps.describe()}")
        for seq, taps in zip(outer["seqs"], inner["seqs"]):
            for tap_var in taps:
                _expect(seq.type.dtype, seq.ndim - 1, tap_var, f"a step of sequence {seq.describe()}")
        for j, (init, taps) in enumerate(zip(outer["inits"], inner["states"])):
            nd = init.ndim if info.single_tap(j) else init.ndim - 1
            for tap_var in taps:
                _expect(init.dtype, nd, tap_var, f"the initial value {init.describe()}")
        for x, v in zip(outer["nonseqs"], inner["nonseqs"]):
            _expect(x.dtype, x.ndim, v, f"the non-sequence {x.describe()}")
        out_types: list[TensorType] = []
        for j, y in enumerate(self.inner_state_outputs):
            lead = (False,) if info.keep_all[j] else ()
            out_types.append(TensorType(y.dtype, lead + y.broadcastable))
        for y in self.inner_mapped_outputs:
            out_types.append(TensorType(y.dtype, (False,) + y.broadcastable))
        for init, y in zip(outer["sum_inits"], self.inner_sum_outputs):
            if init.dtype != y.dtype or init.ndim != y.ndim:
                raise TypeError(f"scan accumulator: initial {init.describe()} does not match the step's {y.type}")
            out_types.append(init.type)
        return Apply(self, list(inputs), out_types)

    # -- NumPy reference ---------------------------------------------------------------------------
    def program(self) -> Any:
        if self._program is None:
            from ..compile.py_backend import PyProgram

            self._program = PyProgram(self.inner_inputs, self.inner_outputs)
        return self._program

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        info = self.info
        outer = self.outer_groups(inputs)
        seqs = [s[::-1] if info.go_backwards else s for s in outer["seqs"]]
        n = steps_to_run(node, int(outer["n_steps"]), [s.shape[0] for s in seqs])
        # state buffers: max_lag initial rows followed by one row per step
        buffers = []
        for j, init in enumerate(outer["inits"]):
            lag = info.max_lag(j)
            block = init[None] if info.single_tap(j) else init
            if block.shape[0] < lag:
                raise ValueError(f"scan state {j} ({self._init_name(node, j)}) with taps {info.state_taps[j]} needs "
                                 f"{lag} initial rows, got shape {init.shape}")
            buf = np.empty((lag + n,) + block.shape[1:], dtype=node.outputs[j].dtype)
            buf[:lag] = block[:lag]
            buffers.append(buf)
        sums = [np.array(s, copy=True) for s in outer["sum_inits"]]
        mapped: list[np.ndarray | None] = [None] * info.n_mapped
        program = self.program()
        nonseqs = outer["nonseqs"]
        steps_done = n
        seq_reads = [seq_offsets(taps, info.go_backwards)[0] for taps in info.seq_taps]
        for t in range(n):
            args: list[Any] = []
            for s, offsets in zip(seqs, seq_reads):
                args.extend(s[t + k, ...] for k in offsets)  # [i, ...]: a 0-d array, never a NumPy scalar
            for j, taps in enumerate(info.state_taps):
                lag = info.max_lag(j)
                args.extend(buffers[j][lag + t + k, ...] for k in taps)
            args.extend(nonseqs)
            try:
                results = program.run(args)
            except SymflowError as exc:
                raise type(exc)(f"{exc}\n  (at step {t} of {self})") from exc
            for j in range(info.n_states):
                value = results[j]
                target = buffers[j][info.max_lag(j) + t]
                if value.shape != target.shape:
                    raise ValueError(f"scan state {j} (from {self._init_name(node, j)}) changed shape from "
                                     f"{target.shape} to {value.shape} at step {t}; a fed-back output must keep the "
                                     "shape of its initial value")
                buffers[j][info.max_lag(j) + t] = value
            off = info.n_states
            for k in range(info.n_mapped):
                value = results[off + k]
                if mapped[k] is None:
                    mapped[k] = np.empty((n,) + value.shape, dtype=node.outputs[off + k].dtype)
                elif mapped[k].shape[1:] != value.shape:  # type: ignore[union-attr]
                    raise ValueError(f"scan output {off + k} changed shape from {mapped[k].shape[1:]} to "  # type: ignore[union-attr]
                                     f"{value.shape} at step {t}; per-step outputs must keep one shape")
                mapped[k][t] = value  # type: ignore[index]
            off += info.n_mapped
            for k in range(info.n_sums):
                if results[off + k].shape != sums[k].shape:
                    raise ValueError(f"scan accumulator {k}: step value of shape {results[off + k].shape} "
                                     f"cannot be added to {sums[k].shape}")
                sums[k] += results[off + k]
            if info.has_until and bool(results[-1]):
                steps_done = t + 1
                break
        if any(m is None for m in mapped):
            shapes = self.zero_step_shapes(inputs, seqs)
            for k in range(info.n_mapped):
                if mapped[k] is None:
                    mapped[k] = np.empty((0,) + shapes[k], dtype=node.outputs[info.n_states + k].dtype)
        outs: list[np.ndarray] = []
        for j in range(info.n_states):
            lag = info.max_lag(j)
            stacked = buffers[j][lag: lag + steps_done]
            # the last value is the previous step's, or the last initial row after zero steps
            outs.append(stacked if info.keep_all[j] else buffers[j][lag + steps_done - 1, ...])
        outs += [m[:steps_done] for m in mapped]  # type: ignore[index]
        outs += sums
        return outs

    def zero_step_shapes(self, inputs: list[np.ndarray], seqs: list[np.ndarray]) -> list[tuple[int, ...]]:
        """Per-step shapes of the mapped outputs, found without running a step (for zero steps)."""
        from ..compile.py_backend import PyProgram
        from ..shapes import infer_shapes

        info = self.info
        if self._shape_program is None:
            shapes = infer_shapes(self.inner_mapped_outputs, self.inner_inputs)
            flat = [d for s in shapes for d in s]
            self._shape_program = (PyProgram(self.inner_inputs, flat), [len(s) for s in shapes])
        program, lengths = self._shape_program
        outer = self.outer_groups(inputs)
        args: list[Any] = []
        for s, taps in zip(seqs, info.seq_taps):
            args.extend(np.zeros(s.shape[1:], dtype=s.dtype) for _ in taps)
        for j, (init, taps) in enumerate(zip(outer["inits"], info.state_taps)):
            first = init if info.single_tap(j) else init[0, ...]
            args.extend(first for _ in taps)
        args.extend(outer["nonseqs"])
        with np.errstate(all="ignore"):
            flat_values = program.run(args)
        out, i = [], 0
        for n in lengths:
            out.append(tuple(int(v) for v in flat_values[i:i + n]))
            i += n
        return out

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        from ..ops.shape import shape_i

        return [tuple(shape_i(y, d) for d in range(y.ndim)) for y in node.outputs]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        from .grad import scan_grad

        return scan_grad(node, output_grads)

    def _init_name(self, node: Apply, j: int) -> str:
        """The variable state ``j`` of ``node`` starts from, for error messages."""
        return str(self.outer_groups(node.inputs)["inits"][j].describe())

    def numba_emit(self, node: Apply, cg: Any) -> None:
        from .numba import emit_scan

        emit_scan(node, cg)


def seq_offsets(taps: Sequence[int], go_backwards: bool) -> tuple[tuple[int, ...], int]:
    """Where a sequence's taps read at step ``t``: entry ``t + offset`` of the sequence in loop order
    (reversed for ``go_backwards``), one offset per tap; and the span, the entries the window needs
    beyond the steps. As in Theano, the window counts tap 0 even when it is not used (taps ``[-1]``
    start at the second entry, taps ``[2]`` at the third), and a tap reads the same time in both
    directions (tap -1 is the earlier entry also when the loop walks backwards)."""
    lo, hi = min(min(taps), 0), max(max(taps), 0)
    offsets = tuple(hi - k for k in taps) if go_backwards else tuple(k - lo for k in taps)
    return offsets, hi - lo


def steps_to_run(node: Apply, n_steps: int, seq_lengths: Sequence[int]) -> int:
    """Check that the sequences of the scan ``node`` are long enough for ``n_steps`` steps."""
    op: Scan = node.op  # type: ignore[assignment]
    seqs = op.outer_groups(node.inputs)["seqs"]
    return check_steps(str(op), seqs, op.info.seq_taps, op.info.go_backwards, n_steps, seq_lengths)


def check_steps(scan: str, seqs: Sequence[Variable], seq_taps: Sequence[Sequence[int]], go_backwards: bool,
                n_steps: int, seq_lengths: Sequence[int]) -> int:
    """Return ``n_steps`` if it is not negative and the sequences ``seqs`` of ``scan``, with
    ``seq_lengths`` entries, are long enough for it; else raise, naming the sequence."""
    if n_steps < 0:
        raise ValueError(f"{scan}: n_steps must not be negative, got {n_steps}")
    for i, (seq, length, taps) in enumerate(zip(seqs, seq_lengths, seq_taps)):
        _, span = seq_offsets(taps, go_backwards)
        if length - span < n_steps:
            raise ValueError(f"{scan}: sequence {i}, {seq.describe()}, has {length} entries; {n_steps} steps with "
                             f"taps {list(taps)} need {n_steps + span}")
    return n_steps


class StepsCheck(Op):
    """A number of steps given to a scan, checked as the loop checks it (not negative, sequences long
    enough) before anything reads it. The rewrites that take per-step work out of a loop slice the
    sequences by it, and can remove the loop: the check stays, so they cannot read too few rows."""

    __props__ = ("scan", "seq_taps", "go_backwards")

    def __init__(self, scan: str, seq_taps: Sequence[Sequence[int]], go_backwards: bool) -> None:
        self.scan, self.seq_taps, self.go_backwards = scan, tuple(map(tuple, seq_taps)), go_backwards

    def __str__(self) -> str:
        return "StepsCheck"

    def make_node(self, n_steps: Variable, *seqs: Variable) -> Apply:
        return Apply(self, [n_steps, *seqs], [n_steps.type()])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        n_steps, *seqs = inputs
        check_steps(self.scan, node.inputs[1:], self.seq_taps, self.go_backwards, int(n_steps), [len(s) for s in seqs])
        return [np.asarray(n_steps)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None] * len(node.inputs)

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [()]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        n_steps, *seqs = node.inputs
        value = cg.value(n_steps)
        cg.check(f"{value} < 0", node, "negative number of steps")
        for seq, taps in zip(seqs, self.seq_taps):
            _, span = seq_offsets(taps, self.go_backwards)
            cg.check(f"{cg.dim(seq, 0)} - {span} < {value}", node, "a sequence is shorter than the number of steps")
        cg.bind(node.outputs[0], value)


def _expect(dtype: str, ndim: int, inner: Variable, what: str) -> None:
    if inner.dtype != dtype or inner.ndim != ndim:
        raise TypeError(f"scan inner input {inner.type} does not match {what}")
