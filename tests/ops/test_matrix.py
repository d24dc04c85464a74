"""eye, tril, triu, diagonal, diag and roll against NumPy, with symbolic sizes and shifts, empty
matrices, and gradients against finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.testing import strategies as sst


@given(n=st.integers(0, 4), cols=st.integers(0, 5), shift=st.integers(-7, 7), data=st.data())
def test_values_match_numpy(run: Any, n: int, cols: int, shift: int, data: st.DataObject) -> None:
    """Every function at offsets from below to beyond the matrix, sizes and shifts given at run time."""
    X = data.draw(sst.arrays("float64", (n, cols), -5, 5))
    C = data.draw(sst.arrays("float64", (2, n, cols), -5, 5))
    V = data.draw(sst.arrays("float64", (n,), -5, 5))
    x, c, v = T.matrix("x"), T.tensor3("c"), T.vector("v")
    rows, width, s = T.iscalar("rows"), T.lscalar("width"), T.iscalar("s")
    offsets = (-6, -1, 0, 2, 6)
    outputs = [T.eye(rows), T.eye(rows, width, k=1, dtype="int32"), T.eye(rows, width, k=-2)]
    expected = [np.eye(n), np.eye(n, cols, k=1, dtype="int32"), np.eye(n, cols, k=-2)]
    for k in offsets:
        outputs += [T.tril(x, k), T.triu(x, k), T.tril(c, k), T.triu(c, k), T.diagonal(x, k), T.diag(x, k),
                    T.diag(v, k)]
        expected += [np.tril(X, k), np.triu(X, k), np.tril(C, k), np.triu(C, k), np.diagonal(X, k), np.diag(X, k),
                     np.diag(V, k)]
    outputs += [T.roll(x, s, 0), T.roll(x, s, axis=-1), T.roll(c, s), T.roll(c, 3, 2)]
    expected += [np.roll(X, shift, 0), np.roll(X, shift, -1), np.roll(C, shift), np.roll(C, 3, 2)]
    results = run([x, c, v, rows, width, s], outputs, X, C, V, n, cols, shift)
    for i, (got, want) in enumerate(zip(results, expected, strict=True)):
        assert got.dtype == want.dtype and got.shape == want.shape, (i, got.shape, want.shape)
        np.testing.assert_array_equal(got, want, err_msg=str(i))


def test_roll_by_any_uint64_shift(run: Any) -> None:
    """A uint64 shift is reduced before it becomes int64, so shifts from 2**63 up roll as NumPy's do
    (cast first, 2**64 - 1 was -1)."""
    x, u = T.matrix("x"), T.scalar("u", dtype="uint64")
    X = np.arange(15.0).reshape(3, 5)
    for shift in (2**64 - 1, 2**63 + 2, 7):
        got = run([x, u], [T.roll(x, u, 1), T.roll(x, u)], X, np.uint64(shift))
        for g, want in zip(got, [np.roll(X, shift, 1), np.roll(X, shift)], strict=True):
            np.testing.assert_array_equal(g, want, err_msg=str(shift))


def test_dropped_entries_are_zero_even_when_infinite(run: Any) -> None:
    """tril and triu replace the entries they drop: an inf or NaN there gives 0, not NaN."""
    x = T.matrix("x")
    X = np.array([[1.0, np.inf], [np.nan, 2.0]])
    lower, upper = run([x], [T.tril(x), T.triu(x)], X)
    np.testing.assert_array_equal(lower, [[1.0, 0.0], [np.nan, 2.0]])
    np.testing.assert_array_equal(upper, [[1.0, np.inf], [0.0, 2.0]])


def test_types_and_errors() -> None:
    assert T.eye(3).dtype == "float64" and T.tril(T.imatrix()).dtype == "int32"
    assert T.diag(T.fvector()).type == T.fmatrix().type and T.roll(T.tensor3(), 1).ndim == 3
    with pytest.raises(TypeError, match=r"tril needs a matrix \(or a stack of them\), got 'v' \(float64 vector\)"):
        T.tril(T.vector("v"))
    with pytest.raises(TypeError, match="diag takes a vector or a matrix, got 'c'"):
        T.diag(T.tensor3("c"))
    with pytest.raises(TypeError, match="diagonal's offset must be a Python int, got 1.5"):
        T.diagonal(T.matrix(), 1.5)
    with pytest.raises(TypeError, match="triu's k must be a Python int"):
        T.triu(T.matrix(), T.iscalar())
    for bad in ("x", 1.0, True):
        with pytest.raises(TypeError, match=f"tril's k must be a Python int, got {bad!r}"):
            T.tril(T.matrix(), bad)
    assert T.tril(T.matrix(), np.int64(1)).ndim == 2
    with pytest.raises(TypeError, match="eye's n must be an integer scalar, got 'f'"):
        T.eye(T.scalar("f"))
    with pytest.raises(TypeError, match="roll's shift must be an integer"):
        T.roll(T.matrix(), 1.5)
    with pytest.raises(ValueError, match="roll's axis 2 is out of range for a 2-d tensor"):
        T.roll(T.matrix(), 1, 2)


@given(data=st.data())
def test_gradients(verify_grads: Any, data: st.DataObject) -> None:
    square = data.draw(sst.arrays("float64", (3, 3), -2, 2))
    wide = data.draw(sst.arrays("float64", (2, 4), -2, 2))
    stack = data.draw(sst.arrays("float64", (2, 3, 2), -2, 2))
    vector = data.draw(sst.arrays("float64", (3,), -2, 2))
    verify_grads({
        "tril": (lambda x: T.tril(x, -1) * 2, [square]),
        "triu of a stack": (lambda x: T.triu(x, 1), [stack]),
        "diagonal": (lambda x: T.diagonal(x, 1), [wide]),
        "diag of a vector": (lambda v: T.diag(v, -1), [vector]),
        "roll": (lambda x: T.roll(x, -3, 1), [wide]),
        "roll of the flat array": (lambda x: T.roll(x, 5), [stack]),
        "eye times x": (lambda x: T.eye(3) * x, [square]),
    })


def _numpy_fill_diagonal_offset(a: np.ndarray, val: Any, offset: int) -> np.ndarray:
    """The reference: a copy of ``a`` with the entries ``(i, i + offset)`` inside it set to ``val``."""
    out = a.copy()
    for i in range(a.shape[0]):
        if 0 <= i + offset < a.shape[1]:
            out[i, i + offset] = val
    return out


@given(n=st.integers(0, 4), cols=st.integers(0, 5), offset=st.integers(-6, 6), data=st.data())
def test_trace_identity_like_and_fill_diagonal_match_numpy(run: Any, n: int, cols: int, offset: int,
                                                           data: st.DataObject) -> None:
    X = data.draw(sst.arrays("float64", (n, cols), -5, 5))
    INTS = data.draw(sst.arrays("int32", (n, cols), -5, 5))
    x, i, k, v = T.matrix("x"), T.imatrix("i"), T.iscalar("k"), T.scalar("v")
    outputs = [T.trace(x), T.trace(i), T.identity_like(x), T.identity_like(i), T.extra_ops.fill_diagonal(x, v),
               T.fill_diagonal(i, 7), T.extra_ops.fill_diagonal_offset(x, v, k),
               T.fill_diagonal_offset(i, -1, offset), T.fill_diagonal_offset(x, 2.5, T.cast(k, "uint8") * 0)]
    filled, filled_int = X.copy(), INTS.copy()
    np.fill_diagonal(filled, 1.5)
    np.fill_diagonal(filled_int, 7)
    expected = [np.trace(X), np.trace(INTS), np.eye(n, cols), np.eye(n, cols, dtype="int32"), filled, filled_int,
                _numpy_fill_diagonal_offset(X, 1.5, offset), _numpy_fill_diagonal_offset(INTS, -1, offset),
                _numpy_fill_diagonal_offset(X, 2.5, 0)]
    results = run([x, i, k, v], outputs, X, INTS, offset, 1.5)
    for j, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        assert out.dtype == got.dtype.name == np.asarray(want).dtype.name, j
        assert got.shape == np.shape(want), j
        np.testing.assert_array_equal(got, want, err_msg=str(j))


def test_fill_diagonal_offset_far_beyond_the_matrix_changes_nothing(mode: str) -> None:
    """Offsets as large as int64 allows (and uint64 beyond it) leave the matrix as it is, without overflow."""
    x, k, u = T.matrix("x"), T.lscalar("k"), T.tensor("uint64", (), "u")
    X = np.arange(6.0).reshape(2, 3)
    fn = sf.function([x, k, u], [T.fill_diagonal_offset(x, -1.0, k), T.fill_diagonal_offset(x, -1.0, u)], mode=mode)
    for signed, unsigned in [(np.iinfo("int64").min, 2**64 - 1), (np.iinfo("int64").max, 2**63), (-2, 3), (2, 2)]:
        got, got_u = fn(X, signed, np.uint64(unsigned))
        np.testing.assert_array_equal(got, _numpy_fill_diagonal_offset(X, -1.0, signed), err_msg=str(signed))
        np.testing.assert_array_equal(got_u, _numpy_fill_diagonal_offset(X, -1.0, unsigned), err_msg=str(unsigned))


def test_types_and_errors_of_the_new_matrix_functions() -> None:
    m, f = T.matrix("m"), T.fmatrix("f")
    assert T.trace(T.imatrix()).dtype == "int64" and T.trace(f).dtype == "float32"
    assert T.identity_like(T.tensor("bool", (False, False))).dtype == "bool"
    assert T.fill_diagonal(f, 0.5).type == f.type and T.fill_diagonal(T.imatrix(), True).dtype == "int32"
    for fn, name in [(T.trace, "trace"), (T.identity_like, "identity_like"),
                     (lambda x: T.fill_diagonal(x, 1.0), "fill_diagonal"),
                     (lambda x: T.fill_diagonal_offset(x, 1.0, 1), "fill_diagonal_offset")]:
        with pytest.raises(TypeError, match=rf"{name} needs a matrix, got 'v' \(float64 vector\)"):
            fn(T.vector("v"))
    with pytest.raises(TypeError, match=r"fill_diagonal: the value 0.5 does not fit the dtype of 'i' \(int32 matrix\)"):
        T.fill_diagonal(T.imatrix("i"), 0.5)
    with pytest.raises(TypeError, match=r"fill_diagonal_offset: the value 'd' \(float64 scalar\) would be cast down "
                                        r"to the dtype of 'f' \(float32 matrix\)"):
        T.fill_diagonal_offset(f, T.scalar("d"), 0)
    with pytest.raises(TypeError, match=r"fill_diagonal needs a scalar value, got 'v' \(float64 vector\) for 'm'"):
        T.fill_diagonal(m, T.vector("v"))
    with pytest.raises(TypeError, match="fill_diagonal_offset's offset must be an integer scalar, got 's'"):
        T.fill_diagonal_offset(m, 1.0, T.scalar("s"))
    with pytest.raises(TypeError, match="fill_diagonal_offset's offset must be an integer, got float 1.0"):
        T.fill_diagonal_offset(m, 1.0, 1.0)


@given(data=st.data())
def test_gradients_of_trace_and_fill_diagonal(verify_grads: Any, data: st.DataObject) -> None:
    """As Theano's: ``a`` gets the gradient off the (offset) diagonal, ``val`` the sum along it."""
    square = data.draw(sst.arrays("float64", (3, 3), -2, 2))
    wide = data.draw(sst.arrays("float64", (2, 4), -2, 2))
    val = data.draw(sst.arrays("float64", (), -2, 2))
    verify_grads({
        "trace": (lambda x: T.trace(x) * 2, [wide]),
        "fill_diagonal": (lambda x, v: T.fill_diagonal(x, v) ** 2, [square, val]),
        "fill_diagonal of a wide matrix": (lambda x, v: T.fill_diagonal(x * x, v * 3), [wide, val]),
        "fill_diagonal_offset above": (lambda x, v: T.fill_diagonal_offset(x, v, 2) ** 2, [wide, val]),
        "fill_diagonal_offset below": (lambda x, v: T.fill_diagonal_offset(x, v, -1) * x, [square, val]),
        "identity_like times x": (lambda x: T.identity_like(x) * x, [wide]),
    })
