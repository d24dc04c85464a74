"""Numba code for Scan: the loop written out inline, its body emitted like any other graph.

States live in buffers of ``max_lag + n_steps`` rows (the initial rows first); per-step outputs
in ``(n_steps, ...)`` arrays allocated in front of the loop, or at the first step when their
shape is only known there (a later step with another shape is an error); sums are accumulated
in place. A zero-step scan with per-step outputs cannot know their shapes in compiled code and
hands the call to the NumPy backend (the FALLBACK error).
"""

from __future__ import annotations

from typing import Any

from ..compile.numba.codegen import _NAME
from ..graph import Apply
from .op import Scan, seq_offsets

#: the error text that makes the wrapper rerun the call on the NumPy backend
FALLBACK = "zero steps: per-step output shapes are unknown to compiled code"


def emit_scan(node: Apply, cg: Any) -> None:
    from ..compile.numba.backend import emit_graph

    op: Scan = node.op  # type: ignore[assignment]
    info = op.info
    outer = op.outer_groups(node.inputs)
    inner = op.inner_groups()

    requested = cg.fresh("nreq")
    cg.emit(f"{requested} = {cg.value(outer['n_steps'])}")
    cg.check(f"{requested} < 0", node, "negative number of steps")
    seqs, available = [], []
    for s, taps in zip(outer["seqs"], info.seq_taps):
        name = cg.value(s)
        if info.go_backwards:
            rev = cg.fresh("rev")
            cg.emit(f"{rev} = {name}[::-1]")
            name = rev
        _, span = seq_offsets(taps, info.go_backwards)
        cg.check(f"{name}.shape[0] - {span} < {requested}", node, "a sequence is shorter than the number of steps")
        seqs.append(name)
        available.append(f"{name}.shape[0] - {span}")
    # after an error the loop runs only as far as is safe
    n = cg.fresh("nsteps")
    cg.emit(f"{n} = max(0, min({', '.join([requested, *available, requested])}))")
    if info.n_mapped:
        cg.check(f"{n} == 0", node, FALLBACK)

    # a buffer whose output the function neither returns nor stores lives in the call's scratch memory,
    # if the scan runs once per call; the output then counts as scratch memory (a returned view is copied)
    outs = node.outputs
    scratch = [cg.use_scratch and not cg.loop_stack and y not in cg.escaping for y in outs]
    cg.in_scratch.update(y for y, s in zip(outs, scratch) if s)
    buffers = []
    for j, (init, y) in enumerate(zip(outer["inits"], op.inner_state_outputs)):
        lag = info.max_lag(j)
        step_dims = cg.shape_tuple(init) if info.single_tap(j) else cg.shape_tuple(init)[1:]
        buf = cg.fresh("buf")
        cg.emit(f"{buf} = {cg.buffer([f'{lag} + {n}', *step_dims], y.dtype, scratch[j])}")
        if info.single_tap(j) and init.ndim == 0:
            cg.emit(f"{buf}[0] = {cg.value(init)}")
        elif info.single_tap(j):
            first = cg.fresh("first")
            cg.emit(f"{first} = {buf}[0]")
            cg.copy_into(first, init, node)
        else:  # the first ``lag`` rows of the initial block
            nd = init.ndim
            idx = ", ".join(f"i{d}" for d in range(nd))
            lines = ["def kernel(dst, src):",
                     "    if src.shape[0] < dst.shape[0] or src.shape[1:] != dst.shape[1:]:",
                     "        return 1"]
            for d in range(nd):
                lines.append("    " * (d + 1) + f"for i{d} in range(dst.shape[{d}]):")
            lines.append("    " * (nd + 1) + f"dst[{idx}] = src[{idx}]")
            lines.append("    return 0")
            status = cg.fresh("st")
            cg.emit(f"{status} = {cg.generated_kernel(chr(10).join(lines) + chr(10))}({buf}[:{lag}], {cg.value(init)})")
            cg.check_status(status, node, f"state {j} needs {lag} initial rows")
        buffers.append((buf, lag))

    sums = []
    for init in outer["sum_inits"]:
        acc = cg.fresh("acc")
        if init.ndim:
            cg.emit(f"{acc} = {cg.empty(cg.shape_tuple(init), init.dtype)}")
            cg.copy_into(acc, init, node)
        else:
            cg.emit(f"{acc} = {cg.value(init)}")
        sums.append(acc)

    mapped = []
    mapped_scratch = scratch[info.n_states: info.n_states + info.n_mapped]
    for y, in_scratch in zip(op.inner_mapped_outputs, mapped_scratch):
        mbuf = cg.fresh("per_step")
        if y.ndim == 0:  # a scalar per step: its buffer's shape is known now
            cg.emit(f"{mbuf} = {cg.buffer([n], y.dtype, in_scratch)}")
        mapped.append(mbuf)  # else allocated in front of the loop, or at the first step

    steps = cg.fresh("steps")
    cg.emit(f"{steps} = {n}")
    t = cg.fresh("t")
    for (buf, lag), y in zip(buffers, op.inner_state_outputs):
        if y.owner is not None and y.ndim > 0 and y not in op.inner_inputs:
            # computed straight into its buffer row
            row_dims = [f"{buf}.shape[{d + 1}]" for d in range(y.ndim)]
            cg.destinations[y] = (cg.step_row(buf, f"{lag} + {t}", y.ndim), row_dims)
    for mbuf, y, in_scratch in zip(mapped, op.inner_mapped_outputs, mapped_scratch):
        if y.owner is not None and y.ndim > 0 and y not in op.inner_inputs and y not in cg.destinations \
                and y not in cg.stacked:
            cg.stacked[y] = (mbuf, n, t, in_scratch)
    with cg.loop(f"for {t} in range({n}):"):
        for seq, taps, tap_vars in zip(seqs, info.seq_taps, inner["seqs"]):
            for k, v in zip(seq_offsets(taps, info.go_backwards)[0], tap_vars):
                cg.emit(f"{cg.new_name(v, 'x')} = {cg.step_row(seq, f'{t} + {k}', v.ndim)}")
                cg.shape_hints[v] = [f"{seq}.shape[{d + 1}]" for d in range(v.ndim)]
        for (buf, lag), taps, tap_vars in zip(buffers, info.state_taps, inner["states"]):
            for k, v in zip(taps, tap_vars):
                cg.emit(f"{cg.new_name(v, 'prev')} = {cg.step_row(buf, f'{lag} + {t} - {-k}', v.ndim)}")
                cg.shape_hints[v] = [f"{buf}.shape[{d + 1}]" for d in range(v.ndim)]
        for x, v in zip(outer["nonseqs"], inner["nonseqs"]):
            cg.bind(v, cg.value(x))
        emit_graph(cg, op.inner_outputs, op.inner_inputs)

        for (buf, lag), y in zip(buffers, op.inner_state_outputs):
            _store(node, cg, cg.step_row(buf, f"{lag} + {t}", y.ndim), y)
        for mbuf, y, in_scratch in zip(mapped, op.inner_mapped_outputs, mapped_scratch):
            if y in cg.stored and cg.stacked[y][0] == mbuf:
                continue  # computed straight into its row
            if y.ndim:  # allocated before the loop if the step shape is known there, else at the first step
                dims = cg.shape_tuple(y)
                allocation = f"{mbuf} = {cg.buffer([n, *dims], y.dtype, in_scratch)}"
                names = set(_NAME.findall(", ".join(dims))) - {"max", "min", "np", "math"}
                if not cg._hoist_line(allocation, names, outermost=in_scratch):
                    # a stand-in in front of the loop (``n`` is set there), replaced at the first step
                    if not cg._hoist_line(f"{mbuf} = {cg.empty([n] + ['0'] * y.ndim, y.dtype)}", {n}):
                        raise RuntimeError(f"internal error: no place in front of the loop for {mbuf}")
                    params = ", ".join(f"d{i}" for i in range(y.ndim))
                    source = (f"def kernel(buf, t, {params}):\n"
                              f"    if buf.shape[1:] == ({params},):\n"
                              f"        return buf, 0\n"
                              f"    if t != 0:  # a later step with another shape\n"
                              f"        return buf, 1\n"
                              f"    return runtime.new_array((buf.shape[0], {params}), buf.dtype), 0\n")
                    status = cg.fresh("st")
                    cg.emit(f"{mbuf}, {status} = {cg.kernel_call(cg.generated_kernel(source), mbuf, t, *dims)}")
                    cg.check_status(status, node, "a per-step output changed shape between steps")
            _store(node, cg, cg.step_row(mbuf, t, y.ndim), y)
        for acc, y in zip(sums, op.inner_sum_outputs):
            if y.ndim == 0:
                cg.emit(f"{acc} += {cg.value(y)}")
                continue
            cg.elementwise(acc, y.ndim, [y], lambda kw, idx, v=y: kw.elem(v, idx), op="+=", node=node)
        if info.has_until:
            with cg.block(f"if {cg.value(op.inner_until)}:"):
                cg.emit(f"{steps} = {t} + 1")
                cg.emit("break")

    for j, (buf, lag) in enumerate(buffers):
        expr = f"{buf}[{lag}:{lag} + {steps}]" if info.keep_all[j] else f"{buf}[{lag} + {steps} - 1]"
        cg.emit(f"{cg.new_name(outs[j], 'scan')} = {expr}")
    for k, mbuf in enumerate(mapped):
        cg.emit(f"{cg.new_name(outs[info.n_states + k], 'scan')} = {mbuf}[:{steps}]")
    for k, acc in enumerate(sums):
        cg.bind(outs[info.n_states + info.n_mapped + k], acc)


def _store(node: Apply, cg: Any, target: str, y: Any) -> None:
    """Copy the step's value ``y`` into ``target`` (a row of a buffer), unless it was computed there."""
    if y.ndim == 0:
        cg.emit(f"{target} = {cg.value(y)}")
        return
    if y in cg.destinations and cg.destinations[y][0] == target and cg.value(y).startswith("dst_"):
        return
    row = cg.fresh("row")
    cg.emit(f"{row} = {target}")
    cg.copy_into(row, y, node)
