"""Reductions over axes (sum, prod, max, min, any, all), arg-reductions, and what builds on them
(mean, var, std, norm)."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from . import math as m


def normalize_axes(axis: Any, ndim: int, what: str = "axis") -> tuple[int, ...]:
    """Axis spec (None, int or sequence, negatives allowed) as sorted non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, Variable):
        raise TypeError(f"{what} must be a Python int or tuple of ints, not a symbolic variable")
    items = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    out = []
    for a in items:
        a = int(a)
        if not -ndim <= a < builtins.max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(f"{what} {a} is out of range for a {ndim}-d tensor")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated {what} in {axis}")
    return tuple(sorted(out)) if ndim else ()


@dataclass(frozen=True)
class Reducer:
    """One kind of reduction: its NumPy function and output dtype rule."""

    name: str
    impl: Callable[..., np.ndarray]
    dtype_rule: Callable[[str], str]


def _sum_dtype(d: str) -> str:
    return "int64" if d in ("bool", "int8", "int16", "int32") else "uint64" if d.startswith("uint") else d


REDUCERS: dict[str, Reducer] = {
    r.name: r
    for r in (
        Reducer("sum", np.sum, _sum_dtype),
        Reducer("prod", np.prod, _sum_dtype),
        Reducer("max", np.max, lambda d: d),
        Reducer("min", np.min, lambda d: d),
        Reducer("any", np.any, lambda d: "bool"),
        Reducer("all", np.all, lambda d: "bool"),
    )
}


def _accumulator_dtype(kind: str, dtype: str) -> str:
    """The dtype a reduction adds up in: float64 for sums and products of float32 (and float16), as
    Theano's: one by one in float32, a sum of 2 million values near 0.1 was 1.4% off, and NumPy
    sums along any axis but the last one by one too."""
    return "float64" if kind in ("sum", "prod") and dtype in ("float16", "float32") else dtype


def _numba_init(kind: str, dtype: str) -> str:
    """Source of the starting value of a reduction in Numba code."""
    from ..compile.numba.codegen import literal

    if kind in ("sum", "prod"):
        return literal(0 if kind == "sum" else 1, dtype)
    if kind in ("any", "all"):
        return "False" if kind == "any" else "True"
    big = np.inf if dtypes.is_float(dtype) else (True if dtype == "bool" else np.iinfo(dtype).max)
    small = -np.inf if dtypes.is_float(dtype) else (False if dtype == "bool" else np.iinfo(dtype).min)
    return literal(small if kind == "max" else big, dtype)


#: how a Numba reduction folds value ``v`` into accumulator ``a`` (NaN propagates, as in NumPy);
#: floats' max and min use ``NUMBA_FLOAT_COMBINE``, which vectorises
NUMBA_COMBINE = {
    "sum": "({a} + {v})",
    "prod": "({a} * {v})",
    "max": "({v} if ({v} > {a} or {v} != {v}) else {a})",
    "min": "({v} if ({v} < {a} or {v} != {v}) else {a})",
    "any": "({a} or bool({v}))",
    "all": "({a} and bool({v}))",
}
NUMBA_FLOAT_COMBINE = {"max": "runtime.nan_max({a}, {v})", "min": "runtime.nan_min({a}, {v})"}


class Reduce(Op):
    """Reduce ``x`` over ``axis`` with one of the REDUCERS."""

    numba_reads_elements = True

    __props__ = ("kind", "axis", "keepdims")

    def __init__(self, kind: str, axis: tuple[int, ...], keepdims: bool) -> None:
        self.kind = kind
        self.axis = axis
        self.keepdims = keepdims
        self.reducer = REDUCERS[kind]

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        bcast = reduced_broadcastable(x.broadcastable, self.axis, self.keepdims)
        return Apply(self, [x], [TensorType(self.reducer.dtype_rule(x.dtype), bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        if self.kind in ("max", "min") and 0 in [x.shape[d] for d in self.axis]:  # no identity to start from
            raise ValueError(f"{self.kind} of an empty array (shape {x.shape}) over axis {self.axis}")
        out_dtype = node.outputs[0].dtype
        wide = {"dtype": np.float64} if _accumulator_dtype(self.kind, out_dtype) != out_dtype else {}
        out = self.reducer.impl(x, axis=self.axis, keepdims=self.keepdims, **wide)
        return [np.asarray(out, dtype=out_dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (x,) = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype) or self.kind in ("any", "all"):
            return [None]
        g = restore_axes(g, self.axis, self.keepdims)
        if self.kind == "sum":
            return [_broadcast_like(g, x)]
        out = restore_axes(node.outputs[0], self.axis, self.keepdims)
        if self.kind in ("max", "min"):
            return [m.mul(g, m.eq(x, out))]
        return [_prod_grad(x, g, out, self.axis)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        (shape,) = input_shapes
        one = as_variable(1, "int64")
        if self.keepdims:
            return [tuple(one if d in self.axis else s for d, s in enumerate(shape))]
        return [tuple(s for d, s in enumerate(shape) if d not in self.axis)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """A generated kernel folding each element into the output position it reduces to (into a
        float64 array first where ``_accumulator_dtype`` says so)."""
        from ..compile.numba.codegen import KernelWriter, scalar_cast

        (x,) = node.inputs
        out = node.outputs[0]
        combine = NUMBA_COMBINE[self.kind]
        if dtypes.is_float(x.dtype):
            combine = NUMBA_FLOAT_COMBINE.get(self.kind, combine)
        acc_dtype = _accumulator_dtype(self.kind, out.dtype)
        wide = acc_dtype != out.dtype
        init = _numba_init(self.kind, acc_dtype)
        if self.kind in ("max", "min") and self.axis:
            cg.check(" or ".join(f"{cg.dim(x, d)} == 0" for d in self.axis), node, f"{self.kind} of an empty array")
        kw = KernelWriter(cg)
        dims = [kw.dim(x, d) for d in range(x.ndim)]
        if out.ndim == 0:
            kw.emit(f"acc = {init}")
            with kw.loops(dims) as idx:
                kw.emit(f"acc = {combine.format(a='acc', v=kw.elem(x, idx))}")
            kw.emit("return acc")
            result = cg.fresh("red")
            kw.call(result)
            cg.emit(f"{cg.new_name(out)} = {scalar_cast(result, out.dtype)}")
            return
        keep = [d for d in range(x.ndim) if d not in self.axis]
        out_dims = ["1" if d in self.axis else cg.dim(x, d) for d in range(x.ndim)] if self.keepdims else \
            [cg.dim(x, d) for d in keep]
        o = kw.param(cg.alloc(out, out_dims))
        acc = "acc" if wide else o  # the array the kernel accumulates into
        if wide:
            kw.emit(f"acc = runtime.new_array({o}.shape, np.{acc_dtype})")
        out_loops = [f"{o}.shape[{d}]" for d in range(out.ndim)]
        with kw.loops(out_loops) as idx:
            kw.emit(f"{acc}[{', '.join(idx)}] = {init}")
        with kw.loops(dims) as idx:
            oidx = ", ".join("0" if d in self.axis else idx[d] for d in range(x.ndim)) if self.keepdims else \
                ", ".join(idx[d] for d in keep)
            target = f"{acc}[{oidx}]"
            kw.emit(f"{target} = {combine.format(a=target, v=kw.elem(x, idx))}")
        if wide:
            with kw.loops(out_loops) as idx:
                kw.emit(f"{o}[{', '.join(idx)}] = {acc}[{', '.join(idx)}]")
        kw.call()

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(Reduce(self.kind, tuple(a + 1 for a in self.axis), self.keepdims)(values[0]), True)]


class ArgReduce(Op):
    """Index of the maximum (``kind='max'``) or minimum along one axis, or over the flattened array."""

    __props__ = ("kind", "axis", "keepdims")

    def __init__(self, kind: str, axis: int | None, keepdims: bool) -> None:
        self.kind = kind
        self.axis = axis
        self.keepdims = keepdims

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        axes = tuple(range(x.ndim)) if self.axis is None else (self.axis,)
        bcast = reduced_broadcastable(x.broadcastable, axes, self.keepdims)
        return Apply(self, [x], [TensorType("int64", bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        empty = x.size == 0 if self.axis is None else x.shape[self.axis] == 0
        if empty:
            raise ValueError(f"arg{self.kind} of an empty array (shape {x.shape}) over axis {self.axis}")
        fn = np.argmax if self.kind == "max" else np.argmin
        out = fn(x, axis=self.axis, keepdims=self.keepdims)
        return [np.asarray(out, dtype="int64")]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        (shape,) = input_shapes
        axes = tuple(range(len(shape))) if self.axis is None else (self.axis,)
        one = as_variable(1, "int64")
        if self.keepdims:
            return [tuple(one if d in axes else s for d, s in enumerate(shape))]
        return [tuple(s for d, s in enumerate(shape) if d not in axes)]

    numba_reads_elements = True

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """A generated kernel scanning for the best element; ties and NaN go to the first one."""
        from ..compile.numba.codegen import KernelWriter

        (x,) = node.inputs
        out = node.outputs[0]
        size = (" * ".join(cg.shape_tuple(x)) or "1") if self.axis is None else cg.dim(x, self.axis)
        cg.check(f"{size} == 0", node, f"arg{self.kind} of an empty array")
        better = "v > best" if self.kind == "max" else "v < best"
        test = f"({better} or (v != v and best == best))"
        kw = KernelWriter(cg)
        dims = [kw.dim(x, d) for d in range(x.ndim)]
        if self.axis is None:
            kw.emit(f"best = {kw.elem(x, ['0'] * x.ndim)}")
            kw.emit("pos = 0")
            kw.emit("k = 0")
            with kw.loops(dims) as idx:
                kw.emit(f"v = {kw.elem(x, idx)}")
                with kw.block(f"if {test}:"):
                    kw.emit("best = v")
                    kw.emit("pos = k")
                kw.emit("k += 1")
            kw.emit("return pos")
            pos = cg.fresh("pos")
            kw.call(pos)
            if out.ndim == 0:
                cg.emit(f"{cg.new_name(out)} = np.int64({pos})")
            else:
                name = cg.alloc(out, ["1"] * out.ndim)
                cg.emit(f"{name}[{', '.join(['0'] * out.ndim)}] = {pos}")
            return
        a = self.axis
        outer = [d for d in range(x.ndim) if d != a]
        if out.ndim == 0:
            kw.emit(f"best = {kw.elem(x, ['0'])}")
            kw.emit("pos = 0")
            with kw.block(f"for j in range(1, {dims[a]}):"):
                kw.emit(f"v = {kw.elem(x, ['j'])}")
                with kw.block(f"if {test}:"):
                    kw.emit("best = v")
                    kw.emit("pos = j")
            kw.emit("return pos")
            pos = cg.fresh("pos")
            kw.call(pos)
            cg.emit(f"{cg.new_name(out)} = np.int64({pos})")
            return
        out_dims = ["1" if d == a else cg.dim(x, d) for d in range(x.ndim)] if self.keepdims else \
            [cg.dim(x, d) for d in outer]
        o = kw.param(cg.alloc(out, out_dims))
        with kw.loops([dims[d] for d in outer]) as oidx:
            full = dict(zip(outer, oidx))
            kw.emit(f"best = {kw.elem(x, [full.get(d, '0') for d in range(x.ndim)])}")
            kw.emit("pos = 0")
            with kw.block(f"for j in range(1, {dims[a]}):"):
                kw.emit(f"v = {kw.elem(x, [full.get(d, 'j') for d in range(x.ndim)])}")
                with kw.block(f"if {test}:"):
                    kw.emit("best = v")
                    kw.emit("pos = j")
            target = [("0" if d == a else full[d]) for d in range(x.ndim)] if self.keepdims else list(oidx)
            kw.emit(f"{o}[{', '.join(target)}] = pos")
        kw.call()

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        if self.axis is None:
            return None
        return [(ArgReduce(self.kind, self.axis + 1, self.keepdims)(values[0]), True)]


def reduced_broadcastable(bcast: tuple[bool, ...], axes: tuple[int, ...], keepdims: bool) -> tuple[bool, ...]:
    if keepdims:
        return tuple(True if d in axes else b for d, b in enumerate(bcast))
    return tuple(b for d, b in enumerate(bcast) if d not in axes)


def restore_axes(g: Variable, axes: tuple[int, ...], keepdims: bool) -> Variable:
    """Reinsert reduced axes (as broadcastable) so ``g`` lines up with the reduced input."""
    if keepdims or not axes:
        return g
    from .shape import dimshuffle

    pattern: list[Any] = []
    it = iter(range(g.ndim))
    for d in range(g.ndim + len(axes)):
        pattern.append("x" if d in axes else next(it))
    return dimshuffle(g, tuple(pattern))


def _broadcast_like(g: Variable, x: Variable) -> Variable:
    from .shape import alloc, shape_i

    return alloc(g, *[shape_i(x, d) for d in range(x.ndim)])


def _prod_grad(x: Variable, g: Variable, prod: Variable, axes: tuple[int, ...]) -> Variable:
    """Gradient of prod that stays exact when some factors are zero: ``prod / x`` for a nonzero
    factor (0 when another is zero, and its own derivative then right too); for a zero factor the
    product of the others: the nonzero ones' product if it is the only zero, that times the other
    zero if there are two (0, but its derivative by that zero is right), else 0. Second derivatives
    are thus exact; third ones not where three or more factors are zero."""
    is_zero = m.eq(x, 0)
    n_zeros = sum(is_zero, axis=axes, keepdims=True)
    prod_nonzero = Reduce("prod", axes, True)(m.switch(is_zero, 1, x))
    nonzero_factor = m.true_div(prod, m.switch(is_zero, 1, x))  # never divides by 0, nor its gradient
    other_zero = m.sub(sum(m.switch(is_zero, x, 0), axis=axes, keepdims=True), x)  # for two zeros
    zero_factor = m.switch(m.eq(n_zeros, 1), prod_nonzero,
                           m.switch(m.eq(n_zeros, 2), m.mul(prod_nonzero, other_zero), 0))
    return m.mul(g, m.switch(is_zero, zero_factor, nonzero_factor))


# ---------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------
def _reduce(kind: str, x: Any, axis: Any, keepdims: bool) -> Variable:
    x = as_variable(x)
    return Reduce(kind, normalize_axes(axis, x.ndim), bool(keepdims))(x)  # type: ignore[no-any-return]


def sum(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Variable:  # noqa: A001
    """Sum over ``axis`` (None: all axes; an int or a tuple)."""
    x = as_variable(x)
    if dtype is not None:
        x = m.cast(x, dtype)
    return _reduce("sum", x, axis, keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return _reduce("prod", x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return _reduce("max", x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return _reduce("min", x, axis, keepdims)


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return _reduce("any", x, axis, keepdims)


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return _reduce("all", x, axis, keepdims)


def _arg(kind: str, x: Any, axis: Any, keepdims: bool) -> Variable:
    x = as_variable(x)
    axes = normalize_axes(axis, x.ndim) if axis is not None and x.ndim else ()
    if len(axes) > 1:
        return _arg_over_axes(kind, x, axes, keepdims)
    return ArgReduce(kind, axes[0] if axes else None, bool(keepdims))(x)  # type: ignore[no-any-return]


def _arg_over_axes(kind: str, x: Variable, axes: tuple[int, ...], keepdims: bool) -> Variable:
    """Theano's argmax over several axes: the index into their entries flattened in axis order,
    found by moving them last and merging them into one."""
    from .shape import dimshuffle, reshape, shape_i

    kept = [d for d in range(x.ndim) if d not in axes]
    merged = reshape(dimshuffle(x, kept + list(axes)), [shape_i(x, d) for d in kept] + [-1])
    index = ArgReduce(kind, len(kept), False)(merged)
    return restore_axes(index, axes, False) if keepdims else index  # type: ignore[no-any-return]


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Index of the largest element along ``axis`` (None: of the flattened array; several axes: of
    their entries flattened in axis order, as Theano's)."""
    return _arg("max", x, axis, keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return _arg("min", x, axis, keepdims)


def max_and_argmax(a: Any, axis: Any = None, keepdims: bool = False) -> list[Variable]:
    """Theano's ``max_and_argmax``: ``[max(a, axis), argmax(a, axis)]`` over the same axes (None: all);
    the gradient flows through the maximum, the int64 index has none."""
    return [max(a, axis, keepdims), argmax(a, axis, keepdims)]


def count(x: Variable, axes: tuple[int, ...], dtype: str) -> Variable:
    """Number of elements reduced over ``axes``, as a ``dtype`` scalar."""
    from .shape import shape_i

    n: Any = 1
    for d in axes:
        n = m.mul(n, shape_i(x, d))
    return m.cast(as_variable(n), dtype)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Average over ``axis``; integer input gives floatX-like float output."""
    x = as_variable(x)
    axes = normalize_axes(axis, x.ndim)
    total = sum(x, axes, keepdims)
    out_dtype = dtypes.upgrade_to_float(x.dtype)
    return m.true_div(m.cast(total, out_dtype), count(x, axes, out_dtype))


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Population variance (ddof=0), as Theano's default."""
    x = as_variable(x)
    centred = m.sub(x, mean(x, axis, keepdims=True))
    return mean(m.sqr(centred), axis, keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return m.sqrt(var(x, axis, keepdims))


def norm(x: Any, L: Any = 2, axis: Any = None, keepdims: bool = False) -> Variable:
    """The L-norm over ``axis`` (all elements by default): 1, 2, any p > 0, or ``np.inf``."""
    x = as_variable(x)
    if L == 2:
        return m.sqrt(sum(m.sqr(x), axis, keepdims))
    if L == 1:
        return sum(m.abs(x), axis, keepdims)
    if L in (np.inf, "inf"):
        return max(m.abs(x), axis, keepdims)
    if not isinstance(L, (int, float)) or L <= 0:
        raise ValueError(f"norm order L must be a positive number or inf, got {L!r}")
    return m.pow(sum(m.pow(m.abs(x), L), axis, keepdims), 1.0 / L)
