"""Products: dot (scalars, vectors, matrices, higher ranks), outer, tensordot, batched_dot:
values and dtypes against NumPy, shape errors, shapes and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.errors import ShapeError
from symflow.ops.dot import Dot, Gemm
from symflow.testing import strategies as sst

RNG = np.random.default_rng(0)
A, B, V, W = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2)), RNG.normal(size=4), RNG.normal(size=3)
X3, Y3 = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 4, 3))


def test_values_against_numpy(run: Any, check_infer_shape: Any) -> None:
    a, b, v, w = T.matrix("a"), T.matrix("b"), T.vector("v"), T.vector("w")
    x, y, s = T.tensor3("x"), T.tensor3("y"), T.scalar("s")
    cases = [
        ("matrix . matrix", T.dot(a, b), A @ B),
        ("matrix . vector", T.dot(a, v), A @ V),
        ("vector . matrix", w.dot(a), W @ A),
        ("vector . vector", T.dot(v, v), V @ V),
        ("@ operator", a @ b, A @ B),
        ("scalar . matrix", T.dot(s, a), 2.0 * A),
        ("3-d . matrix", T.dot(x, b), np.dot(X3, B)),
        ("3-d . 3-d", T.dot(x, y), np.dot(X3, Y3)),
        ("matrix . 3-d", T.dot(a, y), np.dot(A, Y3)),
        ("x.dot(W).T", a.dot(b).T, (A @ B).T),
        ("outer", T.outer(v, w), np.outer(V, W)),
        ("outer of matrices", T.outer(a, w), np.outer(A, W)),
        ("tensordot axes=2", T.tensordot(x, y.dimshuffle(2, 1, 0), 2), np.tensordot(X3, Y3.transpose(2, 1, 0), 2)),
        ("tensordot pairs", T.tensordot(x, y, [[1, 2], [2, 1]]), np.tensordot(X3, Y3, [[1, 2], [2, 1]])),
        ("tensordot axes=1", T.tensordot(a, b, 1), np.tensordot(A, B, 1)),
        ("tensordot axes=0", T.tensordot(v, w, 0), np.tensordot(V, W, 0)),
        ("tensordot single axes", T.tensordot(x, a, [1, 0]), np.tensordot(X3, A, [1, 0])),
        ("batched_dot 3-d", T.batched_dot(x, y), np.matmul(X3, Y3)),
        ("batched_dot 2-d", T.batched_dot(a, a), np.einsum("bi,bi->b", A, A)),
        ("batched_dot 2-d . 3-d", T.batched_dot(x[:, 0], y), np.einsum("bi,bij->bj", X3[:, 0], Y3)),
        ("batched_dot 3-d . 2-d", T.batched_dot(x, y[:, :, 0]), np.einsum("bij,bj->bi", X3, Y3[:, :, 0])),
    ]
    inputs = [a, b, v, w, x, y, s]
    values = [A, B, V, W, X3, Y3, 2.0]
    outputs = [c[1] for c in cases]
    for (label, out, expected), got in zip(cases, run(inputs, outputs, *values), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=label)
        assert out.ndim == np.ndim(expected), label
    check_infer_shape(inputs, outputs, *values)


def test_dtypes(run: Any) -> None:
    f, d, i = T.fmatrix("f"), T.dmatrix("d"), T.imatrix("i")
    outputs = [T.dot(f, f), T.dot(f, d), T.dot(i, f), f @ d]
    assert [o.dtype for o in outputs] == ["float32", "float64", "float64", "float64"]
    ones = [np.ones((2, 2), "float32"), np.ones((2, 2)), np.ones((2, 2), "int32")]
    results = run([f, d, i], outputs, *ones)
    assert [r.dtype.name for r in results] == [o.dtype for o in outputs]


def test_integer_dot(run: Any) -> None:
    i, v = T.imatrix("i"), T.lvector("v")
    assert T.dot(i, i).dtype == "int32"
    a = np.arange(6, dtype="int32").reshape(2, 3)
    result = run([i], T.dot(i, i.T), a)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, a @ a.T)
    w = np.array([3, -1, 2**30], dtype="int64")  # w @ w is exact only in integers (beyond 2**53)
    got = run([i, v], [T.dot(i, v), T.dot(v, i.T), T.dot(v, v)], a, w)
    for value, expected in zip(got, [a @ w, w @ a.T, w @ w], strict=True):
        assert value.dtype == expected.dtype
        np.testing.assert_array_equal(value, expected)


def test_sum_kernels_may_reassociate_and_stay_accurate() -> None:
    """The kernels summing products are compiled with ``fastmath={'reassoc'}`` (vectorised sums),
    and stay as accurate as NumPy's BLAS on longer rows."""
    from symflow.compile.numba.jit import jit_kernel
    from symflow.ops.dot import dot_mv, dot_vv

    for kernel in (dot_vv, dot_mv):
        assert jit_kernel(kernel).targetoptions["fastmath"] == {"reassoc"}
    m, v = T.matrix("m"), T.vector("v")
    a, b = RNG.normal(size=(7, 301)), RNG.normal(size=301)
    got = sf.function([m, v], [T.dot(m, v), T.dot(v, v)], mode="numba")(a, b)
    np.testing.assert_allclose(got[0], a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], b @ b, rtol=1e-12)


def test_blas_products_run_in_a_helper_kernel() -> None:
    """``dot_mm`` calls BLAS through ``blas_gemm``, a kernel of its own (``helpers``): its compiled code
    reads the helper's dispatcher, while the module keeps the plain function for the NumPy backend."""
    from symflow.compile.numba.jit import KERNEL_OPTIONS, jit_kernel
    from symflow.ops import dot as dot_module

    compiled = jit_kernel(dot_module.dot_mm)
    helper = compiled.py_func.__globals__["blas_gemm"]
    assert helper is jit_kernel(dot_module.blas_gemm)
    assert helper.targetoptions["no_cpython_wrapper"] is KERNEL_OPTIONS["no_cpython_wrapper"]
    assert dot_module.blas_gemm.__module__ == dot_module.__name__ and not hasattr(dot_module.blas_gemm, "py_func")
    assert compiled.py_func.__code__ is dot_module.dot_mm.__code__
    a, b = T.matrix("a"), T.matrix("b")
    x, y = RNG.normal(size=(40, 30)), RNG.normal(size=(30, 30))  # above BLAS_THRESHOLD
    np.testing.assert_allclose(sf.function([a, b], a.dot(b), mode="numba")(x, y), x @ y, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matrix_products_of_every_size_and_layout(run: Any, dtype: str) -> None:
    """Narrow and wide products run in loops, those above ``BLAS_THRESHOLD`` multiply-adds in BLAS;
    operands may be transposed or reversed views."""
    from symflow.ops.dot import BLAS_THRESHOLD

    a, b = T.matrix("a", dtype=dtype), T.matrix("b", dtype=dtype)
    shapes = [(12, 1, 4), (5, 3, 2), (10, 30, 30), (1, 30, 120), (40, 30, 30)]
    assert 40 * 30 * 30 > BLAS_THRESHOLD >= max(m * k * n for m, k, n in shapes[:-1])
    products = [a.dot(b), a[::-1].dot(b.T.T), a.T.T.dot(b[::-1]), b.T.dot(a.T).T]
    for m, k, n in shapes:
        x, y = RNG.normal(size=(m, k)).astype(dtype), RNG.normal(size=(k, n)).astype(dtype)
        expected = [x @ y, x[::-1] @ y, x @ y[::-1], (y.T @ x.T).T]
        tolerance = 1e-12 if dtype == "float64" else 1e-5
        for got, want in zip(run([a, b], products, x, y), expected, strict=True):
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance, err_msg=str((m, k, n)))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_vector_matrix_products_narrow_and_wide(run: Any, dtype: str) -> None:
    """A vector times a matrix keeps a running sum per entry below 8 columns and adds rows of the
    matrix from 8 on; both (and a matrix times a vector) agree with NumPy on every layout, and integers
    stay exact."""
    v, m = T.vector("v", dtype=dtype), T.matrix("m", dtype=dtype)
    products = [v.dot(m), v[::-1].dot(m[::-1]), v.dot(m.T.T), m.T.dot(v)]
    for k, n in [(4, 1), (4, 4), (3, 7), (5, 8), (30, 30), (0, 3)]:
        if dtype == "int64":  # products beyond float64's 53 bits: exact only if summed in integers
            x, y = RNG.integers(-5, 5, size=k) * 2**52 + 1, RNG.integers(-5, 5, size=(k, n))
        else:
            x, y = RNG.normal(size=k).astype(dtype), RNG.normal(size=(k, n)).astype(dtype)
        expected = [x @ y, x[::-1] @ y[::-1], x @ y, y.T @ x]
        tolerance = 1e-12 if dtype == "float64" else 1e-5
        for got, want in zip(run([v, m], products, x, y), expected, strict=True):
            assert got.dtype == dtype and got.shape == (n,)
            if dtype == "int64":
                np.testing.assert_array_equal(got, want, err_msg=str((k, n)))
            else:
                np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance, err_msg=str((k, n)))


def test_shape_errors_name_the_shapes(run: Any) -> None:
    a, b, x, y = T.matrix("a"), T.matrix("b"), T.tensor3("x"), T.tensor3("y")
    with pytest.raises(ShapeError, match=r"\(2, 3\) and \(2, 3\)"):
        run([a, b], T.dot(a, b), np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ShapeError, match="batch"):
        run([x, y], T.batched_dot(x, y), np.ones((2, 3, 4)), np.ones((3, 4, 2)))
    with pytest.raises(TypeError, match="Dot"):
        Dot()(x, y)
    with pytest.raises(TypeError, match="batched_dot"):
        T.batched_dot(T.vector(), x)
    with pytest.raises(ValueError, match="axes"):
        T.tensordot(x, y, [[0, 1], [0]])


@given(data=st.data())
def test_gradients(verify_grads: Any, data: st.DataObject) -> None:
    n, k, m, b = (data.draw(st.integers(2, 4)) for _ in range(4))

    def arr(*shape: int) -> np.ndarray:
        return data.draw(sst.arrays("float64", shape, -2, 2))

    verify_grads({
        "matrix . matrix": (T.dot, [arr(n, k), arr(k, m)]),
        "matrix . vector": (T.dot, [arr(n, k), arr(k)]),
        "vector . matrix": (T.dot, [arr(k), arr(k, m)]),
        "vector . vector": (T.dot, [arr(k), arr(k)]),
        "3-d . matrix": (T.dot, [arr(b, n, k), arr(k, m)]),
        "3-d . 3-d": (T.dot, [arr(b, n, k), arr(m, k, n)]),
        "outer": (T.outer, [arr(n), arr(m)]),
        "tensordot": (lambda x, y: T.tensordot(x, y, [[1, 2], [2, 1]]), [arr(b, n, k), arr(m, k, n)]),
        "batched_dot": (T.batched_dot, [arr(b, n, k), arr(b, k, m)]),
        "batched_dot 2-d": (T.batched_dot, [arr(b, k), arr(b, k)]),
        "tanh(x.dot(W) + b)": (lambda x, w, c: T.tanh(x.dot(w) + c), [arr(n, k), arr(k, m), arr(m)]),
    })


def test_dot_of_a_3d_array_and_a_matrix_leaves_the_matrix_as_it_is(run: Any) -> None:
    """``dot(x, W)`` for a 3-d ``x`` (a layer applied at every step) reshapes ``x`` into rows but
    reads ``W`` as it is: ``W``'s gradient is one matrix product with no reshape around it (which
    the gemm rewrite of a momentum step needs)."""
    x, b = T.tensor3("x"), T.matrix("b")
    y = T.dot(x, b)
    readers = sorted(type(n.op).__name__ for n in sf.graph.toposort([y]) if b in n.inputs)
    assert readers == ["Dot", "ShapeI"]  # its values, and its column count for the result's shape
    gb = sf.grad((y * y).sum(), b)
    assert type(gb.owner.op) is Dot
    got_y, got_gb = run([x, b], [y, gb], X3, B)
    np.testing.assert_allclose(got_y, np.dot(X3, B), rtol=1e-12)
    np.testing.assert_allclose(got_gb, X3.reshape(-1, 4).T @ (2 * np.dot(X3, B)).reshape(-1, 2), rtol=1e-12)


def test_gradient_dtypes_follow_inputs() -> None:
    x, w = T.fmatrix("x"), T.dmatrix("w")
    gx, gw = sf.grad(T.dot(x, w).sum(), [x, w])
    assert (gx.dtype, gw.dtype) == ("float32", "float64")
    r = T.row("r")
    assert sf.grad(T.dot(r, w).sum(), r).broadcastable == (True, False)



@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gemm_values_of_every_size_and_layout(run: Any, dtype: str) -> None:
    """``Gemm(alpha, beta)(c, a, b)`` is ``beta * c + alpha * (a @ b)``, in loops and in BLAS (above
    ``BLAS_THRESHOLD`` multiply-adds), with transposed and reversed views as operands."""
    from symflow.ops.dot import BLAS_THRESHOLD

    c, a, b = (T.matrix(name, dtype=dtype) for name in "cab")
    gemm = Gemm(-0.5, 0.25)
    shapes = [(5, 3, 2), (12, 1, 4), (40, 30, 30), (30, 20, 200)]
    assert 12 * 1 * 4 <= BLAS_THRESHOLD < 40 * 30 * 30
    outputs = [gemm(c, a, b), gemm(c, a[::-1], b), gemm(c, a, b[::-1]), gemm(c.T, b.T, a.T).T]
    for m, k, n in shapes:
        x, y = RNG.normal(size=(m, k)).astype(dtype), RNG.normal(size=(k, n)).astype(dtype)
        z = RNG.normal(size=(m, n)).astype(dtype)
        products = [x @ y, x[::-1] @ y, x @ y[::-1], x @ y]
        tolerance = 1e-12 if dtype == "float64" else 1e-5
        for got, product in zip(run([c, a, b], outputs, z, x, y), products, strict=True):
            assert got.dtype == dtype
            np.testing.assert_allclose(got, 0.25 * z - 0.5 * product, rtol=tolerance, atol=tolerance,
                                       err_msg=str((m, k, n)))


def _gemm_kernel() -> Any:
    """The compiled ``gemm`` kernel behind a wrapper Python can call (kernels have none)."""
    import numba

    from symflow.compile.numba.jit import jit_kernel
    from symflow.ops.dot import gemm

    kernel = jit_kernel(gemm)

    @numba.njit
    def call(alpha: float, a: np.ndarray, b: np.ndarray, beta: float, out: np.ndarray) -> None:
        kernel(alpha, a, b, beta, out)

    return call


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gemm_kernel_reads_each_layout_or_falls_back_to_loops(dtype: str) -> None:
    """BLAS reads row-major and transposed operands and an output whose rows are further apart
    than its width; reversed, strided and overlapping operands (which BLAS would reject) go to the
    loops. Each gives NumPy's values."""
    from numpy.lib.stride_tricks import as_strided

    from symflow.ops.dot import blas_layout

    def windows(flat: np.ndarray, shape: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
        return as_strided(flat, shape, strides, writeable=False)

    call = _gemm_kernel()
    x, y = RNG.normal(size=(30, 40)).astype(dtype), RNG.normal(size=(40, 50)).astype(dtype)
    wide = RNG.normal(size=(30, 70)).astype(dtype)
    item = x.itemsize
    assert blas_layout(*x.strides, 40, 30, item) == (ord("n"), 40)  # rows contiguous
    assert blas_layout(*np.asfortranarray(x).strides, 40, 30, item) == (ord("t"), 30)  # columns contiguous
    assert blas_layout(*x[::-1].strides, 40, 30, item)[1] == 0  # reversed: loops
    assert blas_layout(*x[:, ::2].strides, 20, 30, item)[1] == 0  # strided: loops
    cases = {
        "row-major": (x, y),
        "transposed operands": (np.asfortranarray(x), np.asfortranarray(y)),
        "transposed views": (np.ascontiguousarray(x.T).T, np.ascontiguousarray(y.T).T),
        "reversed rows": (x[::-1], y),
        "every other column": (RNG.normal(size=(30, 80)).astype(dtype)[:, ::2], y),
        "overlapping rows": (windows(x.ravel(), (30, 40), (2 * item, item)), y),  # BLAS needs lda >= 40
        "overlapping columns": (windows(x.ravel(), (30, 40), (item, 2 * item)), y),  # BLAS needs lda >= 30
    }
    tolerance = 1e-12 if dtype == "float64" else 1e-4
    unaligned = np.zeros(30 * 70 * item, np.uint8)[1:1 - item].view(dtype)
    outputs = {  # each is updated in place, case after case
        "contiguous": np.array(wide[:, :50]),
        "rows 70 apart": wide.copy()[:, :50],
        "column order": np.asfortranarray(wide[:, :50]),  # BLAS would write it transposed: loops
        "rows 70 items and a byte apart": as_strided(unaligned, (30, 50), (70 * item + 1, item)),  # loops
    }
    for label, (a, b) in cases.items():
        for out_label, out in outputs.items():
            want = 0.5 * out - 2.0 * (a.astype(np.float64) @ b.astype(np.float64))
            call(-2.0, a, b, 0.5, out)
            np.testing.assert_allclose(out, want, rtol=tolerance, atol=tolerance, err_msg=f"{label}, {out_label}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_products_blas_computes_in_pieces(run: Any, dtype: str) -> None:
    """Products that ``blas_gemm`` cuts along out's columns, the inner dimension or out's rows
    (``BLAS_PIECE`` and up), with transposed and reversed operands and in ``Gemm``, give NumPy's
    values: each piece starts at its own offset in each array."""
    c, a, b = (T.matrix(name, dtype=dtype) for name in "cab")
    outputs = [a.dot(b), a.T.T.dot(b.T.T), b.T.dot(a.T).T, a[::-1].dot(b), Gemm(-0.5, 0.25)(c, a, b),
               Gemm(2.0, 0.0)(c.T, b.T, a.T).T]
    for m, k, n in [(20, 30, 2001), (21, 1999, 30), (2000, 30, 19)]:
        x, y = RNG.normal(size=(m, k)).astype(dtype), RNG.normal(size=(k, n)).astype(dtype)
        z = RNG.normal(size=(m, n)).astype(dtype)
        product = x.astype(np.float64) @ y.astype(np.float64)
        wants = [product, product, product, x[::-1].astype(np.float64) @ y, 0.25 * z - 0.5 * product, 2.0 * product]
        tolerance = 1e-10 if dtype == "float64" else 2e-3
        for got, want in zip(run([c, a, b], outputs, z, x, y), wants, strict=True):
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance, err_msg=str((m, k, n)))


def test_blas_pieces_cut_the_longest_axis_into_the_fewest_even_pieces() -> None:
    """Products of more than ``BLAS_PIECE`` multiply-adds, up to ``BLAS_PIECES`` times that, are cut
    along their longest axis into the fewest pieces of at most ``BLAS_PIECE``, as even as they can be;
    every other product is one piece."""
    from symflow.ops.dot import BLAS_PIECE, BLAS_PIECES, blas_pieces

    assert blas_pieces(20, 30, 2000) == (2, 1000)  # a language model's output layer
    assert blas_pieces(20, 2000, 30) == (1, 1000)  # its gradient with respect to the hidden states
    assert blas_pieces(2000, 30, 20) == (0, 1000)
    assert blas_pieces(16, 30, 2000) == (2, 2000)  # 960,000: one piece
    assert blas_pieces(100, 100, 100) == (2, 100)  # exactly BLAS_PIECE: one piece
    assert blas_pieces(20, 100, 2000) == (2, 500)  # exactly BLAS_PIECES times that: cut
    assert blas_pieces(1000, 1000, 2) == (1, 500)  # of two longest axes, the later one
    assert blas_pieces(640, 30, 2000) == (2, 2000)  # 38 million: one piece
    for m, k, n in [(17, 30, 2000), (30, 30, 2000), (66, 30, 2000), (100, 100, 101), (30, 1999, 67), (3, 700, 1000)]:
        total = m * k * n
        axis, width = blas_pieces(m, k, n)
        if not BLAS_PIECE < total <= BLAS_PIECES * BLAS_PIECE:
            assert (axis, width) == (2, n)
            continue
        dims = (m, k, n)
        longest = dims[axis]
        assert longest == max(dims) and axis == max(i for i in range(3) if dims[i] == longest)
        count = -(-longest // width)
        widest = BLAS_PIECE // (total // longest)  # the most that fit in one piece
        assert width * (total // longest) <= BLAS_PIECE, (m, k, n)
        assert count == -(-longest // widest), (m, k, n)  # no fewer pieces would do
        assert width - (longest - (count - 1) * width) <= count - 1, (m, k, n)  # the last is at most count - 1 short


def test_blas_readable_copies_only_what_blas_cannot_read() -> None:
    """``dot_mm`` hands BLAS a C-contiguous copy of an operand BLAS cannot read (reversed rows or
    columns, every other column); row-major and transposed matrices go as they are."""
    from symflow.ops.dot import blas_readable

    x = RNG.normal(size=(30, 40))
    for readable in (x, x.T, x[:, :20], x[:10].T):
        assert blas_readable(readable) is readable
    for unreadable in (x[::-1], x[:, ::-1], x[:, ::2], x.T[::-1]):
        copy = blas_readable(unreadable)
        assert copy.flags.c_contiguous and copy.base is None
        np.testing.assert_array_equal(copy, unreadable)


def _at(x: np.ndarray, offset: int, shape: tuple[int, int]) -> np.ndarray:
    """The matrix of ``shape`` with ``x``'s strides that starts ``offset`` elements after ``x``'s
    first (in the contiguous array ``x`` is a view of)."""
    root = x
    while root.base is not None:
        root = root.base
    start = x.ctypes.data - root.ctypes.data + offset * x.itemsize
    return np.ndarray(shape, x.dtype, buffer=root, offset=start, strides=x.strides)


def _recording_blas_gemm(calls: list[tuple[Any, ...]]) -> Any:
    """``blas_gemm`` run as Python, with a stand-in for BLAS that records each call (its m, n and k
    in BLAS's column-major terms, its beta and offsets) and computes it with NumPy on the row-major
    matrices those describe."""
    import types

    from symflow.ops import dot as dot_module

    def xgemm(trans_b, trans_a, n, m, k, alpha, b, offset_b, ld_b, a, offset_a, ld_a, beta,  # type: ignore[no-untyped-def]
              out, offset_out, ld_out):
        calls.append((n, m, k, beta))
        a, b, out = _at(a, offset_a, (m, k)), _at(b, offset_b, (k, n)), _at(out, offset_out, (m, n))
        out[...] = alpha * (a @ b) + beta * out
        return 0

    fn = dot_module.blas_gemm
    return types.FunctionType(fn.__code__, {**fn.__globals__, "xgemm": xgemm}, fn.__name__)


@pytest.mark.parametrize(("m", "k", "n", "pieces"), [(20, 30, 2000, [(1000, 20, 30)] * 2),
                                                  (20, 2000, 30, [(30, 20, 1000)] * 2),
                                                  (2000, 30, 20, [(20, 1000, 30)] * 2),
                                                  (50, 30, 2000, [(500, 50, 30)] * 4),  # 3 of 666 are too few
                                                  (20, 30, 2001, [(1001, 20, 30), (1000, 20, 30)]),
                                                  (10, 30, 2000, [(2000, 10, 30)])])
def test_blas_gemm_computes_each_piece_once(m: int, k: int, n: int, pieces: list[tuple[int, int, int]]) -> None:
    """``blas_gemm`` calls BLAS once per piece of ``blas_pieces``' cut, on the matching views of the
    operands and the output; pieces of the inner dimension after the first add to the output (beta
    1), and the result is ``alpha * (a @ b) + beta * out`` whichever way it was cut."""
    calls: list[tuple[Any, ...]] = []
    blas_gemm = _recording_blas_gemm(calls)
    a, b = RNG.normal(size=(k, m)).T, RNG.normal(size=(k, n))  # a transposed operand
    out = RNG.normal(size=(m, n + 3))[:, :n]  # rows further apart than the width
    want = -0.5 * (a @ b) + 0.25 * out
    assert blas_gemm(-0.5, a, b, 0.25, out)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    betas = [0.25] + [1.0 if k >= max(m, n) and len(pieces) > 1 else 0.25] * (len(pieces) - 1)
    assert calls == [(*piece, beta) for piece, beta in zip(pieces, betas, strict=True)]
    calls.clear()
    assert not blas_gemm(1.0, a[::-1], b, 0.0, out) and calls == []  # reversed rows: BLAS cannot read them


def test_dot_mm_copies_for_blas_only_what_it_cannot_read() -> None:
    """``dot_mm`` (run as Python, with ``blas_gemm`` recorded) gives BLAS readable operands as they
    are, a C-contiguous copy of an unreadable one after BLAS declined it, and computes the product in
    its loops when BLAS is not available at all."""
    import types

    from symflow.ops import dot as dot_module

    calls: list[tuple[bool, bool]] = []
    available = [True]

    def blas_gemm(alpha, a, b, beta, out):  # type: ignore[no-untyped-def]
        calls.append((a.flags.c_contiguous, b.flags.c_contiguous))
        if not available[0] or dot_module.blas_readable(a) is not a or dot_module.blas_readable(b) is not b:
            return False
        out[...] = alpha * (a @ b) + (beta * out if beta else 0.0)  # BLAS does not read out when beta is 0
        return True

    fn = dot_module.dot_mm
    dot_mm = types.FunctionType(fn.__code__, {**fn.__globals__, "blas_gemm": blas_gemm, "any_layout": lambda x: x},
                                fn.__name__)
    x, y = RNG.normal(size=(40, 30)), RNG.normal(size=(30, 30))
    for a, b, want_calls in [(x, y, [(True, True)]), (x, y.T, [(True, False)]),
                             (x[::-1], y, [(False, True), (True, True)])]:
        calls.clear()
        out = np.full((40, 30), np.nan)
        dot_mm(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-12)
        assert calls == want_calls
    available[0] = False
    out = np.full((40, 30), np.nan)
    dot_mm(x, y, out)
    np.testing.assert_allclose(out, x @ y, rtol=1e-12)


def test_blas_gemm_is_compiled_once_for_every_layout() -> None:
    """``dot_mm`` and ``gemm`` hand ``blas_gemm`` their arrays as arrays of any layout
    (``runtime.any_layout``), so it is compiled once per dtype, not per layout of the operands
    (checked on uncached copies of the kernels: a cached kernel is loaded without its helpers)."""
    import types as pytypes

    import numba
    from numba import types

    from symflow.compile.numba import runtime
    from symflow.compile.numba.jit import KERNEL_OPTIONS, jit_kernel
    from symflow.ops import dot as dot_module

    def uncached(fn: Any, **names: Any) -> Any:
        source = pytypes.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__)
        return numba.njit(**KERNEL_OPTIONS)(source)

    blas_gemm = uncached(dot_module.blas_gemm, xgemm=runtime.xgemm, blas_layout=jit_kernel(dot_module.blas_layout),
                         blas_pieces=jit_kernel(dot_module.blas_pieces))
    dot_mm = uncached(dot_module.dot_mm, blas_gemm=blas_gemm, any_layout=runtime.any_layout,
                      blas_readable=jit_kernel(dot_module.blas_readable),
                      c_contiguous=jit_kernel(dot_module.c_contiguous), mm_loops=jit_kernel(dot_module.mm_loops))
    gemm = uncached(dot_module.gemm, blas_gemm=blas_gemm, any_layout=runtime.any_layout)
    matrix = {layout: types.Array(types.float64, 2, layout) for layout in "CFA"}
    for a, b in [("C", "C"), ("C", "F"), ("A", "C")]:
        dot_mm.compile((matrix[a], matrix[b], matrix["C"]))
        gemm.compile((types.float64, matrix[a], matrix[b], types.float64, matrix["C"]))
    assert [[getattr(t, "layout", None) for t in signature] for signature in blas_gemm.signatures] == \
        [[None, "A", "A", None, "A"]]


def test_c_contiguous_types_c_order_matrices_as_they_are_and_copies_the_rest() -> None:
    """``c_contiguous`` (run as Python, and compiled once for arrays of any layout) returns a matrix
    whose rows are contiguous and adjacent as it is, and a C-contiguous copy of any other: transposed,
    reversed, every other column, a column of a wider matrix."""
    import numba

    from symflow.compile.numba import runtime
    from symflow.compile.numba.jit import jit_kernel
    from symflow.ops.dot import c_contiguous

    kernel = jit_kernel(c_contiguous)  # no Python wrapper: called from compiled code

    @numba.njit
    def compiled(x):  # type: ignore[no-untyped-def]
        return kernel(runtime.any_layout(x))

    x = RNG.normal(size=(6, 5))
    for as_is in (x, x[2:4], x[3:4, 1:4], x[:0, ::-1], x[:, :1][:1]):
        assert c_contiguous(as_is) is as_is
        got = compiled(as_is)
        assert got.flags.c_contiguous and (got.ctypes.data == as_is.ctypes.data or as_is.size == 0)
    for copied in (x.T, x[::-1], x[:, ::2], x[:1, ::2], x[:, :1], x[:, ::-1]):
        for run in (c_contiguous, compiled):
            copy = run(copied)
            assert copy.flags.c_contiguous and copy.ctypes.data != copied.ctypes.data
            np.testing.assert_array_equal(copy, copied)
    assert {signature[0].layout for signature in kernel.signatures} == {"A"}


def test_main_functions_compile_dot_mm_once_for_every_layout() -> None:
    """Main functions pass ``dot_mm`` its operands as arrays of any layout, and its loops take them
    C-contiguous (``c_contiguous``): products of row-major, transposed and reversed matrices, above
    and below ``BLAS_THRESHOLD``, use one compile of ``dot_mm`` and one of ``mm_loops``."""
    from symflow.compile.numba.jit import jit_kernel
    from symflow.ops import dot as dot_module

    a, b = T.matrix("a"), T.matrix("b")
    outputs = [a.dot(b), a.dot(b.T), a[::-1].dot(b), a.T.dot(b[:, ::-1]), a[::-1].T.dot(b)]
    f = sf.function([a, b], outputs, mode="numba")
    for rows in (3, 40):  # loops, then BLAS
        x, y = RNG.normal(size=(rows, rows)), RNG.normal(size=(rows, rows))
        for got, want in zip(f(x, y), [x @ y, x @ y.T, x[::-1] @ y, x.T @ y[:, ::-1], x[::-1].T @ y], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert f.source.count("(runtime.any_layout(") == len(outputs)
    layouts = {tuple(t.layout for t in signature) for signature in jit_kernel(dot_module.dot_mm).signatures}
    assert layouts == {("A", "A", "C")}
    loops = jit_kernel(dot_module.mm_loops).signatures
    assert {tuple(t.layout for t in signature) for signature in loops} == {("C", "C", "C")}


def test_gemm_types_shapes_and_gradients(run: Any, verify_grads: Any) -> None:
    c, a, b = T.matrix("c"), T.matrix("a"), T.matrix("b")
    with pytest.raises(TypeError, match="Gemm takes three float matrices"):
        Gemm(1.0, 1.0)(c, a, T.vector("v"))
    with pytest.raises(TypeError, match="Gemm takes three float matrices"):
        Gemm(1.0, 1.0)(c, a, T.fmatrix("f"))
    with pytest.raises(ShapeError, match="gemm of shapes"):
        run([c, a, b], Gemm(1.0, 2.0)(c, a, b), np.ones((2, 2)), np.ones((2, 3)), np.ones((3, 4)))
    with pytest.raises(ShapeError, match="gemm of shapes"):
        run([c, a, b], Gemm(1.0, 2.0)(c, a, b), np.ones((2, 4)), np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(TypeError, match="Gemm's scale must be a float64 scalar, got .*float32"):
        Gemm(1.0, 1.0)(c, a, b, T.fscalar("s"))
    with pytest.raises(TypeError, match=r"Gemm's scale must be a float64 scalar, got .s. \(float64 vector\)"):
        Gemm(1.0, 1.0)(c, a, b, T.vector("s"))
    points = [RNG.normal(size=(3, 2)), RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))]
    verify_grads({"gemm": (lambda c, a, b: Gemm(-0.5, 0.75)(c, a, b), points),
                  "scaled": (lambda c, a, b, s: Gemm(-0.5, 0.75)(c, a, b, s), [*points, np.array(1.3)])})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gemm_scale_multiplies_alpha_at_run_time(run: Any, dtype: str) -> None:
    """``Gemm(alpha, beta)(c, a, b, s)`` is ``beta * c + alpha * s * (a @ b)``, in loops and in BLAS.
    With ``s = 0`` a nan or inf in the operands still reaches the result, as in ``0 * (a @ b)``
    (reference BLAS would skip the product)."""
    c, a, b = (T.matrix(name, dtype=dtype) for name in "cab")
    s = T.scalar("s", dtype=dtype)
    out = Gemm(-0.5, 0.25)(c, a, b, s)
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    for m, k, n in [(5, 3, 2), (40, 30, 30)]:
        x, y = RNG.normal(size=(m, k)).astype(dtype), RNG.normal(size=(k, n)).astype(dtype)
        z = RNG.normal(size=(m, n)).astype(dtype)
        for scale in (2.0, -0.1):
            got = run([c, a, b, s], out, z, x, y, np.asarray(scale, dtype))
            np.testing.assert_allclose(got, 0.25 * z - 0.5 * scale * (x @ y), rtol=tolerance, atol=tolerance)
        x[0, 0], y[0, 1] = np.nan, np.inf
        got = run([c, a, b, s], out, z, x, y, np.asarray(0.0, dtype))
        assert np.isnan(got[0]).all() and np.isnan(got[:, 1]).all(), (m, k, n)
        rest = np.ones(got.shape, bool)
        rest[0], rest[:, 1] = False, False
        np.testing.assert_allclose(got[rest], 0.25 * z[rest], rtol=tolerance)
