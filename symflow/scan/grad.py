"""Backpropagation through time: the gradient of a Scan is another Scan running backwards.

For one forward step ``(x_t, s_{t-k}..., theta) -> (s_t, y_t, c_t)`` the backward step takes
the gradient arriving at ``s_t`` (from later steps and from the outside) and at ``y_t``, and
gives gradients for ``x_t`` (collected per step), for the earlier states ``s_{t-k}`` (carried
to the next backward step) and for ``theta`` (summed in place over the steps).

The backward step reads forward values instead of recomputing them: every forward
intermediate it needs is added as an extra per-step output of an *augmented* copy of the
forward scan, which the ``scan_merge`` rewrite later fuses with the original.

A state with lags ``1..K`` carries ``K`` gradient lanes backwards: lane ``l`` holds the
gradient collected so far for the state ``l + 1`` steps before the current one.
"""

from __future__ import annotations

from typing import Any

from .. import dtypes
from ..gradient import backprop
from ..graph import Apply, Variable, ancestors, as_variable, clone_replace, graph_inputs, toposort
from ..ops import math as m
from ..ops.shape import concatenate, dimshuffle, patternbroadcast, shape_i, stack, zeros_like
from ..ops.subtensor import getitem, inc_subtensor, set_subtensor
from ..types import TensorType
from .op import Scan, ScanInfo, seq_offsets


def scan_grad(node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
    op: Scan = node.op  # type: ignore[assignment]
    info = op.info
    outer = op.outer_groups(node.inputs)
    inner = op.inner_groups()
    ns, nm = info.n_states, info.n_mapped
    g_states = output_grads[:ns]
    g_mapped = output_grads[ns: ns + nm]
    g_sums = output_grads[ns + nm:]
    no_grads: list[Variable | None] = [None] * len(node.inputs)
    if all(g is None for g in output_grads):
        return no_grads

    # -- placeholders of the backward step ----------------------------------------------------------
    float_state = [dtypes.is_float(y.dtype) for y in op.inner_state_outputs]
    lanes: list[list[Variable]] = []
    for j, y in enumerate(op.inner_state_outputs):
        lag = info.max_lag(j) if float_state[j] else 0
        lanes.append([TensorType(y.dtype, inner["states"][j][0].broadcastable)(f"d_state{j}[lane{lane}]")
                      for lane in range(lag)])
    ext_state = [TensorType(y.dtype, y.broadcastable)(f"d_state{j}[t]")
                 if g is not None and info.keep_all[j] and float_state[j] else None
                 for j, (y, g) in enumerate(zip(op.inner_state_outputs, g_states))]
    ext_mapped = [TensorType(y.dtype, y.broadcastable)(f"d_out{k}[t]") if g is not None else None
                  for k, (y, g) in enumerate(zip(op.inner_mapped_outputs, g_mapped))]
    sum_seed = [y.type(f"d_sum{k}") if g is not None else None
                for k, (y, g) in enumerate(zip(op.inner_sum_outputs, g_sums))]

    # -- the vector-Jacobian product of one step ---------------------------------------------------
    seeds: dict[Variable, Variable] = {}

    def seed(v: Variable, g: Variable) -> None:
        seeds[v] = m.add(seeds[v], g) if v in seeds else g

    for j, y in enumerate(op.inner_state_outputs):
        if not float_state[j]:
            continue
        total = lanes[j][0]
        if ext_state[j] is not None:
            total = m.add(total, ext_state[j])
        seed(y, patternbroadcast(total, y.broadcastable))
    for y, g in zip(op.inner_mapped_outputs, ext_mapped):
        if g is not None:
            seed(y, g)
    for y, g in zip(op.inner_sum_outputs, sum_seed):
        if g is not None:
            seed(y, g)
    wrt = [v for v in op.inner_inputs if dtypes.is_float(v.dtype)]
    step_grads = backprop(seeds, wrt)

    # backward outputs: next lanes, per-step sequence gradients, summed non-sequence gradients
    new_lanes: list[Variable] = []
    for j, taps in enumerate(info.state_taps):
        for lane in range(len(lanes[j])):
            terms: list[Variable] = []
            if lane + 1 < len(lanes[j]):
                terms.append(lanes[j][lane + 1])
            lag = lane + 1
            if -lag in taps:
                g = step_grads.get(inner["states"][j][taps.index(-lag)])
                if g is not None:
                    terms.append(g)
            value = terms[0] if terms else zeros_like(lanes[j][lane])
            for t in terms[1:]:
                value = m.add(value, t)
            new_lanes.append(patternbroadcast(value, lanes[j][lane].broadcastable))
    seq_grad_slots: list[tuple[int, int]] = []
    seq_grad_outs: list[Variable] = []
    for i, tap_vars in enumerate(inner["seqs"]):
        for ti, v in enumerate(tap_vars):
            g = step_grads.get(v)
            if g is not None:
                seq_grad_slots.append((i, ti))
                seq_grad_outs.append(g)
    nonseq_slots: list[int] = []
    nonseq_outs: list[Variable] = []
    for i, v in enumerate(inner["nonseqs"]):
        g = step_grads.get(v)
        if g is not None:
            nonseq_slots.append(i)
            nonseq_outs.append(g)
    backward_outs = new_lanes + seq_grad_outs + nonseq_outs

    # -- forward values the backward step reads: store them, don't recompute ------------------------
    forward_vars = set(ancestors(op.inner_outputs, stop_at=op.inner_inputs))
    saved: dict[Variable, None] = {}
    for n in toposort(backward_outs, stop_at=forward_vars):
        for x in n.inputs:
            if x in forward_vars and x.owner is not None:
                saved.setdefault(x)
    for y in backward_outs:
        if y in forward_vars and y.owner is not None:
            saved.setdefault(y)
    needed_inputs = set(graph_inputs(backward_outs, stop_at=list(saved)))
    # states the forward op does not stack (keep_all=False) are saved per step as well
    for j, taps in enumerate(inner["states"]):
        if not info.keep_all[j] and any(v in needed_inputs for v in taps):
            saved.setdefault(op.inner_state_outputs[j])
    # values the forward scan already returns per step need no extra output
    already = {y: j for j, y in enumerate(op.inner_state_outputs) if info.keep_all[j]}
    already.update({y: ns + k for k, y in enumerate(op.inner_mapped_outputs) if y not in already})
    saved_list = list(saved)
    saved_vars = [v.type(f"saved{i}") for i, v in enumerate(saved_list)]
    backward_outs = clone_replace(backward_outs, dict(zip(saved_list, saved_vars)))
    new_lanes = backward_outs[: len(new_lanes)]
    seq_grad_outs = backward_outs[len(new_lanes): len(new_lanes) + len(seq_grad_outs)]
    nonseq_outs = backward_outs[len(new_lanes) + len(seq_grad_outs):]
    needed_inputs = set(graph_inputs(backward_outs))

    extra = [v for v in saved_list if v not in already]
    aug = augmented(node, extra)
    extra_outputs = dict(zip(extra, aug.outputs[ns + nm: ns + nm + len(extra)]))
    aug_saved = [extra_outputs[v] if v in extra_outputs else aug.outputs[already[v]] for v in saved_list]
    saved_index = {v: i for i, v in enumerate(saved_list)}

    # -- how many steps to go back -----------------------------------------------------------------
    if info.has_until:
        stacked = [aug.outputs[j] for j in range(ns) if info.keep_all[j]] + list(aug.outputs[ns: ns + nm + len(extra)])
        if not stacked:
            raise NotImplementedError(f"the gradient of {op} with until() needs at least one per-step output")
        n = shape_i(stacked[0], 0)
    else:
        n = node.inputs[0]
    n = m.cast(n, "int64")
    if info.truncate_gradient > 0:
        n_back = m.minimum(n, info.truncate_gradient)
        start: Variable = m.sub(n, n_back)
    else:
        n_back, start = n, as_variable(0, "int64")

    def window(seq: Variable, offset: Any) -> Variable:
        """Entries ``offset + start .. offset + start + n_back`` of a per-iteration sequence."""
        lo = m.add(start, offset)
        return getitem(seq, slice(lo, m.add(lo, n_back)))

    seqs_iter = [getitem(s, slice(None, None, -1)) if info.go_backwards else s for s in outer["seqs"]]
    b_seq_outer: list[Variable] = []
    b_seq_inner: list[Variable] = []
    for i, (taps, tap_vars) in enumerate(zip(info.seq_taps, inner["seqs"])):
        for offset, v in zip(seq_offsets(taps, info.go_backwards)[0], tap_vars):
            if v in needed_inputs:
                b_seq_outer.append(window(seqs_iter[i], offset))
                b_seq_inner.append(v)
    for j, (taps, tap_vars) in enumerate(zip(info.state_taps, inner["states"])):
        if not any(v in needed_inputs for v in tap_vars):
            continue
        lag = info.max_lag(j)
        init = outer["inits"][j]
        if info.single_tap(j):
            block = dimshuffle(init, ("x",) + tuple(range(init.ndim)))
        else:
            block = getitem(init, slice(0, lag))
        values = aug.outputs[j] if info.keep_all[j] else aug_saved[saved_index[op.inner_state_outputs[j]]]
        history = concatenate([block, values])
        for k, v in zip(taps, tap_vars):
            if v in needed_inputs:
                b_seq_outer.append(window(history, lag + k))
                b_seq_inner.append(v)
    for outer_saved, v in zip(aug_saved, saved_vars):
        b_seq_outer.append(window(outer_saved, 0))
        b_seq_inner.append(v)
    for j, v in enumerate(ext_state):
        if v is not None:
            b_seq_outer.append(window(g_states[j], 0))  # type: ignore[arg-type]
            b_seq_inner.append(v)
    for k, v in enumerate(ext_mapped):
        if v is not None:
            b_seq_outer.append(window(g_mapped[k], 0))  # type: ignore[arg-type]
            b_seq_inner.append(v)

    lane_inits: list[Variable] = []
    lane_vars: list[Variable] = []
    for j in range(ns):
        init = outer["inits"][j]
        one_state = init if info.single_tap(j) else getitem(init, 0)
        for lane, v in enumerate(lanes[j]):
            if lane == 0 and not info.keep_all[j] and g_states[j] is not None:
                lane_inits.append(patternbroadcast(m.cast(g_states[j], v.dtype), v.broadcastable))  # type: ignore[arg-type]
            else:
                lane_inits.append(patternbroadcast(zeros_like(one_state), v.broadcastable))
            lane_vars.append(v)

    b_nonseq_outer: list[Variable] = []
    b_nonseq_inner: list[Variable] = []
    for x, v in zip(outer["nonseqs"], inner["nonseqs"]):
        if v in needed_inputs:
            b_nonseq_outer.append(x)
            b_nonseq_inner.append(v)
    for k, v in enumerate(sum_seed):
        if v is not None and v in needed_inputs:
            b_nonseq_outer.append(g_sums[k])  # type: ignore[arg-type]
            b_nonseq_inner.append(v)

    # non-sequence gradients are accumulated in place, starting from zero
    sum_inits = [zeros_like(outer["nonseqs"][i]) for i in nonseq_slots]
    nonseq_outs = [patternbroadcast(m.cast(g, outer["nonseqs"][i].dtype), outer["nonseqs"][i].broadcastable)
                   for g, i in zip(nonseq_outs, nonseq_slots)]

    b_info = ScanInfo(
        seq_taps=((0,),) * len(b_seq_inner),
        state_taps=((-1,),) * len(lane_vars),
        keep_all=(False,) * len(lane_vars),
        n_mapped=len(seq_grad_outs),
        n_sums=len(nonseq_outs),
        n_nonseqs=len(b_nonseq_inner),
        go_backwards=True,
        name=f"grad_of_{info.name}" if info.name else "grad_of_scan",
    )
    b_op = Scan(b_info, b_seq_inner + lane_vars + b_nonseq_inner, new_lanes + seq_grad_outs + nonseq_outs)
    b_node = b_op.make_node(n_back, *b_seq_outer, *lane_inits, *sum_inits, *b_nonseq_outer)
    final_lanes = b_node.outputs[: len(lane_vars)]
    seq_grads_back = b_node.outputs[len(lane_vars): len(lane_vars) + len(seq_grad_outs)]
    nonseq_grads = b_node.outputs[len(lane_vars) + len(seq_grad_outs):]

    # -- map back to the forward inputs ------------------------------------------------------------
    grads: list[Variable | None] = [None]
    seq_totals: list[Variable | None] = [None] * info.n_seqs
    for (i, ti), g_back in zip(seq_grad_slots, seq_grads_back):
        offsets, _ = seq_offsets(info.seq_taps[i], info.go_backwards)
        g_fwd = getitem(g_back, slice(None, None, -1))  # backward order -> forward iteration order
        total = seq_totals[i] if seq_totals[i] is not None else zeros_like(seqs_iter[i])
        lo = m.add(start, offsets[ti])
        seq_totals[i] = inc_subtensor(getitem(total, slice(lo, m.add(lo, n_back))), g_fwd)
    for i, total in enumerate(seq_totals):
        if total is not None and info.go_backwards:
            total = getitem(total, slice(None, None, -1))
        seq = outer["seqs"][i]
        grads.append(None if total is None or dtypes.is_discrete(seq.dtype) else
                     patternbroadcast(total, seq.broadcastable))
    it_lanes = iter(final_lanes)
    for j in range(ns):
        finals = [next(it_lanes) for _ in lanes[j]]
        init = outer["inits"][j]
        if not finals:
            grads.append(None)
            continue
        if info.single_tap(j):
            g_init = finals[0]
            if info.truncate_gradient > 0:
                g_init = m.switch(m.eq(start, 0), g_init, zeros_like(init))
        else:
            # lane l ends holding the gradient of the state l + 1 steps before step ``start``: of
            # initial row K + start - 1 - l (if ``start`` <= that row; truncated steps read the rest)
            rows = stack(list(reversed(finals)))  # row q: the lane of initial row q + start
            first = m.minimum(start, len(finals))
            g_init = set_subtensor(getitem(zeros_like(init), slice(first, len(finals))),
                                   getitem(rows, slice(0, m.sub(len(finals), first))))
        grads.append(patternbroadcast(m.cast(g_init, init.dtype), init.broadcastable))
    grads.extend(g_sums[k] for k in range(len(outer["sum_inits"])))
    nonseq_grad = dict(zip(nonseq_slots, nonseq_grads))
    for i, x in enumerate(outer["nonseqs"]):
        grads.append(nonseq_grad.get(i) if dtypes.is_float(x.dtype) else None)
    return grads


def augmented(node: Apply, saved: list[Variable]) -> Apply:
    """The forward scan with ``saved`` inner values added as per-step outputs (memoised per node)."""
    op: Scan = node.op  # type: ignore[assignment]
    cache: dict[tuple[int, ...], Apply] = node.__dict__.setdefault("_augmented", {})
    key = tuple(id(v) for v in saved)
    if key not in cache:
        if not saved:
            cache[key] = node
        else:
            info = op.info
            ns, nm = info.n_states, info.n_mapped
            outs = op.inner_outputs
            new_outs = outs[: ns + nm] + list(saved) + outs[ns + nm:]
            from dataclasses import replace

            aug_op = Scan(replace(info, n_mapped=nm + len(saved)), op.inner_inputs, new_outs, base=op)
            cache[key] = aug_op.make_node(*node.inputs)
    return cache[key]
