"""CodeGen: writes the Python source of one Numba function, one statement group per node.

Values of ndim 0 are Numba scalars; all others are arrays. Ops emit their code through
``numba_emit(node, cg)`` (kept next to each op's NumPy implementation), using the helpers
here: names for values, element access that sees through dimshuffles without materialising
them, nested loops, shape checks that raise coded errors, and calls to cached kernels.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ...graph import Apply, Constant, Variable, toposort


class NoNumbaImplementation(Exception):
    """An op in the graph has no Numba emitter (the function then runs on the NumPy backend)."""


_NUMBA_DTYPE = {
    "bool": "np.bool_", "int8": "np.int8", "int16": "np.int16", "int32": "np.int32", "int64": "np.int64",
    "uint8": "np.uint8", "uint16": "np.uint16", "uint32": "np.uint32", "uint64": "np.uint64",
    "float32": "np.float32", "float64": "np.float64",
}


def numba_type(dtype: str, ndim: int, scalar: bool = False) -> str:
    """Source of the Numba type of a C-contiguous array (or of a scalar when ``ndim`` is 0)."""
    base = "_t.bool_" if dtype == "bool" else f"_t.{dtype}"
    if scalar and ndim == 0:
        return base
    return f"_t.Array({base}, {ndim}, 'C')"


def np_dtype(dtype: str) -> str:
    """The ``np.<dtype>`` expression for a dtype name."""
    return _NUMBA_DTYPE[dtype]


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
            return f"{np_dtype(dtype)}(np.nan)"
        if np.isinf(v):
            return f"{np_dtype(dtype)}({'-' if v < 0 else ''}np.inf)"
        return f"{np_dtype(dtype)}({v!r})" if dtype != "float64" else repr(v)
    return f"{np_dtype(dtype)}({v!r})" if dtype != "int64" else f"np.int64({v!r})"


class CodeGen:
    """Source of one Numba function under construction."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.level = 1
        self.names: dict[Variable, str] = {}
        self.kernels: dict[Callable[..., Any], str] = {}
        self.objects: dict[str, str] = {}  # global name -> source expression building it
        self.errors: list[tuple[Apply | None, str]] = []
        self.constant_args: list[tuple[str, np.ndarray]] = []
        self._count = itertools.count()
        self.lazy: set[Variable] = set()  # dimshuffled views accessed element-wise, never built
        self.arguments: set[Variable] = set()  # values passed in (inputs, shared values)
        self.views: dict[Variable, Variable] = {}  # value -> the value it is a view of

    def view(self, out: Variable, source: Variable) -> None:
        """Record that ``out``'s array may share memory with ``source``'s."""
        self.views[out] = source

    def aliases_argument(self, v: Variable) -> bool:
        """Whether ``v``'s array may be (part of) an argument or constant array."""
        while v in self.views:
            v = self.views[v]
        return v in self.arguments or isinstance(v, Constant)

    # -- text ---------------------------------------------------------------------------------
    def emit(self, line: str) -> None:
        self.lines.append("    " * self.level + line)

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

    # -- globals ----------------------------------------------------------------------------
    def kernel(self, fn: Callable[..., Any]) -> str:
        """Name under which the generated module calls the cached Numba version of ``fn``."""
        if fn not in self.kernels:
            self.kernels[fn] = f"k_{fn.__name__.lstrip('_')}_{len(self.kernels)}"
        return self.kernels[fn]

    def global_object(self, hint: str, source: str) -> str:
        """A module-level object built by ``source`` (a Python expression using imports)."""
        for name, src in self.objects.items():
            if src == source:
                return name
        name = f"g_{hint}_{len(self.objects)}"
        self.objects[name] = source
        return name

    def fail(self, node: Apply | None, what: str) -> str:
        """A ``raise`` statement for a run-time error at ``node`` (the wrapper explains it)."""
        self.errors.append((node, what))
        return f'raise ValueError("symflow-error:{len(self.errors) - 1}")'

    # -- values -------------------------------------------------------------------------------
    def bind(self, v: Variable, name: str) -> None:
        self.names[v] = name

    def value(self, v: Variable) -> str:
        """Name of the full value of ``v`` (a scalar or an array)."""
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

    def _through_views(self, v: Variable, idx: list[str]) -> tuple[Variable, list[str]]:
        """Follow lazily skipped dimshuffles back to a materialised value, mapping indices."""
        while v in self.lazy:
            node = v.owner
            order = node.op.new_order  # type: ignore[union-attr]
            x = node.inputs[0]  # type: ignore[union-attr]
            inner = ["0"] * x.ndim
            for pos, d in enumerate(order):
                if d != "x":
                    inner[d] = idx[pos]
            v, idx = x, inner
        return v, idx

    def elem(self, v: Variable, idx: Sequence[str]) -> str:
        """Expression for the element of ``v`` at ``idx`` (broadcastable dims read index 0)."""
        idx = ["0" if b else i for b, i in zip(v.broadcastable, idx)]
        base, idx = self._through_views(v, idx)
        idx = ["0" if b else i for b, i in zip(base.broadcastable, idx)]
        if base.ndim == 0:
            return self.value(base)
        if isinstance(base, Constant) and np.all(base.data == base.data.flat[0]) and base.data.size:
            return literal(base.data.flat[0], base.dtype)
        return f"{self.value(base)}[{', '.join(idx)}]"

    def dim(self, v: Variable, d: int) -> str:
        """Expression for the length of dimension ``d`` of ``v``."""
        if v.broadcastable[d]:
            return "1"
        idx = [str(i) for i in range(v.ndim)]
        markers = list(idx)
        markers[d] = "D"
        base, mapped = self._through_views(v, markers)
        if isinstance(base, Constant):
            return str(base.data.shape[mapped.index("D")])
        return f"{self.value(base)}.shape[{mapped.index('D')}]"

    # -- loops ---------------------------------------------------------------------------------
    def loops(self, dims: Sequence[str]) -> contextlib.AbstractContextManager[list[str]]:
        """Nested ``for`` loops over ``dims``; yields the index names."""

        @contextlib.contextmanager
        def nest() -> Iterator[list[str]]:
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

        return nest()

    def broadcast_dims(self, node: Apply, inputs: Sequence[Variable], ndim: int) -> list[str]:
        """Output lengths for an elementwise loop; checks non-broadcastable dims agree."""
        dims = []
        for d in range(ndim):
            sizes = [self.dim(x, d) for x in inputs if not x.broadcastable[d]]
            if not sizes:
                dims.append("1")
                continue
            n = self.fresh("n")
            self.emit(f"{n} = {sizes[0]}")
            for s in sizes[1:]:
                if s != sizes[0]:
                    with self.block(f"if {s} != {n}:"):
                        self.emit(self.fail(node, f"dimension {d} mismatch"))
            dims.append(n)
        return dims

    def alloc(self, v: Variable, dims: Sequence[str], hint: str = "a") -> str:
        name = self.new_name(v, hint)
        self.emit(f"{name} = np.empty(({', '.join(dims)}{',' if len(dims) == 1 else ''}), {np_dtype(v.dtype)})")
        return name

    def copy_into(self, target: str, source: Variable, dims: Sequence[str]) -> None:
        """Element-wise copy of ``source`` (of the given dims) into the array expression ``target``."""
        if not dims:
            raise RuntimeError("copy_into needs an array")
        with self.loops(dims) as idx:
            self.emit(f"{target}[{', '.join(idx)}] = {self.elem(source, idx)}")

    def shape_tuple(self, v: Variable) -> list[str]:
        return [self.dim(v, d) for d in range(v.ndim)]

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
        types = tuple((x.dtype, x.broadcastable) for x in node.inputs)
        runner = self.global_object(
            "perform", f"perform_fallback({type(op).__module__!r}, {type(op).__name__!r}, {props!r}, {types!r})")
        outs = [self.new_name(y, "om") for y in node.outputs]
        kinds = ", ".join(f"{o}={numba_type(y.dtype, y.ndim, scalar=True)}" for o, y in zip(outs, node.outputs))
        with self.block(f"with numba.objmode({kinds}):"):
            self.emit(f"{', '.join(outs)}, = {runner}({', '.join(self.value(x) for x in node.inputs)})")


def access_plan(outputs: Sequence[Variable], stop_at: Sequence[Variable]) -> tuple[list[Apply], set[Variable]]:
    """The nodes to emit, and the dimshuffle outputs that consumers only read element-wise.

    A dimshuffle is skipped (``lazy``) when every consumer reads it through ``cg.elem``; its
    own input is then read the same way. Everything else is computed as a value.
    """
    nodes = toposort(outputs, stop_at=stop_at)
    value_needed: set[Variable] = set(outputs)
    elem_needed: set[Variable] = set()
    lazy: set[Variable] = set()
    for node in reversed(nodes):
        op = node.op
        is_view = type(op).__name__ == "DimShuffle"
        y = node.outputs[0]
        if is_view and y not in value_needed:
            lazy.add(y)
            elem_needed.add(node.inputs[0])
            continue
        elementwise = getattr(op, "numba_reads_elements", False)
        for i, x in enumerate(node.inputs):
            by_element = elementwise is True or (isinstance(elementwise, tuple) and i in elementwise)
            (elem_needed if by_element else value_needed).add(x)
    return nodes, lazy
