"""nonzero, flatnonzero, nonzero_values, bincount, compress, searchsorted and unique: values and
dtypes against NumPy (empty inputs included), symbolic shapes, gradients and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symflow as sf
import symflow.tensor as T
from symflow.errors import DisconnectedInputError, IndexingError, ShapeError
from symflow.testing import strategies as sst

A = np.array([[0.0, 1.5, 0.0, -2.0], [np.nan, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])


def test_nonzero_against_numpy(run: Any, check_infer_shape: Any) -> None:
    a, e, b, i, t, s = (T.matrix("a"), T.tensor3("e"), T.tensor("bool", (False,), "b"), T.ivector("i"),
                        T.tensor("int8", (False,) * 3, "t"), T.scalar("s"))
    values = [A, np.zeros((2, 0, 3)), np.array([True, False, True, True]), np.zeros(5, "int32"),
              np.random.default_rng(0).integers(-1, 2, (2, 3, 4)).astype("int8"), np.array(-0.5)]
    inputs = [a, e, b, i, t, s]
    outputs: list[Any] = []
    for var in inputs[:5]:
        outputs += [*T.nonzero(var), T.nonzero(var, return_matrix=True), T.flatnonzero(var), T.nonzero_values(var)]
    outputs += [T.flatnonzero(s), T.nonzero_values(s)]
    results = run(inputs, outputs, *values)
    expected: list[np.ndarray] = []
    for value in values[:5]:
        expected += [*np.nonzero(value), np.array(np.nonzero(value)).reshape(value.ndim, -1), np.flatnonzero(value),
                     value.ravel()[np.flatnonzero(value)]]
    expected += [np.flatnonzero(values[5]), values[5].ravel()[np.flatnonzero(values[5])]]
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"output {k}: {out}")
        assert got.dtype == want.dtype == out.dtype, f"output {k}: {out}"
    assert results[2].shape == (2, 4) and results[len(outputs) - 2].tolist() == [0]  # NaN counts; a scalar is 1-d
    assert len(T.nonzero(t)) == 3 and T.nonzero(b, return_matrix=True).ndim == 2
    methods = run([a], [*a.nonzero(), a.nonzero(return_matrix=True), a.nonzero_values()], A)  # Theano's methods
    for got, want in zip(methods, [*np.nonzero(A), np.array(np.nonzero(A)), A[A != 0]], strict=True):
        np.testing.assert_array_equal(got, want)
    check_infer_shape(inputs, outputs, *values)


def test_nonzero_errors() -> None:
    with pytest.raises(ValueError, match="nonzero needs at least one dimension, got 's' \\(float64 scalar\\)"):
        T.nonzero(T.scalar("s"))
    with pytest.raises(DisconnectedInputError):
        sf.grad(T.cast(T.flatnonzero(T.vector("x")), "float64").sum(), T.vector("x"))


def test_nonzero_values_gradient(mode: str, verify_grads: Any) -> None:
    """The gradient goes back to the nonzero entries and is zero at the zeros: exactly, and against
    finite differences where no entry is zero (a zero moved by the differences would change the length)."""
    a = T.matrix("a")
    w = T.vector("w")
    cost = (T.nonzero_values(a) * w).sum()
    f = sf.function([a, w], sf.grad(cost, a), mode=mode)
    value = np.nan_to_num(A, nan=4.0)
    weights = np.arange(1.0, 1.0 + np.count_nonzero(value))
    want = np.zeros_like(value)
    want.flat[np.flatnonzero(value)] = weights
    np.testing.assert_array_equal(f(value, weights), want)
    np.testing.assert_array_equal(f(np.zeros((2, 0)), np.zeros(0)), np.zeros((2, 0)))
    rng = np.random.default_rng(1)
    points = rng.uniform(0.5, 2.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    verify_grads({"nonzero_values": (lambda x: T.nonzero_values(x) ** 2, [points])})


def test_nonzero_unique_bincount_on_drawn_arrays(mode: str) -> None:
    """Drawn arrays with many zeros and repeats, 0-length sides too: the same as NumPy."""
    x = T.tensor("int16", (False, False), "x")
    f = sf.function([x], [*T.nonzero(x), T.nonzero_values(x), *T.extra_ops.unique(x, True, True, True),
                          T.extra_ops.bincount(T.abs(x).flatten())], mode=mode)

    @settings(max_examples=40, deadline=None)
    @given(value=hnp.arrays("int16", hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=7),
                            elements=st.integers(-3, 3)))
    def check(value: np.ndarray) -> None:
        rows, cols, values, u, index, inverse, counts, bins = f(value)
        want_u, want_index, want_inverse, want_counts = np.unique(value, True, True, True)
        for got, want in [(rows, np.nonzero(value)[0]), (cols, np.nonzero(value)[1]),
                          (values, value[np.nonzero(value)]), (u, want_u), (index, want_index),
                          (inverse, want_inverse), (counts, want_counts), (bins, np.bincount(np.abs(value).ravel()))]:
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype and got.shape == want.shape

    check()


# bincount


def test_bincount_against_numpy(run: Any, check_infer_shape: Any) -> None:
    x, u, b, e = T.ivector("x"), T.tensor("uint8", (False,), "u"), T.tensor("bool", (False,), "b"), T.lvector("e")
    w, f, k = T.vector("w"), T.fvector("f"), T.lscalar("k")
    xv, uv, bv = np.array([3, 0, 3, 7, 1, 3], "int32"), np.array([200, 2, 2], "uint8"), np.array([True, False, True])
    ev, wv, fv = np.zeros(0, "int64"), np.linspace(-1.0, 1.5, 6), np.array([0.5, 2.0, -1.0], "float32")
    bc = T.extra_ops.bincount
    outputs = [bc(x), bc(x, minlength=3), bc(x, minlength=10), bc(x, w), bc(x, w, k), bc(u), bc(u, f), bc(b),
               bc(e), bc(e, minlength=4), bc(e, minlength=k), bc(x, x), bc(u, b)]
    results = run([x, u, b, e, w, f, k], outputs, xv, uv, bv, ev, wv, fv, 9)
    expected = [np.bincount(xv), np.bincount(xv, minlength=3), np.bincount(xv, minlength=10), np.bincount(xv, wv),
                np.bincount(xv, wv, 9), np.bincount(uv), np.bincount(uv, fv), np.bincount(bv), np.bincount(ev),
                np.bincount(ev, minlength=4), np.bincount(ev, minlength=9), np.bincount(xv, xv), np.bincount(uv, bv)]
    for k_, (got, want) in enumerate(zip(results, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"output {k_}")
        assert got.dtype == want.dtype, f"output {k_}: {got.dtype} (NumPy: {want.dtype})"
    assert [o.dtype for o in outputs[:4]] == ["int64", "int64", "int64", "float64"]
    check_infer_shape([x, u, b, e, w, f, k], outputs, xv, uv, bv, ev, wv, fv, 9)


def test_bincount_errors(run: Any) -> None:
    x, w, k = T.ivector("x"), T.vector("w"), T.lscalar("k")
    with pytest.raises(ShapeError, match="bincount needs non-negative values in x, got -2 at position 1"):
        run([x], T.extra_ops.bincount(x), np.array([1, -2, -1], "int32"))
    with pytest.raises(ShapeError, match="bincount needs non-negative values in x, got -1 at position 0"):
        run([x, w], T.extra_ops.bincount(x, w, minlength=5), np.array([-1], "int32"), np.ones(1))
    big = T.vector("big", dtype="uint64")
    with pytest.raises(ShapeError, match="bincount's x holds 9223372036854775809 at position 1, too large"):
        run([big], T.extra_ops.bincount(big), np.array([3, 2**63 + 1], "uint64"))
    with pytest.raises(ShapeError, match="bincount minlength must not be negative, got -3"):
        run([x, k], T.extra_ops.bincount(x, minlength=k), np.array([1], "int32"), -3)
    with pytest.raises(ShapeError, match="bincount weights \\(length 2\\) and x \\(length 3\\) differ in length"):
        run([x, w], T.extra_ops.bincount(x, w), np.array([1, 2, 0], "int32"), np.ones(2))
    with pytest.raises(TypeError, match="vector of non-negative integers x, got 'v' \\(float64 vector\\)"):
        T.extra_ops.bincount(T.vector("v"))
    with pytest.raises(TypeError, match="vector of non-negative integers x, got 'm' \\(int32 matrix\\)"):
        T.extra_ops.bincount(T.imatrix("m"))
    with pytest.raises(TypeError, match="bincount minlength must be an integer, got float 2.5"):
        T.extra_ops.bincount(x, minlength=2.5)
    with pytest.raises(TypeError, match="bincount weights must be a vector like x, got 'W'"):
        T.extra_ops.bincount(x, T.matrix("W"))


def test_bincount_gradient(mode: str, verify_grads: Any) -> None:
    """Wrt the weights: ``g[x]``, in the weights' dtype (float32 here, though the sums are float64)."""
    labels = np.array([2, 0, 2, 5, 2, 1], "int64")
    weights = np.random.default_rng(2).normal(size=6)
    verify_grads({"weights": (lambda w: T.extra_ops.bincount(labels, w, minlength=7) ** 2, [weights])})
    x, w, g = T.lvector("x"), T.fvector("w"), T.vector("g")
    gw = sf.grad((T.extra_ops.bincount(x, w, minlength=3) * g).sum(), w)
    assert gw.dtype == "float32"
    gv = np.array([0.5, -1.0, 2.0, 4.0, 8.0, 16.0])
    got = sf.function([x, w, g], gw, mode=mode)(labels, weights.astype("float32"), gv)
    np.testing.assert_array_equal(got, gv[labels].astype("float32"))
    assert got.dtype == np.float32


# compress


def test_compress_against_numpy(run: Any, check_infer_shape: Any) -> None:
    x, e, c, i, s = T.tensor3("x"), T.matrix("e"), T.tensor("bool", (False,), "c"), T.ivector("i"), T.scalar("s")
    xv = np.arange(24.0).reshape(2, 3, 4) - 5.0
    ev, cv, iv = np.zeros((0, 3)), np.array([True, False, True]), np.array([0, 2, -1, 0], "int32")
    cases = [(c, x, None), (c, x, 1), (c, x, -1), (i, x, 2), (c[:1], x, 0), (c[:0], x, 1), (i[:2], x, 0), (c, e, 1),
             (c[:0], e, 0), (i[:1], e, None), (c[:1], s, None), (i, c, 0)]
    outputs = [T.extra_ops.compress(cond, var, axis) for cond, var, axis in cases]
    values = {x: xv, e: ev, c: cv, i: iv, s: np.array(2.5)}
    results = run([x, e, c, i, s], outputs, xv, ev, cv, iv, 2.5)
    for (cond, var, axis), out, got in zip(cases, outputs, results, strict=True):
        cond_value = sf.function([c, i], cond, mode="py", on_unused_input="ignore")(cv, iv)
        want = np.compress(cond_value, values[var], axis=axis)
        np.testing.assert_array_equal(got, want, err_msg=f"{cond} {var} {axis}")
        assert got.dtype == want.dtype and out.dtype == want.dtype.name
    check_infer_shape([x, e, c, i, s], outputs, xv, ev, cv, iv, 2.5)


def test_compress_errors(run: Any) -> None:
    x, c = T.matrix("x"), T.ivector("c")
    with pytest.raises(IndexingError, match="row index 3 is out of range for an axis of length 3"):
        run([x, c], T.extra_ops.compress(c, x, axis=0), np.ones((3, 2)), np.array([0, 0, 0, 1], "int32"))
    # a longer condition is fine while its extra entries are zero, as in NumPy
    got = run([x, c], T.extra_ops.compress(c, x, axis=0), np.arange(6.0).reshape(3, 2), np.array([0, 1, 0, 0], "int32"))
    np.testing.assert_array_equal(got, [[2.0, 3.0]])
    with pytest.raises(ValueError, match="compress needs a vector condition, got 'm' \\(int32 matrix\\)"):
        T.extra_ops.compress(T.imatrix("m"), x)
    with pytest.raises(ValueError, match="compress axis 2 is out of range for 'x'"):
        T.extra_ops.compress(c, x, axis=2)
    with pytest.raises(ValueError, match="compress axis 0 is out of range for 's'"):
        T.extra_ops.compress(c, T.scalar("s"), axis=0)


def test_compress_gradient(verify_grads: Any) -> None:
    condition = np.array([1, 0, 1, 1], "int32")
    a = np.random.default_rng(3).normal(size=(3, 4))
    verify_grads({f"axis {axis}": (lambda x, axis=axis: T.extra_ops.compress(condition[:3], x, axis) ** 2, [a])
                  for axis in (None, 0, 1)})


# searchsorted


def test_searchsorted_against_numpy(run: Any, check_infer_shape: Any) -> None:
    x, v, m, s, i, e = T.vector("x"), T.vector("v"), T.matrix("m"), T.scalar("s"), T.ivector("i"), T.vector("e")
    o, u = T.lvector("o"), T.vector("u")
    xv = np.array([-1.0, 0.0, 0.0, 2.0, 2.0, 2.0, 7.5, np.nan, np.nan])
    vv = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 9.0, np.nan, -0.0])
    mv, iv = np.array([[2.0, 7.5], [8.0, -1.5], [np.inf, -np.inf]]), np.array([-2, 0, 1, 4, 4], "int32")
    unsorted = np.array([5.0, -1.0, 3.0, 3.0, 0.5])
    ov = np.argsort(unsorted, kind="stable")
    ss = T.extra_ops.searchsorted
    cases = [(x, v), (x, m), (x, s), (x, e), (e, v), (i, v), (v[:0], s), (x, i), (i, s)]
    outputs = [ss(a, b, side=side) for a, b in cases for side in ("left", "right")]
    outputs += [ss(u, m, sorter=o), ss(u, v, side="right", sorter=o), ss(i, 2.5), ss(i, 4, "right")]
    inputs = [x, v, m, s, i, e, o, u]
    args = [xv, vv, mv, 1.0, iv, np.zeros(0), ov, unsorted]
    results = run(inputs, outputs, *args)
    values = {x: xv, v: vv, m: mv, s: np.float64(1.0), i: iv, e: np.zeros(0)}
    expected = [np.searchsorted(values.get(a, vv[:0]), values[b], side) for a, b in cases for side in ("left", "right")]
    expected += [np.searchsorted(unsorted, mv, sorter=ov), np.searchsorted(unsorted, vv, "right", sorter=ov),
                 np.searchsorted(iv, 2.5), np.searchsorted(iv, 4, "right")]
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"output {k}: {out}")
        assert got.dtype == np.int64 and out.dtype == "int64" and got.shape == np.shape(want), f"output {k}"
    check_infer_shape(inputs, outputs, *args)


def test_searchsorted_errors(run: Any) -> None:
    x, v, o = T.vector("x"), T.vector("v"), T.lvector("o")
    with pytest.raises(ShapeError, match="searchsorted sorter has length 2, x has length 3"):
        run([x, v, o], T.extra_ops.searchsorted(x, v, sorter=o), np.ones(3), np.ones(2), np.array([0, 1]))
    with pytest.raises(IndexingError, match="searchsorted sorter index 3 is out of range for x of length 3"):
        run([x, v, o], T.extra_ops.searchsorted(x, v, sorter=o), np.ones(3), np.ones(2), np.array([0, 3, 1]))
    with pytest.raises(ValueError, match="side must be 'left' or 'right', got 'middle'"):
        T.extra_ops.searchsorted(x, v, side="middle")
    with pytest.raises(ValueError, match="searchsorted needs a sorted vector x, got 'M' \\(float64 matrix\\)"):
        T.extra_ops.searchsorted(T.matrix("M"), v)
    with pytest.raises(TypeError, match="sorter must be an integer vector, got 'v'"):
        T.extra_ops.searchsorted(x, v, sorter=v)
    with pytest.raises(DisconnectedInputError):
        sf.grad(T.cast(T.extra_ops.searchsorted(x, v), "float64").sum(), v)


# unique


def test_unique_against_numpy(run: Any, check_infer_shape: Any) -> None:
    a, i, b, e, s = T.matrix("a"), T.ivector("i"), T.tensor("bool", (False,), "b"), T.tensor3("e"), T.scalar("s")
    av = np.array([[3.0, np.nan, -1.0, 3.0], [0.0, -1.0, np.nan, 3.0]])
    iv, bv = np.array([5, -2, 5, 5, 0, -2, 7], "int32"), np.array([True, True, False])
    inputs, values = [a, i, b, e, s], [av, iv, bv, np.zeros((2, 0, 3)), np.array(4.0)]
    flags = [(False, False, False), (True, True, True), (False, True, False), (True, False, True)]
    outputs: list[Any] = []
    for var in inputs:
        for flag in flags:
            got = T.extra_ops.unique(var, *flag)
            outputs += list(got) if isinstance(got, tuple) else [got]
    outputs += [T.extra_ops.unique(i, return_inverse=True, axis=0)[1], T.extra_ops.unique(i, axis=-1)]
    results = run(inputs, outputs, *values)
    expected: list[np.ndarray] = []
    for value in values:
        for flag in flags:
            want = np.unique(value, *flag)
            expected += list(want) if isinstance(want, tuple) else [want]
    expected += [np.unique(iv, return_inverse=True, axis=0)[1], np.unique(iv, axis=-1)]
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"output {k}: {out}")
        assert got.dtype == want.dtype and got.shape == want.shape and out.dtype == want.dtype.name, f"output {k}"
    check_infer_shape(inputs, outputs, *values)


def test_unique_errors() -> None:
    with pytest.raises(NotImplementedError, match="unique along an axis of 'm' \\(float64 matrix\\) is not supported"):
        T.extra_ops.unique(T.matrix("m"), axis=0)
    with pytest.raises(ValueError, match="unique axis 1 is out of range for 'v'"):
        T.extra_ops.unique(T.vector("v"), axis=1)


@given(data=st.data())
def test_unique_gradient(verify_grads: Any, data: st.DataObject) -> None:
    """On distinct values unique is sort of the flattened array, and so is its gradient."""
    n = data.draw(st.integers(2, 6))
    ranks = np.array(data.draw(st.permutations(range(2 * n))), dtype=float).reshape(2, n)
    a = ranks * 0.5 + data.draw(sst.arrays("float64", st.just((2, n)), low=-0.1, high=0.1))
    verify_grads({"unique": (lambda x: T.extra_ops.unique(x) * T.arange(2 * n), [a])})


def test_names_in_T() -> None:
    """Theano keeps nonzero, flatnonzero and nonzero_values in T, the rest in T.extra_ops (also in T here)."""
    for name in ("nonzero", "flatnonzero", "nonzero_values", "bincount", "compress", "searchsorted", "unique"):
        assert callable(getattr(T, name))
    for name in ("bincount", "compress", "searchsorted", "unique"):
        assert getattr(T.extra_ops, name) is getattr(T, name)


def test_searchsorted_of_a_loops_queries_leaves_the_loop(mode: str) -> None:
    """Per-step queries into a fixed sorted vector are one search after the rewrites (its batch
    rule), with the loop's values."""
    edges, q = T.vector("edges"), T.matrix("q")
    rows, _ = sf.scan(lambda q_t: T.extra_ops.searchsorted(edges, q_t, side="right"), sequences=q)
    f = sf.function([edges, q], rows, mode=mode)
    searches = [n for n in f.fgraph.nodes() if type(n.op).__name__ == "SearchSorted"]
    assert searches and searches[0].inputs[1].ndim == 2  # applied to the whole (steps, queries) matrix
    e, queries = np.array([0.0, 1.0, 1.0, 3.0]), np.array([[-1.0, 1.0, 2.0], [3.0, 5.0, np.nan]])
    np.testing.assert_array_equal(f(e, queries), np.searchsorted(e, queries, side="right"))
