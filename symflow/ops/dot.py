"""Products: ``dot`` (vectors and matrices), ``batched_dot``, and what composes from them
(``outer``, ``tensordot`` and N-d ``dot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from . import math as m
from .shape import dimshuffle, reshape, shape_i


class Dot(Op):
    """Matrix/vector product of two tensors of ndim 1 or 2 (NumPy ``dot``)."""

    __props__ = ()

    def make_node(self, a: Variable, b: Variable) -> Apply:
        a, b = as_variable(a), as_variable(b)
        if a.ndim not in (1, 2) or b.ndim not in (1, 2):
            raise TypeError(f"Dot takes vectors or matrices, got {a.describe()} and {b.describe()}")
        bcast = a.broadcastable[:-1] + b.broadcastable[:-2] + b.broadcastable[-1:] if b.ndim == 2 \
            else a.broadcastable[:-1]
        return Apply(self, [a, b], [TensorType(dtypes.upcast(a.dtype, b.dtype), tuple(bcast))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        a, b = inputs
        k_b = b.shape[0]
        if a.shape[-1] != k_b:
            raise ValueError(
                f"dot of shapes {a.shape} and {b.shape}: the last dimension of the left ({a.shape[-1]}) "
                f"must equal the first dimension of the right ({k_b})"
            )
        return [np.asarray(np.dot(a, b), dtype=node.outputs[0].dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        a, b = node.inputs
        (g,) = output_grads
        if g is None:
            return [None, None]
        if a.ndim == 1 and b.ndim == 1:  # g is a scalar
            ga, gb = m.mul(g, b), m.mul(g, a)
        elif a.ndim == 1:  # (k,) . (k, n) -> (n,)
            ga, gb = dot(b, g), outer(a, g)
        elif b.ndim == 1:  # (m, k) . (k,) -> (m,)
            ga, gb = outer(g, b), dot(g, a)
        else:
            ga, gb = dot(g, b.T), dot(a.T, g)
        return [_as_grad(ga, a), _as_grad(gb, b)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        sa, sb = input_shapes
        return [tuple(sa[:-1]) + tuple(sb[1:])]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        a, b = node.inputs
        y = node.outputs[0]
        av, bv = _as_dtype(cg, a, y.dtype), _as_dtype(cg, b, y.dtype)
        inner_a, inner_b = cg.dim(a, a.ndim - 1), cg.dim(b, 0)
        cg.check(f"{inner_a} != {inner_b}", node, "inner dimensions differ")
        if a.ndim == 1 and b.ndim == 1:
            from ..compile.numba.codegen import scalar_cast

            result = cg.fresh("dot")
            cg.emit(f"{result} = {cg.kernel(dot_vv)}({av}, {bv})")
            cg.emit(f"{cg.new_name(y, 'dot')} = {scalar_cast(result, y.dtype)}")
            return
        dims = [cg.dim(a, 0)] if a.ndim == 2 else []
        dims += [cg.dim(b, 1)] if b.ndim == 2 else []
        out = cg.alloc(y, dims, "dot")
        if a.ndim == 2 and b.ndim == 2 and not dtypes.is_float(y.dtype):  # BLAS (np.dot) is for floats only
            cg.emit(f"{cg.kernel(batched_mm)}({av}[None], {bv}[None], {out}[None])")
            return
        if a.ndim == 2 and b.ndim == 2:  # operands of any layout: one compile of dot_mm serves all
            cg.emit(f"{cg.kernel(dot_mm)}(runtime.any_layout({av}), runtime.any_layout({bv}), {out})")
            return
        kernel = {(1, 2): dot_vm, (2, 1): dot_mv}[(a.ndim, b.ndim)]
        cg.emit(f"{cg.kernel(kernel)}({av}, {bv}, {out})")

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        """Per-step vector products become one matrix product."""
        a, b = values
        ba, bb = batched
        if ba and bb:
            if node.inputs[0].ndim == 1 and node.inputs[1].ndim == 1:
                from .reduce import sum as sum_

                return [(sum_(m.mul(a, b), axis=1), True)]
            return None
        if ba:  # a has a step axis: (T, K) or (T, M, K) against a fixed b
            return [(dot(a, b), True)]
        if node.inputs[1].ndim == 1:  # fixed a (K,) or (M, K), steps of vectors b (T, K)
            return [(dot(b, a) if a.ndim == 1 else dot(b, a.T), True)]
        return None


def _as_grad(g: Variable, x: Variable) -> Variable | None:
    if dtypes.is_discrete(x.dtype):
        return None
    from .shape import patternbroadcast

    return m.cast(patternbroadcast(g, x.broadcastable), x.dtype)


class BatchedDot(Op):
    """``out[i] = a[i] @ b[i]`` for 3-d ``a`` (B, N, K) and ``b`` (B, K, M)."""

    __props__ = ()

    def make_node(self, a: Variable, b: Variable) -> Apply:
        a, b = as_variable(a), as_variable(b)
        if a.ndim != 3 or b.ndim != 3:
            raise TypeError(f"BatchedDot takes 3-d tensors, got {a.describe()} and {b.describe()}")
        bcast = (a.broadcastable[0] and b.broadcastable[0], a.broadcastable[1], b.broadcastable[2])
        return Apply(self, [a, b], [TensorType(dtypes.upcast(a.dtype, b.dtype), bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        a, b = inputs
        if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
            raise ValueError(f"batched_dot of shapes {a.shape} and {b.shape}: batch sizes must match and "
                             "a.shape[2] must equal b.shape[1]")
        return [np.asarray(np.matmul(a, b), dtype=node.outputs[0].dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        a, b = node.inputs
        (g,) = output_grads
        if g is None:
            return [None, None]
        ga = BatchedDot()(g, dimshuffle(b, (0, 2, 1)))
        gb = BatchedDot()(dimshuffle(a, (0, 2, 1)), g)
        return [_as_grad(ga, a), _as_grad(gb, b)]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        sa, sb = input_shapes
        return [(sa[0], sa[1], sb[2])]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        a, b = node.inputs
        y = node.outputs[0]
        av, bv = _as_dtype(cg, a, y.dtype), _as_dtype(cg, b, y.dtype)
        cg.check(f"{cg.dim(a, 0)} != {cg.dim(b, 0)} or {cg.dim(a, 2)} != {cg.dim(b, 1)}", node,
                 "batch sizes or inner dimensions differ")
        out = cg.alloc(y, [cg.dim(a, 0), cg.dim(a, 1), cg.dim(b, 2)], "bdot")
        cg.emit(f"{cg.kernel(batched_mm)}({av}, {bv}, {out})")


class Gemm(Op):
    """``beta * c + alpha * (a @ b)`` for matrices (BLAS's gemm), with constant ``alpha`` and
    ``beta``; a fourth input, a scalar, multiplies ``alpha`` at run time (a learning rate given as
    a shared variable or an argument).

    Not built by users: the ``gemm`` rewrite makes it from a momentum step or an SGD update
    (``mu * v - lr * dot(x, y)``), so that the product is added into the shared variable's array
    in place (``backend.plan_in_place``) instead of into a new array that a second loop then reads.
    """

    __props__ = ("alpha", "beta")

    def __init__(self, alpha: float, beta: float) -> None:
        self.alpha, self.beta = float(alpha), float(beta)

    def make_node(self, c: Variable, a: Variable, b: Variable, scale: Variable | None = None) -> Apply:
        c, a, b = as_variable(c), as_variable(a), as_variable(b)
        if (c.ndim, a.ndim, b.ndim) != (2, 2, 2) or not dtypes.is_float(c.dtype) or not c.dtype == a.dtype == b.dtype:
            raise TypeError(f"Gemm takes three float matrices of one dtype, got {c.describe()}, {a.describe()} "
                            f"and {b.describe()}")
        inputs = [c, a, b]
        if scale is not None:
            scale = as_variable(scale)
            if scale.ndim != 0 or scale.dtype != c.dtype:
                raise TypeError(f"Gemm's scale must be a {c.dtype} scalar, got {scale.describe()}")
            inputs.append(scale)
        return Apply(self, inputs, [c.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        c, a, b, *scale = inputs
        if a.shape[1] != b.shape[0] or c.shape != (a.shape[0], b.shape[1]):
            raise ValueError(f"gemm of shapes {c.shape}, {a.shape} and {b.shape}: a @ b must have c's shape")
        alpha = self.alpha * scale[0] if scale else self.alpha
        return [np.asarray(self.beta * c + alpha * np.dot(a, b), dtype=node.outputs[0].dtype)]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        c, a, b, *scale = node.inputs
        (g,) = output_grads
        if g is None:
            return [None] * len(node.inputs)
        alpha = m.mul(self.alpha, scale[0]) if scale else self.alpha
        grads = [m.mul(self.beta, g), m.mul(alpha, dot(g, b.T)), m.mul(alpha, dot(a.T, g))]
        if scale:
            from .reduce import sum as sum_

            grads.append(m.mul(self.alpha, sum_(m.mul(g, dot(a, b)))))
        return grads  # type: ignore[return-value]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_check(self, node: Apply, cg: Any, rows: str, cols: str) -> None:
        """Check that ``a @ b`` has ``rows`` x ``cols`` entries (the result's shape)."""
        a, b = node.inputs[1:3]
        cg.check(f"{cg.dim(a, 1)} != {cg.dim(b, 0)}", node, "inner dimensions differ")
        cg.check(f"{cg.dim(a, 0)} != {rows} or {cg.dim(b, 1)} != {cols}", node, "a @ b does not have c's shape")

    def numba_call(self, node: Apply, cg: Any, out: str) -> str:
        """The statement adding the product into ``out``, which holds ``c``."""
        _, a, b, *scale = node.inputs
        alpha = f"{self.alpha!r} * {cg.value(scale[0])}" if scale else repr(self.alpha)
        return f"{cg.kernel(gemm)}({alpha}, {cg.value(a)}, {cg.value(b)}, {self.beta!r}, {out})"

    def numba_emit(self, node: Apply, cg: Any) -> None:
        c = node.inputs[0]
        self.numba_check(node, cg, cg.dim(c, 0), cg.dim(c, 1))
        out = cg.alloc_copy(node.outputs[0], c, "gemm", node)
        cg.emit(self.numba_call(node, cg, out))


# ---------------------------------------------------------------------------------------------
# Numba kernels: loops for small products (no call overhead), BLAS above this many multiply-adds
BLAS_THRESHOLD = 16384
#: OpenBLAS (0.3.30, as SciPy ships it) computes a product of at most 100**3 multiply-adds with
#: its small-matrix kernels, where it has them for the CPU (here AVX-512), without packing the
#: operands or zeroing the output first. Measured here, a 20 x 30 by 30 x 2000 product (a language
#: model's output layer) took 52-80 us whole and 32-44 us as two pieces; 16 x 30 by 30 x 2000 took
#: 31-36 us. So ``blas_gemm`` cuts products of up to ``BLAS_PIECES`` times this many into pieces of at
#: most this many; above that, whole products were as fast (8 pieces) or faster (16).
BLAS_PIECE = 100**3
BLAS_PIECES = 4


def _as_dtype(cg: Any, x: Variable, dtype: str) -> str:
    return cg.value(x) if x.dtype == dtype else cg.cast_array(x, dtype)


def _reassociating(kernel: Any) -> Any:
    """Mark a kernel that sums products: Numba may reorder its additions (``fastmath={'reassoc'}``),
    so LLVM vectorises the sum: a 30x30 matrix times a vector runs twice as fast. The result may
    differ in the last bits from a plain loop's, as BLAS's does."""
    kernel.numba_options = {"fastmath": {"reassoc"}}
    return kernel


@_reassociating
def dot_vv(a, b):  # type: ignore[no-untyped-def]
    """Kernel: the inner product of two vectors."""
    acc = 0  # Numba unifies it with the product's type: float, or exact integers
    if a.shape[0] != b.shape[0]:
        return acc
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


def dot_mm(a, b, out):  # type: ignore[no-untyped-def]
    """Kernel: out = a @ b for matrices: BLAS above ``BLAS_THRESHOLD`` multiply-adds (``blas_gemm``;
    operands it cannot read as they are, such as reversed views, are copied first), else the loops of
    ``mm_loops`` on C-contiguous operands (``c_contiguous``). Main functions pass ``a`` and ``b`` as
    arrays of any layout (``Dot.numba_emit``): each layout compiled took ~0.4 s of a cold build."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k:
        return
    a_any, b_any = any_layout(a), any_layout(b)  # noqa: F821
    if m * n * k > BLAS_THRESHOLD:
        out_any = any_layout(out)  # noqa: F821
        if blas_gemm(1.0, a_any, b_any, 0.0, out_any) or \
                blas_gemm(1.0, blas_readable(a_any), blas_readable(b_any), 0.0, out_any):
            return
    mm_loops(c_contiguous(a_any), c_contiguous(b_any), out)


def mm_loops(a, b, out):  # type: ignore[no-untyped-def]
    """Kernel: out = a @ b in loops (the caller checked the shapes). Both loop orders add each entry's
    products in the same order, from zero (the narrow loop sums float32 products in float64)."""
    m, k = a.shape
    n = b.shape[1]
    if n < 8:  # narrow: a running sum per entry beats re-reading the output row
        for i in range(m):
            for j in range(n):
                acc = 0.0
                for p in range(k):
                    acc += a[i, p] * b[p, j]
                out[i, j] = acc
        return
    for i in range(m):
        for j in range(n):
            out[i, j] = 0
        for p in range(k):
            aip = a[i, p]
            for j in range(n):
                out[i, j] += aip * b[p, j]


def blas_layout(s0, s1, rows, cols, item):  # type: ignore[no-untyped-def]
    """How BLAS reads a row-major matrix with byte strides ``s0``, ``s1`` as the column-major
    ``rows`` x ``cols`` matrix that is its transpose: (``ord('n')`` or ``ord('t')``, leading
    dimension), with a leading dimension of 0 if it cannot."""
    if s1 == item and s0 >= rows * item and s0 % item == 0:  # contiguous rows: read as they are
        return 110, s0 // item
    if s0 == item and s1 >= cols * item and s1 % item == 0:  # contiguous columns: read transposed
        return 116, s1 // item
    return 110, 0


def new_array(shape, dtype):  # type: ignore[no-untyped-def]
    """``np.empty``, for kernels run as Python; compiled kernels get ``runtime.new_array`` in its place
    (``intrinsics``), which spares Numba a compile of ``np.empty`` for each ndim and dtype."""
    return np.empty(shape, dtype)


def blas_readable(x):  # type: ignore[no-untyped-def]
    """Kernel: the matrix ``x`` if BLAS can read it as it is, else a C-contiguous copy (``c_copy``)."""
    if blas_layout(x.strides[0], x.strides[1], x.shape[1], x.shape[0], x.itemsize)[1] != 0:
        return x
    return c_copy(x)


def c_layout(x):  # type: ignore[no-untyped-def]
    """``x`` itself, for kernels run as Python; compiled kernels get ``runtime.c_layout`` in its place,
    which types an array found C-contiguous as such."""
    return x


def c_contiguous(x):  # type: ignore[no-untyped-def]
    """Kernel: the matrix ``x`` typed as C-contiguous: itself if it is empty or its rows are contiguous
    and adjacent, else a copy (``c_copy``)."""
    rows, cols = x.shape
    item = x.itemsize
    if rows == 0 or cols == 0 or (cols == 1 or x.strides[1] == item) and (rows == 1 or x.strides[0] == cols * item):
        return c_layout(x)
    return c_copy(x)


def c_copy(x):  # type: ignore[no-untyped-def]
    """Kernel: a C-contiguous copy of the matrix ``x``, copied in a loop (with Numba's
    ``np.ascontiguousarray`` ``blas_readable`` took twice as long to compile, 0.36 against 0.18 s)."""
    copy = new_array(x.shape, x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            copy[i, j] = x[i, j]
    return copy


def blas_gemm(alpha, a, b, beta, out):  # type: ignore[no-untyped-def]
    """Kernel: out = alpha * (a @ b) + beta * out by BLAS, if BLAS can read the arrays as they are (a
    transposed view is read transposed, without a copy); returns whether it did. BLAS is
    column-major: out's memory holds out.T, which is b.T @ a.T. Products of more than ``BLAS_PIECE``
    multiply-adds, up to ``BLAS_PIECES`` times that, are computed in pieces (``blas_pieces``); BLAS
    fails only when it cannot be loaded, so at the first piece, before anything is written."""
    m, k = a.shape
    n = b.shape[1]
    item = out.itemsize
    trans_out, ld_out = blas_layout(out.strides[0], out.strides[1], n, m, item)  # BLAS writes rows as they are
    trans_b, ld_b = blas_layout(b.strides[0], b.strides[1], n, k, item)
    trans_a, ld_a = blas_layout(a.strides[0], a.strides[1], k, m, item)
    if trans_out != 110 or ld_out == 0 or ld_a == 0 or ld_b == 0:
        return False
    axis, width = blas_pieces(m, k, n)
    # each piece starts this many elements further into a, b and out (the strides are positive)
    step_a = (a.strides[0] if axis == 0 else a.strides[1] if axis == 1 else 0) // item
    step_b = (0 if axis == 0 else b.strides[0] if axis == 1 else b.strides[1]) // item
    step_out = (out.strides[0] if axis == 0 else 0 if axis == 1 else out.strides[1]) // item
    length = m if axis == 0 else k if axis == 1 else n
    piece_beta = beta
    for start in range(0, length, width):
        size = min(width, length - start)
        if xgemm(trans_b, trans_a, size if axis == 2 else n, size if axis == 0 else m,  # noqa: F821
                 size if axis == 1 else k, alpha, b, start * step_b, ld_b, a, start * step_a, ld_a,
                 piece_beta, out, start * step_out, ld_out) != 0:
            return False
        if axis == 1:  # pieces of the inner dimension after the first add to out
            piece_beta = 1.0
    return True


def blas_pieces(m, k, n):  # type: ignore[no-untyped-def]
    """How ``blas_gemm`` cuts an m x k by k x n product: (axis, width), the axis being 0 for out's
    rows, 1 for the inner dimension, 2 for out's columns, in pieces of ``width`` along it. A product
    of more than ``BLAS_PIECE`` multiply-adds, up to ``BLAS_PIECES`` times that, is cut along its
    longest axis into the fewest pieces of at most ``BLAS_PIECE``, as even as they can be; any
    other is one piece (axis 2, width n)."""
    total = m * k * n
    if total <= BLAS_PIECE or total > BLAS_PIECES * BLAS_PIECE:
        return 2, n
    longest = max(m, k, n)
    axis = 2 if n == longest else (1 if k == longest else 0)
    count = -(-longest // (BLAS_PIECE // (total // longest)))
    return axis, -(-longest // count)


blas_gemm.helpers = (blas_layout, blas_pieces)  # type: ignore[attr-defined]  # kernels it calls by name (jit.jit_kernel)
blas_gemm.intrinsics = ("xgemm",)  # type: ignore[attr-defined]  # runtime's, bound by jit.jit_kernel (runtime imports Numba)
c_copy.intrinsics = ("new_array",)  # type: ignore[attr-defined]
blas_readable.helpers = (blas_layout, c_copy)  # type: ignore[attr-defined]
c_contiguous.helpers = (c_copy,)  # type: ignore[attr-defined]
c_contiguous.intrinsics = ("c_layout",)  # type: ignore[attr-defined]
dot_mm.helpers = (blas_gemm, blas_readable, c_contiguous, mm_loops)  # type: ignore[attr-defined]
dot_mm.intrinsics = ("any_layout",)  # type: ignore[attr-defined]  # one compile of each helper for all layouts
dot_mm.calls_blas = True  # type: ignore[attr-defined]  # compile_numba loads the BLAS bindings up front


def gemm(alpha, a, b, beta, out):  # type: ignore[no-untyped-def]
    """Kernel: out = alpha * (a @ b) + beta * out for matrices (the caller checked the shapes): BLAS
    above ``BLAS_THRESHOLD`` multiply-adds when it can read the arrays as they are (``blas_gemm``),
    else loops. A zero ``alpha`` (a run-time scale) takes the loops, which keep a nan or inf of the
    product as the graph would: reference BLAS skips the product then (the OpenBLAS that NumPy and
    SciPy ship here does not)."""
    m, k = a.shape
    n = b.shape[1]
    if m * n * k > BLAS_THRESHOLD and alpha != 0 and \
            blas_gemm(alpha, any_layout(a), any_layout(b), beta, any_layout(out)):  # noqa: F821
        return
    for i in range(m):
        for j in range(n):
            out[i, j] *= beta
        for p in range(k):
            aip = alpha * a[i, p]
            for j in range(n):
                out[i, j] += aip * b[p, j]


gemm.helpers = (blas_gemm,)  # type: ignore[attr-defined]
gemm.intrinsics = ("any_layout",)  # type: ignore[attr-defined]
gemm.calls_blas = True  # type: ignore[attr-defined]


def dot_vm(a, b, out):  # type: ignore[no-untyped-def]
    """Kernel: out = a @ b for a vector and a matrix, in the loops of ``dot_mm``: outputs narrower
    than 8 keep a running sum per entry (in float64 for floats, int64 for integers)."""
    k, n = b.shape
    if a.shape[0] != k:
        return
    if n < 8:  # narrow: a running sum per entry beats re-reading the output
        for j in range(n):
            acc = 0
            for p in range(k):
                acc += a[p] * b[p, j]
            out[j] = acc
        return
    for j in range(n):
        out[j] = 0
    for p in range(k):
        ap = a[p]
        for j in range(n):
            out[j] += ap * b[p, j]


@_reassociating
def dot_mv(a, b, out):  # type: ignore[no-untyped-def]
    """Kernel: out = a @ b for a matrix and a vector."""
    m, k = a.shape
    if b.shape[0] != k:
        return
    for i in range(m):
        acc = 0
        for p in range(k):
            acc += a[i, p] * b[p]
        out[i] = acc


def batched_mm(a, b, out):  # type: ignore[no-untyped-def]
    """Kernel: out[s] = a[s] @ b[s]."""
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        return
    for s in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(b.shape[2]):
                out[s, i, j] = 0
            for p in range(a.shape[2]):
                aip = a[s, i, p]
                for j in range(b.shape[2]):
                    out[s, i, j] += aip * b[s, p, j]


# ---------------------------------------------------------------------------------------------
def dot(a: Any, b: Any) -> Variable:
    """NumPy's ``dot``: scalars multiply, vectors/matrices use Dot, higher ranks contract the last
    axis of ``a`` with the second-to-last of ``b``."""
    a, b = as_variable(a), as_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return m.mul(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return Dot()(a, b)  # type: ignore[no-any-return]
    return tensordot(a, b, [[a.ndim - 1], [max(b.ndim - 2, 0)]])


def outer(x: Any, y: Any) -> Variable:
    """Outer product of two vectors (inputs of higher rank are flattened first)."""
    from .shape import flatten

    x, y = as_variable(x), as_variable(y)
    x = flatten(x) if x.ndim != 1 else x
    y = flatten(y) if y.ndim != 1 else y
    return m.mul(dimshuffle(x, (0, "x")), dimshuffle(y, ("x", 0)))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Variable:
    """Sum products over the given axes, as ``numpy.tensordot`` (composed of reshapes and Dot)."""
    a, b = as_variable(a), as_variable(b)
    if isinstance(axes, (int, np.integer)):
        axes_a = list(range(a.ndim - axes, a.ndim))
        axes_b = list(range(axes))
    else:
        axes_a, axes_b = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
    axes_a = [int(x) % a.ndim for x in axes_a]
    axes_b = [int(x) % b.ndim for x in axes_b]
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: {len(axes_a)} axes of a against {len(axes_b)} axes of b")
    free_a = [d for d in range(a.ndim) if d not in axes_a]
    free_b = [d for d in range(b.ndim) if d not in axes_b]
    a2 = _to_matrix(dimshuffle(a, free_a + axes_a), len(free_a))
    b2 = _to_matrix(dimshuffle(b, axes_b + free_b), len(axes_b))
    out = Dot()(a2, b2)
    shape = [shape_i(a, d) for d in free_a] + [shape_i(b, d) for d in free_b]
    bcast = tuple(a.broadcastable[d] for d in free_a) + tuple(b.broadcastable[d] for d in free_b)
    return reshape(out, tuple(shape), broadcastable=bcast) if shape else reshape(out, ())


def _to_matrix(x: Variable, n_rows_dims: int) -> Variable:
    """``x`` as a matrix whose rows are its first ``n_rows_dims`` axes (``x`` itself when it is one
    already: a weight matrix's gradient is then a bare matrix product, as the gemm rewrite looks for)."""
    if x.ndim == 2 and n_rows_dims == 1:
        return x
    rows: Any = 1
    for d in range(n_rows_dims):
        rows = m.mul(rows, shape_i(x, d))
    cols: Any = 1
    for d in range(n_rows_dims, x.ndim):
        cols = m.mul(cols, shape_i(x, d))
    return reshape(x, (rows, cols))


def batched_dot(a: Any, b: Any) -> Variable:
    """Product of matching slices along the first axis: ``out[i] = dot(a[i], b[i])``.

    ``a`` and ``b`` may be 2-d (a batch of vectors) or 3-d (a batch of matrices).
    """
    a, b = as_variable(a), as_variable(b)
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise TypeError(f"batched_dot takes 2-d or 3-d tensors, got {a.describe()} and {b.describe()}")
    a3 = dimshuffle(a, (0, "x", 1)) if a.ndim == 2 else a
    b3 = dimshuffle(b, (0, 1, "x")) if b.ndim == 2 else b
    out = BatchedDot()(a3, b3)
    keep: Sequence[int] = [0] + ([1] if a.ndim == 3 else []) + ([2] if b.ndim == 3 else [])
    return dimshuffle(out, tuple(keep))
