"""``scan``: Theano's recurrence primitive, building a Scan node from a Python step function.

The step function is called once with symbolic per-step variables. Whatever outer variables
it uses become loop inputs automatically: the builder passes the largest loop-invariant
subexpressions in as non-sequences (so they are computed once, outside the loop), and threads
random-number states and updated shared variables through the loop as fed-back states.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from .. import dtypes
from ..graph import (
    Apply,
    Constant,
    Variable,
    as_variable,
    built_at,
    clone_replace,
    graph_inputs,
    toposort,
    user_location,
)
from ..ops import math as m
from ..ops.shape import as_index_scalar, patternbroadcast, shape_i
from ..shared import SharedVariable
from ..types import TensorType
from .op import Scan, ScanInfo, StepsCheck, seq_offsets


class Until:
    """Returned by a step function (``return outputs, until(cond)``) to stop when ``cond`` holds."""

    def __init__(self, condition: Any) -> None:
        cond = as_variable(condition)
        if cond.ndim != 0:
            raise TypeError(f"until() needs a scalar condition, got {cond.describe()}")
        self.condition = cond


def scan_until(condition: Any) -> Until:
    """Stop the scan after the step at which ``condition`` is true."""
    return Until(condition)


until = scan_until


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _check_taps(taps: Any, what: str, negative_only: bool) -> tuple[int, ...]:
    taps = [taps] if isinstance(taps, int) else list(taps)
    if not taps or any(not isinstance(t, int) for t in taps):
        raise ValueError(f"scan: taps of {what} must be a non-empty list of ints, got {taps!r}")
    if len(set(taps)) != len(taps):
        raise ValueError(f"scan: repeated taps {taps} for {what}")
    if negative_only and any(t >= 0 for t in taps):
        raise ValueError(f"scan: taps of {what} must be negative (they read earlier steps), got {taps}")
    return tuple(taps)  # in the order given: the step function receives them so


def scan(
    fn: Callable[..., Any],
    sequences: Any = None,
    outputs_info: Any = None,
    non_sequences: Any = None,
    n_steps: Any = None,
    truncate_gradient: int = -1,
    go_backwards: bool = False,
    name: str | None = None,
    strict: bool = False,
    return_list: bool = False,
) -> tuple[Any, OrderedDict[SharedVariable, Variable]]:
    """Loop ``fn`` over ``sequences``, feeding outputs back as ``outputs_info`` says.

    ``fn`` receives, in order: each sequence's value at each of its taps, each fed-back
    output at each of its taps (taps in the order given), then the ``non_sequences``. It
    returns its outputs, optionally with a dict of shared-variable updates and/or
    ``until(cond)``. Returns ``(outputs, updates)``: outputs stacked over steps (one variable, or
    a list when several or ``return_list``), and the updates to pass to ``function`` (random
    states are also applied automatically).
    ``truncate_gradient=k`` backpropagates through the last ``k`` steps only, as Theano does.
    """
    where = user_location()
    if not isinstance(truncate_gradient, int) or truncate_gradient == 0 or truncate_gradient < -1:
        raise ValueError(f"scan: truncate_gradient must be -1 (full) or a positive int, got {truncate_gradient!r}")

    # sequences ---------------------------------------------------------------------------------
    seqs: list[tuple[Variable, tuple[int, ...]]] = []
    for i, s in enumerate(_as_list(sequences)):
        if isinstance(s, dict):
            if "input" not in s:
                raise ValueError(f"scan: sequence {i} given as a dict needs an 'input' entry")
            x, taps = as_variable(s["input"]), _check_taps(s.get("taps", [0]), f"sequence {i}", False)
        else:
            x, taps = as_variable(s), (0,)
        if x.ndim == 0:
            raise TypeError(f"scan: sequence {i} ({x.describe()}) is a scalar; sequences are iterated along "
                            "their first dimension")
        seqs.append((x, taps))

    # outputs_info ------------------------------------------------------------------------------
    info_given = outputs_info is not None
    out_specs: list[tuple[Variable, tuple[int, ...]] | None] = []
    for i, o in enumerate(_as_list(outputs_info) if isinstance(outputs_info, (list, tuple)) else
                          ([outputs_info] if info_given else [])):
        if o is None:
            out_specs.append(None)
        elif isinstance(o, dict):
            if o.get("initial") is None:
                out_specs.append(None)
                continue
            taps = _check_taps(o.get("taps", [-1]), f"output {i}", True)
            init = as_variable(o["initial"])
            if taps != (-1,) and init.ndim == 0:
                raise ValueError(f"scan: output {i} with taps {list(taps)} needs an initial block with one row per "
                                 f"lag (at least {-min(taps)} rows), got the scalar {init.describe()}")
            out_specs.append((init, taps))
        else:
            out_specs.append((_initial(o), (-1,)))

    nonseqs = [as_variable(x) for x in _as_list(non_sequences)]

    # per-step placeholders ---------------------------------------------------------------------------
    seq_vars: list[list[Variable]] = []
    for x, taps in seqs:
        label = x.name or "seq"
        seq_vars.append([TensorType(x.dtype, x.broadcastable[1:])(f"{label}[t{t:+d}]" if t else f"{label}[t]")
                         for t in taps])
    state_specs = [s for s in out_specs if s is not None]
    state_vars: list[list[Variable]] = []
    for j, (init, taps) in enumerate(state_specs):
        t = init.type if taps == (-1,) else TensorType(init.dtype, init.broadcastable[1:])
        label = init.name or f"state{j}"
        state_vars.append([t(f"{label}[t{k:+d}]") for k in taps])

    # call the step function ------------------------------------------------------------------------
    first_serial = Apply.created
    args = [v for vs in seq_vars for v in vs] + [v for vs in state_vars for v in vs] + nonseqs
    result = fn(*args)
    outputs, updates, stop = _split_result(result)
    if not info_given:
        out_specs = [None] * len(outputs)
    elif len(outputs) != len(out_specs):
        raise ValueError(f"scan: the step function returned {len(outputs)} outputs but outputs_info has "
                         f"{len(out_specs)} entries; give one entry per output (None for outputs not fed back)")
    outputs = [as_variable(o) for o in outputs]

    state_outs: list[Variable] = []
    mapped_outs: list[Variable] = []
    for i, (o, spec) in enumerate(zip(outputs, out_specs)):
        if spec is None:
            mapped_outs.append(o)
        else:
            state_outs.append(_fit_state(o, spec[0], state_vars[len(state_outs)][0], i))

    # shared variables updated inside the loop become fed-back states -------------------------------
    carried: list[tuple[SharedVariable, Variable]] = []
    for sv, expr in updates.items():
        carried.append((sv, _fit_state(as_variable(expr), sv, sv, f"update of {sv.describe()}")))
    roots = state_outs + mapped_outs + [e for _, e in carried] + ([stop.condition] if stop else [])
    seen = {sv for sv, _ in carried}
    frontier = list(graph_inputs(roots))
    while frontier:
        new = []
        for v in frontier:
            if isinstance(v, SharedVariable) and v not in seen and v.default_update is not None \
                    and _built_since(v.default_update, first_serial):
                seen.add(v)
                carried.append((v, v.default_update))
                new.append(v.default_update)
        frontier = list(graph_inputs(new)) if new else []
    carried_vars = [sv.type(f"{sv.name or 'shared'}[t-1]") for sv, _ in carried]
    replace = {sv: p for (sv, _), p in zip(carried, carried_vars)}
    n_user = len(state_outs) + len(mapped_outs)
    inner_outs = state_outs + mapped_outs + [e for _, e in carried] + ([stop.condition] if stop else [])
    if replace:
        inner_outs = clone_replace(inner_outs, replace)
    state_outs = inner_outs[: len(state_outs)]
    mapped_outs = inner_outs[len(state_outs): n_user]
    carried_outs = inner_outs[n_user: n_user + len(carried)]
    until_out = inner_outs[-1] if stop else None

    # loop-invariant inputs -----------------------------------------------------------------------
    placeholders = [v for vs in seq_vars for v in vs] + [v for vs in state_vars for v in vs] + carried_vars
    invariant = _loop_invariants(inner_outs, placeholders, nonseqs)
    if strict:
        allowed = set(nonseqs)
        used = graph_inputs(invariant, stop_at=allowed)  # a non-sequence may be an expression: stop there
        bad = [v for v in used if v not in allowed and not isinstance(v, Constant)]
        if bad:
            names = ", ".join(v.describe() for v in bad)
            verb = "is" if len(bad) == 1 else "are"
            raise ValueError(f"scan(strict=True): the step function uses {names}, which {verb} not in non_sequences")
    nonseq_vars = [v.type(v.name or f"nonseq{i}") for i, v in enumerate(invariant)]
    inner_outs = clone_replace(state_outs + mapped_outs + carried_outs + ([until_out] if stop else []),
                               dict(zip(invariant, nonseq_vars)))
    state_outs = inner_outs[: len(state_outs)]
    mapped_outs = inner_outs[len(state_outs): n_user]
    carried_outs = inner_outs[n_user: n_user + len(carried)]

    # the node ------------------------------------------------------------------------------------
    if stop is not None:
        cond = inner_outs[-1]
        if dtypes.is_float(cond.dtype):
            raise TypeError(f"scan: until() needs a bool or integer condition, got {cond.describe()}")
    info = ScanInfo(
        seq_taps=tuple(t for _, t in seqs),
        state_taps=tuple(t for _, t in state_specs) + ((-1,),) * len(carried),
        keep_all=(True,) * len(state_specs) + (False,) * len(carried),
        n_mapped=len(mapped_outs),
        n_sums=0,
        n_nonseqs=len(invariant),
        go_backwards=bool(go_backwards),
        truncate_gradient=truncate_gradient,
        has_until=stop is not None,
        name=name,
    )
    inner_inputs = placeholders[: len(placeholders) - len(carried_vars)] + carried_vars + nonseq_vars
    op = Scan(info, inner_inputs, state_outs + carried_outs + mapped_outs + ([inner_outs[-1]] if stop else []))
    steps = _n_steps(n_steps, seqs)
    if n_steps is not None and (seqs or not isinstance(steps, Constant)):  # checked before anything reads it
        with built_at(where):
            steps = StepsCheck(str(op), info.seq_taps, info.go_backwards)(steps, *[x for x, _ in seqs])
    inits = [init for init, _ in state_specs] + [sv for sv, _ in carried]
    with built_at(where):
        node = op.make_node(steps, *[x for x, _ in seqs], *inits, *invariant)
    outs = node.outputs
    n_states = len(state_specs)
    stacked_states = outs[:n_states]
    finals = outs[n_states: n_states + len(carried)]
    stacked_mapped = outs[n_states + len(carried):]
    results: list[Variable] = []
    it_states, it_mapped = iter(stacked_states), iter(stacked_mapped)
    for spec in out_specs:
        results.append(next(it_mapped) if spec is None else next(it_states))
    for y, o in zip(results, outputs):
        if o.name:
            y.name = o.name
    update_map: OrderedDict[SharedVariable, Variable] = OrderedDict()
    for (sv, _), final in zip(carried, finals):
        update_map[sv] = final
        if sv.default_update is not None:
            sv.default_update = final  # random states advance whenever a function uses this scan
    if len(results) == 1 and not return_list:
        return results[0], update_map
    return results, update_map


def _initial(value: Any) -> Variable:
    return as_variable(value)


def _fit_state(out: Variable, init: Variable, placeholder: Variable, which: Any) -> Variable:
    """A fed-back output must have its initial value's dtype and ndim."""
    label = f"output {which}" if isinstance(which, int) else which
    if out.dtype != placeholder.dtype or out.ndim != placeholder.ndim:
        problem = "dtype" if out.ndim == placeholder.ndim else "number of dimensions"
        raise TypeError(
            f"scan: {label} of the step function is {out.type.describe()} but its initial value {init.describe()} "
            f"gives {placeholder.type.describe()} ({problem} differs). A fed-back output must have the type of "
            f"its initial value; cast one of them, e.g. out.astype('{placeholder.dtype}')"
            + (f"\n  (the output was built at {out.location})" if out.location else "")
        )
    if out.broadcastable != placeholder.broadcastable:
        out = patternbroadcast(out, placeholder.broadcastable)
    return out


def _split_result(result: Any) -> tuple[list[Any], dict[SharedVariable, Any], Until | None]:
    """Theano's step-function return forms: outputs, (outputs, updates), (outputs, until) ..."""
    if result is None:
        raise ValueError("scan: the step function returned None; it must return its outputs")
    parts = list(result) if isinstance(result, tuple) else [result]
    outputs: list[Any] = []
    updates: dict[SharedVariable, Any] = OrderedDict()
    stop = None
    for p in parts:
        if isinstance(p, Until):
            stop = p
        elif isinstance(p, dict):
            updates.update(p)
        elif _is_update_list(p):
            updates.update(OrderedDict(p))
        elif isinstance(p, (list, tuple)):
            outputs.extend(p)
        else:
            outputs.append(p)
    for sv in updates:
        if not isinstance(sv, SharedVariable):
            raise TypeError(f"scan: the step function's updates must be keyed by shared variables, got {sv!r}")
    return outputs, updates, stop


def _is_update_list(p: Any) -> bool:
    return isinstance(p, (list, tuple)) and len(p) > 0 and all(
        isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], SharedVariable) for e in p
    )


def _built_since(v: Variable, serial: int) -> bool:
    return v.owner is not None and v.owner.serial >= serial


def _loop_invariants(outputs: Sequence[Variable], placeholders: Sequence[Variable],
                     declared: Sequence[Variable]) -> list[Variable]:
    """The largest subexpressions that do not change from step to step, in a stable order."""
    dependent = set(placeholders)
    nodes = toposort(outputs, stop_at=placeholders)
    for node in nodes:
        if any(x in dependent for x in node.inputs):
            dependent.update(node.outputs)
    found: dict[Variable, None] = {}
    for node in nodes:
        if not any(y in dependent for y in node.outputs):
            continue
        for x in node.inputs:
            if x not in dependent and not isinstance(x, Constant):
                found.setdefault(x)
    for y in outputs:
        if y not in dependent and not isinstance(y, Constant):
            found.setdefault(y)
    ordered = [v for v in declared if v in found]
    return ordered + [v for v in found if v not in set(declared)]


def _n_steps(n_steps: Any, seqs: list[tuple[Variable, tuple[int, ...]]]) -> Variable:
    if n_steps is not None:
        n = as_index_scalar(n_steps, "scan n_steps")
        if isinstance(n, Constant) and int(n.data) < 0:
            raise ValueError(f"scan: n_steps must not be negative, got {int(n.data)}")
        return n
    if not seqs:
        raise ValueError("scan: with no sequences, give n_steps (the number of steps to run)")
    lengths = [m.sub(shape_i(x, 0), seq_offsets(taps, False)[1]) for x, taps in seqs]
    n = lengths[0]
    for other in lengths[1:]:
        n = m.minimum(n, other)
    return m.maximum(n, 0)


# ---------------------------------------------------------------------------------------------
# Theano's scan views
# ---------------------------------------------------------------------------------------------
def map(fn: Callable[..., Any], sequences: Any, non_sequences: Any = None, go_backwards: bool = False,
        name: str | None = None) -> tuple[Any, OrderedDict[SharedVariable, Variable]]:  # noqa: A001
    """Apply ``fn`` to each step of the sequences, collecting the results."""
    return scan(fn, sequences=sequences, non_sequences=non_sequences, go_backwards=go_backwards, name=name)


def reduce(fn: Callable[..., Any], sequences: Any, outputs_info: Any, non_sequences: Any = None,
           go_backwards: bool = False, name: str | None = None) -> tuple[Any, OrderedDict[SharedVariable, Variable]]:
    """Like scan, returning only the last value of each output."""
    outs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info, non_sequences=non_sequences,
                         go_backwards=go_backwards, name=name, return_list=True)
    last = [o[-1] for o in outs]
    return (last[0] if len(last) == 1 else last), updates


def foldl(fn: Callable[..., Any], sequences: Any, outputs_info: Any, non_sequences: Any = None,
          name: str | None = None) -> tuple[Any, OrderedDict[SharedVariable, Variable]]:
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=False, name=name)


def foldr(fn: Callable[..., Any], sequences: Any, outputs_info: Any, non_sequences: Any = None,
          name: str | None = None) -> tuple[Any, OrderedDict[SharedVariable, Variable]]:
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=True, name=name)
