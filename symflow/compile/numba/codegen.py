"""Writing Numba source: the main function of a compiled graph, and the loop kernels it calls.

The main function only orchestrates: it allocates arrays, checks shapes, slices, runs scan
loops and calls kernels. Every loop over array elements lives in a kernel, either a fixed one
kept next to its op (``cg.kernel(fn)``) or one generated from a template (``KernelWriter``).
Generated kernels are named by the hash of their source, so the same loop in any graph or
process compiles once and is then loaded from Numba's disk cache. This keeps the main function
small, which is what makes compiling it fast.

Values of ndim 0 are Numba scalars, all others arrays. ``elem`` reads an element through
dimshuffles without building them.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import itertools
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...graph import Apply, Constant, Variable, toposort


class NoNumbaImplementation(Exception):
    """An op in the graph has no Numba emitter (the function then runs on the NumPy backend)."""


_NP_DTYPE = {d: f"np.{d}" for d in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                     "float32", "float64")}
_NP_DTYPE["bool"] = "np.bool_"


def np_dtype(dtype: str) -> str:
    """The ``np.<dtype>`` expression for a dtype name."""
    return _NP_DTYPE[dtype]


def poison(dtype: str) -> str:
    """The value new arrays are filled with under ``config.poison_memory`` (reads of elements never
    written then show): NaN, True, or -12345."""
    return "np.nan" if dtype in ("float32", "float64") else ("True" if dtype == "bool" else "-12345")


@functools.cache
def module_fingerprint(module: Any) -> str:
    """A hash of a module's file: code compiled into generated functions comes from it."""
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]


def numba_type(dtype: str, ndim: int, scalar: bool = False) -> str:
    """Source of the Numba type of a C-contiguous array (or of a scalar when ``ndim`` is 0)."""
    base = "_t.bool_" if dtype == "bool" else f"_t.{dtype}"
    if scalar and ndim == 0:
        return base
    return f"_t.Array({base}, {ndim}, 'C')"


def _type_string(dtype: str, ndim: int) -> str:
    """Numba's string spelling of a C-contiguous array type (objmode needs compile-time strings)."""
    base = "boolean" if dtype == "bool" else dtype
    if ndim == 0:
        return base
    return f"{base}[{', '.join([':'] * (ndim - 1) + ['::1'])}]"


def scalar_cast(expr: str, dtype: str) -> str:
    """An expression converting a scalar expression to ``dtype``."""
    return f"bool({expr})" if dtype == "bool" else f"{np_dtype(dtype)}({expr})"


def literal(value: Any, dtype: str) -> str:
    """Source for a scalar constant of ``dtype``."""
    v = np.asarray(value, dtype=dtype).item()
    if dtype == "bool":
        return "True" if v else "False"
    if isinstance(v, float):
        if np.isnan(v):
            text = "np.nan"
        elif np.isinf(v):
            text = "-np.inf" if v < 0 else "np.inf"
        else:
            text = repr(v)
        return text if dtype == "float64" else f"{np_dtype(dtype)}({text})"
    return f"{np_dtype(dtype)}({v!r})"


_ASSIGNED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*=[^=]")
_DIMENSION = r"\w+\.shape\[\d+\]"
#: a check line that compares two dimensions (``CodeGen.check`` of ``a.shape[i] != b.shape[j]``)
_DIMENSION_CHECK = re.compile(rf"(\s*)err = first_error\(err, \(({_DIMENSION}) != ({_DIMENSION})\), (\d+)\)")
#: the shortest run of dimension checks ``CodeGen.fold_checks`` makes into one call
FOLD_CHECKS_FROM = 4
#: a dimension read of the main function (``x.shape[i]``, not ``y.x.shape[i]``)
_DIMENSION_READ = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\.shape\[(\d+)\]")
#: the fewest reads of one dimension that ``CodeGen.name_dimensions`` gives a variable
NAME_DIMENSIONS_FROM = 2
_NAME = re.compile(r"(?<![.\w])[A-Za-z_][A-Za-z0-9_]*")  # names, not attributes


def _assigned(line: str) -> list[str]:
    match = _ASSIGNED.match(line)
    return [n.strip() for n in match.group(1).split(",")] if match else []


class SourceWriter:
    """Lines of Python source with indentation, fresh names and loop nests."""

    def __init__(self, level: int = 1) -> None:
        self.lines: list[str] = []
        self.level = level
        self._count = itertools.count()
        self.defined: set[str] = set()  # names assigned so far

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.level + line)
        match = _ASSIGNED.match(line)
        if match:
            self.defined.update(n.strip() for n in match.group(1).split(","))

    @contextlib.contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.emit(header)
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1

    def fresh(self, hint: str = "t") -> str:
        """A new local name; the ``_`` keeps it apart from argument and constant names."""
        return f"{hint}_{next(self._count)}"

    @contextlib.contextmanager
    def loops(self, dims: Sequence[str]) -> Iterator[list[str]]:
        """Nested ``for`` loops over ``dims``; yields the index names."""
        names = [self.fresh("i") for _ in dims]
        opened = 0
        try:
            for name, n in zip(names, dims):
                self.emit(f"for {name} in range({n}):")
                self.level += 1
                opened += 1
            yield names
        finally:
            self.level -= opened


def through_views(lazy: set[Variable], v: Variable, idx: list[str]) -> tuple[Variable, list[str]]:
    """Follow lazily skipped dimshuffles back to a built value (or a lazy fill), mapping the indices."""
    idx = ["0" if b else i for b, i in zip(v.broadcastable, idx)]
    while v in lazy and not is_fill(v):
        node = v.owner
        order = node.op.new_order  # type: ignore[union-attr]
        x = node.inputs[0]  # type: ignore[union-attr]
        inner = ["0"] * x.ndim
        for pos, d in enumerate(order):
            if d != "x":
                inner[d] = idx[pos]
        v, idx = x, ["0" if b else i for b, i in zip(x.broadcastable, inner)]
    return v, idx


def is_fill(v: Variable) -> bool:
    """Whether ``v`` is an array filled with one scalar (``alloc``): it can be read lazily."""
    return v.owner is not None and type(v.owner.op).__name__ == "Alloc" and v.ndim > 0 \
        and v.owner.inputs[0].ndim == 0


def _uniform_constant(v: Variable) -> Any:
    if isinstance(v, Constant) and v.data.size and np.all(v.data == v.data.flat[0]):
        return v.data.flat[0]
    return None


class CodeGen(SourceWriter):
    """The main function of a compiled graph under construction."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.names: dict[Variable, str] = {}
        self.kernels: dict[Callable[..., Any], str] = {}  # fixed kernels
        self.generated: dict[str, str] = {}  # generated kernel name -> its source
        self.objects: dict[str, str] = {}  # global name -> source expression building it
        self.errors: list[tuple[Apply | None, str]] = []
        self.constant_args: list[tuple[str, np.ndarray]] = []
        self.lazy: set[Variable] = set()  # dimshuffled views read element-wise, never built
        self.arguments: set[Variable] = set()  # values passed in (inputs, shared values)
        self.views: dict[Variable, Variable] = {}  # value -> the value it is a view of
        #: where a value must be written instead of a new array (a state row, a shared variable), and
        #: that array's dimensions as expressions valid in front of any loop
        self.destinations: dict[Variable, tuple[str, list[str]]] = {}
        self.aliases: dict[str, str] = {}  # destination name -> the array expression it names
        #: open loops, innermost last: [line index of the ``for``, names defined before it]
        self.loop_stack: list[list[Any]] = []
        #: dimension lengths known from elsewhere (a scan step's row has its buffer's row shape)
        self.shape_hints: dict[Variable, list[str]] = {}
        #: shared variables whose new values the function writes into their arrays itself
        self.in_place: list[Variable] = []
        self.shared_table = False  # whether the shared variables' arrays come as one table (backend.generate)
        #: per-step outputs of the scan being emitted: value -> (stacked buffer, steps, step index,
        #: whether the buffer may live in scratch memory)
        self.stacked: dict[Variable, tuple[str, str, str, bool]] = {}
        #: an object-mode block needs the GIL, so the main function must not release it
        self.holds_gil = False
        self.stored: set[Variable] = set()  # per-step values already written into their buffer
        #: how many nodes (and outputs) of the graphs being emitted read each value
        self.uses: dict[Variable, int] = {}
        self.owned: set[Variable] = set()  # values in arrays this function allocated for them alone
        #: temporaries may live in the call's scratch memory (``runtime.scratch_array``)
        self.use_scratch = False
        self.scratch_used = False  # whether the code calls ``runtime.scratch_array``
        self.escaping: set[Variable] = set()  # values the function returns or stores: never in scratch
        self.in_scratch: set[Variable] = set()  # values whose arrays are in scratch memory

    @contextlib.contextmanager
    def loop(self, header: str) -> Iterator[None]:
        """A loop whose body may move its loop-invariant allocations in front of it."""
        self.loop_stack.append([len(self.lines), set(self.defined)])
        try:
            with self.block(header):
                yield
        finally:
            self.loop_stack.pop()

    def _hoist_line(self, line: str, names_used: set[str], outermost: bool = False) -> bool:
        """Put ``line`` before the outermost enclosing loop where its names are all defined
        (with ``outermost``, only before the outermost loop of all)."""
        for entry in self.loop_stack[:1] if outermost else self.loop_stack:
            index, before = entry
            changed_inside = {n for line in self.lines[index:] for n in _assigned(line)}
            if names_used <= before and not names_used & changed_inside:
                indent = self.lines[index][: len(self.lines[index]) - len(self.lines[index].lstrip())]
                self.lines.insert(index, indent + line)
                for later in self.loop_stack:
                    if later[0] >= index:
                        later[0] += 1
                for target in _assigned(line):
                    self.defined.add(target)
                    for other in self.loop_stack:
                        if other[0] > index:
                            other[1].add(target)
                return True
        return False

    # -- globals ----------------------------------------------------------------------------
    def step_row(self, buffer: str, index: str, ndim: int) -> str:
        """Row ``index`` of ``buffer`` in a loop step: a view without a reference count (``runtime.step_row``),
        or the element itself when rows are scalars (``ndim`` 0)."""
        return f"step_row({buffer}, {index})" if ndim else f"{buffer}[{index}]"

    def kernel(self, fn: Callable[..., Any]) -> str:
        """Name under which the main function calls the cached Numba version of ``fn``."""
        if fn not in self.kernels:
            self.kernels[fn] = f"k_{fn.__name__}_{len(self.kernels)}"
        return self.kernels[fn]

    def generated_kernel(self, source: str) -> str:
        """Name of a generated kernel (source defining ``kernel``), keyed by its hash."""
        name = "g_" + hashlib.sha256(source.encode()).hexdigest()[:20]
        self.generated[name] = source
        return name

    def kernel_call(self, kernel: str, *args: str) -> str:
        """The expression calling ``kernel`` (a name) with ``args``, integer literals typed as int64.

        Numba compiles a kernel once per literal value it is called with, so ``k(err, 12, x)`` and
        ``k(err, 13, x)`` would be two compiles; ``np.int64(12)`` makes them one.
        """
        return f"{kernel}({', '.join(unliteral(a) for a in args)})"

    def global_object(self, hint: str, source: str) -> str:
        """A module-level object built by ``source`` (a Python expression using imports)."""
        for name, src in self.objects.items():
            if src == source:
                return name
        name = f"o_{hint}_{len(self.objects)}"
        self.objects[name] = source
        return name

    def error_code(self, node: Apply | None, what: str) -> int:
        """A new error code (>= 1) for a failure at ``node``; the wrapper explains it."""
        self.errors.append((node, what))
        return len(self.errors)

    def check(self, condition: str, node: Apply | None, what: str) -> None:
        """Record error ``what`` in ``err`` when ``condition`` holds (the first error wins).

        No branch is emitted: ``err = first_error(err, cond, code)`` (``runtime.first_error``).
        The main function never raises; branches and raise sites are what make Numba slow to
        compile a long function. Kernels check their own inputs, so running on after an error is
        safe. ``condition`` may join atoms with `` or ``, which become ``|``.
        """
        atoms = [a for a in condition.split(" or ") if not _static_false(a) and not self._same_sides(a)]
        if not atoms:
            return
        joined = " | ".join(f"({a})" for a in atoms)
        self.emit(f"err = first_error(err, {joined}, {self.error_code(node, what)})")

    def fold_checks(self) -> None:
        """Replace each run of ``FOLD_CHECKS_FROM`` or more consecutive checks of one dimension equality
        (``a.shape[i] != b.shape[j]``, consecutive codes) by one call of ``runtime.first_unequal``
        on two tuples: same result, first failure first. Numba spends about 16 ms compiling each
        check statement of a main function; an update block checks up to four dimensions per parameter."""
        folded: list[str] = []
        run: list[tuple[str, str, str, int, str]] = []  # (indent, lhs, rhs, code, line)

        def flush() -> None:
            if len(run) >= FOLD_CHECKS_FROM:
                lhs, rhs = (", ".join(entry[k] for entry in run) for k in (1, 2))
                folded.append(f"{run[0][0]}err = first_unequal(err, ({lhs}), ({rhs}), np.int64({run[0][3]}))")
            else:
                folded.extend(entry[4] for entry in run)
            run.clear()

        for line in self.lines:
            match = _DIMENSION_CHECK.fullmatch(line)
            if match is None:
                flush()
                folded.append(line)
                continue
            indent, lhs, rhs, code = match.group(1), match.group(2), match.group(3), int(match.group(4))
            if run and (indent != run[-1][0] or code != run[-1][3] + 1):
                flush()
            run.append((indent, lhs, rhs, code, line))
        flush()
        self.lines = folded

    def name_dimensions(self) -> None:
        """Read each dimension that the code reads ``NAME_DIMENSIONS_FROM`` or more times (``x.shape[i]``)
        into a variable ``dim_x_i`` where a block first needs it; the rest of that block and the blocks
        inside it use the variable. Numba compiles each read as two operations, about a millisecond each,
        and the LSTM model's main function read 212 dimensions 423 times. A variable is forgotten when its
        array is assigned again, in the whole loop for arrays a loop assigns; ``with`` blocks (object mode)
        are left as they are, and ``elif`` and ``else`` lines only use variables already there."""
        reads = collections.Counter(m.group(0) for line in self.lines for m in _DIMENSION_READ.finditer(line))
        blocks: list[tuple[int, dict[str, str]]] = []  # (indentation, read -> variable) of each open block
        opaque_below: int | None = None  # the indentation of an open ``with`` block's header
        named: list[str] = []

        def forget(arrays: set[str]) -> None:
            for _, variables in blocks:
                for read in [r for r in variables if r.split(".", 1)[0] in arrays]:
                    del variables[read]

        for index, line in enumerate(self.lines):
            indent = len(line) - len(line.lstrip())
            if opaque_below is not None and indent > opaque_below:
                named.append(line)
                continue
            opaque_below = None
            while blocks and blocks[-1][0] > indent:
                blocks.pop()
            if not blocks or blocks[-1][0] < indent:
                blocks.append((indent, {}))
            statement = line.lstrip()
            if statement.startswith(("for ", "while ")):
                body = []
                for later in self.lines[index + 1:]:
                    if len(later) - len(later.lstrip()) <= indent:
                        break
                    body.extend(_assigned(later))
                forget(set(body))
            may_add = not statement.startswith(("elif ", "else:"))
            pieces, done = [], 0
            for read in _DIMENSION_READ.finditer(line):
                text = read.group(0)
                name = next((v[text] for _, v in reversed(blocks) if text in v), None)
                if name is None and may_add and reads[text] >= NAME_DIMENSIONS_FROM:
                    name = f"dim_{read.group(1)}_{read.group(2)}"
                    named.append(f"{line[:indent]}{name} = {text}")
                    blocks[-1][1][text] = name
                pieces += [line[done:read.start()], name or text]
                done = read.end()
            named.append("".join(pieces) + line[done:])
            forget(set(_assigned(line)))
            if statement.startswith("with "):
                opaque_below = indent
        self.lines = named

    def _same_sides(self, atom: str) -> bool:
        """``x != x``, also through a destination alias (``dst_3 = arg2``): false by construction."""
        sides = atom.strip().strip("()").split(" != ")
        if len(sides) != 2:
            return False
        lhs, rhs = (_ARRAY_NAME.sub(lambda m: self.aliases.get(m.group(1), m.group(1)) + ".", side.strip())
                    for side in sides)
        return lhs == rhs

    def check_status(self, status: str, node: Apply | None, what: str) -> None:
        """Record error ``what`` when a kernel's returned ``status`` is non-zero."""
        self.check(f"{status} != 0", node, what)

    # -- values -------------------------------------------------------------------------------
    def bind(self, v: Variable, name: str) -> None:
        self.names[v] = name

    def value(self, v: Variable) -> str:
        """Expression for the full value of ``v`` (a scalar or an array)."""
        if v in self.names:
            return self.names[v]
        if isinstance(v, Constant):
            if v.ndim == 0:
                return literal(v.data, v.dtype)
            name = f"const{len(self.constant_args)}"
            self.constant_args.append((name, np.ascontiguousarray(v.data)))
            self.names[v] = name
            return name
        raise RuntimeError(f"internal error: no value for {v!r} in generated code")

    def new_name(self, v: Variable, hint: str = "v") -> str:
        name = self.fresh(hint)
        self.names[v] = name
        return name

    def view(self, out: Variable, source: Variable) -> None:
        """Record that ``out``'s array may share memory with ``source``'s."""
        self.views[out] = source

    def borrows_memory(self, v: Variable) -> bool:
        """Whether ``v``'s array may be (part of) memory the function does not own: an argument, a
        constant, or the call's scratch memory."""
        while v in self.views:
            v = self.views[v]
        return v in self.arguments or v in self.in_scratch or isinstance(v, Constant)

    def elem(self, v: Variable, idx: Sequence[str]) -> str:
        """Expression (in the main function) for the element of ``v`` at ``idx``."""
        base, mapped = through_views(self.lazy, v, list(idx))
        if base in self.lazy:  # a fill: every element is its scalar
            base = base.owner.inputs[0]  # type: ignore[union-attr]
        if base.ndim == 0:
            return self.value(base)
        uniform = _uniform_constant(base)
        if uniform is not None:
            return literal(uniform, base.dtype)
        return f"{self.value(base)}[{', '.join(mapped)}]"

    def dim(self, v: Variable, d: int) -> str:
        """Expression for the length of dimension ``d`` of ``v``."""
        if v.broadcastable[d]:
            return "1"
        markers = [str(i) for i in range(v.ndim)]
        markers[d] = "D"
        base, mapped = through_views(self.lazy, v, markers)
        if base in self.lazy:  # a fill: its shape inputs
            return self.value(base.owner.inputs[1 + mapped.index("D")])  # type: ignore[union-attr]
        if isinstance(base, Constant):
            return str(base.data.shape[mapped.index("D")])
        if base in self.shape_hints:
            return self.shape_hints[base][mapped.index("D")]
        return f"{self.value(base)}.shape[{mapped.index('D')}]"

    def shape_tuple(self, v: Variable) -> list[str]:
        return [self.dim(v, d) for d in range(v.ndim)]

    # -- common emission patterns ------------------------------------------------------------
    def broadcast_dims(self, node: Apply, inputs: Sequence[Variable], ndim: int) -> list[str]:
        """Output lengths of an elementwise operation: each from the first input not broadcasting
        there (the elementwise kernel checks that the other inputs agree)."""
        dims = []
        for d in range(ndim):
            sizes = [self.dim(x, d) for x in inputs if not x.broadcastable[d]]
            dims.append(sizes[0] if sizes else "1")
        return dims

    def empty(self, dims: Sequence[str], dtype: str) -> str:
        """Expression allocating an uninitialised array (negative lengths, after an error, give 0).

        The allocation (``runtime.new_array``) runs in a small cached kernel: compiled into the main
        function, its error paths would come with every compile.
        """
        from ...config import config

        if self.use_scratch:  # the same kernel as the temporaries'
            return self.scratch_array(dims, dtype, fresh=True)
        params = [f"d{i}" for i in range(len(dims))]
        shape = ", ".join(f"max({p}, 0)" for p in params)
        if config.poison_memory:
            make = f"np.full(({shape},), {poison(dtype)}, {np_dtype(dtype)})"
        else:
            make = f"runtime.new_array(({shape},), {np_dtype(dtype)})"
        source = f"def kernel({', '.join(params)}):\n    return {make}\n"
        return self.kernel_call(self.generated_kernel(source), *dims)

    def scratch_array(self, dims: Sequence[str], dtype: str, fresh: bool = False) -> str:
        """Expression for a temporary in the call's scratch memory (or with ``fresh``, or when it is
        large or does not fit, a new array): a generated kernel, one per ndim and dtype, which also
        serves ``empty``. Under ``config.poison_memory`` it fills the array with ``poison`` (scratch
        memory holds the values of earlier temporaries).

        Allocating and freeing each temporary, with its reference counts, took a third of a small
        model's call (the parity model: 26 arrays per call). The scratch array is an argument: the
        wrapper holds it for the whole call, and no temporary in it outlives the call (``alloc``).
        The kernel has plain dimensions and calls only intrinsics: with a tuple of dimensions in the
        main function and a jitted helper, the language model compiled 1.5 s slower.
        """
        from ...config import config
        from . import runtime

        self.scratch_used = True
        params = [f"d{i}" for i in range(len(dims))]
        sizes = [f"n{i}" for i in range(len(dims))]
        shape = f"({', '.join(sizes)},)"
        view = f"runtime.scratch_view(scratch, offset, {shape}, {np_dtype(dtype)})"
        if config.poison_memory:
            in_scratch = [f"            array = {view}", f"            array.fill({poison(dtype)})",
                          "            return array"]
            new = f"np.full({shape}, {poison(dtype)}, {np_dtype(dtype)})"
        else:
            in_scratch, new = [f"            return {view}"], f"runtime.new_array({shape}, {np_dtype(dtype)})"
        source = "\n".join([
            f"def kernel(scratch, fresh, {', '.join(params)}):",
            f"    # runtime {module_fingerprint(runtime)}",  # a change to it gives new kernels
            *[f"    {n} = max({d}, 0)" for n, d in zip(sizes, params)],
            # the size in floats first: an integer product of huge dimensions can wrap around to a
            # small number (2**40 x 2**40 doubles to 0 bytes); np.empty refuses those
            f"    if not fresh and {' * '.join([f'{np.dtype(dtype).itemsize}.0', *sizes])} <= "
            f"{runtime.SCRATCH_ARRAY_LIMIT_BYTES}:",
            f"        size = {' * '.join([*sizes, str(np.dtype(dtype).itemsize)])}",
            "        offset = runtime.scratch_offset(scratch)",
            "        end = offset + (size + 63) // 64 * 64",
            "        runtime.set_scratch_offset(scratch, end)",
            "        if end <= scratch.shape[0]:",
            *in_scratch,
            f"    return {new}",
        ]) + "\n"
        return self.kernel_call(self.generated_kernel(source), "scratch", "fresh" if fresh else "temporary", *dims)

    def buffer(self, dims: Sequence[str], dtype: str, scratch: bool) -> str:
        """Expression allocating a scan's buffer: in the call's scratch memory with ``scratch`` (the
        caller checked that the function neither returns nor stores it, and that it is allocated
        once per call), else a new array."""
        return self.scratch_array(dims, dtype) if scratch else self.empty(dims, dtype)

    def alloc(self, v: Variable, dims: Sequence[str], hint: str = "a") -> str:
        """The array that will hold ``v``: its destination if it has one, else a new array.

        Inside a loop, an array whose shape does not depend on the loop is allocated once in
        front of it and reused at every step (step values never outlive their step: what a
        scan keeps is copied into its buffers). A value the function neither returns nor stores
        (``escaping``), allocated at the top level or in front of the outermost loop, is taken
        from the call's scratch memory (``scratch_array``).
        """
        if v in self.destinations:
            target, target_dims = self.destinations[v]
            self.shape_hints[v] = target_dims  # known in front of loops: consumers can be hoisted there
            name = self.new_name(v, "dst")
            self.emit(f"{name} = {target}")
            self.aliases[name] = target
            for d, n in enumerate(dims):
                self.check(f"{name}.shape[{d}] != {n}", v.owner, "the result does not fit its destination")
            return name
        used = set(_NAME.findall(", ".join(dims))) - {"max", "min", "np", "math"}
        if v in self.stacked:  # a per-step output: compute it into its row of the stacked buffer
            buffer, steps, t, scratch = self.stacked[v]
            if self._hoist_line(f"{buffer} = {self.buffer([steps, *dims], v.dtype, scratch)}", used,
                                outermost=scratch):
                name = self.new_name(v, "row")
                self.emit(f"{name} = {self.step_row(buffer, t, v.ndim)}")
                self.shape_hints[v] = [f"{buffer}.shape[{d + 1}]" for d in range(v.ndim)]
                self.stored.add(v)
                return name
        name = self.new_name(v, hint)
        self.owned.add(v)
        if self.use_scratch and v not in self.escaping:  # at the top level only: once per call
            line = f"{name} = {self.scratch_array(dims, v.dtype)}"
            if not self.loop_stack or self._hoist_line(line, used | {"scratch", "temporary"}, outermost=True):
                if not self.loop_stack:
                    self.emit(line)
                self.in_scratch.add(v)
                return name
        line = f"{name} = {self.empty(dims, v.dtype)}"
        if not (self.loop_stack and self._hoist_line(line, used)):
            self.emit(line)
        return name

    def alloc_copy(self, v: Variable, x: Variable, hint: str, node: Apply | None = None) -> str:
        """The array that will hold ``v``, starting as a copy of ``x`` (an increment's result).

        When ``x`` is a temporary that nothing else reads, ``v`` takes over its array instead:
        no allocation and no copy (the cross-entropy gradient scattered into ``-p * ...``).
        """
        if x in self.owned and self.uses.get(x) == 1 and v not in self.destinations and v not in self.stacked \
                and not (x in self.in_scratch and v in self.escaping):
            self.owned.discard(x)
            self.owned.add(v)
            if x in self.in_scratch:
                self.in_scratch.add(v)
            self.names[v] = self.names[x]
            return self.names[v]
        out = self.alloc(v, self.shape_tuple(x), hint)
        self.copy_into(out, x, node)
        return out

    def elementwise(self, target: str, ndim: int, inputs: Sequence[Variable],
                    body: Callable[[KernelWriter, list[str]], str], op: str = "=",
                    node: Apply | None = None) -> None:
        """Call a generated kernel doing ``target[idx] <op> body(idx)`` over ``target``'s shape.

        ``body(kw, idx)`` returns the element expression, built with ``kw.elem`` on ``inputs``.
        The kernel first checks that every non-broadcastable dimension of the inputs has the
        target's length; if not, it writes nothing and the mismatch is recorded in ``err``.
        """
        self.elementwise_many([(target, body)], ndim, inputs, op, node)

    def elementwise_many(self, writes: Sequence[tuple[str, Callable[[KernelWriter, list[str]], str]]], ndim: int,
                         inputs: Sequence[Variable], op: str = "=", node: Apply | None = None) -> None:
        """One loop kernel doing ``target[idx] <op> body(idx)`` for each (target, body) in order.

        The targets have one shape (checked); a later body may read an earlier target at ``idx``.
        """
        kw = KernelWriter(self)
        outs = [kw.param(target) for target, _ in writes]
        dims = [f"{outs[0]}.shape[{d}]" for d in range(ndim)]
        with kw.loops(dims) as idx:
            for out, (_, body) in zip(outs, writes):
                expr = body(kw, idx)
                kw.emit(f"{out}[{', '.join(idx)}] {op} {expr}")
        kw.emit("return 0")
        guards = [f"{out}.shape[{d}] != {dims[d]}" for out in outs[1:] for d in range(ndim)]
        for x in inputs:
            offset = ndim - x.ndim  # inputs are aligned on the right, as in NumPy
            for d in range(x.ndim):
                if not x.broadcastable[d]:
                    guards.append(f"{kw.dim(x, d)} != {dims[d + offset]}")
        guards = list(dict.fromkeys(guards))
        if guards:
            kw.lines[:0] = ["    if " + " or ".join(guards) + ":", "        return code"]
        kw.call_with_status(self.error_code(node, "shapes do not match"))

    def reshape(self, array: str, dims: Sequence[str], node: Apply | None) -> str:
        """Expression for ``array`` reshaped to ``dims`` (a view when contiguous, else a copy)."""
        n = len(dims)
        params = ", ".join(f"d{i}" for i in range(n))
        size = " * ".join(f"d{i}" for i in range(n))
        zeros = ", ".join("0" for _ in range(n))
        source = (f"def kernel(x, {params}):\n"
                  f"    if {size} != x.size:\n"
                  f"        return np.zeros(({zeros},), x.dtype), 1\n"
                  f"    return np.ascontiguousarray(x).reshape(({params},)), 0\n")
        result, status = self.fresh("rs"), self.fresh("st")
        self.emit(f"{result}, {status} = {self.kernel_call(self.generated_kernel(source), array, *dims)}")
        self.check_status(status, node, "cannot reshape")
        return result

    def cast_array(self, v: Variable, dtype: str) -> str:
        """A new array with the values of ``v`` converted to ``dtype``."""
        name = self.fresh("cast")
        self.emit(f"{name} = {self.empty(self.shape_tuple(v), dtype)}")
        self.elementwise(name, v.ndim, [v], lambda kw, idx: kw.elem(v, idx))
        return name

    def copy_of(self, v: Variable, dims: Sequence[str]) -> str:
        """A new contiguous array of shape ``dims`` holding ``v`` (broadcast where ``v`` broadcasts)."""
        name = self.fresh("full")
        self.emit(f"{name} = {self.empty(dims, v.dtype)}")
        self.elementwise(name, len(dims), [v], lambda kw, idx: kw.elem(v, idx))
        return name

    def copy_into(self, target: str, source: Variable, node: Apply | None = None) -> None:
        """Copy ``source`` into the array ``target`` of the same shape, element by element."""
        self.elementwise(target, source.ndim, [source], lambda kw, idx: kw.elem(source, idx), node=node)

    def objmode(self, node: Apply) -> None:
        """Compute ``node`` with its NumPy implementation, called from the compiled code."""
        op = node.op
        props = op._props()
        try:
            rebuilt = eval(repr(props), {})  # noqa: S307 - our own literal reprs
        except Exception:
            rebuilt = None
        if rebuilt != props:
            raise NoNumbaImplementation(f"{op} has no Numba implementation and cannot run in object mode")
        cls = type(op)
        module = sys.modules.get(cls.__module__)
        if module is None or getattr(module, cls.__qualname__, None) is not cls:
            raise NoNumbaImplementation(
                f"{op} has no Numba implementation (numba_emit), and its class cannot be imported as "
                f"{cls.__module__}.{cls.__qualname__} to run in object mode: define the op at the top level of a "
                "module or script, or give it a numba_emit")
        if not _rebuilds(op):
            raise NoNumbaImplementation(
                f"{op} has no Numba implementation (numba_emit), and the compiled code cannot rebuild it to run in "
                f"object mode: {cls.__qualname__}(*{props!r}) makes another op. List in __props__ every attribute "
                "its results depend on, in the order __init__ takes them, or give it a numba_emit")
        types = tuple((x.dtype, x.broadcastable) for x in node.inputs)
        runner = self.global_object(
            "perform", f"perform_fallback({type(op).__module__!r}, {type(op).__name__!r}, {props!r}, {types!r})")
        self.holds_gil = True
        outs = [self.new_name(y, "om") for y in node.outputs]
        kinds = ", ".join(f"{o}={_type_string(y.dtype, y.ndim)!r}" for o, y in zip(outs, node.outputs))
        with self.block(f"with numba.objmode({kinds}):"):
            self.emit(f"{', '.join(outs)}, = {runner}({', '.join(self.value(x) for x in node.inputs)})")
        if len(outs) > 1:  # Numba refuses to type a block's variables that nothing reads after it
            self.emit(f"{self.fresh('read')} = ({', '.join(outs)})")


def _rebuilds(op: Any) -> bool:
    """Whether ``type(op)(*op._props())``, as object mode rebuilds an op in generated code, sets every
    attribute its constructor sets as ``op`` has it."""
    try:
        rebuilt = type(op)(*op._props())
    except Exception:
        return False
    mine = vars(op)
    return all(name in mine and _same_value(value, mine[name]) for name, value in vars(rebuilt).items())


def _same_value(a: Any, b: Any) -> bool:
    try:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return bool(np.array_equal(a, b)) and np.asarray(a).dtype == np.asarray(b).dtype
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


_ARRAY_NAME = re.compile(r"\b(\w+)\.")  # the array in ``name.shape[d]``


def _static_false(condition: str) -> bool:
    """Conditions made only of integer literals that are false (e.g. ``1 != 1``)."""
    try:
        return not eval(condition, {"__builtins__": {}, "np": np})  # noqa: S307 - generated literals only
    except Exception:
        return False


class KernelWriter(SourceWriter):
    """A generated loop kernel: its parameters are values of the calling main function."""

    def __init__(self, cg: CodeGen) -> None:
        super().__init__(level=1)
        self.cg = cg
        self.args: list[str] = []  # main-function expressions, one per parameter

    def param(self, main_expr: str) -> str:
        """The kernel parameter receiving ``main_expr`` (one per distinct expression).

        A destination that is another name for an array (``dst_3 = arg2``: an in-place update
        written into the shared variable it reads) shares that array's parameter. As two
        parameters, LLVM had to assume they might overlap partially and ran the scalar loop
        (a momentum update over 60,000 elements took twice as long).
        """
        target = self.cg.aliases.get(main_expr)
        if target is not None and target.isidentifier():
            main_expr = target
        if main_expr not in self.args:
            self.args.append(main_expr)
        return f"p{self.args.index(main_expr)}"

    def elem(self, v: Variable, idx: Sequence[str]) -> str:
        """Expression (inside the kernel) for the element of ``v`` at ``idx``.

        Constants become parameters too, so kernels differing only in a constant are one kernel.
        """
        base, mapped = through_views(self.cg.lazy, v, list(idx))
        if base in self.cg.lazy:  # a fill: every element is its scalar
            base = base.owner.inputs[0]  # type: ignore[union-attr]
        uniform = _uniform_constant(base)
        if uniform is not None:
            return self.param(literal(uniform, base.dtype))
        value = self.cg.value(base)
        if base.ndim == 0:
            return self.param(value)
        return f"{self.param(value)}[{', '.join(mapped)}]"

    def dim(self, v: Variable, d: int) -> str:
        """Expression (inside the kernel) for the length of dimension ``d`` of ``v``."""
        if v.broadcastable[d]:
            return "1"
        markers = [str(i) for i in range(v.ndim)]
        markers[d] = "D"
        base, mapped = through_views(self.cg.lazy, v, markers)
        if base in self.cg.lazy:  # a fill: its shape inputs
            return self.param(self.cg.value(base.owner.inputs[1 + mapped.index("D")]))  # type: ignore[union-attr]
        if isinstance(base, Constant):
            return str(base.data.shape[mapped.index("D")])
        return f"{self.param(self.cg.value(base))}.shape[{mapped.index('D')}]"

    def source(self) -> str:
        params = ", ".join(f"p{i}" for i in range(len(self.args)))
        return "\n".join([f"def kernel({params}):", *self.lines]) + "\n"

    def call(self, result: str | None = None) -> None:
        """Emit the call in the main function (assigning its return value to ``result``)."""
        name = self.cg.generated_kernel(self.source())
        call = self.cg.kernel_call(name, *self.args)
        self.cg.emit(f"{result} = {call}" if result else call)

    def call_with_status(self, code: int) -> None:
        """Emit ``err = kernel(err, code, ...)``: the kernel does nothing once ``err`` is set, and
        returns ``code`` when its own checks fail (its body returns ``code`` or 0)."""
        params = ", ".join(f"p{i}" for i in range(len(self.args)))
        source = "\n".join([f"def kernel(err, code, {params}):", "    if err != 0:", "        return err",
                             *self.lines]) + "\n"
        name = self.cg.generated_kernel(source)
        self.cg.emit(f"err = {self.cg.kernel_call(name, 'err', str(code), *self.args)}")


def unliteral(arg: str) -> str:
    """``arg``, wrapped in ``np.int64`` when it is an integer literal (see ``CodeGen.kernel_call``)."""
    return f"np.int64({arg})" if _INT_LITERAL.fullmatch(arg.strip()) else arg


_INT_LITERAL = re.compile(r"-?\d+")


def access_plan(outputs: Sequence[Variable], stop_at: Sequence[Variable],
                by_element: Sequence[Variable] = ()) -> tuple[list[Apply], set[Variable]]:
    """The nodes to emit, and the outputs that consumers only read element-wise (``lazy``).

    A dimshuffle, or an array filled with one scalar, is never built when every consumer reads
    it through ``elem``: a dimshuffle's own input is then read the same way, and a fill's
    elements are its scalar. Everything else is computed as a value. ``by_element`` are values
    among ``outputs`` that code emitted later reads only element-wise (an in-place update's loop).
    """
    nodes = toposort(outputs, stop_at=stop_at)
    value_needed: set[Variable] = set(outputs) - set(by_element)
    lazy: set[Variable] = set()
    for node in reversed(nodes):
        op = node.op
        y = node.outputs[0]
        if (type(op).__name__ == "DimShuffle" or is_fill(y)) and y not in value_needed:
            lazy.add(y)
            if not is_fill(y):
                continue
        elementwise = getattr(op, "numba_reads_elements", False)
        for i, x in enumerate(node.inputs):
            by_element = elementwise is True or (isinstance(elementwise, tuple) and i in elementwise)
            if not by_element:
                value_needed.add(x)
    return nodes, lazy
