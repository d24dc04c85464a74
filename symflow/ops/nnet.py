"""Neural-network ops: softmax and log-softmax (of rows, or along any axis), logsumexp, and the losses built on them."""

from __future__ import annotations

import math
from functools import reduce as _reduce
from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from . import math as m
from .reduce import sum as sum_
from .shape import DimShuffle, dimshuffle


def _check_float(x: Variable, what: str) -> None:
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"{what} needs a float input, got {x.describe()}")


class Softmax(Op):
    """``exp(x) / sum(exp(x))`` along the last axis, computed without overflow."""

    __props__ = ()

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        _check_float(x, "softmax")
        if x.ndim < 1:
            raise TypeError(f"softmax needs at least one dimension, got {x.describe()}")
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        e = np.exp(x - x.max(axis=-1, keepdims=True)) if x.shape[-1] else np.exp(x)
        return [e / e.sum(axis=-1, keepdims=True)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (g,) = output_grads
        if g is None:
            return [None]
        return [SoftmaxGrad()(g, node.outputs[0])]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        _emit_rows(node, cg, SOFTMAX_SOURCE)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(type(self)()(values[0]), True)]


class SoftmaxGrad(Op):
    """The gradient through softmax: ``y * (g - sum(g * y))`` along the last axis, given the
    incoming gradient ``g`` and the softmax output ``y`` (a named op so that rewrites can cancel
    a division by ``y`` inside ``g``, which keeps cross-entropy gradients finite)."""

    __props__ = ()

    def make_node(self, g: Variable, y: Variable) -> Apply:
        g, y = as_variable(g), as_variable(y)
        if g.ndim != y.ndim:
            raise TypeError(f"softmax gradient: {g.describe()} does not match {y.describe()}")
        return Apply(self, [g, y], [y.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        g, y = inputs
        if g.shape[-1:] != y.shape[-1:] or any(a != b and a != 1 for a, b in zip(g.shape, y.shape)):
            raise ValueError(f"softmax gradient of shape {g.shape} does not fit the output shape {y.shape}")
        return [np.asarray(y * (g - (g * y).sum(axis=-1, keepdims=True)), dtype=node.outputs[0].dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        g, y = node.inputs
        (h,) = output_grads
        if h is None:
            return [None, None]
        # out = y*g - y*s with s = sum(g*y): differentiate the composition
        s = sum_(m.mul(g, y), axis=-1, keepdims=True)
        hy = m.mul(h, y)
        t = sum_(hy, axis=-1, keepdims=True)
        return [m.sub(hy, m.mul(y, t)), m.sub(m.add(m.mul(h, g), m.neg(m.mul(h, s))), m.mul(g, t))]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[1]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        g, y = node.inputs
        dims = cg.shape_tuple(y)
        out = cg.alloc(node.outputs[0], dims, "smg")
        for d in range(g.ndim):
            if not g.broadcastable[d]:
                cg.check(f"{cg.dim(g, d)} != {dims[d]}", node, "gradient shape")
        g_full = cg.value(g) if g.broadcastable == y.broadcastable else cg.copy_of(g, dims)
        if y.ndim == 2:  # the kernel takes matrices of any layout
            cg.emit(f"{cg.kernel(softmax_grad_rows)}({g_full}, {cg.value(y)}, {out})")
            return
        rows = " * ".join(dims[:-1]) or "1"
        g2, y2, o2 = (cg.reshape(a, [rows, dims[-1]], node) for a in (g_full, cg.value(y), out))
        cg.emit(f"{cg.kernel(softmax_grad_rows)}({g2}, {y2}, {o2})")

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        g, y = values
        if not all(batched):
            return None
        return [(SoftmaxGrad()(g, y), True)]


class LogSoftmax(Op):
    """``x - logsumexp(x)`` along the last axis."""

    __props__ = ()

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        _check_float(x, "log_softmax")
        if x.ndim < 1:
            raise TypeError(f"log_softmax needs at least one dimension, got {x.describe()}")
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        if not x.shape[-1]:
            return [x.copy()]
        shifted = x - x.max(axis=-1, keepdims=True)
        return [shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        # the softmax of the input, not exp(log-softmax): the rewrites then compute both in one
        # pass (share_softmax), and a log-softmax read only at targets is never written whole
        (g,) = output_grads
        if g is None:
            return [None]
        return [m.sub(g, m.mul(Softmax()(node.inputs[0]), sum_(g, axis=-1, keepdims=True)))]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        _emit_rows(node, cg, LOG_SOFTMAX_SOURCE)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(type(self)()(values[0]), True)]


class SoftmaxAndLog(Op):
    """``softmax(x)`` and ``log_softmax(x)`` from one pass over the rows (one exp per element).

    Not built by users: the ``share_softmax`` rewrite puts it where a graph needs both, as a
    cross-entropy's cost (log-softmax) and gradient (softmax) do.
    """

    __props__ = ()

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        _check_float(x, "softmax")
        if x.ndim < 1:
            raise TypeError(f"softmax needs at least one dimension, got {x.describe()}")
        return Apply(self, [x], [x.type, x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return Softmax().perform(node, inputs) + LogSoftmax().perform(node, inputs)

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        g_sm, g_log = output_grads
        y = node.outputs[0]
        parts = [] if g_sm is None else [SoftmaxGrad()(g_sm, y)]
        if g_log is not None:
            parts.append(m.sub(g_log, m.mul(y, sum_(g_log, axis=-1, keepdims=True))))
        return [m.add(*parts) if len(parts) > 1 else (parts[0] if parts else None)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0], input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        _emit_rows(node, cg, SOFTMAX_AND_LOG_SOURCE)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(y, True) for y in type(self)()(values[0])]


#: the row-wise ops whose outputs have their input's shape (rewrites read that shape from the input)
ROW_NORMALISED = (Softmax, LogSoftmax, SoftmaxAndLog)


class LogSumExp(Op):
    """``log(sum(exp(z)))`` of each row of ``z``, as a column, and (``with_softmax``) first
    ``softmax(z)``, from one pass over the rows. ``z`` is the matrix ``x``, or ``x + b`` for a row
    ``b`` (``with_bias``); ``scaled`` multiplies the softmax by a column ``s``, one factor per row.

    Not built by users: the ``pick_log_softmax`` rewrite puts it where a graph reads a log-softmax
    at one entry per row, as a cross-entropy does: ``log_softmax(x)[r, c]`` is ``x[r, c] - lse[r, 0]``,
    so the full log-softmax is never written. ``softmax_bias`` and ``softmax_scale`` fold the logits'
    bias and the cross-entropy gradient's factor per row into the same pass, so that neither
    ``x + b`` nor the unscaled softmax is written either.
    """

    __props__ = ("with_softmax", "with_bias", "scaled")

    def __init__(self, with_softmax: bool, with_bias: bool = False, scaled: bool = False) -> None:
        if scaled and not with_softmax:
            raise ValueError("logsumexp: only the softmax can be scaled")
        self.with_softmax, self.with_bias, self.scaled = with_softmax, with_bias, scaled

    def make_node(self, x: Variable, *extra: Variable) -> Apply:
        x = as_variable(x)
        _check_float(x, "logsumexp")
        if x.ndim != 2:
            raise TypeError(f"logsumexp takes the rows of a matrix, got {x.describe()}")
        extra_vars = [as_variable(e) for e in extra]
        if len(extra_vars) != self.with_bias + self.scaled:
            raise TypeError(f"{self} takes {1 + self.with_bias + self.scaled} inputs, got {1 + len(extra_vars)}")
        if self.with_bias:  # a row as wide as x (z has x's type)
            b = extra_vars[0]
            if b.dtype != x.dtype or b.broadcastable != (True, x.broadcastable[1]):
                raise TypeError(f"logsumexp's bias must be a row of {x.dtype} as wide as {x.describe()}, "
                                f"got {b.describe()}")
        if self.scaled:  # a column with as many rows as x
            s = extra_vars[-1]
            if s.dtype != x.dtype or s.broadcastable != (x.broadcastable[0], True):
                raise TypeError(f"logsumexp's softmax scale must be a column of {x.dtype} with the rows of "
                                f"{x.describe()}, got {s.describe()}")
        lse = TensorType(x.dtype, (x.broadcastable[0], True))
        return Apply(self, [x, *extra_vars], [x.type, lse] if self.with_softmax else [lse])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, *extra = inputs
        if self.with_bias:
            if extra[0].shape[1] != x.shape[1]:
                raise ValueError(f"x + b, the rows of a softmax and their bias row, of shapes {x.shape} and "
                                 f"{extra[0].shape}: the bias must have one entry per column")
            x = x + extra[0]
        if not x.shape[1]:  # the sum of no terms is 0
            lse = np.full(x.shape[0], -np.inf, x.dtype)
        else:
            top = x.max(axis=1)
            lse = top + np.log(np.exp(x - top[:, None]).sum(axis=1))
        lse = np.asarray(lse, dtype=x.dtype)[:, None]
        if not self.with_softmax:
            return [lse]
        (y,) = Softmax().perform(node, [x])
        if self.scaled:
            if extra[-1].shape[0] != x.shape[0]:
                raise ValueError(f"a softmax of shape {x.shape} scaled by a column of shape {extra[-1].shape}: "
                                 "the scale must have one entry per row")
            y = np.asarray(y * extra[-1], dtype=x.dtype)
        return [y, lse]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, *extra = node.inputs
        *g_sm, g_lse = output_grads
        if self.with_softmax and not self.scaled:
            y = node.outputs[0]
        else:
            y = Softmax()(m.add(x, extra[0]) if self.with_bias else x)
        parts, g_scale = [], None
        if g_sm and g_sm[0] is not None:
            g = g_sm[0]
            if self.scaled:  # d(y * s) = dy * s, and ds = sum(g * y) per row
                g_scale = sum_(m.mul(g, y), axis=1, keepdims=True)
                g = m.mul(g, extra[-1])
            parts.append(SoftmaxGrad()(g, y))
        if g_lse is not None:  # d lse / dz = softmax(z)
            parts.append(m.mul(y, g_lse))
        g_z = m.add(*parts) if len(parts) > 1 else (parts[0] if parts else None)
        grads: list[Variable | None] = [g_z]
        if self.with_bias:
            grads.append(None if g_z is None else sum_(g_z, axis=0, keepdims=True))
        if self.scaled:
            grads.append(g_scale)
        return grads

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        shape = input_shapes[0]
        column = (shape[0], as_variable(1, "int64"))
        return [shape, column] if self.with_softmax else [column]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x, *extra = node.inputs
        dims = cg.shape_tuple(x)
        args = [cg.value(x)]
        if self.with_bias:
            b = extra[0]
            cg.check(f"{cg.dim(b, 1)} != {dims[1]}", node, "the bias must have one entry per column")
            args.append(_row_as_vector(b, cg))
        if self.scaled:
            s = extra[-1]
            cg.check(f"{cg.dim(s, 0)} != {dims[0]}", node, "the softmax scale must have one entry per row")
            args.append(cg.value(s))
        outs = [cg.alloc(y, [dims[0], "1"] if y.broadcastable[1] else dims, "sm") for y in node.outputs]
        kernel = cg.generated_kernel(logsumexp_source(self.with_softmax, self.with_bias, self.scaled))
        cg.emit(f"{kernel}({', '.join(args + outs)})")


def _row_as_vector(row: Variable, cg: Any) -> str:
    """A row's entries as a vector: the vector itself when the row is one made into a row (a
    bias ``b`` added to a matrix), which keeps it contiguous for the kernel's vector loops."""
    owner = row.owner
    if owner is not None and isinstance(owner.op, DimShuffle) and owner.op.new_order == ("x", 0):
        return cg.value(owner.inputs[0])  # type: ignore[no-any-return]
    return f"{cg.value(row)}[0]"


def _emit_rows(node: Apply, cg: Any, source: str) -> None:
    """Call a generated row-wise kernel on ``x`` viewed as a matrix of its last axis."""
    (x,) = node.inputs
    dims = cg.shape_tuple(x)
    kernel = cg.generated_kernel(source)
    if x.ndim == 2:
        outs = [cg.alloc(y, dims, "sm") for y in node.outputs]
        cg.emit(f"{kernel}({cg.value(x)}, {', '.join(outs)})")
        return
    rows = " * ".join(dims[:-1]) or "1"
    flat = cg.reshape(cg.value(x), [rows, dims[-1]], node)
    flat_outs = [cg.fresh("sm") for _ in node.outputs]
    for out2, y in zip(flat_outs, node.outputs):
        cg.emit(f"{out2} = {cg.empty([rows, dims[-1]], y.dtype)}")
    cg.emit(f"{kernel}({flat}, {', '.join(flat_outs)})")
    for out2, y in zip(flat_outs, node.outputs):
        cg.emit(f"{cg.new_name(y, 'sm')} = {cg.reshape(out2, dims, node)}")


# ---------------------------------------------------------------------------------------------
# Numba kernels for the row-wise ops. exp is the hot spot of a softmax over a large vocabulary:
# Numba's scalar exp does not vectorise (no SVML in the PyPI builds), so these kernels use an
# exp that does: x = k ln2 + r, exp(r) by its Taylor series to degree 13 (within one ulp of
# NumPy's), and 2**k built from exponent bits (``runtime.float_from_bits``). Arguments below -708
# give 0. One loop computes each row's exponentials and their total. The kernels may use 512-bit
# vectors (``WIDE_KERNEL_OPTIONS``): on this machine's AVX-512, a softmax took 23% less time.
_EXP_POLY = repr(1.0 / math.factorial(13))
for _k in range(12, -1, -1):  # Horner form of sum r**k / k!
    _EXP_POLY = f"({1.0 / math.factorial(_k)!r} + r * {_EXP_POLY})"

_HEADER = "@numba.njit(fastmath={'reassoc', 'contract', 'nsz'}, **WIDE_KERNEL_OPTIONS)\n"


def _row_max_and_exp(store: str, element: str = "x[i, {j}]", row: str = "") -> str:
    """Kernel body: for each row i, ``top`` (its maximum), ``e = exp(z[i, j] - top)`` for each j,
    kept by the statement ``store``, and ``total`` (their sum). ``element`` is the source of
    ``z[i, j]`` with ``{j}`` for the column; ``row``, when given, is the expression for ``z[i, j]``
    that the maximum's loop first writes there. The maximum is ``runtime.nan_max`` (a row with a
    NaN gets a NaN, as NumPy's): its loop vectorises, and a 20 x 2000 kernel with a bias took 1.27-1.35
    instead of 1.65-1.69 ns per element (measured here) against four scalar running maxima."""
    if row:
        first = f"""            z_ij = {row}
            {element.format(j="j")} = z_ij
            top = runtime.nan_max(top, z_ij)
"""
    else:
        first = f"            top = runtime.nan_max(top, {element.format(j='j')})\n"
    return f"""    n, m = x.shape
    for i in range(n):
        top = -np.inf
        for j in range(m):
{first}        total = 0.0
        for j in range(m):
            v = {element.format(j="j")} - top
            w = v if not (v < -708.0) else -708.0
            kf = math.floor(w * 1.4426950408889634 + 0.5)
            r = (w - kf * 0.6931471803691238) - kf * 1.9082149292705877e-10
            e = {_EXP_POLY} * runtime.float_from_bits((np.int64(kf) + 1023) << 52)
            e = 0.0 if v < -708.0 else e
            {store}
            total += e
"""


def _softmax_kernel(params: str, per_row: str = "", element: str = "x[i, {j}]", row: str = "",
                    row_scale: str = "1.0") -> str:
    """Source of a kernel writing the softmax of ``z`` (see ``_row_max_and_exp``), times
    ``row_scale`` in each row, into ``out``, and running ``per_row`` (code using ``top`` and
    ``total``) for each row. The exponentials are scaled by 1 / total in a second pass over all
    rows: right after each row's, a 20 x 2000 softmax took 2.1 instead of 1.6 ns per element
    (measured here)."""
    return _HEADER + f"def kernel({params}):\n    scale = runtime.new_array((x.shape[0],), np.float64)\n" \
        + _row_max_and_exp("out[i, j] = e", element, row) + f"        scale[i] = {row_scale} / total\n" + per_row + """\
    for i in range(n):
        f = scale[i]
        for j in range(m):
            out[i, j] = out[i, j] * f
"""


SOFTMAX_SOURCE = _softmax_kernel("x, out")

LOG_SOFTMAX_SOURCE = _HEADER + "def kernel(x, out):\n" + _row_max_and_exp("pass") + """\
        shift = top + math.log(total)
        for j in range(m):
            out[i, j] = x[i, j] - shift
"""

SOFTMAX_AND_LOG_SOURCE = _softmax_kernel("x, out, out_log", """\
        shift = top + math.log(total)
        for j in range(m):
            out_log[i, j] = x[i, j] - shift
""")


def logsumexp_source(with_softmax: bool, with_bias: bool, scaled: bool) -> str:
    """Source of ``LogSumExp``'s kernel: ``kernel(x, [b,] [s,] [out,] lse)``, with the bias ``b``
    as a vector. Its log-sum-exp is the same ``top + log(total)`` as the kernels above subtract:
    ``z[i, j] - lse[i, 0]`` is their log-softmax. With a bias, the maximum's loop writes each row of
    ``x + b`` where the exponentials go (or into a row of its own), and the exp loop reads it there:
    adding ``b[j]`` inside them made a 20 x 2000 kernel about 20 us slower, writing it first 6-12 us
    (measured here; the sum as a pass of its own took about 12 us)."""
    params = ", ".join(["x"] + ["b"] * with_bias + ["s"] * scaled + ["out"] * with_softmax + ["lse"])
    lse = "        lse[i, 0] = top + math.log(total)\n"
    where = "out[i, {j}]" if with_softmax else "z[{j}]"
    element, row = (where, "x[i, j] + b[j]") if with_bias else ("x[i, {j}]", "")
    if with_softmax:
        return _softmax_kernel(params, lse, element, row, "s[i, 0]" if scaled else "1.0")
    start = "    z = runtime.new_array((x.shape[1],), np.float64)\n" if with_bias else ""
    return _HEADER + f"def kernel({params}):\n" + start + _row_max_and_exp("pass", element, row) + lse


def softmax_grad_rows(g, y, out):  # type: ignore[no-untyped-def]
    """Kernel: out = y * (g - sum(g * y)) for each row."""
    for i in range(y.shape[0]):
        total = 0.0
        for j in range(y.shape[1]):
            total += g[i, j] * y[i, j]
        for j in range(y.shape[1]):
            out[i, j] = y[i, j] * (g[i, j] - total)


def _rows(x: Any, what: str) -> Variable:
    """A vector becomes a 1 x K row, as Theano's softmax does (the dtype is checked first, so an
    error names the user's variable rather than the row built from it)."""
    x = as_variable(x)
    _check_float(x, what)
    return dimshuffle(x, ("x", 0)) if x.ndim == 1 else x


def _along(op: Op, x: Any, axis: int, what: str) -> Variable:
    """The row-wise ``op`` applied along ``axis`` of a tensor of any ndim: that axis is moved last,
    the others are merged into rows, and the result is given ``x``'s shape back."""
    from .reduce import normalize_axes
    from .shape import reshape, shape, shape_i

    x = as_variable(x)
    _check_float(x, what)
    if x.ndim == 0:
        raise TypeError(f"{what} needs at least one axis, got {x.describe()}")
    (axis,) = normalize_axes(axis, x.ndim, f"{what}'s axis")
    if x.ndim <= 2 and axis == x.ndim - 1:  # rows already (a vector: one row)
        return op(x) if x.ndim == 2 else op(dimshuffle(x, ("x", 0)))[0]  # type: ignore[no-any-return]
    order = [d for d in range(x.ndim) if d != axis] + [axis]
    last = dimshuffle(x, order)
    n_rows = _reduce(m.mul, [shape_i(last, d) for d in range(x.ndim - 1)], as_variable(1, "int64"))
    rows = reshape(last, (n_rows, shape_i(last, x.ndim - 1)), ndim=2)
    result = reshape(op(rows), shape(last), ndim=x.ndim, broadcastable=last.broadcastable)
    return dimshuffle(result, [order.index(d) for d in range(x.ndim)])


def softmax(x: Any, axis: int | None = None) -> Variable:
    """Softmax along ``axis``. Without an axis, Theano's: the rows of a matrix, and a vector gives a
    1 x K row (hence the book's ``y[:, 0, :]``); with one, any tensor, its shape kept."""
    if axis is None:
        return Softmax()(_rows(x, "softmax"))  # type: ignore[no-any-return]
    return _along(Softmax(), x, axis, "softmax")


def log_softmax(x: Any, axis: int | None = None) -> Variable:
    """Log of softmax along ``axis``, stable for large inputs; without an axis, as ``softmax``."""
    if axis is None:
        return LogSoftmax()(_rows(x, "log_softmax"))  # type: ignore[no-any-return]
    return _along(LogSoftmax(), x, axis, "log_softmax")


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """``log(sum(exp(x), axis))`` without overflow: the largest term is taken out first (as a
    constant to ``grad``, so the gradient is the softmax). Slices of -inf give -inf, not NaN."""
    from .gradflow import disconnected_grad
    from .reduce import max as max_
    from .reduce import normalize_axes

    x = as_variable(x)
    _check_float(x, "logsumexp")
    axes = normalize_axes(axis, x.ndim, "logsumexp's axis")
    top = disconnected_grad(max_(x, axes, keepdims=True))
    top = m.switch(m.isinf(top), m.cast(0, x.dtype), top)  # all -inf (or an inf): exp(x - 0) is exact
    total = m.add(m.log(sum_(m.exp(m.sub(x, top)), axes, keepdims=True)), top)
    if keepdims:
        return total
    return dimshuffle(total, [d for d in range(x.ndim) if d not in axes])


def categorical_crossentropy(coding_dist: Any, true_dist: Any) -> Variable:
    """``-log(p[true class])`` per row: ``true_dist`` holds class indices (int vector) or
    one-hot / probability rows (same shape as ``coding_dist``)."""
    from .shape import arange, shape_i
    from .subtensor import getitem

    p = as_variable(coding_dist)
    t = as_variable(true_dist)
    if dtypes.is_int(t.dtype) and t.ndim == p.ndim - 1:
        if p.ndim == 1:
            return m.neg(m.log(getitem(p, t)))
        return m.neg(m.log(getitem(p, (arange(shape_i(p, 0)), t))))
    if t.ndim != p.ndim:
        raise TypeError(f"categorical_crossentropy: targets {t.describe()} fit neither class indices nor "
                        f"distributions for predictions {p.describe()}")
    return m.neg(sum_(m.mul(t, m.log(p)), axis=-1))


def binary_crossentropy(output: Any, target: Any) -> Variable:
    """``-(t log(o) + (1 - t) log(1 - o))`` elementwise."""
    o, t = as_variable(output), as_variable(target)
    return m.neg(m.add(m.mul(t, m.log(o)), m.mul(m.sub(1, t), m.log(m.sub(1, o)))))


def sigmoid_binary_crossentropy(logits: Any, target: Any) -> Variable:
    """Binary cross-entropy from logits, stable: ``softplus(x) - t x``."""
    x, t = as_variable(logits), as_variable(target)
    return m.sub(m.softplus(x), m.mul(t, x))


def crossentropy_softmax_1hot(x: Any, y_idx: Any) -> Variable:
    """Mean-free per-row loss ``-log_softmax(x)[i, y_i]`` (a stable fusion of softmax + crossentropy)."""
    from .shape import arange, shape_i
    from .subtensor import getitem

    lp = log_softmax(x)
    return m.neg(getitem(lp, (arange(shape_i(lp, 0)), as_variable(y_idx))))

