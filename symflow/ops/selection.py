"""Ops whose output length depends on the input's values: nonzero entries, counts of values
(``bincount``), selection by a condition (``compress``), sorted unique values, and ``searchsorted``
(which keeps the shape of its queries but searches by value).

Two small ops do the value-dependent work, ``FlatNonzero`` and ``BinCount``; their Numba code counts
in one kernel, allocates, then fills in a second. ``nonzero``, ``nonzero_values``, ``compress`` and
``unique`` are built from them and from indexing, sorting and elementwise ops, so their gradients
come from those ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Constant, Op, Variable, as_variable
from ..types import TensorType
from . import math as m
from .extra import argsort, cumsum, diff
from .reduce import max as max_
from .reduce import sum as sum_
from .shape import (
    as_index_scalar,
    axis_index,
    concatenate,
    flatten,
    ones_like,
    reshape,
    shape_i,
    stack,
    zeros,
)
from .subtensor import getitem, set_subtensor, take


# ---------------------------------------------------------------------------------------------
# nonzero
# ---------------------------------------------------------------------------------------------
class FlatNonzero(Op):
    """The positions (int64, increasing) of the nonzero entries of a vector; NaN counts as nonzero,
    as in NumPy. Its length is the number of nonzero entries."""

    __props__ = ()

    def make_node(self, a: Variable) -> Apply:
        a = as_variable(a)
        if a.ndim != 1:
            raise TypeError(f"FlatNonzero needs a vector, got {a.describe()} (flatten it first)")
        return Apply(self, [a], [TensorType("int64", (False,))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.flatnonzero(inputs[0]).astype("int64", copy=False)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        """Positions are integers: not connected to ``a`` for gradients (as ``argmax``)."""
        return [None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [(count_nonzero(node.inputs[0]),)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        a = cg.value(node.inputs[0])
        n = cg.fresh("n")
        cg.emit(f"{n} = {cg.kernel_call(cg.kernel(count_nonzero1), a)}")
        out = cg.alloc(node.outputs[0], [n], "nz")
        cg.emit(cg.kernel_call(cg.kernel(fill_nonzero1), a, out))


def count_nonzero(a: Variable) -> Variable:
    """The number of nonzero entries of ``a`` as an int64 scalar (a sum of ``a != 0``)."""
    return m.cast(sum_(a if a.dtype == "bool" else m.neq(a, 0)), "int64")


def count_nonzero1(a):  # type: ignore[no-untyped-def]
    """Kernel: how many entries of the vector ``a`` are nonzero (NaN is)."""
    n = 0
    for i in range(a.shape[0]):
        if a[i] != 0:
            n += 1
    return n


def fill_nonzero1(a, out):  # type: ignore[no-untyped-def]
    """Kernel: the positions of the nonzero entries of ``a``, in order, into ``out`` (as many as fit)."""
    k = 0
    for i in range(a.shape[0]):
        if a[i] != 0:
            if k >= out.shape[0]:
                return
            out[k] = i
            k += 1


def flatnonzero(a: Any) -> Variable:
    """NumPy's flatnonzero: the int64 positions of the nonzero entries of ``a`` flattened. A scalar is
    taken as a length-1 vector, as NumPy does (Theano refuses it)."""
    return FlatNonzero()(flatten(as_variable(a)))  # type: ignore[no-any-return]


def nonzero(a: Any, return_matrix: bool = False) -> tuple[Variable, ...] | Variable:
    """Theano's nonzero: the int64 indices of the nonzero entries of ``a``, one vector per dimension
    (in C order, as ``np.nonzero``); with ``return_matrix``, those vectors as the rows of an
    ``(a.ndim, count)`` matrix. A scalar is refused, as by NumPy and Theano."""
    a = as_variable(a)
    if a.ndim == 0:
        raise ValueError(f"nonzero needs at least one dimension, got {a.describe()}; "
                         "flatnonzero takes a scalar as a length-1 vector")
    rest = flatnonzero(a)
    coords: list[Variable] = []
    for d in range(a.ndim - 1, 0, -1):  # unravel the flat positions, last dimension first
        n = shape_i(a, d)
        coords.insert(0, m.mod(rest, n))
        rest = m.int_div(rest, n)
    coords.insert(0, rest)
    return stack(coords) if return_matrix else tuple(coords)


def nonzero_values(a: Any) -> Variable:
    """Theano's nonzero_values: the nonzero entries of ``a`` flattened, in C order. Differentiable in
    ``a``: the gradient goes back to the entries taken, zero elsewhere."""
    flat = flatten(as_variable(a))
    return getitem(flat, FlatNonzero()(flat))


def compress(condition: Any, x: Any, axis: int | None = None) -> Variable:
    """NumPy's compress: the slices of ``x`` along ``axis`` (None: of ``x`` flattened) where the vector
    ``condition`` is nonzero. ``condition`` may be shorter than the axis (the rest count as False);
    a nonzero entry beyond the axis is an index error when run, as in NumPy. The gradient wrt ``x``
    goes back to the slices taken."""
    c, x = as_variable(condition), as_variable(x)
    if c.ndim != 1:
        raise ValueError(f"compress needs a vector condition, got {c.describe()}")
    if axis is None:
        return take(flatten(x), FlatNonzero()(c))
    if x.ndim == 0:
        raise ValueError(f"compress axis {axis} is out of range for {x.describe()}")
    return take(x, FlatNonzero()(c), axis_index(axis, x, "compress axis", or_none=True))


# ---------------------------------------------------------------------------------------------
# bincount
# ---------------------------------------------------------------------------------------------
def optional_vector(v: Any, dtype: str, what: str) -> list[Variable]:
    """An op's optional vector input as a list of none or one: ``[v]`` if it is a ``dtype`` vector,
    ``[]`` for None, a TypeError naming ``what`` otherwise."""
    if v is None:
        return []
    v = as_variable(v)
    if v.ndim != 1 or v.dtype != dtype:
        raise TypeError(f"{what} must be a {dtype} vector, got {v.describe()}")
    return [v]


class BinCount(Op):
    """How many times each value ``0 .. max(x)`` occurs in the non-negative integer vector ``x``
    (int64), or the sum of ``weights`` (float64) per value; at least ``minlength`` long. Inputs:
    ``x``, ``minlength`` (an int64 scalar) and optionally ``weights`` (a float64 vector)."""

    __props__ = ()

    def make_node(self, x: Variable, minlength: Variable, weights: Variable | None = None) -> Apply:
        x, minlength = as_variable(x), as_variable(minlength)
        if x.ndim != 1 or not dtypes.is_int(x.dtype):
            raise TypeError(f"bincount needs a vector of non-negative integers x, got {x.describe()}")
        if minlength.ndim != 0 or minlength.dtype != "int64":
            raise TypeError(f"bincount minlength must be an int64 scalar, got {minlength.describe()}")
        inputs = [x, minlength, *optional_vector(weights, "float64", "bincount weights")]
        return Apply(self, inputs, [TensorType("int64" if weights is None else "float64", (False,))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, minlength, *weights = inputs
        check_bincount(x, int(minlength), weights[0] if weights else None)
        counts = np.bincount(x, weights[0] if weights else None, minlength=int(minlength))
        return [counts.astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        """``x`` and ``minlength`` are integers (disconnected); the gradient wrt ``weights[i]`` is ``g[x[i]]``."""
        (g,) = output_grads
        if len(node.inputs) == 2:
            return [None, None]
        return [None, None, None if g is None else getitem(g, node.inputs[0])]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        """``max(max(x) + 1, minlength)``, where an empty ``x`` counts as ``max(x) = -1``."""
        x, minlength = node.inputs[:2]
        top = max_(concatenate([m.cast(x, "int64"), Constant(np.array([-1], "int64"))]))
        return [(m.maximum(m.add(top, 1), minlength),)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """One kernel finds the length (-1 for a negative value), the other counts into zeros."""
        x, minlength, *weights = node.inputs
        xs, low = cg.value(x), cg.value(minlength)
        top = cg.fresh("top")
        cg.emit(f"{top} = {cg.kernel_call(cg.kernel(bincount_length), xs)}")
        cg.check(f"{top} < 0 or {low} < 0", node, "bincount: a negative value in x, or a negative minlength")
        if weights:
            cg.check(f"{cg.dim(weights[0], 0)} != {cg.dim(x, 0)}", node, "bincount: weights and x differ in length")
        out = cg.alloc(node.outputs[0], [f"max({top}, {low})"], "bins")
        if weights:
            cg.emit(cg.kernel_call(cg.kernel(bincount_weighted), xs, cg.value(weights[0]), out))
        else:
            cg.emit(cg.kernel_call(cg.kernel(bincount_counts), xs, out))


def check_bincount(x: np.ndarray, minlength: int, weights: np.ndarray | None) -> None:
    """The NumPy backend's checks of bincount's inputs, each a ``ValueError`` naming the input."""
    if minlength < 0:
        raise ValueError(f"bincount minlength must not be negative, got {minlength}")
    if weights is not None and weights.shape != x.shape:
        raise ValueError(f"bincount weights (length {weights.shape[0]}) and x (length {x.shape[0]}) differ in length")
    if x.size and x.dtype.kind == "i" and x.min() < 0:
        at = int(np.argmax(x < 0))
        raise ValueError(f"bincount needs non-negative values in x, got {x[at]} at position {at}")
    if x.size and x.dtype == np.uint64 and x.max() > np.iinfo(np.int64).max:
        at = int(np.argmax(x > np.iinfo(np.int64).max))
        raise ValueError(f"bincount's x holds {x[at]} at position {at}, too large for a length (beyond int64)")


def bincount_length(x):  # type: ignore[no-untyped-def]
    """Kernel: ``max(x) + 1`` (0 for an empty ``x``), or -1 if ``x`` holds a negative value."""
    top = 0
    for i in range(x.shape[0]):
        v = x[i]
        if v < 0:
            return -1
        if v >= top:
            top = np.int64(v) + 1
    return top


def bincount_counts(x, out):  # type: ignore[no-untyped-def]
    """Kernel: ``out[v]`` is how many times ``v`` occurs in ``x`` (values outside ``out`` are skipped)."""
    for k in range(out.shape[0]):
        out[k] = 0
    for i in range(x.shape[0]):
        v = x[i]
        if v >= 0 and v < out.shape[0]:
            out[v] += 1


def bincount_weighted(x, w, out):  # type: ignore[no-untyped-def]
    """Kernel: ``out[v]`` is the sum of ``w[i]`` over the ``i`` where ``x[i] == v``."""
    for k in range(out.shape[0]):
        out[k] = 0.0
    for i in range(min(x.shape[0], w.shape[0])):
        v = x[i]
        if v >= 0 and v < out.shape[0]:
            out[v] += w[i]


def bincount(x: Any, weights: Any = None, minlength: Any = None) -> Variable:
    """NumPy's bincount: how often each value ``0, 1, ..., max(x)`` occurs in the vector ``x`` of
    non-negative integers, or the sum of ``weights`` at each value; at least ``minlength`` long.
    The dtypes are NumPy's (int64 counts, float64 sums; Theano kept ``x``'s and ``weights``' dtypes),
    a negative value is an error when run, and the gradient wrt ``weights`` is ``g[x]``."""
    x = as_variable(x)
    if x.ndim != 1 or not (dtypes.is_int(x.dtype) or x.dtype == "bool"):
        raise TypeError(f"bincount needs a vector of non-negative integers x, got {x.describe()}")
    if x.dtype == "bool":
        x = m.cast(x, "int64")
    low = as_index_scalar(0 if minlength is None else minlength, "bincount minlength")
    if weights is None:
        return BinCount()(x, low)  # type: ignore[no-any-return]
    w = as_variable(weights)
    if w.ndim != 1:
        raise TypeError(f"bincount weights must be a vector like x, got {w.describe()}")
    return BinCount()(x, low, m.cast(w, "float64"))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------------------------
class SearchSorted(Op):
    """For each entry of ``v``, the position in the sorted vector ``x`` (or ``x[sorter]``) where it
    would be inserted to keep the order: before equal entries (``side='left'``) or after them; NaN
    sorts last, as in NumPy. Inputs ``x``, ``v`` of one dtype, optionally an int64 ``sorter``."""

    __props__ = ("side",)

    def __init__(self, side: str) -> None:
        self.side = side

    def make_node(self, x: Variable, v: Variable, sorter: Variable | None = None) -> Apply:
        x, v = as_variable(x), as_variable(v)
        if x.ndim != 1:
            raise TypeError(f"searchsorted needs a sorted vector x, got {x.describe()}")
        if v.dtype != x.dtype:
            raise TypeError(f"searchsorted needs v of x's dtype {x.dtype}, got {v.describe()}")
        inputs = [x, v, *optional_vector(sorter, "int64", "searchsorted sorter")]
        return Apply(self, inputs, [TensorType("int64", v.broadcastable)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, v, *sorter = inputs
        if sorter:
            check_sorter(sorter[0], x.shape[0])
            x = x[sorter[0]]
        return [np.asarray(np.searchsorted(x, v, side=self.side), dtype="int64")]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        """Positions are integers: not connected to the inputs for gradients."""
        return [None] * len(node.inputs)

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[1]]

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        """A loop's per-step queries into a fixed ``x`` become one search of all of them."""
        if batched[0] or any(batched[2:]):
            return None
        return [(self(*values), True)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """The queries and the positions as flat views; a scalar query as a length-1 array."""
        x, v, *sorter = node.inputs
        y = node.outputs[0]
        by_order = "1" if sorter else "0"
        order = cg.value(sorter[0]) if sorter else cg.empty(["0"], "int64")
        if v.ndim == 0:
            queries, out = f"np.full((1,), {cg.value(v)})", cg.fresh("pos")
            cg.emit(f"{out} = {cg.empty(['1'], 'int64')}")
        else:
            size = " * ".join(cg.shape_tuple(v))
            queries = cg.reshape(cg.value(v), [size], node)
            out = cg.reshape(cg.alloc(y, cg.shape_tuple(v), "pos"), [size], node)
        status = cg.fresh("st")
        right = "1" if self.side == "right" else "0"
        call = cg.kernel_call(cg.kernel(searchsorted1), cg.value(x), order, by_order, queries, right, out)
        cg.emit(f"{status} = {call}")
        cg.check_status(status, node, "searchsorted: sorter is not a permutation-sized vector of indices into x")
        if v.ndim == 0:
            cg.emit(f"{cg.new_name(y, 'pos')} = {out}[0]")


def check_sorter(sorter: np.ndarray, n: int) -> None:
    """The NumPy backend's checks of searchsorted's ``sorter`` for an ``x`` of length ``n``."""
    if sorter.shape[0] != n:
        raise ValueError(f"searchsorted sorter has length {sorter.shape[0]}, x has length {n}")
    if n and (sorter.min() < 0 or sorter.max() >= n):
        bad = sorter[(sorter < 0) | (sorter >= n)][0]
        raise IndexError(f"searchsorted sorter index {bad} is out of range for x of length {n}")


def searchsorted1(x, order, by_order, v, right, out):  # type: ignore[no-untyped-def]
    """Kernel: ``out[k]`` is where ``v[k]`` goes in the sorted ``x`` (read as ``x[order]`` when
    ``by_order``), by bisection, NaN last; 1 (and nothing written) for a bad ``order``, else 0."""
    n = x.shape[0]
    if by_order:
        if order.shape[0] != n:
            return 1
        for i in range(n):
            if order[i] < 0 or order[i] >= n:
                return 1
    for k in range(v.shape[0]):
        t = v[k]
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            u = x[order[mid]] if by_order else x[mid]
            if right:  # goes after u unless t sorts strictly before u
                after = not (t < u or (u != u and t == t))
            else:  # goes after u if u sorts strictly before t
                after = u < t or (t != t and u == u)
            if after:
                lo = mid + 1
            else:
                hi = mid
        out[k] = lo
    return 0


def searchsorted(x: Any, v: Any, side: str = "left", sorter: Any = None) -> Variable:
    """NumPy's searchsorted: int64 positions, shaped like ``v``, where the entries of ``v`` would go
    in the sorted vector ``x`` (sorted by ``sorter`` if given) to keep it sorted. ``x`` and ``v`` are
    compared in their common dtype; NaN sorts last. Not differentiable (integer output)."""
    x, v = as_variable(x), as_variable(v)
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted side must be 'left' or 'right', got {side!r}")
    if x.ndim != 1:
        raise ValueError(f"searchsorted needs a sorted vector x, got {x.describe()}")
    common = dtypes.upcast(x.dtype, v.dtype)
    x, v = (t if t.dtype == common else m.cast(t, common) for t in (x, v))
    if sorter is None:
        return SearchSorted(side)(x, v)  # type: ignore[no-any-return]
    s = as_variable(sorter)
    if s.ndim != 1 or not dtypes.is_int(s.dtype):
        raise TypeError(f"searchsorted sorter must be an integer vector, got {s.describe()}")
    return SearchSorted(side)(x, v, m.cast(s, "int64"))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------------------------
def unique(x: Any, return_index: bool = False, return_inverse: bool = False, return_counts: bool = False,
           axis: int | None = None) -> Variable | tuple[Variable, ...]:
    """NumPy's unique of the flattened ``x``: its distinct values, sorted (NaNs as one value, last),
    and as asked the int64 positions of their first occurrences, the ``inverse`` (for each entry of
    ``x`` the position of its value; shaped like ``x``, as in NumPy 2) and the counts. Returns the
    values alone, or a tuple in that order. ``axis`` is supported only where it changes nothing
    (a vector ``x``). The values' gradient is sort's; a repeated value's goes to its first occurrence."""
    x = as_variable(x)
    if axis is not None:
        if x.ndim != 1:
            raise NotImplementedError(f"unique along an axis of {x.describe()} is not supported; "
                                      "only axis=None (the flattened array)")
        axis_index(axis, x, "unique axis", or_none=True)
    flat = flatten(x)
    order = argsort(flat, kind="stable")  # equal values keep their order: the first occurrence leads
    s = getitem(flat, order)
    later, earlier = getitem(s, slice(1, None)), getitem(s, slice(None, -1))
    differs = m.neq(later, earlier)
    if dtypes.is_float(s.dtype):  # NaNs are one value (NumPy's equal_nan=True)
        differs = m.and_(differs, m.invert(m.and_(m.isnan(later), m.isnan(earlier))))
    starts = concatenate([ones_like(getitem(s, slice(None, 1)), dtype="bool"), differs])
    first = FlatNonzero()(starts)  # where each value's run begins in sorted order
    outputs = [getitem(s, first)]
    if return_index:
        outputs.append(getitem(order, first))
    if return_inverse:
        n = shape_i(flat, 0)
        runs = m.sub(cumsum(starts), 1)
        inverse = set_subtensor(getitem(zeros((n,), "int64"), order), runs)
        outputs.append(reshape(inverse, tuple(shape_i(x, d) for d in range(x.ndim))))
    if return_counts:
        ends = concatenate([first, stack([shape_i(flat, 0)])])
        outputs.append(diff(ends))
    return outputs[0] if len(outputs) == 1 else tuple(outputs)
