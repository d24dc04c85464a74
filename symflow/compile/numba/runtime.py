"""Run-time support: what generated modules import, and the memory allocator's settings."""

from __future__ import annotations

import ctypes
import functools
import importlib
import math
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from ...config import config
from ...types import TensorType
from ..py_backend import check_results

# glibc serves blocks above M_MMAP_THRESHOLD with fresh pages from the system and returns free
# memory above M_TRIM_THRESHOLD at the top of the heap after each free. Its defaults adapt only
# up to the largest block seen, so a function whose temporaries are large (a minibatch's logits,
# 11 MB each) gets its memory back from the system, and takes a page fault per 4 KiB, on every
# call: 36% of the minibatch language model's time, measured. Fixed limits keep freed blocks for
# the next call: 32 MiB is glibc's largest mmap threshold; 128 MiB of free memory may stay held.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
TRIM_THRESHOLD_BYTES = 128 * 2**20
MMAP_THRESHOLD_BYTES = 32 * 2**20
_GLIBC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
_allocator_set = False


@functools.cache  # platform.libc_ver reads the interpreter's binary; every compile asks
def _on_glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_memory(libc: Any = None) -> bool:
    """Set glibc's trim and mmap thresholds (once per process; see above). Nothing happens off
    glibc, with ``config.keep_freed_memory`` false, or when the environment already sets malloc's
    thresholds or tunables. Returns whether the thresholds were set."""
    global _allocator_set
    if _allocator_set or not config.keep_freed_memory or any(v in os.environ for v in _GLIBC_VARIABLES):
        return False
    if libc is None:
        if not _on_glibc():
            return False
        libc = ctypes.CDLL(None)
    mmap_set = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)  # 1 on success
    trim_set = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    _allocator_set = bool(mmap_set and trim_set)
    return _allocator_set


def perform_fallback(module: str, cls: str, props: tuple[Any, ...],
                     input_types: tuple[tuple[str, tuple[bool, ...]], ...]) -> Callable[..., tuple[Any, ...]]:
    """A callable running an op's NumPy implementation, for ops without Numba code.

    The op is rebuilt from its class and props, so generated modules can recreate it in any
    process; the compiled code calls it in Numba's object mode.
    """
    try:
        op = getattr(importlib.import_module(module), cls)(*props)
        node = op.make_node(*[TensorType(dtype, bcast)() for dtype, bcast in input_types])
    except Exception as exc:  # the user's code, not a damaged cache: the caller falls back, keeping the cache
        from .codegen import NoNumbaImplementation

        raise NoNumbaImplementation(f"{module}.{cls}{props!r} could not be rebuilt to run in object mode "
                                    f"({type(exc).__name__}: {exc})") from exc

    def run(*args: Any) -> tuple[Any, ...]:
        values = [np.asarray(a) for a in args]
        outs = op.perform(node, values)
        check_results(node, outs)  # object mode would read a wrong dtype or ndim as the declared one
        return tuple(_fresh(o, values) if o.ndim else o[()] for o in outs)

    return run


def _fresh(result: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """An object-mode result as compiled code may own it: C-contiguous, and a copy if it may share
    memory with an input (a ``perform`` may return its input, say a shared variable updated later)."""
    result = np.ascontiguousarray(result)
    return result.copy() if any(np.may_share_memory(result, v) for v in inputs) else result


@intrinsic
def step_row(typingctx: Any, buffer: Any, index: Any) -> Any:
    """``buffer[index]`` (``0 <= index < len(buffer)``, unchecked) as a view that holds no reference.

    Loops read and write their buffers through one row view per step. Numba counts references
    atomically, about 12 ns per view at the main function's optimisation level. A row used only
    during its step needs no reference: the loop keeps its buffer alive (see ``CodeGen.alloc``).
    It must not escape the step; changing this code needs a codegen ``VERSION`` bump.
    """
    if not isinstance(buffer, types.Array) or buffer.ndim < 2 or not isinstance(index, types.Integer):
        return None
    row_type = buffer.copy(ndim=buffer.ndim - 1, layout="C" if buffer.layout == "C" else "A")

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        parent = context.make_array(signature.args[0])(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, parent.shape)
        strides = cgutils.unpack_tuple(builder, parent.strides)
        offset = builder.mul(context.cast(builder, args[1], signature.args[1], types.intp), strides[0])
        start = builder.gep(builder.bitcast(parent.data, cgutils.voidptr_t), [offset])
        row = context.make_array(signature.return_type)(context, builder)
        context.populate_array(row, data=builder.bitcast(start, parent.data.type),
                               shape=cgutils.pack_array(builder, shape[1:]),
                               strides=cgutils.pack_array(builder, strides[1:]),
                               itemsize=parent.itemsize, meminfo=None, parent=None)
        return row._getvalue()

    return row_type(buffer, index), codegen


def _borrowed_c_array(context: Any, builder: Any, array_type: Any, data: Any, dims: list[Any]) -> Any:
    """LLVM value of a C-contiguous ``array_type`` over ``data`` with lengths ``dims``, holding no
    reference (no meminfo, no parent): whoever made ``data`` keeps it alive."""
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(array_type.dtype)))
    strides, stride = [], itemsize
    for n in reversed(dims):
        strides.insert(0, stride)
        stride = builder.mul(stride, n)
    out = context.make_array(array_type)(context, builder)
    context.populate_array(out, data=data, shape=cgutils.pack_array(builder, dims, ty=cgutils.intp_t),
                           strides=cgutils.pack_array(builder, strides, ty=cgutils.intp_t),
                           itemsize=itemsize, meminfo=None, parent=None)
    return out._getvalue()


# Subnormal floats (below 2.2e-308 in float64, 1.2e-38 in float32) make x86 arithmetic about 50
# times slower per operation. A momentum step's decay ``mu * v`` takes the velocity of a parameter
# that gets no gradient (an embedding row of a word not seen for a while) there in some thousands of
# steps, and it would stay subnormal for thousands more, every pass over it crawling. So the loops
# that write shared variables' new values in place store a subnormal result as a zero of its sign
# (``config.flush_subnormals``); the value then stays zero. It is a select on the result: no
# arithmetic on the subnormal, and no change of the CPU's floating-point mode (which would change
# comparisons and outputs too).


@intrinsic
def flush_subnormal(typingctx: Any, x: Any) -> Any:
    """``x``, or a zero of its sign when ``x`` is subnormal (NaN and infinities stay)."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        (value,) = args
        tiny = ir.Constant(value.type, float(np.finfo(np.float32 if x == types.float32 else np.float64).tiny))
        magnitude = builder.call(builder.module.declare_intrinsic("llvm.fabs", [value.type]), [value])
        copysign = builder.module.declare_intrinsic("llvm.copysign", [value.type],
                                                     ir.FunctionType(value.type, [value.type, value.type]))
        signed_zero = builder.call(copysign, [ir.Constant(value.type, 0.0), value])
        return builder.select(builder.fcmp_ordered("<", magnitude, tiny), signed_zero, value)

    return x(x), codegen


@intrinsic
def first_error(typingctx: Any, err: Any, failed: Any, code: Any) -> Any:
    """``code`` if ``failed`` and ``err`` is still 0, else ``err``: one check of a main function
    (``CodeGen.check``). One typed call, where ``err += (err == 0) * failed * code`` is four."""
    if not (isinstance(err, types.Integer) and isinstance(failed, types.Boolean) and isinstance(code, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        current, condition, new = (context.cast(builder, v, t, r) for v, t, r in
                                   zip(args, signature.args, (types.int64, types.boolean, types.int64), strict=True))
        unset = builder.icmp_signed("==", current, ir.Constant(current.type, 0))
        return builder.select(builder.and_(unset, condition), new, current)

    return types.int64(err, failed, code), codegen


@intrinsic
def first_unequal(typingctx: Any, err: Any, lhs: Any, rhs: Any, first_code: Any) -> Any:
    """``err`` if it is set, else ``first_code + k`` for the first ``k`` where ``lhs[k] != rhs[k]``,
    else 0: one call checks a run of dimension equalities (``CodeGen.fold_checks``). Straight-line
    code in its caller: as a kernel it was compiled once per length of the tuples (~0.1 s each)."""
    if not (isinstance(err, types.Integer) and isinstance(first_code, types.Integer)
            and isinstance(lhs, types.UniTuple) and isinstance(rhs, types.UniTuple) and lhs.count == rhs.count
            and isinstance(lhs.dtype, types.Integer) and isinstance(rhs.dtype, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        current = context.cast(builder, args[0], err, types.int64)
        code = context.cast(builder, args[3], first_code, types.int64)
        found = ir.Constant(current.type, 0)
        for k in reversed(range(lhs.count)):  # the first mismatch is selected last
            left = context.cast(builder, builder.extract_value(args[1], k), lhs.dtype, types.int64)
            right = context.cast(builder, builder.extract_value(args[2], k), rhs.dtype, types.int64)
            found = builder.select(builder.icmp_signed("!=", left, right),
                                   builder.add(code, ir.Constant(code.type, k)), found)
        unset = builder.icmp_signed("==", current, ir.Constant(current.type, 0))
        return builder.select(unset, found, current)

    return types.int64(err, lhs, rhs, first_code), codegen


def _nan_extremum(llvm_name: str, name: str) -> Callable[..., Any]:
    """Typing and codegen of a float maximum or minimum by LLVM's NaN-propagating ``llvm_name``."""
    def typer(typingctx: Any, a: Any, b: Any) -> Any:
        if not (isinstance(a, types.Float) and isinstance(b, types.Float)):
            return None
        wide = a if a.bitwidth >= b.bitwidth else b

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            values = [context.cast(builder, v, t, wide) for v, t in zip(args, signature.args, strict=True)]
            kind = values[0].type
            extremum = builder.module.declare_intrinsic(llvm_name, [kind], ir.FunctionType(kind, [kind, kind]))
            return builder.call(extremum, values)

        return wide(a, b), codegen

    typer.__name__ = typer.__qualname__ = name
    return typer


#: The larger (smaller) of two floats, NaN if either is NaN, as NumPy's. A loop folding a row
#: into its maximum with these vectorises; with ``max()`` or ``a if a > b else b`` it stays scalar.
nan_max = intrinsic(_nan_extremum("llvm.maximum", "nan_max"))
nan_min = intrinsic(_nan_extremum("llvm.minimum", "nan_min"))


@intrinsic
def float_from_bits(typingctx: Any, bits: Any) -> Any:
    """The float64 whose bit pattern is the int64 ``bits``: ``2.0 ** k`` is ``(k + 1023) << 52``.
    A loop building powers of two this way vectorises (an exp of many values, ``ops.nnet``)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        value = context.cast(builder, args[0], signature.args[0], types.int64)
        return builder.bitcast(value, context.get_value_type(types.float64))

    return types.float64(bits), codegen


def _first_argument(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    """Codegen of an intrinsic whose value is its first argument, retyped: data, shape and strides
    are unchanged, only the type a kernel called with it is compiled for."""
    return impl_ret_borrowed(context, builder, signature.return_type, args[0])


def _as_layout(layout: str, name: str) -> Callable[..., Any]:
    """Typing of ``x`` itself typed as an array of ``layout`` (``_first_argument``)."""
    def typer(typingctx: Any, x: Any) -> Any:
        if not isinstance(x, types.Array):
            return None
        return x.copy(layout=layout)(x), _first_argument

    typer.__name__ = typer.__qualname__ = name
    return typer


#: ``x`` typed as an array of any layout: a kernel that only reads strides and data pointers
#: (``ops.dot.blas_gemm``) is then compiled once, not once per layout of its callers' arrays.
any_layout = intrinsic(_as_layout("A", "any_layout"))
#: ``x`` typed as C-contiguous, for an array its caller found to be (``ops.dot.c_contiguous``):
#: one compile of a loop kernel serves every layout.
c_layout = intrinsic(_as_layout("C", "c_layout"))


@intrinsic
def layout_of(typingctx: Any, view: Any, base: Any) -> Any:
    """``view`` typed with ``base``'s layout: for a view that only adds or drops axes of length 1
    (``ops.shape.DimShuffle``), whose elements are in ``base``'s order. Numba types ``x[None, :]`` as
    of any layout, so kernels taking it were compiled again for that layout, and loop slower on it."""
    if not (isinstance(view, types.Array) and isinstance(base, types.Array)):
        return None
    return view.copy(layout=base.layout)(view, base), _first_argument


@intrinsic
def xgemm(typingctx: Any, transa: Any, transb: Any, m: Any, n: Any, k: Any, alpha: Any, a: Any, offset_a: Any,
          lda: Any, b: Any, offset_b: Any, ldb: Any, beta: Any, c: Any, offset_c: Any, ldc: Any) -> Any:
    """BLAS's column-major ``c = alpha * op(a) @ op(b) + beta * c`` (``?gemm``) through the binding
    Numba's products use (``numba_xxgemm``): ``transa``/``transb`` are ``ord('n')`` or ``ord('t')``,
    each matrix starts ``offset_*`` elements after its array's data pointer. Returns BLAS's status
    (0: done). The caller checks shapes, offsets and leading dimensions (``ops.dot.blas_gemm``);
    float32 and float64 arrays only."""
    arrays = (a, b, c)
    if not (all(isinstance(x, types.Array) and x.dtype in (types.float32, types.float64) for x in arrays)
            and a.dtype == b.dtype == c.dtype):
        return None
    dtype = c.dtype

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        char, intp, voidp = ir.IntType(8), cgutils.intp_t, cgutils.voidptr_t
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, voidp, voidp, intp,
                                                 voidp, intp, voidp, voidp, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        names = ("transa", "transb", "m", "n", "k", "alpha", "a", "offset_a", "lda", "b", "offset_b", "ldb", "beta",
                 "c", "offset_c", "ldc")
        values = dict(zip(names, zip(args, signature.args)))

        def integer(name: str, ty: Any) -> Any:
            value, from_type = values[name]
            return builder.trunc(context.cast(builder, value, from_type, types.int64), ty) if ty is char \
                else context.cast(builder, value, from_type, types.intp)

        def scalar_slot(name: str) -> Any:
            value, from_type = values[name]
            slot = cgutils.alloca_once_value(builder, context.cast(builder, value, from_type, dtype))
            return builder.bitcast(slot, voidp)

        def data(name: str) -> Any:
            value, array_type = values[name]
            start = context.make_array(array_type)(context, builder, value).data
            return builder.bitcast(builder.gep(start, [integer(f"offset_{name}", intp)]), voidp)

        kind = ir.Constant(char, ord("d" if dtype == types.float64 else "s"))
        return builder.call(fn, [kind, integer("transa", char), integer("transb", char), integer("m", intp),
                                 integer("n", intp), integer("k", intp), scalar_slot("alpha"), data("a"),
                                 integer("lda", intp), data("b"), integer("ldb", intp), scalar_slot("beta"),
                                 data("c"), integer("ldc", intp)])

    return types.int32(transa, transb, m, n, k, alpha, a, offset_a, lda, b, offset_b, ldb, beta, c, offset_c,
                       ldc), codegen


# Elementwise sigmoid and tanh in straight-line code that LLVM vectorises (Numba's math.exp and
# math.tanh are calls into libm, one element at a time): on 30 elements, 200 -> 89 ns for the
# sigmoid, within 2 ulp of the exact values, and 3 ulp for tanh (measured here). v = k ln2 + r with
# |r| <= ln2 / 2, and exp(r) - 1 by its Taylor series to degree 13, evaluated by Estrin's scheme:
# its dependency chains are shorter than Horner's (30 sigmoids: 89 against 112 ns; 4: 13 against 18).
_C = tuple(1.0 / math.factorial(n + 1) for n in range(13))  # exp(r) - 1 = r * sum(_C[n] * r**n)
_TWO_TO_MINUS_64 = 2.0**-64  # 2**k is built as 2**(k + 64) * 2**-64, so that k down to -1086 stays exact


@numba.njit(inline="always", error_model="numpy")
def _exp_parts(v: float) -> tuple[float, float]:
    """For v <= 0: ``(2**k, exp(r) - 1)`` with ``v = k ln2 + r`` (v below -746 is taken as -746,
    whose exp is below the smallest float): ``exp(v) = 2**k * (exp(r) - 1) + 2**k``."""
    w = max(v, -746.0)
    k = math.floor(w * 1.4426950408889634 + 0.5)
    r = (w - k * 0.6931471803691238) - k * 1.9082149292705877e-10  # ln2 in two parts: r is exact
    r2 = r * r
    r4 = r2 * r2
    low = (_C[0] + _C[1] * r) + (_C[2] + _C[3] * r) * r2 + ((_C[4] + _C[5] * r) + (_C[6] + _C[7] * r) * r2) * r4
    high = (_C[8] + _C[9] * r) + (_C[10] + _C[11] * r) * r2 + _C[12] * r4
    return float_from_bits((np.int64(k) + 1023 + 64) << 52) * _TWO_TO_MINUS_64, (low + high * (r4 * r4)) * r


@numba.njit(inline="always", error_model="numpy")
def sigmoid(x: float) -> float:
    """``1 / (1 + exp(-x))``, through ``exp(-|x|)``, which cannot overflow."""
    scale, expm1_r = _exp_parts(-abs(x))
    e = scale * expm1_r + scale  # exp(-|x|)
    return (1.0 if x >= 0 else e) / (1.0 + e)


@numba.njit(inline="always", error_model="numpy")
def tanh(x: float) -> float:
    """``tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|))`` with x's sign; expm1 keeps small x exact."""
    scale, expm1_r = _exp_parts(-2.0 * abs(x))
    em = scale * expm1_r + (scale - 1.0)  # exp(-2|x|) - 1
    return math.copysign(-em / (2.0 + em), x)


@intrinsic(prefer_literal=True)
def array_at(typingctx: Any, table: Any, position: Any, ndim: Any, dtype: Any) -> Any:
    """The C-contiguous array of ``dtype`` and ``ndim`` dimensions whose address and lengths are
    ``table[position:position + 1 + ndim]`` (``address_table``), holding no reference: the caller
    keeps the arrays alive. Unboxing one table costs less than unboxing each array."""
    if not (isinstance(table, types.Array) and table.dtype == types.int64 and isinstance(position, types.Integer)
            and isinstance(ndim, types.IntegerLiteral) and isinstance(dtype, types.NumberClass)):
        return None
    array_type = types.Array(dtype.instance_type, ndim.literal_value, "C")

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        entries = builder.bitcast(context.make_array(signature.args[0])(context, builder, args[0]).data,
                                  cgutils.intp_t.as_pointer())
        start = context.cast(builder, args[1], signature.args[1], types.intp)
        at = [builder.load(builder.gep(entries, [builder.add(start, context.get_constant(types.intp, k))]))
              for k in range(1 + array_type.ndim)]
        data = builder.inttoptr(at[0], context.get_data_type(array_type.dtype).as_pointer())
        return _borrowed_c_array(context, builder, array_type, data, at[1:])

    return array_type(table, position, ndim, dtype), codegen


def address_table(arrays: list[np.ndarray], previous: tuple[np.ndarray, list[np.ndarray]] | None = None) -> np.ndarray:
    """For each C-contiguous array, its data address and then its lengths (read by ``array_at``).
    Given ``previous`` (a table and its arrays, of the same dimensions), only the entries of the
    arrays that are not the same objects are read again (a table in use is never changed)."""
    if previous is None:
        entries: list[int] = []
        for a in arrays:
            entries.append(a.__array_interface__["data"][0])
            entries.extend(a.shape)
        return np.array(entries, dtype=np.int64)
    old_table, old_arrays = previous
    table = old_table.copy()
    position = 0
    for a, old in zip(arrays, old_arrays, strict=True):
        if a is not old:
            table[position] = a.__array_interface__["data"][0]
            table[position + 1:position + 1 + a.ndim] = a.shape
        position += 1 + a.ndim
    return table


#: temporaries up to this size live in scratch memory. Larger ones are allocated and freed as usual:
#: allocating takes little of the time spent on them, and memory freed early in a call is reused by
#: later temporaries, which keeps it in cache. The GRU language model ran about 5% slower with all
#: its temporaries in scratch memory, about 1% slower with those up to 16 KiB, and the same with
#: those up to 2 KiB (alternating runs); the parity model's are all below 1 KiB.
SCRATCH_ARRAY_LIMIT_BYTES = 2 * 2**10


@intrinsic
def scratch_view(typingctx: Any, scratch: Any, offset: Any, shape: Any, dtype: Any) -> Any:
    """An array of ``shape`` and ``dtype`` over ``scratch`` (bytes) from byte ``offset`` (unchecked),
    holding no reference: the caller of the main function keeps the scratch memory alive."""
    if not (isinstance(scratch, types.Array) and scratch.dtype == types.uint8 and isinstance(offset, types.Integer)
            and isinstance(shape, types.UniTuple) and isinstance(dtype, types.NumberClass)):
        return None
    array_type = types.Array(dtype.instance_type, shape.count, "C")

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        parent = context.make_array(signature.args[0])(context, builder, args[0])
        offset = context.cast(builder, args[1], signature.args[1], types.intp)
        data = builder.gep(builder.bitcast(parent.data, cgutils.voidptr_t), [offset])
        data = builder.bitcast(data, context.get_data_type(array_type.dtype).as_pointer())
        return _borrowed_c_array(context, builder, array_type, data, cgutils.unpack_tuple(builder, args[2]))

    return array_type(scratch, offset, shape, dtype), codegen


@intrinsic
def scratch_offset(typingctx: Any, scratch: Any) -> Any:
    """The running offset of a call's scratch memory, kept in its first 8 bytes."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.load(builder.bitcast(data, cgutils.intp_t.as_pointer()))

    return types.intp(scratch), codegen


@intrinsic
def set_scratch_offset(typingctx: Any, scratch: Any, offset: Any) -> Any:
    """Store the running offset of a call's scratch memory."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        value = context.cast(builder, args[1], signature.args[1], types.intp)
        builder.store(value, builder.bitcast(data, cgutils.intp_t.as_pointer()))
        return context.get_dummy_value()

    return types.none(scratch, offset), codegen


@intrinsic
def new_array(typingctx: Any, shape: Any, dtype: Any) -> Any:
    """``np.empty(shape, dtype)`` for a tuple of ints and a NumPy scalar type or an array's dtype, by
    Numba's own allocation code. Numba compiles ``np.empty``'s implementation as a function of its
    own for each ndim and dtype (six of them, 0.3-0.4 s of the LSTM language model's cold build)."""
    if isinstance(dtype, types.NumberClass):
        element = dtype.instance_type
    elif isinstance(dtype, types.DType):
        element = dtype.dtype
    else:
        return None
    if not (isinstance(shape, types.UniTuple) and isinstance(shape.dtype, types.Integer)):
        return None
    array_type = types.Array(element, shape.count, "C")

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        from numba.np.arrayobj import _empty_nd_impl

        dims = [context.cast(builder, d, shape.dtype, types.intp) for d in cgutils.unpack_tuple(builder, args[0])]
        for d in dims:
            with builder.if_then(builder.icmp_signed("<", d, d.type(0)), likely=False):
                context.call_conv.return_user_exc(builder, ValueError, ("negative dimensions not allowed",))
        return _empty_nd_impl(context, builder, array_type, dims)._getvalue()

    return array_type(shape, dtype), codegen


SCRATCH_HEADER_BYTES = 64  # the running offset; arrays start after it, at 64-byte steps


def new_scratch(nbytes: int = SCRATCH_HEADER_BYTES) -> np.ndarray:
    """Scratch memory of ``nbytes`` (at least the header), its offset at the start."""
    scratch = np.empty(max(nbytes, SCRATCH_HEADER_BYTES), np.uint8)
    scratch[:8].view(np.intp)[0] = SCRATCH_HEADER_BYTES
    return scratch


def scratch_finish(scratch: np.ndarray) -> int:
    """End a call's use of its scratch memory: how many bytes it asked for (if more than it has, the
    later temporaries were allocated, and the wrapper gives the next call that much)."""
    needed = scratch_offset(scratch)
    set_scratch_offset(scratch, SCRATCH_HEADER_BYTES)
    return needed  # type: ignore[no-any-return]
