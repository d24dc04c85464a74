"""The symbolic graph: Variables produced by Apply nodes of Ops, and walks over them.

A Variable is either a leaf (an input, a Constant, a SharedVariable) or the output of an
Apply node, which records the Op, its input Variables and the user's source line that built it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import dtypes
from .types import TensorType

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


# ---------------------------------------------------------------------------------------------
# where the user built things
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceLocation:
    """The user's source line that created a node or variable."""

    filename: str
    lineno: int
    function: str
    note: str = ""

    def __str__(self) -> str:
        line = ""
        try:
            import linecache

            line = linecache.getline(self.filename, self.lineno).strip()
        except Exception:  # pragma: no cover - linecache never raises in practice
            pass
        where = f'File "{self.filename}", line {self.lineno}, in {self.function}'
        text = f"{where}\n    {line}" if line else where
        return f"{self.note}{text}"


_trace_override: contextvars.ContextVar[SourceLocation | None] = contextvars.ContextVar(
    "symflow_trace_override", default=None
)


def user_location() -> SourceLocation | None:
    """The innermost stack frame outside the symflow package (or the active override)."""
    override = _trace_override.get()
    if override is not None:
        return override
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    return SourceLocation(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


@contextlib.contextmanager
def built_at(location: SourceLocation | None, note: str = "") -> Iterator[None]:
    """Attribute every node created inside the block to ``location`` (used by grad and scan)."""
    if location is not None and note:
        location = SourceLocation(location.filename, location.lineno, location.function, note)
    token = _trace_override.set(location)
    try:
        yield
    finally:
        _trace_override.reset(token)


# ---------------------------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------------------------
def _tensor() -> Any:
    from . import tensor

    return tensor


class Variable:
    """A symbolic array: a typed value in a graph.

    Supports Python arithmetic, comparisons and NumPy-style indexing, and the methods of
    Theano's tensor variables (``dot``, ``sum``, ``reshape``, ``dimshuffle`` ...).
    """

    # keep NumPy from treating Variables as sequences in mixed expressions (ndarray + Variable)
    __array_priority__ = 1000

    def __init__(
        self,
        type: TensorType,  # noqa: A002 - Theano's name
        owner: Apply | None = None,
        index: int | None = None,
        name: str | None = None,
    ) -> None:
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.trace = user_location() if owner is None else None

    # --- type information --------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return self.type.broadcastable

    @property
    def location(self) -> SourceLocation | None:
        """Where this variable was built."""
        return self.owner.trace if self.owner is not None else self.trace

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.owner is not None:
            op = str(self.owner.op)
            return f"{op}.{self.index}" if len(self.owner.outputs) > 1 else f"{op}.out"
        return f"<{self.type}>"

    def describe(self) -> str:
        """``'X' (float32 matrix)`` for error messages."""
        label = f"'{self.name}'" if self.name else repr(self)
        return f"{label} ({self.type.describe()})"

    # --- guard against Python protocols that make no sense symbolically ----------------------
    def __bool__(self) -> bool:
        raise TypeError(
            f"the symbolic variable {self.describe()} has no truth value; "
            "use T.switch(cond, a, b) for a symbolic choice"
        )

    def __iter__(self) -> Iterator[Variable]:
        raise TypeError(
            f"cannot iterate over the symbolic variable {self.describe()}: its length is only "
            "known at run time; index it (x[i]) or use symflow.scan to loop"
        )

    def __len__(self) -> int:
        raise TypeError(
            f"len() of the symbolic variable {self.describe()} is unknown until run time; use x.shape[0]"
        )

    __hash__ = object.__hash__

    # --- arithmetic --------------------------------------------------------------------------
    def __add__(self, other: Any) -> Variable:
        return _tensor().add(self, other)

    def __radd__(self, other: Any) -> Variable:
        return _tensor().add(other, self)

    def __sub__(self, other: Any) -> Variable:
        return _tensor().sub(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return _tensor().sub(other, self)

    def __mul__(self, other: Any) -> Variable:
        return _tensor().mul(self, other)

    def __rmul__(self, other: Any) -> Variable:
        return _tensor().mul(other, self)

    def __truediv__(self, other: Any) -> Variable:
        return _tensor().true_div(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return _tensor().true_div(other, self)

    def __floordiv__(self, other: Any) -> Variable:
        return _tensor().int_div(self, other)

    def __rfloordiv__(self, other: Any) -> Variable:
        return _tensor().int_div(other, self)

    def __mod__(self, other: Any) -> Variable:
        return _tensor().mod(self, other)

    def __rmod__(self, other: Any) -> Variable:
        return _tensor().mod(other, self)

    def __pow__(self, other: Any) -> Variable:
        return _tensor().pow(self, other)

    def __rpow__(self, other: Any) -> Variable:
        return _tensor().pow(other, self)

    def __neg__(self) -> Variable:
        return _tensor().neg(self)

    def __pos__(self) -> Variable:
        return self

    def __abs__(self) -> Variable:
        return _tensor().abs(self)

    def __matmul__(self, other: Any) -> Variable:
        return _tensor().dot(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        return _tensor().dot(other, self)

    # comparisons (``==`` stays identity so variables can be dict keys; use T.eq)
    def __lt__(self, other: Any) -> Variable:
        return _tensor().lt(self, other)

    def __le__(self, other: Any) -> Variable:
        return _tensor().le(self, other)

    def __gt__(self, other: Any) -> Variable:
        return _tensor().gt(self, other)

    def __ge__(self, other: Any) -> Variable:
        return _tensor().ge(self, other)

    def __and__(self, other: Any) -> Variable:
        return _tensor().and_(self, other)

    def __rand__(self, other: Any) -> Variable:
        return _tensor().and_(other, self)

    def __or__(self, other: Any) -> Variable:
        return _tensor().or_(self, other)

    def __ror__(self, other: Any) -> Variable:
        return _tensor().or_(other, self)

    def __xor__(self, other: Any) -> Variable:
        return _tensor().xor(self, other)

    def __rxor__(self, other: Any) -> Variable:
        return _tensor().xor(other, self)

    def __invert__(self) -> Variable:
        return _tensor().invert(self)

    # --- indexing and shape ------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Variable:
        return _tensor().getitem(self, index)

    @property
    def shape(self) -> Variable:
        return _tensor().shape(self)

    @property
    def size(self) -> Variable:
        return _tensor().prod(_tensor().shape(self))

    @property
    def T(self) -> Variable:
        return _tensor().transpose(self)

    def transpose(self, *axes: int) -> Variable:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _tensor().transpose(self, axes or None)

    def dimshuffle(self, *pattern: Any) -> Variable:
        if len(pattern) == 1 and isinstance(pattern[0], (tuple, list)):
            pattern = tuple(pattern[0])
        return _tensor().dimshuffle(self, pattern)

    def reshape(self, shape: Any, ndim: int | None = None) -> Variable:
        return _tensor().reshape(self, shape, ndim=ndim)

    def flatten(self, ndim: int = 1) -> Variable:
        return _tensor().flatten(self, ndim)

    def swapaxes(self, axis1: int, axis2: int) -> Variable:
        return _tensor().swapaxes(self, axis1, axis2)

    def squeeze(self) -> Variable:
        return _tensor().squeeze(self)

    def astype(self, dtype: Any) -> Variable:
        return _tensor().cast(self, dtype)

    def repeat(self, repeats: Any, axis: int | None = None) -> Variable:
        return _tensor().repeat(self, repeats, axis)

    def copy(self) -> Variable:
        return _tensor().tensor_copy(self)

    # --- math --------------------------------------------------------------------------------
    def dot(self, other: Any) -> Variable:
        return _tensor().dot(self, other)

    def sum(self, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Variable:
        return _tensor().sum(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().prod(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().argmin(self, axis=axis, keepdims=keepdims)

    def var(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().var(self, axis=axis, keepdims=keepdims)

    def std(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().std(self, axis=axis, keepdims=keepdims)

    def any(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().any(self, axis=axis, keepdims=keepdims)

    def all(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().all(self, axis=axis, keepdims=keepdims)

    def norm(self, L: Any = 2, axis: Any = None, keepdims: bool = False) -> Variable:
        return _tensor().norm(self, L, axis=axis, keepdims=keepdims)

    def clip(self, a_min: Any, a_max: Any) -> Variable:
        return _tensor().clip(self, a_min, a_max)

    def round(self, mode: str = "half_to_even") -> Variable:
        return _tensor().round(self, mode)

    def cumsum(self, axis: int | None = None) -> Variable:
        return _tensor().cumsum(self, axis)

    def cumprod(self, axis: int | None = None) -> Variable:
        return _tensor().cumprod(self, axis)

    def sort(self, axis: int | None = -1, kind: str = "quicksort", order: Any = None) -> Variable:
        return _tensor().sort(self, axis, kind, order)

    def argsort(self, axis: int | None = -1, kind: str = "quicksort", order: Any = None) -> Variable:
        return _tensor().argsort(self, axis, kind, order)

    def nonzero(self, return_matrix: bool = False) -> tuple[Variable, ...] | Variable:
        return _tensor().nonzero(self, return_matrix)  # type: ignore[no-any-return]

    def nonzero_values(self) -> Variable:
        return _tensor().nonzero_values(self)

    def eval(self, inputs: dict[Variable, Any] | None = None, mode: str | None = None) -> np.ndarray:
        """Compute the value now: ``x.eval({x_in: value})`` (compiles a throwaway function)."""
        from .compile.function import function

        inputs = dict(inputs or {})
        fn = function(list(inputs), self, mode=mode, on_unused_input="ignore")
        return fn(*inputs.values())


class Constant(Variable):
    """A fixed value embedded in the graph."""

    def __init__(self, value: Any, dtype: str | None = None, name: str | None = None,
                 broadcastable: tuple[bool, ...] | None = None) -> None:
        if dtype is None:
            if isinstance(value, np.ndarray):
                dtype = value.dtype.name
            elif isinstance(value, (bool, int, float, np.generic)):
                dtype = value.dtype.name if isinstance(value, np.generic) else dtypes.python_scalar_dtype(value)
            else:
                dtype = np.asarray(value).dtype.name
        dtype = dtypes.as_dtype(dtype)
        array = np.array(value, dtype=dtype)
        if isinstance(value, np.ndarray) and not np.array_equal(array, value, equal_nan=array.dtype.kind == "f"):
            raise TypeError(f"constant of dtype {value.dtype} does not fit {dtype} without loss")
        array.setflags(write=False)
        if broadcastable is None:
            broadcastable = tuple(s == 1 for s in array.shape)
        elif any(b and s != 1 for b, s in zip(broadcastable, array.shape)) or len(broadcastable) != array.ndim:
            raise ValueError(f"broadcastable={broadcastable} does not fit a constant of shape {array.shape}")
        super().__init__(TensorType(dtype, tuple(broadcastable)), name=name)
        self.data = array

    def signature(self) -> tuple[Any, ...]:
        """Equal for constants with the same dtype, shape and values (used to merge them)."""
        return ("constant", self.dtype, self.data.shape, self.data.tobytes())

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.data.size <= 6:
            text = np.array2string(self.data, separator=",").replace("\n", "")
            return text if self.data.ndim else f"{self.data.item()!r}"
        return f"Constant{{{self.type}, shape={self.data.shape}}}"


# ---------------------------------------------------------------------------------------------
# Apply nodes and Ops
# ---------------------------------------------------------------------------------------------
class Apply:
    """One application of an Op to input Variables, producing output Variables."""

    #: how many nodes have been created so far; each node keeps its number as ``serial``
    created = 0

    def __init__(self, op: Op, inputs: Sequence[Variable], output_types: Sequence[TensorType],
                 trace: SourceLocation | None = None) -> None:
        """``trace``: the source line the node is attributed to (default: the caller's, see ``user_location``)."""
        for i, x in enumerate(inputs):
            if not isinstance(x, Variable):
                raise TypeError(f"input {i} of {op} is {type(x).__name__}, not a symflow Variable")
        self.op = op
        self.inputs = list(inputs)
        self.outputs = [Variable(t, owner=self, index=i) for i, t in enumerate(output_types)]
        self.trace = trace if trace is not None else user_location()
        self.serial = Apply.created
        Apply.created += 1

    @property
    def out(self) -> Variable:
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"{self.op}({', '.join(map(repr, self.inputs))})"


class Op:
    """An operation. Subclasses give, side by side in their module:

    * ``make_node``: the type/shape rule (checks inputs, returns an Apply with output types);
    * ``perform``: the NumPy reference implementation;
    * ``grad``: the vector-Jacobian product, built from other Ops (None = no gradient);
    * ``infer_shape``: output shapes as symbolic int64 scalars;
    * ``numba``: the emitter used by the Numba backend (see ``symflow.compile.numba``).

    ``__props__`` names the attributes that make two Ops equal (what they compute depends on
    nothing else), which rewrites and the compile cache rely on; list them in the order
    ``__init__`` takes them. An Op class that declares no ``__props__`` (none of its classes below
    ``Op`` does) is equal only to itself, as in Theano: its instances are never merged.
    """

    __props__: tuple[str, ...] = ()
    #: ops with side effects or fresh randomness are never merged, folded or hoisted
    stateful: bool = False

    def make_node(self, *inputs: Any) -> Apply:
        raise NotImplementedError

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no NumPy implementation")

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        raise NotImplementedError(f"the gradient of {self} is not implemented")

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        from .ops.shape import shape_i

        return [tuple(shape_i(out, d) for d in range(out.ndim)) for out in node.outputs]

    def __call__(self, *inputs: Any) -> Any:
        node = self.make_node(*inputs)
        return node.outputs[0] if len(node.outputs) == 1 else list(node.outputs)

    def _props(self) -> tuple[Any, ...]:
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return type(self) is type(other) and declares_props(type(self)) and \
            self._props() == other._props()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._props())) if declares_props(type(self)) else object.__hash__(self)

    def __str__(self) -> str:
        props = self._props()
        if not props:
            return type(self).__name__
        return f"{type(self).__name__}{{{', '.join(_short(p) for p in props)}}}"

    __repr__ = __str__


@functools.cache
def declares_props(cls: type) -> bool:
    """Whether the Op class ``cls`` (or a base below ``Op``) declares ``__props__``."""
    return any("__props__" in vars(base) for base in cls.__mro__ if base is not Op and issubclass(base, Op))


def _short(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(_short(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return getattr(value, "name", None) or str(value)


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------
def as_variable(x: Any, dtype: str | None = None, name: str | None = None) -> Variable:
    """A Variable for ``x``: itself if already symbolic, else a Constant."""
    if isinstance(x, Variable):
        if dtype is not None and x.dtype != dtypes.as_dtype(dtype):
            return _tensor().cast(x, dtype)
        return x
    if isinstance(x, (list, tuple)) and any(isinstance(e, Variable) for e in _flatten(x)):
        return _tensor().stack([as_variable(e, dtype) for e in x])
    return Constant(x, dtype=dtype, name=name)


def _flatten(x: Any) -> Iterator[Any]:
    for e in x:
        if isinstance(e, (list, tuple)):
            yield from _flatten(e)
        else:
            yield e


# ---------------------------------------------------------------------------------------------
# walks
# ---------------------------------------------------------------------------------------------
def toposort(outputs: Iterable[Variable], stop_at: Iterable[Variable] = ()) -> list[Apply]:
    """Apply nodes needed for ``outputs``, each after the nodes it depends on.

    Variables in ``stop_at`` are treated as leaves (their owners are not visited).
    """
    stop = set(stop_at)
    order: list[Apply] = []
    done: set[Apply] = set()
    for root in outputs:
        if root.owner is None or root in stop or root.owner in done:
            continue
        stack: list[tuple[Apply, int]] = [(root.owner, 0)]
        visiting = {root.owner}
        while stack:
            node, i = stack[-1]
            if i < len(node.inputs):
                stack[-1] = (node, i + 1)
                x = node.inputs[i]
                owner = x.owner
                if owner is not None and x not in stop and owner not in done and owner not in visiting:
                    visiting.add(owner)
                    stack.append((owner, 0))
            else:
                stack.pop()
                visiting.discard(node)
                done.add(node)
                order.append(node)
    return order


def ancestors(outputs: Iterable[Variable], stop_at: Iterable[Variable] = ()) -> list[Variable]:
    """Every variable the outputs depend on, leaves included, in dependency order."""
    stop = set(stop_at)
    outputs = list(outputs)
    seen: dict[Variable, None] = {}
    for node in toposort(outputs, stop):
        for x in node.inputs:
            seen.setdefault(x)
        for y in node.outputs:
            seen.setdefault(y)
    for y in outputs:
        seen.setdefault(y)
    return list(seen)


def graph_inputs(outputs: Iterable[Variable], stop_at: Iterable[Variable] = ()) -> list[Variable]:
    """The leaves (variables without owner, or in ``stop_at``) the outputs depend on."""
    stop = set(stop_at)
    return [v for v in ancestors(outputs, stop) if v.owner is None or v in stop]


def clone_replace(
    outputs: Sequence[Variable],
    replace: dict[Variable, Variable] | None = None,
    stop_at: Iterable[Variable] = (),
) -> list[Variable]:
    """Rebuild ``outputs`` with the variables in ``replace`` substituted.

    Nodes are rebuilt only when one of their inputs changed; types are recomputed by each Op's
    type rule, so a replacement must be type-compatible with what it replaces.
    """
    memo: dict[Variable, Variable] = dict(replace or {})
    keys = set(memo)
    for node in toposort(outputs, stop_at=keys | set(stop_at)):
        new_inputs = [memo.get(x, x) for x in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs)):
            continue
        new_node = rebuild(node, new_inputs)
        if len(new_node.outputs) != len(node.outputs):
            raise RuntimeError(f"rebuilding {node.op} changed its number of outputs")
        for old, new in zip(node.outputs, new_node.outputs):
            if old.name and not new.name:
                new.name = old.name
            memo[old] = new
    return [memo.get(y, y) for y in outputs]


def rebuild(node: Apply, inputs: Sequence[Variable]) -> Apply:
    """The same operation applied to new inputs, attributed to the same source line."""
    with built_at(node.trace):
        return node.op.make_node(*inputs)
