"""Passes specific to Scan loops: merge with grad's augmented copies, drop unused outputs, and move
work out of the loop (before it when it only reads sequences, after it when nothing in the loop
needs it).

Moving work out relies on each op's ``batch`` rule: the same operation applied to all steps at
once, inputs carrying a leading step axis. A per-step product ``x_t . W`` becomes ``X . W``; a
per-step softmax of the state becomes one softmax over all states; a weight gradient summed
over steps becomes one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable

from ...graph import Apply, Constant, Variable, built_at, clone_replace, graph_inputs, rebuild, toposort
from ...ops import math as m
from ...ops.elemwise import Elemwise
from ...ops.reduce import sum as sum_
from ...ops.shape import ShapeI, alloc, concatenate, constant_value, dimshuffle, patternbroadcast, shape_i
from ...ops.subtensor import getitem
from ...scan.layout import Layout, Mapped, NonSeq, Seq
from ...scan.op import Scan, StepsCheck, seq_offsets
from ...types import TensorType
from ..fgraph import FunctionGraph
from . import register
from .basic import is_zeros, length_by_rule, rewire, rewrite_nodes
from .canonical import rule

Transform = Callable[[Apply, list[bool]], "list[Variable | None] | None"]


def rewrite_scans(fgraph: FunctionGraph, transform: Transform) -> FunctionGraph:
    """Apply ``transform(node, used)`` to each scan node; ``used[i]`` says whether output i has users.

    The transform returns a replacement per output (None for outputs nobody uses), or None to
    leave the node alone.
    """
    clients = fgraph.clients()
    memo: dict[Variable, Variable] = {}
    changed = False
    for node in fgraph.nodes():
        inputs = [memo.get(x, x) for x in node.inputs]
        current = node if all(a is b for a, b in zip(inputs, node.inputs)) else rewire(node, inputs)
        outputs: list[Variable | None] = list(current.outputs)
        if isinstance(current.op, Scan):
            used = [bool(clients.get(y)) for y in node.outputs]
            result = transform(current, used)
            if result is not None:
                outputs, changed = result, True
        for old, new in zip(node.outputs, outputs):
            if new is not None and new is not old:
                memo[old] = _fit(new, old)
    if not memo and not changed:
        return fgraph
    return fgraph.replace_outputs([memo.get(y, y) for y in fgraph.all_outputs])


def _fit(new: Variable, old: Variable) -> Variable:
    if new.dtype != old.dtype:
        new = m.cast(new, old.dtype)
    if new.broadcastable != old.broadcastable:
        new = patternbroadcast(new, old.broadcastable)
    return new


# ---------------------------------------------------------------------------------------------
@register("scan_merge")
def scan_merge(fgraph: FunctionGraph) -> FunctionGraph:
    """Run a forward scan once when grad added an augmented copy of it (same inputs, more outputs)."""
    augmented: dict[tuple[int, tuple[int, ...]], Apply] = {}
    for node in fgraph.nodes():
        op = node.op
        if isinstance(op, Scan) and op.base is not None:
            augmented.setdefault((id(op.base), tuple(id(x) for x in node.inputs)), node)

    def local(node: Apply) -> list[Variable] | None:
        op = node.op
        if not isinstance(op, Scan):
            return None
        aug = augmented.get((id(op), tuple(id(x) for x in node.inputs)))
        if aug is None:
            return None
        info = op.info
        ns, nm = info.n_states, info.n_mapped
        extra = aug.op.info.n_mapped - nm  # type: ignore[attr-defined]
        outs = aug.outputs
        return outs[:ns] + outs[ns: ns + nm] + outs[ns + nm + extra:]

    return rewrite_nodes(fgraph, local)


# ---------------------------------------------------------------------------------------------
@register("scan_dead_outputs", scan_bodies=True)
def scan_dead_outputs(fgraph: FunctionGraph) -> FunctionGraph:
    """Remove scan outputs nobody uses, and the loop inputs only they needed."""
    return rewrite_scans(fgraph, _drop_dead)


def _drop_dead(node: Apply, used: list[bool]) -> list[Variable | None] | None:
    layout = Layout.of(node)
    ns, nm = len(layout.states), len(layout.mapped)
    used_state = used[:ns]
    layout.mapped = [p for p, u in zip(layout.mapped, used[ns: ns + nm]) if u]
    layout.sums = [p for p, u in zip(layout.sums, used[ns + nm:]) if u]
    states = list(zip(layout.states, used_state))
    while True:  # a state nobody outside uses stays only while the loop itself reads it
        kept_steps = [s.step for s, _ in states] + [p.step for p in layout.mapped] + [p.step for p in layout.sums] + \
            ([layout.until] if layout.until is not None else [])
        needed = set(graph_inputs(kept_steps, stop_at=node.op.inner_inputs))  # type: ignore[attr-defined]
        survivors = [(s, u) for s, u in states if u or any(v in needed for v in s.inner)]
        if len(survivors) == len(states):
            break
        states = survivors
    for s, u in states:
        if not u:
            s.keep_all = False
    layout.states = [s for s, _ in states]
    layout.seqs = [s for s in layout.seqs if any(v in needed for v in s.inner)]
    layout.nonseqs = [n for n in layout.nonseqs if n.inner in needed]
    before = (node.op.info.n_states, node.op.info.n_mapped, node.op.info.n_sums,  # type: ignore[attr-defined]
              node.op.info.n_seqs, node.op.info.n_nonseqs, node.op.info.keep_all)  # type: ignore[attr-defined]
    after = (len(layout.states), len(layout.mapped), len(layout.sums), len(layout.seqs), len(layout.nonseqs),
             tuple(s.keep_all for s in layout.states))
    if before == after:
        return None
    if not layout.states and not layout.mapped and not layout.sums:
        return [None] * len(node.outputs)
    new = layout.build()
    mapping = layout.replacements(new)
    return [mapping.get(y) if u else None for y, u in zip(node.outputs, used)]


# ---------------------------------------------------------------------------------------------
@rule(StepsCheck)
def steps_within_sequences(node: Apply) -> list[Variable] | None:
    """(A rule of ``canonicalize``.) A scan's ``n_steps`` needs no check when it can be neither
    negative nor more than its sequences hold, as ``n_steps=X.shape[0]`` with ``sequences=X``: then
    slicing the sequences by it is seen to take them whole."""
    op: StepsCheck = node.op  # type: ignore[assignment]
    n_steps, *seqs = node.inputs
    if not _never_negative(n_steps):
        return None
    for seq, taps in zip(seqs, op.seq_taps):
        _, span = seq_offsets(taps, op.go_backwards)
        if not _at_most_length(n_steps, _same_length(seq), span):
            return None
    return [n_steps]


def _same_length(x: Variable, depth: int = 4) -> list[Variable]:
    """``x`` and the variables its first dimension has the length of, by the shape rules of the ops
    that made it (``We[X]`` has ``X``'s rows)."""
    found = [x]
    while x.owner is not None and x.ndim and len(found) <= depth:
        length = length_by_rule(ShapeI(0).make_node(x))
        if length.owner is None or type(length.owner.op) is not ShapeI or length.owner.op.i != 0:  # type: ignore[attr-defined]
            break
        x = length.owner.inputs[0]
        found.append(x)
    return found


def _never_negative(n: Variable) -> bool:
    """Whether ``n`` is a length, a constant >= 0, or a maximum with one or a minimum of them."""
    if isinstance(n, Constant):
        return bool(n.data >= 0)
    node = n.owner
    if node is None:
        return False
    if type(node.op) is ShapeI:
        return True
    name = node.op.scalar_op.name if isinstance(node.op, Elemwise) else None  # type: ignore[attr-defined]
    if name == "maximum":
        return any(_never_negative(a) for a in node.inputs)
    if name == "minimum":
        return all(_never_negative(a) for a in node.inputs)
    return name is not None and name.startswith("cast_") and node.inputs[0].dtype.startswith("int") and \
        _never_negative(node.inputs[0])


def _at_most_length(n: Variable, xs: list[Variable], less: int) -> bool:
    """Whether ``n <= len(x) - less`` holds, for ``xs`` of one length, by how ``n`` is built: one of
    their lengths, less constants, a minimum with anything, a maximum with a small enough constant."""
    node = n.owner
    if node is None:
        return False
    if type(node.op) is ShapeI:
        return less <= 0 and node.op.i == 0 and node.inputs[0] in xs  # type: ignore[attr-defined]
    if not isinstance(node.op, Elemwise):
        return False
    name, args = node.op.scalar_op.name, node.inputs
    if name.startswith("cast_") and args[0].dtype.startswith("int"):
        return _at_most_length(args[0], xs, less)
    if name == "minimum":
        return any(_at_most_length(a, xs, less) for a in args)
    if name == "maximum":  # a length is never negative: a constant k <= -less is within it
        return all(_at_most_length(a, xs, less) if constant_value(a) is None else constant_value(a) <= -less
                   for a in args)
    if name == "sub" and constant_value(args[1]) is not None:
        return _at_most_length(args[0], xs, less - int(constant_value(args[1])))
    return False


# ---------------------------------------------------------------------------------------------
@register("scan_hoist", scan_bodies=True)
def scan_hoist(fgraph: FunctionGraph) -> FunctionGraph:
    """Compute loop-invariant work once before the loop, and work that only reads sequences for
    all steps at once (``x_t . W`` becomes ``X . W``)."""
    return rewrite_scans(fgraph, _hoist)


def _rows_read(s: Seq, n: Variable, go_backwards: bool) -> slice:
    """The rows of a one-tap sequence that ``n`` steps read, in their stored order."""
    (offset,), _ = seq_offsets(s.taps, go_backwards)
    if not go_backwards:
        return slice(offset, m.add(offset, n)) if offset else slice(0, n)
    if not offset:
        return slice(m.sub(shape_i(s.outer, 0), n), None)
    stop = m.sub(shape_i(s.outer, 0), offset)  # the loop reads backwards from the row before ``stop``
    return slice(m.sub(stop, n), stop)


def _hoist(node: Apply, used: list[bool]) -> list[Variable | None] | None:
    op: Scan = node.op  # type: ignore[assignment]
    layout = Layout.of(node)
    # inner variable -> (outer value, batched over steps?)
    known: dict[Variable, tuple[Variable, bool]] = {n.inner: (n.outer, False) for n in layout.nonseqs}
    if not op.info.has_until:
        n = m.cast(layout.n_steps, "int64")
        for s in layout.seqs:
            if len(s.taps) == 1:  # the rows the loop reads, in their stored order
                known[s.inner[0]] = (getitem(s.outer, _rows_read(s, n, op.info.go_backwards)), True)
    hoisted: dict[Variable, tuple[Variable, bool]] = {}
    for inner_node in toposort(op.inner_outputs, stop_at=op.inner_inputs):
        values = [_known_value(x, known) for x in inner_node.inputs]
        if any(v is None for v in values) or inner_node.op.stateful:
            continue
        flags = [b for _, b in values]  # type: ignore[misc]
        outer_inputs = [v for v, _ in values]  # type: ignore[misc]
        if not any(flags):
            result = [(y, False) for y in rebuild(inner_node, outer_inputs).outputs]
        else:
            batch = getattr(inner_node.op, "batch", None)
            with built_at(inner_node.trace):  # the all-steps version fails naming the step's line
                result = batch(inner_node, outer_inputs, flags) if batch is not None else None
            if result is None:
                continue
        for y, (outer, batched) in zip(inner_node.outputs, result):
            known[y] = hoisted[y] = (outer, batched)
    if not hoisted:
        return None
    # the hoisted values the loop still reads become new sequences / non-sequences
    frontier: dict[Variable, None] = {}
    for inner_node in toposort(op.inner_outputs, stop_at=op.inner_inputs):
        if inner_node.outputs[0] in hoisted:
            continue
        for x in inner_node.inputs:
            if x in hoisted:
                frontier.setdefault(x)
    for y in op.inner_outputs:
        if y in hoisted:
            frontier.setdefault(y)
    replace: dict[Variable, Variable] = {}
    for v in frontier:
        outer, batched = hoisted[v]
        label = v.name or _describe(v)
        placeholder = v.type(f"{label}[t]" if batched else label)
        replace[v] = placeholder
        if batched:
            layout.seqs.append(Seq(patternbroadcast(outer, (False,) + v.broadcastable), (0,), [placeholder]))
        else:
            layout.nonseqs.append(NonSeq(patternbroadcast(outer, v.broadcastable), placeholder))
    if not replace:
        return None
    _replace_inner(layout, replace)
    new = layout.build()
    mapping = layout.replacements(new)
    return [mapping.get(y) for y in node.outputs]


def _describe(v: Variable) -> str:
    """A readable name for a hoisted step value, e.g. ``Dot(X, Wx)`` (shown in printed graphs)."""
    if v.owner is None or len(v.owner.inputs) > 3:
        return "hoisted"
    names = [x.name.removesuffix("[t]") if x.name else "..." for x in v.owner.inputs]
    return f"{v.owner.op}({', '.join(names)})"


def _known_value(x: Variable, known: dict[Variable, tuple[Variable, bool]]) -> tuple[Variable, bool] | None:
    if isinstance(x, Constant):
        return (x, False)
    return known.get(x)


def _replace_inner(layout: Layout, replace: dict[Variable, Variable]) -> None:
    """Substitute inner variables in every inner output of ``layout``."""
    steps = [s.step for s in layout.states] + [p.step for p in layout.mapped] + [p.step for p in layout.sums] + \
        ([layout.until] if layout.until is not None else [])
    new = clone_replace(steps, replace)
    it = iter(new)
    for s in layout.states:
        s.step = next(it)
    for p in layout.mapped:
        p.step = next(it)
    for p in layout.sums:
        p.step = next(it)
    if layout.until is not None:
        layout.until = next(it)


# ---------------------------------------------------------------------------------------------
@register("scan_push_out", scan_bodies=True)
def scan_push_out(fgraph: FunctionGraph) -> FunctionGraph:
    """Compute per-step outputs the recurrence does not need, and sums over steps, after the loop
    for all steps at once (a summed outer product becomes one matrix product)."""
    return rewrite_scans(fgraph, _push_out)


class _Lifter:
    """Builds the all-steps version of inner values after the loop, from stand-ins for the
    outputs the rebuilt loop will provide."""

    def __init__(self, node: Apply, layout: Layout) -> None:
        self.op: Scan = node.op  # type: ignore[assignment]
        self.layout = layout
        self.steps = Variable(TensorType("int64", ()), name="steps")
        self.recurrent = {y for n in toposort([s.step for s in layout.states] +
                                              ([layout.until] if layout.until is not None else []),
                                              stop_at=self.op.inner_inputs)
                          for y in n.outputs}
        self.known: dict[Variable, tuple[Variable, bool]] = {}
        self.exposed: dict[Variable, Variable] = {}  # inner value -> stand-in for its stacked output
        self.stacked: dict[int, Variable] = {}  # state index -> stand-in for its stacked output
        info = self.op.info
        for n in layout.nonseqs:
            self.known[n.inner] = (n.outer, False)
        for s in layout.seqs:
            if len(s.taps) == 1:
                seq = getitem(s.outer, slice(None, None, -1)) if info.go_backwards else s.outer
                (offset,), _ = seq_offsets(s.taps, info.go_backwards)
                rows = slice(offset, m.add(offset, self.steps)) if offset else slice(0, self.steps)
                self.known[s.inner[0]] = (getitem(seq, rows), True)
        for j, s in enumerate(layout.states):
            if not s.keep_all:
                continue
            stacked = Variable(TensorType(s.step.dtype, (False,) + s.step.broadcastable), name=f"stacked{j}")
            self.stacked[j] = stacked
            self.known[s.step] = (stacked, True)
            lag = -min(s.taps)
            block = dimshuffle(s.init, ("x",) + tuple(range(s.init.ndim))) if s.taps == (-1,) else \
                getitem(s.init, slice(0, lag))
            history = concatenate([block, stacked])
            for k, v in zip(s.taps, s.inner):
                self.known[v] = (getitem(history, slice(lag + k, m.add(lag + k, self.steps))), True)

    def lift(self, v: Variable) -> tuple[Variable, bool] | None:
        if isinstance(v, Constant):
            return (v, False)
        if v in self.known:
            return self.known[v]
        if v in self.recurrent:  # computed by the recurrence: save it per step
            stand_in = Variable(TensorType(v.dtype, (False,) + v.broadcastable), name="exposed")
            self.exposed[v] = stand_in
            self.known[v] = (stand_in, True)
            return self.known[v]
        node = v.owner
        if node is None or node.op.stateful:
            return None
        values = [self.lift(x) for x in node.inputs]
        if any(x is None for x in values):
            return None
        flags = [b for _, b in values]  # type: ignore[misc]
        outer_inputs = [x for x, _ in values]  # type: ignore[misc]
        if not any(flags):
            result = [(y, False) for y in rebuild(node, outer_inputs).outputs]
        else:
            batch = getattr(node.op, "batch", None)
            with built_at(node.trace):
                result = batch(node, outer_inputs, flags) if batch is not None else None
            if result is None:
                return None
        for y, r in zip(node.outputs, result):
            self.known[y] = r
        return self.known[v]


def _push_out(node: Apply, used: list[bool]) -> list[Variable | None] | None:
    op: Scan = node.op  # type: ignore[assignment]
    info = op.info
    if info.has_until or not (info.n_mapped or info.n_sums):
        return None
    layout = Layout.of(node)
    lifter = _Lifter(node, layout)
    pushed_mapped: dict[int, tuple[Variable, bool]] = {}
    for k, p in enumerate(layout.mapped):
        if p.step in lifter.recurrent or (p.step.owner is None and p.step not in lifter.known):
            continue  # computed by the recurrence, or a plain per-step value: nothing to move
        lifted = lifter.lift(p.step)
        if lifted is not None:
            pushed_mapped[k] = lifted
    pushed_sums: dict[int, tuple[Variable, bool]] = {}
    for k, p in enumerate(layout.sums):
        lifted = lifter.lift(p.step)
        if lifted is not None:
            pushed_sums[k] = lifted
    if not pushed_mapped and not pushed_sums:
        return None
    old_mapped = [p.out for p in layout.mapped]
    old_sums = [p.out for p in layout.sums]
    layout.mapped = [p for k, p in enumerate(layout.mapped) if k not in pushed_mapped]
    layout.sums = [p for k, p in enumerate(layout.sums) if k not in pushed_sums]
    exposed = list(lifter.exposed.items())
    layout.mapped += [Mapped(v) for v, _ in exposed]
    new = layout.build()
    mapping = layout.replacements(new)
    ns = len(layout.states)
    first_exposed = ns + len(layout.mapped) - len(exposed)
    real: dict[Variable, Variable] = {lifter.steps: m.cast(node.inputs[0], "int64")}
    for j, stand_in in lifter.stacked.items():
        real[stand_in] = new.outputs[j]
    for i, (_, stand_in) in enumerate(exposed):
        real[stand_in] = new.outputs[first_exposed + i]
    outer_values: dict[Variable, Variable] = {}
    for k, (value, batched) in pushed_mapped.items():
        y = old_mapped[k]
        if not batched:  # the same value at every step
            value = alloc(value, lifter.steps, *[shape_i(value, d) for d in range(value.ndim)])
        outer_values[y] = value  # type: ignore[index]
    for k, (value, batched) in pushed_sums.items():
        y = old_sums[k]
        total = sum_(value, axis=0) if batched else m.mul(value, lifter.steps)
        init = layout_init(node, k)
        # sums are scan grad's: zeros shaped like a variable, plus its gradient at each step, which
        # has that shape too. So zeros need not be added, nor their shape checked (``add_zeros`` would)
        keep = not is_zeros(init) or total.dtype != y.dtype or total.ndim != y.ndim  # type: ignore[union-attr]
        outer_values[y] = m.add(init, total) if keep else total  # type: ignore[index]
    keys = list(outer_values)
    built = clone_replace([outer_values[y] for y in keys], real)
    mapping.update(dict(zip(keys, built)))
    return [mapping.get(y) for y in node.outputs]


def layout_init(node: Apply, k: int) -> Variable:
    """The initial value of sum output ``k`` of a scan node."""
    return node.op.outer_groups(node.inputs)["sum_inits"][k]  # type: ignore[attr-defined, no-any-return]

