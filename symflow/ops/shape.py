"""Shape manipulation: dimshuffle, reshape, shape queries, join and split, tile, alloc, arange, repeat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Constant, Op, Variable, as_variable
from ..types import TensorType
from . import math as m

INT64_MAX = int(np.iinfo(np.int64).max)


def int64_index(x: Variable) -> Variable:
    """``x`` with uint64 values from 2**63 up held at int64's maximum, as int64 (other dtypes as they
    are): a cast would wrap them to negative numbers, an index from the end or reshape's -1. Held
    there, they are out of range on every axis, and clip as slice bounds."""
    if x.dtype != "uint64":
        return x
    return m.cast(m.minimum(x, INT64_MAX), "int64")


def as_index_scalar(x: Any, what: str = "index") -> Variable:
    """An int64 scalar variable from a Python int or a symbolic integer scalar (``int64_index``)."""
    if isinstance(x, Variable):
        if x.ndim != 0 or not dtypes.is_int(x.dtype):
            raise TypeError(f"{what} must be an integer scalar, got {x.describe()}")
        return m.cast(int64_index(x), "int64")
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {type(x).__name__} {x!r}")
    if not -INT64_MAX - 1 <= int(x) <= INT64_MAX:
        raise ValueError(f"{what} must fit int64, got {type(x).__name__} {x!r}")
    return Constant(int(x), dtype="int64")


def constant_value(x: Variable) -> Any:
    """The Python value of a constant scalar (also through casts), or None when not constant."""
    while x.owner is not None and getattr(x.owner.op, "scalar_op", None) is not None and \
            x.owner.op.scalar_op.name.startswith("cast_"):
        x = x.owner.inputs[0]
    if isinstance(x, Constant) and x.data.ndim == 0:
        return x.data.item()
    return None


# ---------------------------------------------------------------------------------------------
class DimShuffle(Op):
    """Reorder, drop (broadcastable only) and insert (``'x'``) dimensions."""

    __props__ = ("input_broadcastable", "new_order")

    def __init__(self, input_broadcastable: tuple[bool, ...], new_order: tuple[Any, ...]) -> None:
        nd = len(input_broadcastable)
        kept = [d for d in new_order if d != "x"]
        for d in kept:
            if not isinstance(d, (int, np.integer)) or not 0 <= d < nd:
                raise ValueError(f"dimshuffle: {d!r} is not a dimension of a {nd}-d tensor")
        if len(set(kept)) != len(kept):
            raise ValueError(f"dimshuffle: a dimension appears twice in {new_order}")
        for d in range(nd):
            if d not in kept and not input_broadcastable[d]:
                raise ValueError(
                    f"dimshuffle {new_order} drops dimension {d}, which is not broadcastable; only "
                    "length-1 broadcastable dimensions can be dropped"
                )
        self.input_broadcastable = tuple(input_broadcastable)
        self.new_order = tuple("x" if d == "x" else int(d) for d in new_order)
        self.kept = tuple(int(d) for d in kept)
        self.dropped = tuple(d for d in range(nd) if d not in kept)

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        if x.broadcastable != self.input_broadcastable:
            # a more broadcastable input is fine; a less broadcastable one cannot drop dims
            for b_op, b_x in zip(self.input_broadcastable, x.broadcastable):
                if b_op and not b_x:
                    raise TypeError(f"dimshuffle built for {self.input_broadcastable} got {x.type}")
        bcast = tuple(True if d == "x" else x.broadcastable[d] for d in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        for d in self.dropped:
            if x.shape[d] != 1:
                raise ValueError(f"dimension {d} should have length 1 to be dropped, shape is {x.shape}")
        y = x.transpose(self.kept + self.dropped).reshape([x.shape[d] for d in self.kept])
        shape = [1 if d == "x" else x.shape[d] for d in self.new_order]
        return [y.reshape(shape)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (x,) = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None]
        # drop the inserted axes (summing where g was not broadcastable), then undo the permutation
        inserted = tuple(i for i, d in enumerate(self.new_order) if d == "x" and not g.broadcastable[i])
        if inserted:
            from .reduce import sum as sum_

            g = sum_(g, axis=inserted, keepdims=True)
        g = dimshuffle(g, tuple(i for i, d in enumerate(self.new_order) if d != "x"))
        # g's dims now follow self.kept; put them back in input order, dropped dims as 'x'
        position = {d: i for i, d in enumerate(self.kept)}
        order = tuple(position[d] if d in position else "x" for d in range(x.ndim))
        return [dimshuffle(g, order)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        (s,) = input_shapes
        one = as_variable(1, "int64")
        return [tuple(one if d == "x" else s[d] for d in self.new_order)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """A view: transpose, then index with None (new axes) and 0 (dropped axes)."""
        (x,) = node.inputs
        y = node.outputs[0]
        name = cg.new_name(y, "ds")
        if x.ndim == 0:
            cg.emit(f"{name} = np.full(({', '.join('1' for _ in self.new_order)},), {cg.value(x)})")
            return
        perm = self.kept + self.dropped
        expr = cg.value(x)
        if perm != tuple(range(x.ndim)):
            expr = f"{expr}.T" if perm == (1, 0) else _strided_permutation(cg, expr, perm)
        index = ["None" if d == "x" else ":" for d in self.new_order] + ["0"] * len(self.dropped)
        if any(i != ":" for i in index):
            expr = f"{expr}[{', '.join(index)}]"
            if perm == tuple(range(x.ndim)) and y.ndim:  # only length-1 axes added or dropped: the layout is kept
                expr = f"runtime.layout_of({expr}, {cg.value(x)})"
        cg.emit(f"{name} = {expr}")
        cg.view(y, x)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        """The step axis stays first."""
        order = (0,) + tuple("x" if d == "x" else d + 1 for d in self.new_order)
        return [(dimshuffle(values[0], order), True)]


def _strided_permutation(cg: Any, expr: str, perm: tuple[int, ...]) -> str:
    """A kernel call viewing ``expr`` with its axes permuted. Numba's ``transpose`` would bring its
    error-message formatting into the compile (about 2 s, cold); a strided view does not."""
    shape = ", ".join(f"x.shape[{d}]" for d in perm)
    strides = ", ".join(f"x.strides[{d}]" for d in perm)
    source = f"def kernel(x):\n    return np.lib.stride_tricks.as_strided(x, ({shape},), ({strides},))\n"
    return f"{cg.generated_kernel(source)}({expr})"


def dimshuffle(x: Any, pattern: Sequence[Any]) -> Variable:
    """Theano's dimshuffle: ``x.dimshuffle(1, 0)`` transposes, ``'x'`` inserts a length-1 axis."""
    x = as_variable(x)
    pattern = tuple(pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return DimShuffle(x.broadcastable, pattern)(x)  # type: ignore[no-any-return]


def transpose(x: Any, axes: Sequence[int] | None = None) -> Variable:
    x = as_variable(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    if sorted(int(a) % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose axes {tuple(axes)} are not a permutation of {x.ndim} axes")
    return dimshuffle(x, tuple(int(a) % x.ndim for a in axes))


def squeeze(x: Any) -> Variable:
    """Drop every broadcastable (length-1) dimension."""
    x = as_variable(x)
    return dimshuffle(x, tuple(d for d in range(x.ndim) if not x.broadcastable[d]))


def axis_index(axis: Any, x: Variable, what: str, or_none: bool = False) -> int:
    """``axis`` of ``x`` as an index in ``range(x.ndim)`` (negative counts from the end); an error
    naming ``x`` otherwise. ``what`` names the argument (``"cumsum axis"``); ``or_none`` says in that
    error that the caller also takes None."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{what} must be an integer{' or None' if or_none else ''}, got {type(axis).__name__} "
                        f"{axis!r} for {x.describe()}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{what} {axis} is out of range for {x.describe()}")
    return int(axis) % x.ndim


def swapaxes(x: Any, axis1: int, axis2: int) -> Variable:
    """NumPy's swapaxes: ``x`` with dimensions ``axis1`` and ``axis2`` exchanged (a dimshuffle)."""
    x = as_variable(x)
    a, b = axis_index(axis1, x, "swapaxes axis1"), axis_index(axis2, x, "swapaxes axis2")
    order = list(range(x.ndim))
    order[a], order[b] = b, a
    return dimshuffle(x, order)


# ---------------------------------------------------------------------------------------------
class Shape(Op):
    """The shape of ``x`` as an int64 vector."""

    __props__ = ()

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim == 1,))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.array(inputs[0].shape, dtype="int64")]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [(as_variable(node.inputs[0].ndim, "int64"),)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        (x,) = node.inputs
        name = cg.new_name(node.outputs[0], "shp")
        cg.emit(f"{name} = {cg.empty([str(x.ndim)], 'int64')}")
        for d, n in enumerate(cg.shape_tuple(x)):
            cg.emit(f"{name}[{d}] = {n}")

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        from .subtensor import getitem

        return [(getitem(shape(values[0]), slice(1, None)), False)]


class ShapeI(Op):
    """Length of dimension ``i`` of ``x`` as an int64 scalar."""

    __props__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        if not 0 <= self.i < x.ndim:
            raise IndexError(f"shape index {self.i} out of range for {x.describe()}")
        return Apply(self, [x], [TensorType("int64", ())])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.array(inputs[0].shape[self.i], dtype="int64")]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [()]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        cg.emit(f"{cg.new_name(node.outputs[0], 'n')} = np.int64({cg.dim(node.inputs[0], self.i)})")

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(ShapeI(self.i + 1)(values[0]), False)]


def shape(x: Any) -> Variable:
    """``x.shape``: an int64 vector; ``x.shape[i]`` is a scalar."""
    return Shape()(as_variable(x))  # type: ignore[no-any-return]


def shape_i(x: Any, i: int) -> Variable:
    """Length of dimension ``i``; a constant when the dimension is broadcastable."""
    x = as_variable(x)
    if isinstance(x, Constant):
        return as_variable(x.data.shape[i], "int64")
    if x.broadcastable[i]:
        return as_variable(1, "int64")
    return ShapeI(i)(x)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
class Reshape(Op):
    """Reshape ``x`` to a shape given as ``ndim`` integer scalars (as ``reshape`` builds it from a
    tuple) or as one int64 vector; one entry may be -1.

    Scalars are read as they are: the generated code builds no shape vector, and an entry that is a
    dimension's length or a nonnegative constant needs no test for -1."""

    __props__ = ("ndim", "broadcastable")

    def __init__(self, ndim: int, broadcastable: tuple[bool, ...]) -> None:
        self.ndim = ndim
        self.broadcastable = broadcastable

    def make_node(self, x: Variable, *shape: Variable) -> Apply:
        x = as_variable(x)
        entries = [as_variable(s) for s in shape]
        if len(entries) == 1 and entries[0].ndim == 1:
            if not dtypes.is_int(entries[0].dtype):
                raise TypeError(f"reshape needs an integer vector shape, got {entries[0].describe()}")
        elif len(entries) != self.ndim or any(e.ndim != 0 or not dtypes.is_int(e.dtype) for e in entries):
            raise TypeError(f"reshape to {self.ndim} dimensions needs {self.ndim} integer scalars or one integer "
                            f"vector, got {', '.join(e.describe() for e in entries) or 'nothing'}")
        return Apply(self, [x, *entries], [TensorType(x.dtype, self.broadcastable)])

    @staticmethod
    def takes_vector(node: Apply) -> bool:
        """Whether ``node``'s shape is one vector (else one scalar per dimension)."""
        return len(node.inputs) == 2 and node.inputs[1].ndim == 1

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, *entries = inputs
        shp = entries[0] if self.takes_vector(node) else entries
        if len(shp) != self.ndim:
            raise ValueError(f"reshape to {self.ndim} dimensions got a shape of length {len(shp)}")
        try:
            if min(shp, default=0) < -1 or sum(int(s) == -1 for s in shp) > 1:  # NumPy takes -2 for -1 too
                raise ValueError
            out = x.reshape(tuple(int(s) for s in shp))
        except ValueError:
            raise ValueError(f"cannot reshape an array of shape {x.shape} (size {x.size}) "
                             f"to {tuple(int(s) for s in shp)}") from None
        for d, b in enumerate(self.broadcastable):
            if b and out.shape[d] != 1:
                raise ValueError(f"reshape result {out.shape} should have length 1 in dimension {d}")
        return [out]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x = node.inputs[0]
        (g,) = output_grads
        rest: list[Variable | None] = [None] * (len(node.inputs) - 1)
        if g is None or dtypes.is_discrete(x.dtype):
            return [None, *rest]
        lengths = tuple(shape_i(x, d) for d in range(x.ndim))
        return [reshape(g, lengths, broadcastable=x.broadcastable), *rest]

    def entries(self, node: Apply) -> list[Variable]:
        """The shape's entries as integer scalars."""
        from .subtensor import getitem

        if self.takes_vector(node):
            return [getitem(node.inputs[1], i) for i in range(self.ndim)]
        return list(node.inputs[1:])

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        from .reduce import prod

        x = node.inputs[0]
        size = prod(shape(x))
        entries = self.entries(node)
        known = as_variable(1, "int64")  # the product of the entries, with the -1 when there is one
        for e in entries:
            known = m.mul(known, e)
        out = []
        for d, e in enumerate(entries):
            if self.broadcastable[d]:
                out.append(as_variable(1, "int64"))
            elif _nonnegative(e):
                out.append(e)
            else:
                out.append(m.switch(m.eq(e, -1), m.int_div(size, m.neg(known)), e))
        return [tuple(out)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """A view of the contiguous data with the new dims; an entry that may be -1 is resolved here."""
        x = node.inputs[0]
        y = node.outputs[0]
        src = cg.value(x)
        size = " * ".join(cg.shape_tuple(x)) or "1"
        if self.takes_vector(node):
            s = cg.value(node.inputs[1])
            cg.check(f"{s}.shape[0] != {self.ndim}", node, "shape vector of the wrong length")
            entries = [(f"{s}[{i}]", True) for i in range(self.ndim)]
        else:
            entries = [(cg.value(e), not _nonnegative(e)) for e in node.inputs[1:]]
        maybe = [i for i, (_, may_be_missing) in enumerate(entries) if may_be_missing]
        # flatten's case: the one entry that may be -1 is the constant -1, resolved without tests
        inferred = maybe[0] if not self.takes_vector(node) and len(maybe) == 1 \
            and constant_value(node.inputs[1 + maybe[0]]) == -1 else None
        dims = []  # a name per entry: the value's own, or a new one (for an expression, or one that may be -1)
        for i, (expr, may_be_missing) in enumerate(entries):
            if may_be_missing or not expr.isidentifier():
                dims.append(cg.fresh("d"))
                if i != inferred:
                    cg.emit(f"{dims[-1]} = {expr}")
            else:
                dims.append(expr)
        if inferred is not None:
            known = " * ".join(d for i, d in enumerate(dims) if i != inferred)
            cg.emit(f"{dims[inferred]} = ({size}) // ({known}) if {known} > 0 else 0" if known
                    else f"{dims[inferred]} = {size}")
            if known:  # beside a 0, -1 could be any length: NumPy refuses it
                cg.check(f"({known}) == 0", node, "cannot reshape")
            maybe = []
        if maybe:
            known, missing, n_missing = cg.fresh("known"), cg.fresh("missing"), cg.fresh("n_missing")
            cg.emit(f"{known} = {' * '.join(d for i, d in enumerate(dims) if i not in maybe) or '1'}")
            cg.emit(f"{missing}, {n_missing} = -1, 0")
            for i in maybe:
                with cg.block(f"if {dims[i]} == -1:"):
                    cg.emit(f"{missing}, {n_missing} = {i}, {n_missing} + 1")  # the last -1 is resolved
                with cg.block("else:"):
                    cg.emit(f"{known} *= {dims[i]}")
            for i in maybe:
                with cg.block(f"if {missing} == {i}:"):
                    cg.emit(f"{dims[i]} = ({size}) // {known} if {known} > 0 else 0")
        total = " * ".join(dims) or "1"
        # no length may stay negative (an entry below -1, a second -1), and a -1 beside a 0 could be
        # any length (NumPy refuses it too)
        negative = "".join(f" or {dims[i]} < 0" for i in maybe)
        bad = f"{negative} or {n_missing} > 0 and {known} == 0" if maybe else ""
        cg.check(f"{total} != {size}{bad}", node, "cannot reshape")
        name = cg.new_name(y, "rs")
        if self.ndim == 0:
            cg.emit(f"{name} = {cg.elem(x, ['0'] * x.ndim)}" if x.ndim else f"{name} = {src}")
        elif x.ndim == 0:
            cg.emit(f"{name} = {cg.empty(dims, x.dtype)}")
            cg.emit(f"{name}[{', '.join(['0'] * self.ndim)}] = {src}")
        else:
            cg.emit(f"{name} = {cg.reshape(src, dims, node)}")
            cg.view(y, x)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        x, *shape = values
        if any(batched[1:]):
            return None
        op = Reshape(self.ndim + 1, (False,) + self.broadcastable)
        if self.takes_vector(node):
            full = Join(0)(dimshuffle(shape_i(x, 0), ("x",)), m.cast(shape[0], "int64"))
            return [(op(x, full), True)]
        return [(op(x, shape_i(x, 0), *shape), True)]


def _nonnegative(e: Variable) -> bool:
    """Whether the integer scalar ``e`` cannot be negative (so not -1): a dimension's length
    (``shape_i(x, d)`` or ``x.shape[d]``), a nonnegative constant, or a product or cast of such."""
    from .subtensor import Subtensor

    value = constant_value(e)
    if value is not None:
        return bool(value >= 0)
    node = e.owner
    if node is None:
        return False
    if isinstance(node.op, ShapeI) or (isinstance(node.op, Subtensor) and node.inputs[0].owner is not None
                                       and isinstance(node.inputs[0].owner.op, Shape)):
        return True
    name = getattr(getattr(node.op, "scalar_op", None), "name", "")
    return (name == "mul" or name.startswith("cast_int")) and all(_nonnegative(x) for x in node.inputs)


def reshape(x: Any, newshape: Any, ndim: int | None = None, broadcastable: tuple[bool, ...] | None = None) -> Variable:
    """Reshape to ``newshape``: a tuple of ints and symbolic scalars, or an integer vector
    (then ``ndim`` is required when its length is not known)."""
    x = as_variable(x)
    if isinstance(newshape, (int, np.integer)) or (isinstance(newshape, Variable) and newshape.ndim == 0):
        newshape = (newshape,)
    if isinstance(newshape, (tuple, list)):
        entries = [as_index_scalar(s, "reshape entry") for s in newshape]
        if sum(1 for s in newshape if isinstance(s, (int, np.integer)) and s == -1) > 1:
            raise ValueError(f"reshape: at most one -1 in {tuple(newshape)}")
        if broadcastable is None:
            broadcastable = tuple(constant_value(e) == 1 for e in entries)
        return Reshape(len(entries), tuple(broadcastable))(x, *entries)  # type: ignore[no-any-return]
    else:
        shp = as_variable(newshape)
        if ndim is None:
            if isinstance(shp, Constant):
                ndim = shp.data.shape[0]
            elif shp.owner is not None and isinstance(shp.owner.op, Shape):
                ndim = shp.owner.inputs[0].ndim
            else:
                raise ValueError("reshape with a symbolic shape vector needs ndim=")
        if broadcastable is None:
            broadcastable = (False,) * ndim
    return Reshape(int(ndim), tuple(broadcastable))(x, shp)  # type: ignore[no-any-return]


def flatten(x: Any, ndim: int = 1) -> Variable:
    """Keep the first ``ndim - 1`` dimensions and merge the rest into one."""
    x = as_variable(x)
    if not 1 <= ndim <= max(x.ndim, 1):
        raise ValueError(f"flatten ndim={ndim} is out of range for {x.describe()}")
    if x.ndim == ndim:
        return x
    lead = [shape_i(x, d) for d in range(ndim - 1)]
    rest = -1 if ndim == 1 else m.mul(*[shape_i(x, d) for d in range(ndim - 1, x.ndim)])  # not -1 beside a 0
    return reshape(x, (*lead, rest), broadcastable=tuple(x.broadcastable[: ndim - 1]) + (False,))


# ---------------------------------------------------------------------------------------------
class SpecifyBroadcastable(Op):
    """Mark dimensions as broadcastable (or not); checks at run time that they have length 1."""

    __props__ = ("broadcastable",)

    def __init__(self, broadcastable: tuple[bool, ...]) -> None:
        self.broadcastable = tuple(broadcastable)

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        if x.ndim != len(self.broadcastable):
            raise ValueError(f"pattern {self.broadcastable} does not fit {x.describe()}")
        return Apply(self, [x], [TensorType(x.dtype, self.broadcastable)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        for d, b in enumerate(self.broadcastable):
            if b and x.shape[d] != 1:
                raise ValueError(f"dimension {d} was declared broadcastable but has length {x.shape[d]}")
        return [x]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (x,) = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None]
        return [patternbroadcast(g, x.broadcastable)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        one = as_variable(1, "int64")
        return [tuple(one if b else s for b, s in zip(self.broadcastable, input_shapes[0]))]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        (x,) = node.inputs
        for d, b in enumerate(self.broadcastable):
            if b and not x.broadcastable[d]:
                cg.check(f"{cg.dim(x, d)} != 1", node, f"dimension {d} declared broadcastable is not of length 1")
        cg.bind(node.outputs[0], cg.value(x))
        cg.view(node.outputs[0], x)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(patternbroadcast(values[0], (False,) + self.broadcastable), True)]


def patternbroadcast(x: Any, broadcastable: Sequence[bool]) -> Variable:
    x = as_variable(x)
    if tuple(broadcastable) == x.broadcastable:
        return x
    return SpecifyBroadcastable(tuple(bool(b) for b in broadcastable))(x)  # type: ignore[no-any-return]


def addbroadcast(x: Any, *axes: int) -> Variable:
    """Declare ``axes`` of ``x`` broadcastable (they must have length 1 at run time)."""
    x = as_variable(x)
    return patternbroadcast(x, [b or d in axes for d, b in enumerate(x.broadcastable)])


def unbroadcast(x: Any, *axes: int) -> Variable:
    x = as_variable(x)
    return patternbroadcast(x, [b and d not in axes for d, b in enumerate(x.broadcastable)])


class SpecifyShape(Op):
    """``x`` itself, after checking when run that the lengths of its dimensions ``given`` are the ones
    given (one int64 scalar each, after ``x``); shape inference then uses them."""

    __props__ = ("given",)

    def __init__(self, given: tuple[int, ...]) -> None:
        self.given = tuple(given)

    def make_node(self, x: Variable, *lengths: Variable) -> Apply:
        x = as_variable(x)
        if len(lengths) != len(self.given) or any(not 0 <= d < x.ndim for d in self.given):
            raise ValueError(f"specify_shape got lengths of dimensions {self.given} for {x.describe()}, which has "
                             f"{x.ndim} dimensions")
        return Apply(self, [x, *lengths], [x.type])

    def specified(self, ndim: int, lengths: Sequence[Any]) -> tuple[Any, ...]:
        """The shape specified, with None for the dimensions not given."""
        by_dim = dict(zip(self.given, lengths))
        return tuple(by_dim.get(d) for d in range(ndim))

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, *lengths = inputs
        if any(x.shape[d] != int(n) for d, n in zip(self.given, lengths)):
            expected = self.specified(x.ndim, [int(n) for n in lengths])
            raise ValueError(f"specify_shape: {node.inputs[0].describe()} has shape {x.shape}, but the shape "
                             f"specified is {expected}")
        return [x]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x = node.inputs[0]
        (g,) = output_grads
        none: list[Variable | None] = [None] * (len(node.inputs) - 1)
        return [None if g is None or dtypes.is_discrete(x.dtype) else g, *none]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        given = self.specified(node.inputs[0].ndim, node.inputs[1:])
        return [tuple(input_shapes[0][d] if n is None else n for d, n in enumerate(given))]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x, *lengths = node.inputs
        for d, n in zip(self.given, lengths):
            cg.check(f"{cg.dim(x, d)} != {cg.value(n)}", node, f"dimension {d} differs from the shape specified")
        cg.bind(node.outputs[0], cg.value(x))
        cg.view(node.outputs[0], x)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        x, *lengths = values
        if any(batched[1:]):
            return None
        return [(SpecifyShape(tuple(d + 1 for d in self.given))(x, *lengths), True)] if batched[0] else None


def specify_shape(x: Any, shape: Any) -> Variable:
    """``x``, checked when run to have the shape ``shape``, which shape inference then uses (Theano's).

    ``shape`` is a tuple of ints, symbolic integer scalars and None (a length not checked), or a shape
    vector such as ``y.shape``. A wrong shape is a ShapeError naming ``x``, its shape and the one specified."""
    x = as_variable(x)
    entries = _shape_entries(shape)
    if len(entries) != x.ndim:
        raise ValueError(f"specify_shape got the shape {shape!r} of {len(entries)} lengths for {x.describe()}, "
                         f"which has {x.ndim} dimensions")
    given = tuple(d for d, s in enumerate(entries) if s is not None)
    lengths = [as_index_scalar(entries[d], "specify_shape length") for d in given]
    if not given:
        return x
    return SpecifyShape(given)(x, *lengths)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
class Join(Op):
    """Concatenate tensors of equal ndim along ``axis``."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def make_node(self, *xs: Variable) -> Apply:
        xs = tuple(as_variable(x) for x in xs)
        if not xs:
            raise ValueError("concatenate needs at least one tensor")
        nd = xs[0].ndim
        if any(x.ndim != nd for x in xs) or nd == 0:
            raise TypeError(f"concatenate needs tensors of equal ndim >= 1, got {[x.describe() for x in xs]}")
        dtype = dtypes.upcast(*[x.dtype for x in xs])
        bcast = [all(b) for b in zip(*(x.broadcastable for x in xs))]
        bcast[self.axis] = len(xs) == 1 and xs[0].broadcastable[self.axis]
        return Apply(self, list(xs), [TensorType(dtype, tuple(bcast))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        ref = inputs[0].shape
        for v in inputs[1:]:
            for d in range(len(ref)):
                if d != self.axis and v.shape[d] != ref[d]:
                    raise ValueError(f"concatenate along axis {self.axis}: shapes "
                                     f"{[x.shape for x in inputs]} differ in dimension {d}")
        return [np.concatenate(inputs, axis=self.axis).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        from .subtensor import getitem

        (g,) = output_grads
        if g is None:
            return [None] * len(node.inputs)
        grads: list[Variable | None] = []
        start: Any = as_variable(0, "int64")
        for x in node.inputs:
            stop = m.add(start, shape_i(x, self.axis))
            index = (slice(None),) * self.axis + (slice(start, stop),)
            piece = getitem(g, index)
            grads.append(None if dtypes.is_discrete(x.dtype) else
                         m.cast(patternbroadcast(piece, x.broadcastable), x.dtype))
            start = stop
        return grads

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        out = list(input_shapes[0])
        out[self.axis] = m.add(*[s[self.axis] for s in input_shapes]) if len(input_shapes) > 1 else out[self.axis]
        return [tuple(out)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """Allocate the result and copy each part into its slice along the axis."""
        y = node.outputs[0]
        axis = self.axis
        lengths = [cg.dim(x, axis) for x in node.inputs]
        ref = node.inputs[0]
        for x in node.inputs[1:]:
            for d in range(y.ndim):
                if d != axis:
                    cg.check(f"{cg.dim(x, d)} != {cg.dim(ref, d)}", node, f"parts differ in dimension {d}")
        dims = [" + ".join(lengths) if d == axis else cg.dim(ref, d) for d in range(y.ndim)]
        name = cg.alloc(y, dims, "cat")
        start = "0"
        for x, n in zip(node.inputs, lengths):
            part = cg.fresh("part")
            index = ", ".join(f"{start}:{start} + {n}" if d == axis else ":" for d in range(y.ndim))
            cg.emit(f"{part} = {name}[{index}]")
            cg.copy_into(part, x, node)
            start = f"{start} + {n}"


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Variable:
    xs = [as_variable(t) for t in tensors]
    if not xs:
        raise ValueError("concatenate needs at least one tensor")
    nd = xs[0].ndim
    if nd == 0:
        raise TypeError("cannot concatenate scalars; use stack")
    if not -nd <= axis < nd:
        raise ValueError(f"axis {axis} out of range for {nd}-d tensors")
    if len(xs) == 1:
        return xs[0]
    return Join(axis % nd)(*xs)  # type: ignore[no-any-return]


def stack(tensors: Sequence[Any], axis: int = 0) -> Variable:
    """Join tensors of equal shape along a new axis."""
    xs = [as_variable(t) for t in tensors]
    if not xs:
        raise ValueError("stack needs at least one tensor")
    nd = xs[0].ndim
    if any(x.ndim != nd for x in xs):
        raise TypeError(f"stack needs tensors of equal ndim, got {[x.describe() for x in xs]}")
    if not -(nd + 1) <= axis <= nd:
        raise ValueError(f"axis {axis} out of range for stacking {nd}-d tensors")
    axis %= nd + 1
    pattern = tuple(range(axis)) + ("x",) + tuple(range(axis, nd))
    expanded = [dimshuffle(x, pattern) for x in xs]
    if len(expanded) == 1:
        return unbroadcast(expanded[0], axis)
    return Join(axis)(*expanded)  # type: ignore[no-any-return]


def stacklists(arg: Any) -> Variable:
    """Theano's ``stacklists``: nested lists of scalars or tensors stacked into one tensor, a dimension per level.

    ``[[a, b], [c, d]]`` of scalars is a 2 x 2 matrix. Python numbers take the dtype of the tensors
    beside them, as in arithmetic."""
    leaves = list(_nested_leaves(arg))
    strong = [as_variable(v).dtype for v in leaves if not dtypes.is_weak(v)]
    weak_dtype = dtypes.resolve_weak(dtypes.upcast(*strong) if strong else None,
                                     [v for v in leaves if dtypes.is_weak(v)])

    def build(e: Any) -> Variable:
        if isinstance(e, (list, tuple)):
            return stack([build(x) for x in e])
        return Constant(e, dtype=weak_dtype) if dtypes.is_weak(e) else as_variable(e)

    return build(arg)


def _nested_leaves(arg: Any) -> Any:
    """The entries of nested lists and tuples, which must not be empty at any level."""
    if not isinstance(arg, (list, tuple)):
        yield arg
        return
    if not arg:
        raise ValueError("stacklists needs non-empty lists at every level, got an empty "
                         f"{type(arg).__name__}")
    for e in arg:
        yield from _nested_leaves(e)


def join(axis: int, *tensors: Any) -> Variable:
    """Theano's join: concatenate ``tensors`` along ``axis`` (a Python int; the axis comes first)."""
    for i, t in enumerate(tensors):
        if isinstance(t, (list, tuple)):
            raise TypeError(f"join takes the tensors as separate arguments, join(axis, a, b); argument {i + 1} "
                            f"is a {type(t).__name__} (for a list use T.concatenate(list, axis))")
    if isinstance(axis, Variable):
        raise TypeError(f"join needs the axis as a Python int (symflow's Join has a fixed axis), got {axis.describe()}")
    if not tensors:
        raise ValueError("join needs at least one tensor")
    return concatenate(tensors, axis=axis_index(axis, as_variable(tensors[0]), "join axis"))


def _stack_2d(what: str, axis: int, args: tuple[Any, ...]) -> Variable:
    """Theano's horizontal/vertical stacks: two or more matrices joined along ``axis``."""
    if len(args) < 2:
        raise ValueError(f"{what} needs at least two tensors, got {len(args)}")
    xs = [as_variable(a) for a in args]
    for i, x in enumerate(xs):
        if x.ndim != 2:
            raise ValueError(f"{what} stacks matrices (as Theano, unlike NumPy, it refuses vectors); "
                             f"argument {i} is {x.describe()}")
    return Join(axis)(*xs)  # type: ignore[no-any-return]


def horizontal_stack(*tensors: Any) -> Variable:
    """Matrices side by side (joined along axis 1); 2-d only, as in Theano (NumPy's hstack also takes vectors)."""
    return _stack_2d("horizontal_stack", 1, tensors)


def vertical_stack(*tensors: Any) -> Variable:
    """Matrices one above the other (joined along axis 0); 2-d only, as in Theano."""
    return _stack_2d("vertical_stack", 0, tensors)


def tile(x: Any, reps: int | Sequence[int], ndim: int | None = None) -> Variable:
    """NumPy's tile: ``x`` repeated ``reps[d]`` times along each dimension; ``reps`` an int or a
    tuple of non-negative Python ints (symbolic reps are refused).

    The result has ``max(x.ndim, len(reps))`` dimensions, or ``ndim`` if given (not fewer): the
    shorter of ``x``'s shape and ``reps`` is padded with ones on the left, as in NumPy and Theano.
    Built as one broadcast fill (``alloc``) reshaped, so the gradient sums the copies."""
    x = as_variable(x)
    if isinstance(reps, (int, np.integer)) and not isinstance(reps, (bool, np.bool_)):
        reps = (reps,)
    if isinstance(reps, np.ndarray):
        reps = reps.tolist()
    if not isinstance(reps, (tuple, list)):
        kind = reps.describe() if isinstance(reps, Variable) else f"{type(reps).__name__} {reps!r}"
        raise TypeError(f"tile reps must be an int or a tuple of Python ints, got {kind}")
    for r in reps:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)):
            kind = r.describe() if isinstance(r, Variable) else f"{type(r).__name__} {r!r}"
            raise TypeError(f"tile reps must be Python ints (symbolic reps are not supported), got {kind} in {reps}")
        if r < 0:
            raise ValueError(f"tile reps must not be negative, got {tuple(int(r) for r in reps)}")
    n = max(x.ndim, len(reps))
    if ndim is not None:
        if ndim < n:
            raise ValueError(f"tile ndim={ndim} is less than x's {x.ndim} dimensions or the {len(reps)} reps")
        n = ndim
    counts = (1,) * (n - len(reps)) + tuple(int(r) for r in reps)
    x = dimshuffle(x, ("x",) * (n - x.ndim) + tuple(range(x.ndim)))
    if all(r == 1 for r in counts):
        return x
    pattern: list[Any] = []
    fill_shape: list[Any] = []
    out_shape: list[Any] = []
    for d, r in enumerate(counts):
        length = shape_i(x, d)
        if r != 1:  # a new broadcastable axis in front of d, stretched to r copies
            pattern.append("x")
            fill_shape.append(r)
        pattern.append(d)
        fill_shape.append(length)
        out_shape.append(length if r == 1 else m.mul(as_index_scalar(r), length))
    copies = alloc(dimshuffle(x, pattern), *fill_shape)
    bcast = tuple(r == 1 and b for r, b in zip(counts, x.broadcastable))
    return reshape(copies, out_shape, broadcastable=bcast)


# ---------------------------------------------------------------------------------------------
class SplitSizes(Op):
    """``split``'s sizes, passed through after checking them against the length of the axis they
    cut: ``n_splits`` of them, none negative, adding up to the length. The pieces are sliced at
    bounds read from this op's output, so no piece is computed from unchecked sizes."""

    __props__ = ("n_splits", "axis")

    def __init__(self, n_splits: int, axis: int) -> None:
        self.n_splits = n_splits
        self.axis = axis

    def make_node(self, sizes: Variable, length: Variable) -> Apply:
        sizes, length = as_variable(sizes), as_variable(length)
        if sizes.ndim != 1 or sizes.dtype != "int64" or length.ndim != 0 or length.dtype != "int64":
            raise TypeError(f"SplitSizes takes an int64 vector and an int64 scalar, got {sizes.describe()} "
                            f"and {length.describe()}")
        return Apply(self, [sizes, length], [sizes.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        sizes, length = inputs
        check_split_sizes(sizes.tolist(), self.n_splits, self.axis, int(length))
        return [sizes]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None, None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """``repeat``'s count kernel adds up the sizes, or gives -1 for a wrong count or a negative
        size: one test against the (non-negative) length covers all three."""
        sizes, length = node.inputs
        total = cg.fresh("total")
        cg.emit(f"{total} = {cg.kernel_call(cg.kernel(repeat_counts_vector), cg.value(sizes), str(self.n_splits))}")
        cg.check(f"{total} != {cg.value(length)}", node, f"split needs {self.n_splits} sizes, none negative, "
                 f"adding up to the length of axis {self.axis}")
        cg.bind(node.outputs[0], cg.value(sizes))
        cg.view(node.outputs[0], sizes)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        if any(batched):
            return None
        return [(self.make_node(*values).outputs[0], False)]


def check_split_sizes(sizes: list[int], n_splits: int, axis: int, length: int | None) -> None:
    """Raise ValueError unless ``sizes`` are ``n_splits`` non-negative ints adding up to ``length``
    (not checked when None: unknown before run time)."""
    if len(sizes) != n_splits:
        raise ValueError(f"split into n_splits={n_splits} pieces needs {n_splits} sizes, but splits_size has "
                         f"{len(sizes)}: {sizes}")
    if any(s < 0 for s in sizes):
        raise ValueError(f"split sizes must not be negative, got splits_size {sizes}")
    if length is not None and sum(sizes) != length:
        raise ValueError(f"split sizes {sizes} add up to {sum(sizes)}, but axis {axis} of x has length {length}")


def split(x: Any, splits_size: Any, n_splits: int, axis: int = 0) -> list[Variable]:
    """Theano's split: a list of the ``n_splits`` consecutive pieces of ``x`` along ``axis``, of
    lengths ``splits_size`` (a list of ints or a symbolic integer vector).

    Wrong sizes (not ``n_splits`` of them, a negative one, or a sum other than the axis length)
    raise a ValueError when built if known then, else a ShapeError when run. Unlike Theano, one
    piece is also returned in a list."""
    from .subtensor import getitem

    x = as_variable(x)
    if x.ndim == 0:
        raise TypeError(f"cannot split the scalar {x.describe()}")
    axis = axis_index(axis, x, "split axis")
    if isinstance(n_splits, (bool, np.bool_)) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"split n_splits must be a positive Python int, got {n_splits!r}")
    if isinstance(splits_size, Variable) and not isinstance(splits_size, Constant):
        if splits_size.ndim != 1 or not dtypes.is_int(splits_size.dtype):
            raise TypeError(f"split splits_size must be an integer vector, got {splits_size.describe()}")
        sizes = m.cast(int64_index(splits_size), "int64")
    else:
        values = np.asarray(splits_size.data if isinstance(splits_size, Constant) else splits_size)
        if values.ndim != 1 or not (dtypes.is_int(values.dtype.name) or values.size == 0):
            raise TypeError(f"split splits_size must be a list of ints or an integer vector, got {splits_size!r}")
        known = [int(v) for v in values]
        check_split_sizes(known, int(n_splits), axis, 1 if x.broadcastable[axis] else None)
        sizes = Constant(np.array(known, dtype="int64"))
    checked = SplitSizes(int(n_splits), axis)(sizes, shape_i(x, axis))
    pieces = []
    start: Any = 0
    for i in range(n_splits):
        stop = m.add(start, getitem(checked, i)) if i else getitem(checked, 0)
        pieces.append(getitem(x, (slice(None),) * axis + (slice(start, stop),)))
        start = stop
    return pieces


# ---------------------------------------------------------------------------------------------
class Alloc(Op):
    """An array of the given shape filled by broadcasting ``value`` (right-aligned, as NumPy)."""

    __props__ = ()

    def make_node(self, value: Variable, *shape: Variable) -> Apply:
        value = as_variable(value)
        if value.ndim > len(shape):
            raise ValueError(f"alloc: value {value.describe()} has more dimensions than the shape {len(shape)}")
        bcast = tuple(constant_value(s) == 1 for s in shape)
        return Apply(self, [value, *shape], [TensorType(value.dtype, bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        value, *shape = inputs
        shp = tuple(int(s) for s in shape)
        offset = len(shp) - value.ndim
        x = node.inputs[0]
        for d in range(value.ndim):
            if not x.broadcastable[d] and value.shape[d] != shp[d + offset]:
                raise ValueError(f"alloc of shape {shp}: value of shape {value.shape} does not match in "
                                 f"dimension {d} (only broadcastable dimensions broadcast)")
        if any(s < 0 for s in shp):
            raise ValueError(f"alloc: negative dimension in shape {shp}")
        return [np.array(np.broadcast_to(value, shp))]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        from .reduce import sum as sum_

        value = node.inputs[0]
        (g,) = output_grads
        none: list[Variable | None] = [None] * (len(node.inputs) - 1)
        if g is None or dtypes.is_discrete(value.dtype):
            return [None, *none]
        offset = g.ndim - value.ndim
        if offset:
            g = sum_(g, axis=tuple(range(offset)))
        axes = tuple(d for d in range(value.ndim) if value.broadcastable[d] and not g.broadcastable[d])
        if axes:
            g = sum_(g, axis=axes, keepdims=True)
        return [m.cast(patternbroadcast(g, value.broadcastable), value.dtype), *none]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [tuple(node.inputs[1:])]

    numba_reads_elements = True

    def numba_emit_lazy(self, node: Apply, cg: Any) -> None:
        """The checks of a fill that consumers read element by element (it is never built)."""
        for s in node.inputs[1:]:
            cg.check(f"{cg.value(s)} < 0", node, "negative dimension")

    def numba_emit(self, node: Apply, cg: Any) -> None:
        value, *shape = node.inputs
        y = node.outputs[0]
        dims = [cg.value(s) for s in shape]
        self.numba_emit_lazy(node, cg)
        offset = len(dims) - value.ndim
        for d in range(value.ndim):
            if not value.broadcastable[d]:
                cg.check(f"{cg.dim(value, d)} != {dims[d + offset]}", node, "value does not match the shape")
        if y.ndim == 0:
            cg.emit(f"{cg.new_name(y)} = {cg.value(value)}")
            return
        name = cg.alloc(y, dims)
        cg.elementwise(name, y.ndim, [value], lambda kw, idx: kw.elem(value, idx[offset:]), node=node)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        value, *dims = values
        if any(batched[1:]):
            return None
        if not batched[0]:
            return [(self.make_node(value, *dims).outputs[0], False)]
        value = pad_batched(value, len(dims) + 1)
        return [(Alloc()(value, shape_i(value, 0), *dims), True)]


def pad_batched(value: Variable, ndim: int) -> Variable:
    """A batched value (step axis first) padded after the step axis to ``ndim`` dimensions."""
    missing = ndim - value.ndim
    if missing <= 0:
        return value
    return dimshuffle(value, (0,) + ("x",) * missing + tuple(range(1, value.ndim)))


def alloc(value: Any, *shape: Any) -> Variable:
    """An array of ``shape`` filled with ``value`` (broadcast)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dims = [as_index_scalar(s, "alloc dimension") for s in shape]
    return Alloc()(as_variable(value), *dims)  # type: ignore[no-any-return]


def _shape_entries(shape: Any) -> tuple[Any, ...]:
    if isinstance(shape, Variable):
        if shape.ndim == 0:
            return (shape,)
        if shape.ndim != 1:
            raise TypeError(f"a shape must be an integer vector, got {shape.describe()}")
        if isinstance(shape, Constant):
            return tuple(int(s) for s in shape.data)
        from .subtensor import getitem

        raise_if_unknown_length(shape)
        n = shape.owner.inputs[0].ndim  # type: ignore[union-attr]
        return tuple(getitem(shape, i) for i in range(n))
    if isinstance(shape, (int, np.integer)):
        return (shape,)
    return tuple(shape)


def raise_if_unknown_length(shape: Variable) -> None:
    if shape.owner is None or not isinstance(shape.owner.op, Shape):
        raise TypeError("pass the shape as a tuple (e.g. (n, m) or x.shape) so its length is known")


def zeros(shape: Any, dtype: Any = "floatX") -> Variable:
    return alloc(as_variable(np.zeros((), dtype=dtypes.as_dtype(dtype))), *_shape_entries(shape))


def ones(shape: Any, dtype: Any = "floatX") -> Variable:
    return alloc(as_variable(np.ones((), dtype=dtypes.as_dtype(dtype))), *_shape_entries(shape))


def zeros_like(x: Any, dtype: Any = None) -> Variable:
    x = as_variable(x)
    return fill(x, as_variable(np.zeros((), dtype=dtypes.as_dtype(dtype or x.dtype))))


def ones_like(x: Any, dtype: Any = None) -> Variable:
    x = as_variable(x)
    return fill(x, as_variable(np.ones((), dtype=dtypes.as_dtype(dtype or x.dtype))))


def fill(model: Any, value: Any) -> Variable:
    """An array shaped like ``model`` filled with ``value``."""
    model = as_variable(model)
    value = as_variable(value)
    out = alloc(value, *[shape_i(model, d) for d in range(model.ndim)])
    return patternbroadcast(out, model.broadcastable) if model.ndim else out


def second(a: Any, b: Any) -> Variable:
    """Theano's ``second``: ``b`` broadcast with ``a`` (their broadcast shape, ``b``'s dtype and values).

    The gradient reaches ``b`` (summed over the broadcast); ``a`` is disconnected, as in Theano."""
    a, b = as_variable(a), as_variable(b)
    zero = np.array(-0.0 if dtypes.is_float(b.dtype) else 0, dtype=b.dtype)  # b + -0.0 is b, also for -0.0
    return m.add(b, fill(a, as_variable(zero)))


# ---------------------------------------------------------------------------------------------
class ARange(Op):
    """``arange(start, stop, step)`` as a vector of ``dtype``."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def make_node(self, start: Variable, stop: Variable, step: Variable) -> Apply:
        return Apply(self, [start, stop, step], [TensorType(self.dtype, (False,))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        start, stop, step = inputs
        if step == 0:
            raise ValueError("arange step must not be zero")
        return [np.arange(start, stop, step, dtype=self.dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None, None, None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        start, stop, step = node.inputs
        length = m.ceil(m.true_div(m.sub(stop, start), step))
        return [(m.cast(m.maximum(length, 0), "int64"),)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        start, stop, step = (cg.value(x) for x in node.inputs)
        cg.check(f"{step} == 0", node, "arange step must not be zero")
        n = cg.fresh("n")
        cg.emit(f"{n} = max(0, int(math.ceil(({stop} - {start}) / ({step} + ({step} == 0)))))")
        name = cg.alloc(node.outputs[0], [n], "ar")
        cg.emit(cg.kernel_call(cg.kernel(fill_arange), name, start, step))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Variable:
    """NumPy's arange with symbolic bounds: ``T.arange(n)``, ``T.arange(a, b, step)``."""
    if stop is None:
        start, stop = 0, start
    args = [as_variable(v) if isinstance(v, Variable) else as_variable(v) for v in (start, stop, step)]
    for a in args:
        if a.ndim != 0:
            raise TypeError(f"arange bounds must be scalars, got {a.describe()}")
    out_dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.upcast(*[a.dtype for a in args])
    if out_dtype == "bool":
        out_dtype = "int64"
    return ARange(out_dtype)(*args)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
class Repeat(Op):
    """Repeat elements of ``x`` along ``axis``, ``repeats`` times each (a scalar or a vector)."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def make_node(self, x: Variable, repeats: Variable) -> Apply:
        if not dtypes.is_int(repeats.dtype) or repeats.ndim > 1:
            raise TypeError(f"repeats must be an integer scalar or vector, got {repeats.describe()}")
        bcast = list(x.broadcastable)
        bcast[self.axis] = False
        return Apply(self, [x, repeats], [TensorType(x.dtype, tuple(bcast))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, repeats = inputs
        if repeats.ndim == 1 and len(repeats) != x.shape[self.axis]:
            raise ValueError(f"repeat: {len(repeats)} repeat counts for an axis of length {x.shape[self.axis]}")
        if np.any(repeats < 0):
            raise ValueError("repeat counts must not be negative")
        return [np.repeat(x, repeats, axis=self.axis)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        from .subtensor import advanced_inc_rows

        x, repeats = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None, None]
        n = shape_i(x, self.axis)
        order = (self.axis,) + tuple(d for d in range(x.ndim) if d != self.axis)
        owner_of_row = repeat(arange(n), repeats, 0)
        g_first = dimshuffle(g, order)
        summed = advanced_inc_rows(zeros_like(dimshuffle(x, order)), g_first, owner_of_row)
        back = tuple(order.index(d) for d in range(x.ndim))
        return [patternbroadcast(dimshuffle(summed, back), x.broadcastable), None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        from .reduce import sum as sum_

        x, repeats = node.inputs
        out = list(input_shapes[0])
        out[self.axis] = m.mul(out[self.axis], repeats) if repeats.ndim == 0 else sum_(repeats)
        return [tuple(m.cast(s, "int64") for s in out)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """Seen as (before, axis, after) arrays; the counts are checked before anything is written."""
        from .extra import around_axis

        (x, repeats), y = node.inputs, node.outputs[0]
        dims = cg.shape_tuple(x)
        total = cg.fresh("total")
        reps = cg.value(repeats)
        counts = repeat_counts_vector if repeats.ndim else repeat_counts_scalar
        cg.emit(f"{total} = {cg.kernel_call(cg.kernel(counts), reps, dims[self.axis])}")
        cg.check(f"{total} < 0", node, "repeat counts must not be negative, one per element along the axis")
        out_dims = [f"max({total}, 0)" if d == self.axis else n for d, n in enumerate(dims)]
        out = cg.alloc(y, out_dims, "rep")
        kernel = repeat3_vector if repeats.ndim else repeat3_scalar
        x3 = cg.reshape(cg.value(x), around_axis(dims, self.axis), node)
        out3 = cg.reshape(out, around_axis(out_dims, self.axis), node)
        cg.emit(cg.kernel_call(cg.kernel(kernel), x3, reps, out3))


def repeat_counts_scalar(r, n):  # type: ignore[no-untyped-def]
    """Kernel: the repeated length, or -1 for a negative count."""
    return n * r if r >= 0 else -1


def repeat_counts_vector(reps, n):  # type: ignore[no-untyped-def]
    """Kernel: the repeated length, or -1 unless there is one non-negative count per element."""
    if reps.shape[0] != n:
        return -1
    total = 0
    for r in reps:
        if r < 0:
            return -1
        total += r
    return total


def repeat3_scalar(x, r, out):  # type: ignore[no-untyped-def]
    """Kernel: each middle-axis slice of ``x`` written ``r`` times."""
    if out.shape[1] != x.shape[1] * r:
        return
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            for k in range(r):
                for c in range(x.shape[2]):
                    out[a, b * r + k, c] = x[a, b, c]


def repeat3_vector(x, reps, out):  # type: ignore[no-untyped-def]
    """Kernel: middle-axis slice ``b`` of ``x`` written ``reps[b]`` times (counts checked by the caller)."""
    for a in range(x.shape[0]):
        row = 0
        for b in range(x.shape[1]):
            for _ in range(reps[b]):
                if row >= out.shape[1]:
                    return
                for c in range(x.shape[2]):
                    out[a, row, c] = x[a, b, c]
                row += 1


def repeat(x: Any, repeats: Any, axis: int | None = None) -> Variable:
    """Repeat each element ``repeats`` times along ``axis`` (None: of the flattened array)."""
    x = as_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"repeat axis {axis} out of range for {x.describe()}")
    reps = as_variable(repeats)
    if not dtypes.is_int(reps.dtype):
        raise TypeError(f"repeats must be integers, got {reps.describe()}")
    return Repeat(axis % x.ndim)(x, m.cast(reps, "int64"))  # type: ignore[no-any-return]


class TensorCopy(Op):
    """A fresh copy of ``x`` (gradient passes through)."""

    __props__ = ()

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0].copy()]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [output_grads[0]]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x = node.inputs[0]
        if x.ndim == 0:
            cg.bind(node.outputs[0], cg.value(x))
            return
        name = cg.alloc(node.outputs[0], cg.shape_tuple(x), "cp")
        cg.copy_into(name, x)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(tensor_copy(values[0]), True)]


def tensor_copy(x: Any) -> Variable:
    return TensorCopy()(as_variable(x))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Numba kernels
# ---------------------------------------------------------------------------------------------
def fill_arange(out, start, step):  # type: ignore[no-untyped-def]
    """Kernel: out[i] = start + i * step."""
    for i in range(out.shape[0]):
        out[i] = start + i * step



