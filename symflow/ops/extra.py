"""Theano's extra_ops: cumulative sums and products, sorting, differences, one-hot encoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from . import math as m
from .dot import new_array
from .shape import arange, as_index_scalar, axis_index, shape_i, zeros
from .subtensor import getitem, set_subtensor


class AlongAxis(Op):
    """An op that works along one ``axis`` and keeps the input's shape. Its Numba code sees the
    input and the output as (before, axis, after) arrays, so one ``kernel(x, out)`` serves every
    rank and axis; subclasses give the kernel and, if it differs, the output dtype."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def output_dtype(self, dtype: str) -> str:
        return dtype

    def kernel(self) -> Any:
        raise NotImplementedError

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        return Apply(self, [x], [TensorType(self.output_dtype(x.dtype), x.broadcastable)])

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        """Per-step applications (a loop's) become one along the axis after the steps' axis."""
        if not all(batched):
            return None
        return [(type(self)(self.axis + 1)(*values), True)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        dims = cg.shape_tuple(node.inputs[0])
        out = cg.alloc(node.outputs[0], dims, type(self).__name__.lower())
        around = around_axis(dims, self.axis)
        args = ", ".join(cg.reshape(v, around, node) for v in [*map(cg.value, node.inputs), out])
        cg.emit(f"{cg.kernel(self.kernel())}({args})")


def around_axis(dims: list[str], axis: int) -> list[str]:
    """The shape (before, axis, after) of an array of shape ``dims`` seen around ``axis``."""
    return [" * ".join(dims[:axis]) or "1", dims[axis], " * ".join(dims[axis + 1:]) or "1"]


class Accumulate(AlongAxis):
    """A running sum or product along ``axis``, in NumPy's dtype for it (``accumulated_dtype``)."""

    numpy_function: Any  # np.cumsum or np.cumprod

    def output_dtype(self, dtype: str) -> str:
        return accumulated_dtype(dtype)

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        result = type(self).numpy_function(inputs[0], axis=self.axis)
        return [result.astype(node.outputs[0].dtype, copy=False)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (x,) = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None]
        return [self.input_grad(x, g)]

    def input_grad(self, x: Variable, g: Variable) -> Variable:
        raise NotImplementedError


class CumSum(Accumulate):
    """Running sum along ``axis``."""

    numpy_function = staticmethod(np.cumsum)

    def kernel(self) -> Any:
        return cumsum3

    def input_grad(self, x: Variable, g: Variable) -> Variable:
        """The running sum of ``g`` from the end."""
        reverse = (slice(None),) * self.axis + (slice(None, None, -1),)
        return getitem(CumSum(self.axis)(getitem(g, reverse)), reverse)


def cumsum3(x, out):  # type: ignore[no-untyped-def]
    """Kernel: running sums along the middle axis, accumulated in the output's dtype as NumPy does."""
    if x.shape[1] == 0:
        return
    for a in range(x.shape[0]):
        for c in range(x.shape[2]):
            out[a, 0, c] = x[a, 0, c]
        for b in range(1, x.shape[1]):
            for c in range(x.shape[2]):
                out[a, b, c] = out[a, b - 1, c] + x[a, b, c]


def cumsum(x: Any, axis: int | None = None) -> Variable:
    """Cumulative sum along ``axis`` (None: of the flattened array)."""
    from .shape import flatten

    x = as_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    return CumSum(axis_index(axis, x, "cumsum axis", or_none=True))(x)  # type: ignore[no-any-return]


def diff(x: Any, n: int = 1, axis: int = -1) -> Variable:
    """NumPy's diff: the ``n``-th differences along ``axis``, ``x[1:] - x[:-1]`` applied ``n``
    times (``!=`` for booleans, as NumPy); the axis gets ``n`` shorter (empty beyond that)."""
    x = as_variable(x)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff order n must be a non-negative Python int, got {n!r}")
    if x.ndim == 0:
        raise ValueError(f"diff needs at least one dimension, got {x.describe()}")
    axis = axis_index(axis, x, "diff axis")
    before = (slice(None),) * axis
    for _ in range(n):
        later, earlier = getitem(x, before + (slice(1, None),)), getitem(x, before + (slice(None, -1),))
        x = m.neq(later, earlier) if x.dtype == "bool" else m.sub(later, earlier)
    return x


def to_one_hot(y: Any, nb_class: Any, dtype: Any = None) -> Variable:
    """Theano's to_one_hot: a matrix whose row ``i`` is 1 in column ``y[i]`` and 0 elsewhere, of
    ``dtype`` (default ``config.floatX``). Labels index the columns as in Theano: a negative label
    counts from the end, one of ``nb_class`` or more is an index error when run."""
    y = as_variable(y)
    if y.ndim != 1 or not dtypes.is_int(y.dtype):
        raise TypeError(f"to_one_hot needs an integer vector of labels y, got {y.describe()}")
    n_class = as_index_scalar(nb_class, "to_one_hot nb_class")
    n = shape_i(y, 0)
    out = zeros((n, n_class), dtype=dtype if dtype is not None else "floatX")
    return set_subtensor(getitem(out, (arange(n), y)), 1)


def accumulated_dtype(dtype: str) -> str:
    """NumPy's result dtype of ``cumsum``/``cumprod``: integers narrower than 64 bits (and bool)
    accumulate in the 64-bit integer of their signedness."""
    if dtype in ("bool", "int8", "int16", "int32"):
        return "int64"
    if dtype in ("uint8", "uint16", "uint32"):
        return "uint64"
    return dtype


class CumProd(Accumulate):
    """Running product along ``axis``."""

    numpy_function = staticmethod(np.cumprod)

    def kernel(self) -> Any:
        return cumprod3

    def input_grad(self, x: Variable, g: Variable) -> Variable:
        return CumProdGrad(self.axis)(x, g)  # type: ignore[no-any-return]


def cumprod3(x, out):  # type: ignore[no-untyped-def]
    """Kernel: running products along the middle axis, in the output's dtype as NumPy does."""
    if x.shape[1] == 0:
        return
    for a in range(x.shape[0]):
        for c in range(x.shape[2]):
            out[a, 0, c] = x[a, 0, c]
        for b in range(1, x.shape[1]):
            for c in range(x.shape[2]):
                out[a, b, c] = out[a, b - 1, c] * x[a, b, c]


class CumProdGrad(AlongAxis):
    """The gradient of ``cumprod`` along ``axis`` for output gradient ``g``, exact where ``x`` has
    zeros: ``dx_i = P_(i-1) * S_i`` with ``P`` the exclusive running product of ``x`` and
    ``S_i = g_i + x_(i+1) * S_(i+1)``, so nothing is divided by ``x``."""

    def kernel(self) -> Any:
        return cumprod_grad3

    def make_node(self, x: Variable, g: Variable) -> Apply:
        from .elemwise import cast
        from .shape import patternbroadcast

        x, g = as_variable(x), as_variable(g)
        if g.ndim != x.ndim:
            raise TypeError(f"cumprod's output gradient {g.describe()} must have the rank of its input {x.describe()}")
        g = patternbroadcast(cast(g, x.dtype) if g.dtype != x.dtype else g, x.broadcastable)
        return Apply(self, [x, g], [TensorType(x.dtype, x.broadcastable)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, g = (np.moveaxis(v, self.axis, 0) for v in inputs)
        out = np.empty(x.shape, node.outputs[0].dtype)
        n = x.shape[0]
        if n:  # the same operations, in the same order, as the kernel
            out[n - 1] = g[n - 1]
            for b in range(n - 2, -1, -1):
                out[b] = g[b] + x[b + 1] * out[b + 1]
            p = x[0].copy()
            for b in range(1, n):
                out[b] = out[b] * p
                p = p * x[b]
        return [np.moveaxis(out, 0, self.axis)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        raise NotImplementedError(
            f"second derivatives of cumprod are not implemented: {self} (the gradient of cumprod "
            f"along axis {self.axis}, of {node.inputs[0].describe()}) has no gradient")


def cumprod_grad3(x, g, out):  # type: ignore[no-untyped-def]
    """Kernel: CumProdGrad along the middle axis; S backwards, then times the exclusive prefix products."""
    n = x.shape[1]
    if n == 0:
        return
    for a in range(x.shape[0]):
        for c in range(x.shape[2]):
            out[a, n - 1, c] = g[a, n - 1, c]
        for b in range(n - 2, -1, -1):
            for c in range(x.shape[2]):
                out[a, b, c] = g[a, b, c] + x[a, b + 1, c] * out[a, b + 1, c]
        for c in range(x.shape[2]):
            p = x[a, 0, c]
            for b in range(1, n):
                out[a, b, c] = out[a, b, c] * p
                p = p * x[a, b, c]


def cumprod(x: Any, axis: int | None = None) -> Variable:
    """Cumulative product along ``axis`` (None: of the flattened array); its gradient is exact
    where ``x`` has zeros, but has no gradient itself (no second derivatives)."""
    from .shape import flatten

    x = as_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    return CumProd(axis_index(axis, x, "cumprod axis", or_none=True))(x)  # type: ignore[no-any-return]


class Sort(AlongAxis):
    """Sorted copy along ``axis``, NaN last as in NumPy; ties keep their order (a stable sort, in
    both backends, so that ``Sort`` and ``ArgSort`` agree element for element, signed zeros included)."""

    def kernel(self) -> Any:
        return sort3

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.sort(inputs[0], axis=self.axis, kind="stable")]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        """The output gradient scattered back to where each sorted element came from."""
        from .shape import arange, dimshuffle, shape_i, zeros_like
        from .subtensor import inc_subtensor

        (x,) = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None]
        order = ArgSort(self.axis)(x)
        index = tuple(order if d == self.axis else
                      dimshuffle(arange(shape_i(x, d)), ["x"] * d + [0] + ["x"] * (x.ndim - d - 1))
                      for d in range(x.ndim))
        return [inc_subtensor(getitem(zeros_like(x), index), g)]


class ArgSort(AlongAxis):
    """Indices (int64) that sort along ``axis``: a stable order (ties in order of appearance), NaN
    last, as ``np.argsort(kind='stable')``. Not differentiable, as ``argmax``."""

    def output_dtype(self, dtype: str) -> str:
        return "int64"

    def kernel(self) -> Any:
        return argsort3

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.argsort(inputs[0], axis=self.axis, kind="stable").astype("int64", copy=False)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None]


def stable_order(x, a, c, order, spare):  # type: ignore[no-untyped-def]
    """Kernel helper: the positions b of ``x[a, :, c]`` in sorted order, equal values (NaN among
    them) in order of appearance and NaN last, by a bottom-up merge sort of ``order`` with
    ``spare`` as the buffer; returns whichever of the two holds the result."""
    n = x.shape[1]
    for b in range(n):
        order[b] = b
    src, dst = order, spare
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            i, j = lo, mid
            for k in range(lo, hi):
                if j < hi and i < mid:
                    u, v = x[a, src[j], c], x[a, src[i], c]
                    right = u < v or (v != v and u == u)  # strictly before: ties take the left one
                else:
                    right = j < hi
                if right:
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
        src, dst = dst, src
        width *= 2
    return src


def sort3(x, out):  # type: ignore[no-untyped-def]
    """Kernel: ``out`` is ``x`` sorted along the middle axis (``stable_order``)."""
    order, spare = new_array((x.shape[1],), np.int64), new_array((x.shape[1],), np.int64)
    for a in range(x.shape[0]):
        for c in range(x.shape[2]):
            s = stable_order(x, a, c, order, spare)
            for b in range(x.shape[1]):
                out[a, b, c] = x[a, s[b], c]


def argsort3(x, out):  # type: ignore[no-untyped-def]
    """Kernel: ``out`` holds the positions that sort ``x`` along the middle axis (``stable_order``)."""
    order, spare = new_array((x.shape[1],), np.int64), new_array((x.shape[1],), np.int64)
    for a in range(x.shape[0]):
        for c in range(x.shape[2]):
            s = stable_order(x, a, c, order, spare)
            for b in range(x.shape[1]):
                out[a, b, c] = s[b]


for _kernel in (sort3, argsort3):  # what they call by name, bound when compiled (jit.jit_kernel)
    _kernel.helpers = (stable_order,)  # type: ignore[attr-defined]
    _kernel.intrinsics = ("new_array",)  # type: ignore[attr-defined]

_SORT_KINDS = ("quicksort", "mergesort", "heapsort", "stable")


def _sort_axis(name: str, a: Any, axis: int | None, kind: str, order: Any) -> tuple[Variable, int]:
    """The input (flattened for ``axis=None``) and its non-negative axis, after checking Theano's
    ``kind`` and ``order`` arguments (any kind gives the stable order; structured ``order`` is refused)."""
    from .shape import flatten

    x = as_variable(a)
    if kind not in _SORT_KINDS:
        raise ValueError(f"{name} kind must be one of {', '.join(_SORT_KINDS)}, got {kind!r} for {x.describe()}")
    if order is not None:
        raise ValueError(f"{name} order= is for structured arrays, which symflow does not have; got {order!r}")
    if axis is None:
        x, axis = flatten(x), 0
    return x, axis_index(axis, x, f"{name} axis", or_none=True)


def sort(a: Any, axis: int | None = -1, kind: str = "quicksort", order: Any = None) -> Variable:
    """Sorted copy of ``a`` along ``axis`` (None: of the flattened array); NaN sorts last, as in
    NumPy. Every ``kind`` gives the stable order (equal elements keep their order)."""
    x, axis = _sort_axis("sort", a, axis, kind, order)
    return Sort(axis)(x)  # type: ignore[no-any-return]


def argsort(a: Any, axis: int | None = -1, kind: str = "quicksort", order: Any = None) -> Variable:
    """The int64 indices that sort ``a`` along ``axis`` (None: the flattened array), in the stable
    order whatever ``kind`` is: ties in order of appearance, NaN last, as ``np.argsort(kind='stable')``."""
    x, axis = _sort_axis("argsort", a, axis, kind, order)
    return ArgSort(axis)(x)  # type: ignore[no-any-return]
