"""compile_numba: FunctionGraph -> generated source -> cached Numba function -> Python wrapper.

The generated function takes the inputs, then the shared values, then array constants, and
returns the outputs followed by the new values of the updated shared variables. It raises a
coded error on bad shapes or indices; the wrapper then reruns the call on the NumPy backend,
which raises the full explanation. Nothing is written to shared variables unless the call
succeeds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ... import dtypes
from ...config import config
from ...errors import ExecutionError
from ...graph import Apply, Variable
from ...scan.numba import FALLBACK
from ...shared import SharedVariable
from ..fgraph import FunctionGraph
from . import jit, runtime
from .codegen import CodeGen, NoNumbaImplementation, access_plan, module_fingerprint, np_dtype, numba_type

VERSION = "3"  # bump when the generated code's conventions change


def emit_graph(cg: CodeGen, outputs: Sequence[Variable], stop_at: Sequence[Variable],
               by_element: Sequence[Variable] = ()) -> None:
    """Emit every node needed for ``outputs`` (values of ``stop_at`` must already be bound);
    ``by_element`` as in ``access_plan``."""
    nodes, lazy = access_plan(outputs, stop_at, by_element)
    cg.lazy |= lazy
    for x in [x for node in nodes for x in node.inputs] + list(outputs):
        cg.uses[x] = cg.uses.get(x, 0) + 1
    for node in nodes:
        if all(y in cg.lazy for y in node.outputs):
            checks = getattr(node.op, "numba_emit_lazy", None)  # a lazy value still checks its inputs
            if checks is not None:
                checks(node, cg)
            continue
        emitter = getattr(node.op, "numba_emit", None)
        if emitter is None:
            cg.objmode(node)
        else:
            emitter(node, cg)
        for y in node.outputs:
            if y not in cg.names:
                raise RuntimeError(f"internal error: the Numba emitter of {node.op} did not define its output")


def generate(fgraph: FunctionGraph, scratch: bool = True,
             table: bool = True) -> tuple[str, CodeGen, list[str], list[str]]:
    """The module source for ``fgraph``, its CodeGen, argument names and result names.

    With ``scratch``, temporaries live in scratch memory the caller passes as the last argument
    (``runtime.scratch_array``); the function then returns, after ``err``, how many bytes of it the
    call needed if that was more than it got (else 0). With ``table``, the arrays of the shared
    variables come as one table (``runtime.array_at``) after the inputs, when no update replaces
    them. Neither with object-mode blocks: NumPy code could keep a temporary or a shared array.
    """
    cg = CodeGen()
    cg.use_scratch = scratch
    cg.emit("err = np.int64(0)")  # not a literal: kernels taking err would compile twice
    cg.defined.update(["scratch", "fresh", "temporary"])  # set at the start if scratch memory is used
    clients = fgraph.clients()
    in_place = plan_in_place(fgraph, clients)
    written = {sv for sv, _ in in_place}
    # the shared variables' arrays come as one table when the call replaces none of them (then the
    # table changes only when the user sets a value): see runtime.array_at
    cg.shared_table = table and bool(fgraph.shared_inputs) and all(sv in written for sv, _ in fgraph.updates)
    args: list[str] = []
    arg_vars = fgraph.inputs + fgraph.shared_inputs
    position = 0
    for i, v in enumerate(arg_vars):
        name = f"arg{i}"
        if cg.shared_table and i >= len(fgraph.inputs):
            cg.emit(f"{name} = array_at(table, {position}, {v.ndim}, {np_dtype(v.dtype)})")
            position += 1 + v.ndim
        else:
            args.append(name)
        if v.ndim == 0:
            cg.emit(f"{name}_v = {name}[()]")
            cg.bind(v, f"{name}_v")
        else:
            cg.bind(v, name)
            cg.arguments.add(v)
        cg.defined.add(name)
    if cg.shared_table:
        args.append("table")
        cg.defined.add("table")
    deferred = {v for _, e in in_place for v in [e, loop_value(e)] + [n.outputs[0] for n in row_increments(e)]}
    # (computed at the end, into the shared variables' arrays)
    cg.escaping = _escaping(clients, set(fgraph.outputs) | {e for _, e in fgraph.updates if e not in deferred})
    loop_nodes = [loop_value(e).owner for _, e in in_place if loop_value(e).owner is not None]
    loop_inputs = [x for node in loop_nodes for x in node.inputs if x not in deferred]  # type: ignore[union-attr]
    row_inputs = [x for _, e in in_place for node in row_increments(e) for x in node.inputs[1:]]
    needed = fgraph.outputs + [e for _, e in fgraph.updates if e not in deferred] + row_inputs
    needed += [x for node in loop_nodes if _is_gemm(node) for x in node.inputs[1:]]  # type: ignore[union-attr]
    emit_graph(cg, needed + loop_inputs, arg_vars, by_element=[x for x in loop_inputs if x not in needed])

    results: list[str] = []
    claimed: set[Variable] = set()
    update_values = {e for e in fgraph.update_values}
    for y in fgraph.outputs:
        name = cg.value(y)
        if y.ndim and (cg.borrows_memory(y) or y in claimed or y in update_values):
            name = _fresh_copy(cg, y)
        claimed.add(y)
        results.append(name)
    for sv, e in fgraph.updates:
        if sv in written:
            continue  # already stored in the shared variable's array
        name = cg.value(e)
        if e.ndim and e is not sv and (e in claimed or e in cg.views or cg.borrows_memory(e)):
            name = _fresh_copy(cg, e)  # a view, or shared with something else: store a copy
        claimed.add(e)
        results.append(name)
    emit_in_place(cg, in_place)  # last: everything above has read the old values
    cg.fold_checks()
    cg.name_dimensions()
    cg.in_place = [sv for sv, _ in in_place]
    if cg.holds_gil and (cg.in_scratch or cg.shared_table):  # object mode may keep an array it is given
        return generate(fgraph, scratch=False, table=False)
    cg.use_scratch = cg.scratch_used
    if cg.use_scratch:  # how much scratch memory the next call needs, if more than it had
        cg.lines.insert(1, "    fresh, temporary = np.bool_(True), np.bool_(False)")  # after ``err``; no loop is open
        cg.emit(f"scratch_end = {cg.kernel(runtime.scratch_finish)}(scratch)")
        cg.emit("scratch_end = scratch_end if scratch_end > scratch.shape[0] and err == 0 else 0")
    cg.emit(f"return ({', '.join(['err', *(['scratch_end'] if cg.use_scratch else []), *results])},)")

    const_names = [n for n, _ in cg.constant_args] + (["scratch"] if cg.use_scratch else [])
    signature = [numba_type(v.dtype, v.ndim) for v in (fgraph.inputs if cg.shared_table else arg_vars)] + \
                ([numba_type("int64", 1)] if cg.shared_table else []) + \
                [numba_type(a.dtype.name, a.ndim) for _, a in cg.constant_args] + \
                ([numba_type("uint8", 1)] if cg.use_scratch else [])
    header = [
        f"# generated by symflow (codegen v{VERSION}); numba {_version('numba')}, numpy {np.__version__}",
        "import math",
        "import numpy as np",
        "import numba",
        "from numba import types as _t",
        "from symflow.compile.numba.jit import MAIN_OPTIONS, jit_kernel, main_function"
        f"  # {module_fingerprint(jit)}",  # how main functions are lowered: a change compiles them again
        "from symflow.compile.numba import runtime"
        f"  # {module_fingerprint(runtime)}",
        "from symflow.compile.numba.runtime import array_at, first_error, first_unequal, perform_fallback, step_row",
        "from symflow.compile.numba.cache import load_kernel",
    ]
    for name in cg.generated:
        header.append(f"{name} = load_kernel({name!r})")
    for fn, name in cg.kernels.items():
        # the fingerprint of the kernel's module: cached code linked with an older kernel never matches
        header.append(f"from {fn.__module__} import {fn.__name__} as _src_{name}  # {_fingerprint(fn)}")
        header.append(f"{name} = jit_kernel(_src_{name})")
    for name, src in cg.objects.items():
        header.append(f"{name} = {src}")
    header.append(f"SIGNATURE = ({', '.join(signature)}{',' if len(signature) == 1 else ''})")
    header.append("")
    header.append("")
    options = "{**MAIN_OPTIONS, 'nogil': False}" if cg.holds_gil else "MAIN_OPTIONS"
    header.append(f"@main_function(SIGNATURE, {options})")
    header.append(f"def symflow_main({', '.join(args + const_names)}):")
    return "\n".join(header + cg.lines) + "\n", cg, args + const_names, results


def _escaping(clients: dict[Variable, list[Any]], returned: set[Variable]) -> set[Variable]:
    """The values whose arrays the function returns or stores: ``returned``, and the bases whose
    arrays an increment of them takes over (``CodeGen.alloc_copy``) when that result is returned
    (``clients``: the graph's, ``FunctionGraph.clients``)."""
    escaping, frontier = set(returned), list(returned)
    while frontier:
        node = frontier.pop().owner
        if node is not None and getattr(node.op, "numba_takes_over_base", False):
            base = node.inputs[0]
            if len(clients.get(base, [])) == 1 and base not in escaping:
                escaping.add(base)
                frontier.append(base)
    return escaping


_VIEW_OPS = ("DimShuffle", "Subtensor", "SpecifyBroadcastable", "Reshape", "DisconnectedGrad", "GradClip")


def _reads_storage(x: Variable, target: Variable) -> bool:
    """Whether reading ``x`` may read ``target``'s array (``x`` is it, or a view of it)."""
    while x is not target and x.owner is not None and type(x.owner.op).__name__ in _VIEW_OPS:
        x = x.owner.inputs[0]
    return x is target


def _is_gemm(node: Apply | None) -> bool:
    """Whether ``node`` adds a product into its first input (``ops.dot.Gemm``), which an in-place
    update computes by BLAS in the shared variable's array instead of by an element loop."""
    return node is not None and type(node.op).__name__ == "Gemm"


def _writes_every_element(node: Apply | None, sv: Variable, d: Variable) -> bool:
    """Whether ``node``, computing ``d`` from ``sv``, can write ``d`` into ``sv``'s array: an element
    loop with ``sv`` among its inputs at ``d``'s pattern and no other view of it, or a Gemm adding
    into ``sv`` a product of arrays that are not views of it."""
    if node is None or not d.ndim:
        return False
    if _is_gemm(node):
        return node.inputs[0] is sv and not any(_reads_storage(x, sv) for x in node.inputs[1:])
    return (type(node.op).__name__ in ("Elemwise", "FusedElemwise")
            and any(x is sv and x.broadcastable == d.broadcastable for x in node.inputs)
            and not any(x is not sv and _reads_storage(x, sv) for x in node.inputs))


def plan_in_place(fgraph: FunctionGraph,
                  clients: dict[Variable, list[Any]] | None = None) -> list[tuple[Variable, Variable]]:
    """Updates computed straight into the shared variable's array, in a safe order.

    An update qualifies when an elementwise loop computes it (it writes every element), the
    shared variable is one of the loop's inputs with the result's broadcastable pattern (so the
    shapes are equal) and no other input is a view of it (``b - b[::-1]`` would read elements
    already written), and the new value is used only by other such updates (momentum's step
    feeds the parameter's update). A Gemm adding a product into the shared variable qualifies the
    same way (``_writes_every_element``). An update is written after every other in-place update
    that reads its old value and after those whose new values it reads; a cycle (a swap) leaves one
    update out, computed into a new array before any is written.

    An update that adds rows into such a loop's value, or into the shared variable itself (an
    embedding's sparse step, see ``through_row_increment``), also qualifies when nothing else reads
    it: the rows are added in place after every loop (``emit_in_place``). ``clients``: the graph's,
    if already computed.
    """
    clients = fgraph.clients() if clients is None else clients
    updated = [sv for sv, _ in fgraph.updates]
    dense: dict[Variable, Variable] = {}  # shared variable -> the value its loop writes
    candidates: dict[Variable, Variable] = {}
    for sv, e in fgraph.updates:
        d = _scattered_base(e, updated, clients)
        if d is sv:  # rows added into the shared variable itself: no loop
            candidates[sv] = e
            continue
        reader = None if d is None else row_increments(e)[0]  # what reads the loop's value: the update
        d = e if d is None else d  # output (None), or the first increment
        if _writes_every_element(d.owner, sv, d) and clients.get(d, []).count(reader) == 1:
            candidates[sv], dense[sv] = e, d
    while True:  # keep updates whose new value nothing but other in-place updates reads
        nodes = {d.owner for d in dense.values()} | {n for e in candidates.values() for n in row_increments(e)}
        kept = {sv: e for sv, e in candidates.items()
                if sv not in dense or all(c is None or c in nodes for c in clients[dense[sv]])}
        if len(kept) == len(candidates):
            break
        candidates = kept
        dense = {sv: d for sv, d in dense.items() if sv in kept}
    order: list[tuple[Variable, Variable]] = [(sv, e) for sv, e in candidates.items() if sv not in dense]
    pending = dict(dense)
    while pending:
        ready = [sv for sv, e in pending.items() if not any(
            _reads_storage(x, sv)  # another update still needs the old value
            for other, f in pending.items() if other is not sv for x in f.owner.inputs)  # type: ignore[union-attr]
            and not any(x is f for other, f in pending.items() if other is not sv  # it reads a new value
                        for x in e.owner.inputs)]  # type: ignore[union-attr]
        if not ready:  # a cycle: compute one of them into a new array instead
            pending.pop(next(iter(pending)))
            continue
        for sv in ready:
            pending.pop(sv)
            order.append((sv, candidates[sv]))
    return order


def _scattered_base(e: Variable, updated: list[Variable], clients: dict[Variable, list[Any]]) -> Variable | None:
    """The array an update adds rows into (through one or more increments), if that may be done
    in place: nothing else reads the update or the increments between, and their rows and indices
    are no view of an updated shared variable (they are read after the loops have written them)."""
    reader: Any = None  # the update output
    x = e
    while (x.owner is not None and type(x.owner.op).__name__ == "AdvancedIncSubtensor1"
           and clients.get(x, []) == [reader]):
        if any(_reads_storage(r, sv) for r in x.owner.inputs[1:] for sv in updated):
            return None
        reader, x = x.owner, x.owner.inputs[0]
    return None if x is e else x


def row_increments(e: Variable) -> list[Apply]:
    """The increments an in-place update adds its rows with, innermost first (none for a loop)."""
    found = []
    while e.owner is not None and type(e.owner.op).__name__ == "AdvancedIncSubtensor1":
        found.append(e.owner)
        e = e.owner.inputs[0]
    return found[::-1]


def loop_value(e: Variable) -> Variable:
    """The value an in-place update's element loop writes: the update, or the array its rows are
    added into (the shared variable itself when there is no loop)."""
    increments = row_increments(e)
    return increments[0].inputs[0] if increments else e


def emit_in_place(cg: CodeGen, in_place: list[tuple[Variable, Variable]]) -> None:
    """Check every in-place update's shapes and indices, then write them all only if the call has
    no error: first the element loops (which store subnormal results as zero, under
    ``config.flush_subnormals``), then the rows added into them."""
    if not in_place:
        return
    loops = [(sv, loop_value(e)) for sv, e in in_place if loop_value(e) is not sv]
    home = {d: sv for sv, d in loops}  # where each new value will live
    for sv, d in loops:
        node = d.owner
        if _is_gemm(node):
            node.op.numba_check(node, cg, f"{cg.value(sv)}.shape[0]", f"{cg.value(sv)}.shape[1]")  # type: ignore[union-attr]
            continue
        for x in node.inputs:  # type: ignore[union-attr]
            offset = d.ndim - x.ndim
            for k in range(x.ndim):
                if not x.broadcastable[k]:
                    cg.check(f"{cg.dim(home.get(x, x), k)} != {cg.value(sv)}.shape[{k + offset}]", node,
                             f"the update of {sv.name or 'a shared variable'} does not keep its shape")
    scatters = []
    for sv, e in in_place:
        target = cg.value(sv)
        row_dims = [f"{target}.shape[{k}]" for k in range(1, sv.ndim)]
        for node in row_increments(e):
            scatters.append(node.op.numba_scatter(node, cg, target, row_dims, check_indices=True))  # type: ignore[attr-defined]
    with cg.block("if err == 0:"):
        for group in pair_in_place(loops):  # one loop per group (momentum: the step, then p + step)
            writes, inputs = [], []
            for sv, d in group:
                node = d.owner
                target_dims = [f"{cg.value(sv)}.shape[{k}]" for k in range(d.ndim)]
                cg.destinations[d] = (cg.value(sv), target_dims)
                if _is_gemm(node):  # alone in its group: BLAS adds the product into the array
                    cg.emit(node.op.numba_call(node, cg, cg.alloc(d, target_dims)))  # type: ignore[union-attr]
                    continue
                name = cg.alloc(d, cg.broadcast_dims(node, node.inputs, d.ndim))  # type: ignore[union-attr]
                body = node.op.numba_body(node)  # type: ignore[union-attr]
                writes.append((name, _flushing(body) if config.flush_subnormals and dtypes.is_float(d.dtype) else body))
                inputs += node.inputs  # type: ignore[union-attr]
            if writes:
                cg.elementwise_many(writes, d.ndim, inputs, node=node)
        with cg.block("if err == 0:") if loops and scatters else contextlib.nullcontext():
            for call in scatters:  # after every loop: they read the values before the rows are added
                cg.emit(call)


def _flushing(body: Callable[[Any, list[str]], str]) -> Callable[[Any, list[str]], str]:
    """A loop body whose subnormal result is stored as zero (``runtime.flush_subnormal``)."""
    return lambda kw, idx: f"runtime.flush_subnormal({body(kw, idx)})"


def pair_in_place(in_place: list[tuple[Variable, Variable]]) -> list[list[tuple[Variable, Variable]]]:
    """The in-place updates in a safe order, each paired where possible with a later update
    that reads its new value (as ``p + step`` reads momentum's step), to share one loop."""
    rest = list(in_place)
    groups = []
    while rest:
        first = rest.pop(0)
        for k, second in enumerate(rest):
            if _one_loop(first, second) and all(_may_precede(second, other) for other in rest[:k]):
                groups.append([first, rest.pop(k)])
                break
        else:
            groups.append([first])
    return groups


def _one_loop(first: tuple[Variable, Variable], second: tuple[Variable, Variable]) -> bool:
    """Whether one element loop can write ``first`` and then ``second``, which reads it."""
    (sv1, e1), (sv2, e2) = first, second
    nodes = [e1.owner, e2.owner]
    if any(_is_gemm(n) for n in nodes):
        return False
    if e1 not in e2.owner.inputs or e1.broadcastable != e2.broadcastable:  # type: ignore[union-attr]
        return False
    for n in nodes:
        for x in n.inputs:  # type: ignore[union-attr]
            if _reads_storage(x, sv2) and x is not sv2:  # a view could read an element already written
                return False
            if _reads_storage(x, sv1) and (x is not sv1 or n is e2.owner):  # the second reads no old first
                return False
    return True


def _may_precede(update: tuple[Variable, Variable], other: tuple[Variable, Variable]) -> bool:
    """Whether ``update`` may be written before ``other`` (planned the other way round)."""
    (sv, e), (_, e_o) = update, other
    return not any(_reads_storage(x, sv) for x in e_o.owner.inputs) and e_o not in e.owner.inputs  # type: ignore[union-attr]


def _fresh_copy(cg: CodeGen, v: Variable) -> str:
    """A new C-contiguous array holding the value of ``v``."""
    dims = cg.shape_tuple(v)
    name = cg.fresh("copy")
    cg.emit(f"{name} = {cg.empty(dims, v.dtype)}")
    cg.copy_into(name, v)
    return name


def _version(module: str) -> str:
    import importlib

    return str(getattr(importlib.import_module(module), "__version__", "?"))


class NumbaRunner:
    """Calls the compiled function for a Function: packs arguments, unpacks results."""

    def __init__(self, fgraph: FunctionGraph, entry: Callable[..., Any], cg: CodeGen, source: str) -> None:
        self.fgraph = fgraph
        self.entry = entry
        self.cg = cg
        self.source = source
        self.shared = fgraph.shared_inputs
        self.constants = [np.array(a, order="C", copy=True) for _, a in cg.constant_args]
        self.n_out = len(fgraph.outputs)
        written = set(cg.in_place)
        self.targets = [sv for sv, _ in fgraph.updates if sv not in written]
        returned = fgraph.outputs + [e for sv, e in fgraph.updates if sv not in written]
        self.scalar_out = [(i, np.dtype(y.dtype)) for i, y in enumerate(returned) if y.ndim == 0]
        #: scratch memory for the compiled function's temporaries, one per call in progress: a call
        #: takes one (or, finding none, a new one with only the header) and gives it back
        self.scratch: list[np.ndarray] | None = [] if cg.use_scratch else None
        #: with ``cg.shared_table``: (SharedVariable.storage_version when built, the table, the arrays
        #: it points to, which it keeps alive)
        self.table: tuple[int, np.ndarray | None, list[np.ndarray]] = (-1, None, [])
        self._py: Any = None
        self.loaded_from_cache = False  # whether Numba loaded the compiled code from disk

    def shared_table(self) -> tuple[int, np.ndarray | None, list[np.ndarray]]:
        """``self.table``, built again if any shared variable's array has been replaced since."""
        built, table, old_arrays = self.table
        if built != SharedVariable.storage_version:
            version = SharedVariable.storage_version  # before reading: a change meanwhile rebuilds again
            arrays = [sv._array for sv in self.shared]
            previous = None if table is None else (table, old_arrays)
            self.table = (version, runtime.address_table(arrays, previous), arrays)
        return self.table

    def shared_args(self) -> list[np.ndarray]:
        """The arguments that pass the shared variables' arrays: their table, or the arrays."""
        return [self.shared_table()[1]] if self.cg.shared_table else [sv._array for sv in self.shared]  # type: ignore[list-item]

    def __call__(self, values: list[Any]) -> list[Any]:
        for i, v in enumerate(values):  # the compiled code takes C-contiguous arrays
            if not v.flags.c_contiguous:
                values[i] = np.ascontiguousarray(v)
        scratch = [] if self.scratch is None else [take_scratch(self.scratch)]
        try:
            err, *results = self.entry(*values, *self.shared_args(), *self.constants, *scratch)
        except Exception as exc:  # only object-mode fallbacks can raise
            self.explain(values, None, exc)
            raise
        if self.scratch is not None:
            more = results.pop(0)
            self.scratch.append(runtime.new_scratch(more) if more else scratch[0])
        if err:
            if self.cg.errors[err - 1][1] == FALLBACK:
                return self.run_reference(values)
            self.explain(values, err)
        for i, dtype in self.scalar_out:
            results[i] = np.array(results[i], dtype=dtype)
        if self.targets:
            for sv, value in zip(self.targets, results[self.n_out:], strict=True):
                sv._value = value
            del results[self.n_out:]
        return results

    def fast_call(self, specs: Sequence[Any], return_list: bool, slow: Callable[..., Any]) -> Callable[..., Any]:
        """A ``Function.__call__`` (without ``self``) for the common case: every argument is an array of
        exactly the input's dtype, ndim and layout (or, for a scalar input, a number that converts to
        it as the general path would convert it), and the call succeeds. Any other call (conversions,
        keywords, an error) goes to ``slow``, the general path.

        It is generated Python source, so the checks and the argument list are unrolled.
        """
        names = [f"a{i}" for i in range(len(specs))]
        converts, tests = [], ["True"]
        for i, (name, spec) in enumerate(zip(names, specs)):
            if spec.ndim == 0:
                converts += [f"        if {_exact_scalar(name, spec.dtype, f'scalar{i}')}:",
                             f"            {name} = array({name}, dtype{i})"]
            # the compiled code checks the layout itself (``jit.unbox_borrowed_array``), unless it holds the GIL
            layout = f" and {name}.flags.c_contiguous" if self.cg.holds_gil else ""
            tests.append(f"type({name}) is ndarray and {name}.dtype is dtype{i} and {name}.ndim == {spec.ndim}{layout}")
            tests += [f"{name}.shape[{d}] == 1" for d in spec.bcast_dims]
        shared = ["table[1]"] if self.cg.shared_table else [f"shared{i}._array" for i in range(len(self.shared))]
        constants = [f"constant{i}" for i in range(len(self.constants))]
        values = [f"r{i}" for i in range(self.n_out + len(self.targets))]  # the results, as returned
        for i, dtype in self.scalar_out:  # Numba returns a float64 as a Python float: no dtype needed
            values[i] = f"array(r{i}{'' if dtype == np.float64 else f', out_dtype{i}'})"
        take, give = [], []
        if self.scratch is not None:
            take = ["            try:", "                scratch = pool.pop()", "            except IndexError:",
                    "                scratch = new_scratch()"]
            give = ["            pool.append(new_scratch(more) if more else scratch)"]
        lines = [
            "def call(*args, **kwargs):",
            f"    if len(args) == {len(names)} and not kwargs:",
            *([f"        {', '.join(names)}, = args"] if names else []),
            *converts,
            f"        if {' and '.join(tests)}:",
            *(["            table = runner.table",
               "            if table[0] != SharedVariable.storage_version:",
               "                table = runner.shared_table()"] if self.cg.shared_table else []),
            *take,
            "            try:",
            f"                err, {'more, ' if give else ''}{''.join(f'r{i}, ' for i in range(len(values)))}"
            f"= entry({', '.join(names + shared + constants)}{', scratch' if self.scratch is not None else ''})",
            "            except Exception:  # an argument's layout, or an object-mode block: the general path",
            *(["                pool.append(scratch)  # unused: the call did not start"] if give else []),
            "                return slow(*args)",
            *give,
            "            if not err:",
        ]
        lines += [f"                target{k}._value = {values[self.n_out + k]}" for k in range(len(self.targets))]
        outputs = values[: self.n_out]
        result = f"[{', '.join(outputs)}]" if return_list else (outputs[0] if outputs else "None")
        lines += [f"                return {result}", "    return slow(*args, **kwargs)"]
        namespace: dict[str, Any] = {"ndarray": np.ndarray, "array": np.array, "entry": self.entry, "slow": slow,
                                     "runner": self, "SharedVariable": SharedVariable,
                                     "pool": self.scratch, "new_scratch": runtime.new_scratch}
        namespace.update({f"dtype{i}": spec.dtype for i, spec in enumerate(specs)})
        namespace.update({f"scalar{i}": spec.dtype.type for i, spec in enumerate(specs)})
        namespace.update({f"shared{i}": sv for i, sv in enumerate(self.shared)})
        namespace.update({f"constant{i}": c for i, c in enumerate(self.constants)})
        namespace.update({f"target{k}": sv for k, sv in enumerate(self.targets)})
        namespace.update({f"out_dtype{i}": dtype for i, dtype in self.scalar_out})
        exec("\n".join(lines), namespace)  # noqa: S102 - our own generated source
        return namespace["call"]  # type: ignore[no-any-return]

    def reference(self) -> Any:
        """The NumPy-backend program of the same graph (built on first use)."""
        from ..py_backend import PyProgram

        if self._py is None:
            self._py = PyProgram(self.fgraph.inputs + self.fgraph.shared_inputs, self.fgraph.all_outputs)
        return self._py

    def run_reference(self, values: list[Any]) -> list[Any]:
        """Run the call on the NumPy backend (for cases compiled code cannot handle; the compiled
        call wrote nothing). That backend returns every update, also those written in place."""
        with np.errstate(all="ignore"):
            results = self.reference().run(list(values) + [sv._value for sv in self.shared])
        results = [np.array(r, order="C", copy=True) for r in results]
        for (sv, _), value in zip(self.fgraph.updates, results[self.n_out:], strict=True):
            sv._value = value
        return results[: self.n_out]

    def explain(self, values: list[Any], err: int | None, exc: BaseException | None = None) -> None:
        """Rerun on the NumPy backend, which raises the full error; else report the error code."""
        with np.errstate(all="ignore"):
            self.reference().run(list(values) + [sv._value for sv in self.shared])
        if err is not None:
            node, what = self.cg.errors[err - 1]
            where = f"\nThe operation was built at:\n  {node.trace}" if node is not None and node.trace else ""
            raise ExecutionError(f"{node.op if node else 'the function'} failed: {what}{where}")
        raise ExecutionError(f"the compiled function failed: {type(exc).__name__}: {exc}") from exc


def take_scratch(pool: list[np.ndarray]) -> np.ndarray:
    """Scratch memory from ``pool`` for a call, or a new one (``pop`` alone is atomic under the GIL:
    testing the list first could race with a call in another thread)."""
    try:
        return pool.pop()
    except IndexError:
        return runtime.new_scratch()


@functools.cache
def _fingerprint(fn: Callable[..., Any]) -> str:
    """A hash of a kernel's module file (kernels are compiled into the functions that call them), or of
    its code when the module has no file (defined in a notebook or an exec'd namespace)."""
    module = sys.modules.get(fn.__module__)
    if getattr(module, "__file__", None):
        return module_fingerprint(module)
    code = fn.__code__
    return hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:16]


def compile_numba(fgraph: FunctionGraph, function: Any) -> Callable[[list[Any]], list[Any]]:
    """Compile ``fgraph``; the returned callable takes input values and returns outputs."""
    from numba.core.errors import NumbaError

    from .cache import load_module, module_dir, source_key, store_kernel, use_writable_cache_dir
    from .runtime import keep_freed_memory

    keep_freed_memory()  # once per process: large temporaries reuse freed memory between calls
    use_writable_cache_dir()
    source = ""
    try:
        source, cg, _, _ = generate(fgraph)
        if any(getattr(fn, "calls_blas", False) for fn in cg.kernels):
            jit.preload_blas()
        for name, kernel_source in cg.generated.items():
            store_kernel(name, kernel_source)
        module = load_module(source)
    except NoNumbaImplementation as exc:  # an op without Numba code that object mode cannot run either
        if config.numba_fallback == "raise":
            raise
        warnings.warn(f"symflow: {exc}; this function runs on the NumPy backend instead", stacklevel=4)
        return _py_fallback(fgraph, function)
    except NumbaError as exc:  # generated code Numba cannot compile: a symflow bug
        message = (f"Numba could not compile the generated code ({type(exc).__name__}); please report this "
                   f"with the generated module {source_key(source)}.py from {module_dir()}:\n{exc}")
        if config.numba_fallback == "raise":
            raise NoNumbaImplementation(message) from exc
        warnings.warn(f"symflow: {message}\nThis function runs on the NumPy backend instead", stacklevel=4)
        return _py_fallback(fgraph, function)
    entry = module.symflow_main.overloads[module.SIGNATURE].entry_point
    function.source = source
    runner = NumbaRunner(fgraph, entry, cg, source)
    runner.loaded_from_cache = bool(module.symflow_main.stats.cache_hits)
    return runner


def _exact_scalar(name: str, dtype: np.dtype, scalar_type: str) -> str:
    """The condition under which the scalar argument ``name`` converts to ``dtype`` with no check:
    a NumPy scalar of that dtype (``scalar_type`` names its class in the generated source), a Python
    float for a float input (Python floats are weak, as in the general path; for float32 one within
    its range: the general path refuses overflow), a Python int that fits an integer input, a
    Python bool for a bool input."""
    exact = [f"type({name}) is {scalar_type}"]
    if dtype == np.float64:
        exact.append(f"type({name}) is float")
    elif dtype.kind == "f":
        largest = float(np.finfo(dtype).max)
        exact.append(f"(type({name}) is float and {-largest!r} <= {name} <= {largest!r})")
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        exact.append(f"(type({name}) is int and {info.min} <= {name} <= {info.max})")
    elif dtype.kind == "b":
        exact.append(f"type({name}) is bool")
    return " or ".join(exact)


def _py_fallback(fgraph: FunctionGraph, function: Any) -> Callable[[list[Any]], list[Any]]:
    from ..py_backend import PyProgram

    function._program = PyProgram(fgraph.inputs + fgraph.shared_inputs, fgraph.all_outputs)
    function.source = None
    return function._run_py  # type: ignore[no-any-return]


