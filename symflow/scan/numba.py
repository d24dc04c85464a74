"""Numba code for Scan: the loop written out inline, its body emitted like any other graph.

States live in buffers of ``max_lag + n_steps`` rows (the initial rows first); per-step outputs
in ``(n_steps, ...)`` arrays allocated at the first step, when their shape is known; sums are
accumulated in place. A zero-step scan with per-step outputs cannot know their shapes in
compiled code and hands the call to the NumPy backend.
"""

from __future__ import annotations

from typing import Any

from ..graph import Apply
from .op import Scan


def emit_scan(node: Apply, cg: Any) -> None:
    from ..compile.numba.backend import emit_graph
    from ..compile.numba.codegen import np_dtype

    op: Scan = node.op  # type: ignore[assignment]
    info = op.info
    outer = op.outer_groups(node.inputs)
    inner = op.inner_groups()
    n = cg.fresh("nsteps")
    cg.emit(f"{n} = {cg.value(outer['n_steps'])}")
    with cg.block(f"if {n} < 0:"):
        cg.emit(cg.fail(node, "negative number of steps"))
    if info.n_mapped:
        with cg.block(f"if {n} == 0:"):
            cg.emit('raise ValueError("symflow-fallback")')

    seqs = []
    for s, taps in zip(outer["seqs"], info.seq_taps):
        name = cg.value(s)
        if info.go_backwards:
            rev = cg.fresh("rev")
            cg.emit(f"{rev} = {name}[::-1]")
            name = rev
        with cg.block(f"if {name}.shape[0] - {max(taps) - min(taps)} < {n}:"):
            cg.emit(cg.fail(node, "a sequence is shorter than the number of steps"))
        seqs.append(name)

    buffers = []
    for j, (init, y) in enumerate(zip(outer["inits"], op.inner_state_outputs)):
        lag = info.max_lag(j)
        step_dims = cg.shape_tuple(init) if info.single_tap(j) else cg.shape_tuple(init)[1:]
        if not info.single_tap(j):
            with cg.block(f"if {cg.dim(init, 0)} < {lag}:"):
                cg.emit(cg.fail(node, f"state {j} needs {lag} initial rows"))
        buf = cg.fresh("buf")
        cg.emit(f"{buf} = np.empty(({lag} + {n}, {', '.join(step_dims)}), {np_dtype(y.dtype)})")
        if info.single_tap(j):
            if init.ndim == 0:
                cg.emit(f"{buf}[0] = {cg.value(init)}")
            else:
                cg.copy_into(f"{buf}[0]", init, step_dims)
        else:
            r = cg.fresh("r")
            with cg.block(f"for {r} in range({lag}):"):
                if init.ndim == 1:
                    cg.emit(f"{buf}[{r}] = {cg.value(init)}[{r}]")
                else:
                    with cg.loops(step_dims) as idx:
                        cg.emit(f"{buf}[{r}, {', '.join(idx)}] = {cg.value(init)}[{r}, {', '.join(idx)}]")
        buffers.append((buf, lag))

    sums = []
    for init in outer["sum_inits"]:
        acc = cg.fresh("acc")
        cg.emit(f"{acc} = {cg.value(init)}{'.copy()' if init.ndim else ''}")
        sums.append(acc)

    mapped = []
    for y in op.inner_mapped_outputs:
        mbuf = cg.fresh("per_step")
        cg.emit(f"{mbuf} = np.empty(({', '.join(['0'] * (y.ndim + 1))},), {np_dtype(y.dtype)})")
        mapped.append(mbuf)

    steps = cg.fresh("steps")
    cg.emit(f"{steps} = {n}")
    t = cg.fresh("t")
    with cg.block(f"for {t} in range({n}):"):
        for seq, taps, tap_vars in zip(seqs, info.seq_taps, inner["seqs"]):
            for k, v in zip(taps, tap_vars):
                cg.emit(f"{cg.new_name(v, 'x')} = {seq}[{t} + {k - min(taps)}]")
        for (buf, lag), taps, tap_vars in zip(buffers, info.state_taps, inner["states"]):
            for k, v in zip(taps, tap_vars):
                cg.emit(f"{cg.new_name(v, 'prev')} = {buf}[{lag} + {t} - {-k}]")
        for x, v in zip(outer["nonseqs"], inner["nonseqs"]):
            cg.bind(v, cg.value(x))
        emit_graph(cg, op.inner_outputs, op.inner_inputs)

        for (buf, lag), y in zip(buffers, op.inner_state_outputs):
            _store(node, cg, f"{buf}[{lag} + {t}]", y, [f"{buf}.shape[{d + 1}]" for d in range(y.ndim)])
        for mbuf, y in zip(mapped, op.inner_mapped_outputs):
            with cg.block(f"if {t} == 0:"):
                dims = cg.shape_tuple(y)
                cg.emit(f"{mbuf} = np.empty(({n}, {', '.join(dims)}), {np_dtype(y.dtype)})")
            _store(node, cg, f"{mbuf}[{t}]", y, [f"{mbuf}.shape[{d + 1}]" for d in range(y.ndim)])
        for acc, y in zip(sums, op.inner_sum_outputs):
            if y.ndim == 0:
                cg.emit(f"{acc} += {cg.value(y)}")
                continue
            dims = [f"{acc}.shape[{d}]" for d in range(y.ndim)]
            _check_dims(node, cg, y, dims)
            with cg.loops(dims) as idx:
                cg.emit(f"{acc}[{', '.join(idx)}] += {cg.elem(y, idx)}")
        if info.has_until:
            with cg.block(f"if {cg.value(op.inner_until)}:"):
                cg.emit(f"{steps} = {t} + 1")
                cg.emit("break")

    outs = node.outputs
    for j, (buf, lag) in enumerate(buffers):
        expr = f"{buf}[{lag}:{lag} + {steps}]" if info.keep_all[j] else f"{buf}[{lag} + {steps} - 1]"
        cg.emit(f"{cg.new_name(outs[j], 'scan')} = {expr}")
    for k, mbuf in enumerate(mapped):
        cg.emit(f"{cg.new_name(outs[info.n_states + k], 'scan')} = {mbuf}[:{steps}]")
    for k, acc in enumerate(sums):
        cg.bind(outs[info.n_states + info.n_mapped + k], acc)


def _check_dims(node: Apply, cg: Any, y: Any, dims: list[str]) -> None:
    for d in range(y.ndim):
        with cg.block(f"if {cg.dim(y, d)} != {dims[d]}:"):
            cg.emit(cg.fail(node, "a per-step value changed shape between steps"))


def _store(node: Apply, cg: Any, target: str, y: Any, dims: list[str]) -> None:
    """Copy the step's value ``y`` into ``target`` (a row of a buffer)."""
    if y.ndim == 0:
        cg.emit(f"{target} = {cg.value(y)}")
        return
    _check_dims(node, cg, y, dims)
    row = cg.fresh("row")
    cg.emit(f"{row} = {target}")
    with cg.loops(dims) as idx:
        cg.emit(f"{row}[{', '.join(idx)}] = {cg.elem(y, idx)}")
