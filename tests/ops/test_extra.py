"""cumsum, cumprod, sort, argsort, diff and to_one_hot: values and dtypes against NumPy, shapes,
gradients and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symflow as sf
import symflow.tensor as T
from symflow.errors import DisconnectedInputError, IndexingError
from symflow.testing import strategies as sst

X3 = np.arange(24.0).reshape(2, 3, 4) - 7.0


def test_values_against_numpy(run: Any, check_infer_shape: Any) -> None:
    x, i, b, u = T.tensor3("x"), T.ivector("i"), T.tensor("bool", (False,), "b"), T.tensor("uint8", (False,), "u")
    axes = [None, 0, 1, 2, -1]
    outputs = [T.cumsum(x, axis=a) for a in axes] + [T.cumsum(i), T.cumsum(b), T.cumsum(u)]
    ivalue, bvalue, uvalue = np.array([3, -1, 2], "int32"), np.array([True, False, True]), np.array([200, 100], "uint8")
    results = run([x, i, b, u], outputs, X3, ivalue, bvalue, uvalue)
    for a, got in zip(axes, results[:len(axes)], strict=True):
        np.testing.assert_array_equal(got, np.cumsum(X3, axis=a))
    np.testing.assert_array_equal(results[-3], np.cumsum(ivalue))
    np.testing.assert_array_equal(results[-2], np.cumsum(bvalue))
    np.testing.assert_array_equal(results[-1], np.cumsum(uvalue))  # 300: uint64 as in NumPy, not a wrapped uint8
    assert [o.dtype for o in outputs[-3:]] == ["int64", "int64", "uint64"]
    assert [r.dtype.name for r in results[-3:]] == ["int64", "int64", "uint64"]
    assert T.cumsum(T.fvector()).dtype == "float32"
    check_infer_shape([x, i, b, u], outputs, X3, ivalue, bvalue, uvalue)
    with pytest.raises(ValueError, match="cumsum axis 3 is out of range for 'x'"):
        T.cumsum(x, axis=3)
    with pytest.raises(TypeError, match="cumsum axis must be an integer or None, got float 1.0 for 'x'"):
        T.cumsum(x, axis=1.0)  # type: ignore[arg-type]


@given(data=st.data())
def test_gradients(verify_grads: Any, data: st.DataObject) -> None:
    a = data.draw(sst.arrays("float64", sst.shapes(3, 3, min_side=2, max_side=3)))
    verify_grads({f"axis {axis}": (lambda x, axis=axis: T.cumsum(x, axis=axis) ** 2, [a])
                  for axis in (None, 0, 1, -1)})


def test_diff_values(run: Any, check_infer_shape: Any) -> None:
    x, i, b = T.tensor3("x"), T.tensor("int8", (False,), "i"), T.tensor("bool", (False,), "b")
    ivalue, bvalue = np.array([3, -1, 2, 100, -100], "int8"), np.array([True, False, False, True])
    cases = [((x,), {}), ((x, 2), {}), ((x,), {"axis": 0}), ((x, 2, 1), {}), ((x, 0), {}), ((x, 3), {"axis": 0}),
             ((x, 5), {}), ((i, 2), {}), ((b,), {})]
    outputs = [T.diff(*args, **kw) for args, kw in cases]
    values = {x: X3, i: ivalue, b: bvalue}
    results = run([x, i, b], outputs, X3, ivalue, bvalue)
    for (args, kw), out, got in zip(cases, outputs, results, strict=True):
        want = np.diff(values[args[0]], *args[1:], **kw)
        np.testing.assert_array_equal(got, want)
        assert out.dtype == got.dtype.name == want.dtype.name
    assert T.diff(x, 0) is x
    check_infer_shape([x, i, b], outputs, X3, ivalue, bvalue)
    with pytest.raises(ValueError, match="non-negative Python int, got -1"):
        T.diff(x, -1)
    with pytest.raises(ValueError, match="diff axis 3 is out of range"):
        T.diff(x, axis=3)
    with pytest.raises(ValueError, match="at least one dimension"):
        T.diff(T.scalar("s"))


def test_to_one_hot(run: Any, check_infer_shape: Any) -> None:
    y, k = T.ivector("y"), T.lscalar("k")
    labels = np.array([2, 0, 3, 3, -1], "int32")
    outputs = [T.to_one_hot(y, 4), T.to_one_hot(y, 5, dtype="int8"), T.to_one_hot(y, k),
               T.extra_ops.to_one_hot(y[:0], 3)]
    results = run([y, k], outputs, labels, 6)
    for n, got in zip([4, 5, 6], results, strict=False):
        np.testing.assert_array_equal(got, np.eye(n)[labels])  # -1: the last class, as Theano's indexing
    assert [r.dtype.name for r in results] == [sf.config.floatX, "int8", sf.config.floatX, sf.config.floatX]
    assert results[3].shape == (0, 3)
    check_infer_shape([y, k], outputs, labels, 6)
    with pytest.raises(IndexingError, match="index 3 is out of bounds for axis 1 with size 3"):
        run([y], T.to_one_hot(y, 3), labels)
    with pytest.raises(TypeError, match="integer vector of labels y, got 'f'"):
        T.to_one_hot(T.vector("f"), 3)
    with pytest.raises(TypeError, match="nb_class must be an integer"):
        T.to_one_hot(y, 2.5)


def test_diff_gradients(verify_grads: Any) -> None:
    a = np.random.default_rng(0).normal(size=(3, 4, 5))
    verify_grads({f"n={n}, axis={axis}": (lambda x, n=n, axis=axis: T.diff(x, n, axis) ** 2, [a])
                  for n, axis in [(1, -1), (2, 0), (3, 1)]})


# cumprod

P3 = np.array([[[2.0, 0.0, -1.5, 3.0], [0.5, 4.0, 0.0, -2.0], [1.5, -0.5, 2.0, 0.0]],
               [[0.0, 0.0, 1.0, -1.0], [3.0, 2.0, 0.5, np.nan], [-1.0, 1.0, 0.0, 2.0]]])


def test_cumprod_values_against_numpy(run: Any, check_infer_shape: Any) -> None:
    x, e, m = T.tensor3("x"), T.tensor3("e"), T.matrix("m")
    i, u, b = T.ivector("i"), T.tensor("uint8", (False,), "u"), T.tensor("bool", (False,), "b")
    axes = [None, 0, 1, 2, -1, -3]
    outputs = [T.cumprod(x, axis=a) for a in axes] + [T.cumprod(e, axis=1), T.cumprod(e), T.cumprod(m, axis=0),
                                                      T.cumprod(i), T.cumprod(u), T.cumprod(b)]
    evalue, mvalue = np.zeros((2, 0, 3)), np.array([[1.0, -2.0], [0.0, 3.0], [4.0, 5.0]])
    ivalue, uvalue = np.array([3, -1, 0, 2], "int32"), np.array([3, 200, 2], "uint8")
    values = [P3, evalue, mvalue, ivalue, uvalue, np.array([True, True, False])]
    results = run([x, e, m, i, u, b], outputs, *values)
    expected = [np.cumprod(P3, axis=a) for a in axes] + [np.cumprod(evalue, axis=1), np.cumprod(evalue)]
    expected += [np.cumprod(mvalue, axis=0)] + [np.cumprod(v) for v in values[3:]]
    for k, (got, want) in enumerate(zip(results, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"output {k}")
        assert got.dtype == want.dtype, f"output {k}"
    assert [o.dtype for o in outputs[-3:]] == ["int64", "uint64", "int64"]  # NumPy's, 200 * 3 * 2 fits
    assert T.cumprod(T.fvector()).dtype == "float32"
    check_infer_shape([x, e, m, i, u, b], outputs, *values)


def test_cumprod_errors_name_the_input() -> None:
    x = T.tensor3("x")
    with pytest.raises(ValueError, match="cumprod axis 3 is out of range for 'x' \\(float64 tensor3\\)"):
        T.cumprod(x, axis=3)
    with pytest.raises(ValueError, match="cumprod axis -4 is out of range for 'x'"):
        T.cumprod(x, axis=-4)
    with pytest.raises(TypeError, match="cumprod axis must be an integer or None, got float 1.0 for 'x'"):
        T.cumprod(x, axis=1.0)  # type: ignore[arg-type]


def with_zeros(data: st.DataObject, a: np.ndarray) -> np.ndarray:
    """``a`` with some (drawn) entries set to exactly 0, often several in one lane."""
    return np.where(data.draw(hnp.arrays(bool, a.shape)), 0.0, a)


@given(data=st.data())
def test_cumprod_gradients(verify_grads: Any, data: st.DataObject) -> None:
    """Against finite differences, zeros included: cumprod is linear in each entry (the others held
    fixed), so central differences are exact up to rounding at 0 too (no kink there)."""
    a = with_zeros(data, data.draw(sst.arrays("float64", sst.shapes(3, 3, min_side=2, max_side=4))))
    v = with_zeros(data, data.draw(sst.arrays("float64", sst.shapes(1, 1, min_side=2, max_side=5))))
    cases = {f"axis {axis}": (lambda x, axis=axis: T.cumprod(x, axis=axis), [a]) for axis in (None, 0, 1, -1)}
    verify_grads({**cases, "vector": (lambda x: T.cumprod(x) ** 2, [v])})


def cumprod_grad_reference(x: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    """d(sum(g * cumprod(x)))/dx_i = sum over k >= i of g_k times the product of x_j, j <= k, j != i:
    written out product by product, with no division (and no finite differences)."""
    x, g = np.moveaxis(x, axis, -1), np.moveaxis(g, axis, -1)
    out = np.zeros_like(x)
    for i in range(x.shape[-1]):
        for k in range(i, x.shape[-1]):
            others = np.delete(x[..., :k + 1], i, axis=-1)
            out[..., i] += g[..., k] * np.prod(others, axis=-1)
    return np.moveaxis(out, -1, axis)


def test_cumprod_gradient_is_exact_at_zeros(mode: str) -> None:
    """The gradient equals the product-by-product formula (no finite differences), where x has one
    zero, several zeros or none in a lane, in both backends; a gradient dividing by x gives NaN here."""
    x, g = T.tensor3("x"), T.tensor3("g")
    axes = [0, 1, 2, -1]
    f = sf.function([x, g], [sf.grad((T.cumprod(x, axis=a) * g).sum(), x) for a in axes], mode=mode)

    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        xv = with_zeros(data, data.draw(sst.arrays("float64", sst.shapes(3, 3, min_side=2, max_side=4))))
        gv = data.draw(sst.arrays("float64", st.just(xv.shape)))
        for a, got in zip(axes, f(xv, gv), strict=True):
            want = cumprod_grad_reference(xv, gv, a)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"axis {a}")

    check()
    got = f(P3[:, :, :3], np.ones((2, 3, 3)))[1][0]  # lanes along axis 1: (2, .5, 1.5), (0, 4, -.5), (-1.5, 0, 2)
    np.testing.assert_array_equal(got, [[2.25, 3.0, 1.0], [5.0, 0.0, -4.5], [1.0, 0.0, 0.0]])


def test_cumprod_second_derivative_is_an_error() -> None:
    x = T.vector("x")
    gx = sf.grad(T.cumprod(x).sum(), x)
    with pytest.raises(NotImplementedError, match="second derivatives of cumprod .*CumProdGrad"):
        sf.grad(gx.sum(), x)


# sort and argsort


def sort_input() -> np.ndarray:
    """A (3, 37, 5) array of many ties (values 0..3), NaNs (a lane with several) and signed zeros;
    37 is no power of two, so the merge sort's last runs are short."""
    a = np.random.default_rng(7).integers(0, 4, (3, 37, 5)).astype(float)
    a[0, 3, 1] = a[1, :4, 2] = a[2, 30:, 4] = a[1, 36, 0] = np.nan
    a[2, 5, 0] = a[2, 9, 0] = a[0, 0, :] = -0.0
    a[2, 6, 0] = a[2, 7, 0] = 0.0
    return a


def test_sort_and_argsort_against_numpy(run: Any, check_infer_shape: Any) -> None:
    """Both backends give NumPy's stable order exactly: ties (and NaNs) in order of appearance,
    NaN last, signed zeros kept where they were among the zeros."""
    x, e, m, v = T.tensor3("x"), T.tensor3("e"), T.matrix("m"), T.vector("v")
    i, u, b = T.ivector("i"), T.tensor("uint8", (False,), "u"), T.tensor("bool", (False,), "b")
    rng = np.random.default_rng(3)
    values = [sort_input(), np.zeros((2, 0, 3)), rng.normal(size=(4, 6)).round(0), np.array([np.nan, 1.0, -2.0, 1.0]),
              rng.integers(-3, 3, 20).astype("int32"), np.array([3, 200, 2, 3], "uint8"), rng.integers(0, 2, 11) > 0]
    cases = [(x, a, "quicksort") for a in (None, 0, 1, 2, -1, -2)] + [(x, 1, "stable"), (x, -1, "heapsort")]
    cases += [(e, a, "quicksort") for a in (0, 1, None)] + [(m, a, "quicksort") for a in (0, -1)]
    cases += [(var, -1, "quicksort") for var in (v, i, u, b)]
    inputs = [x, e, m, v, i, u, b]
    outputs = [f(var, axis=a, kind=kind) for var, a, kind in cases for f in (T.sort, T.argsort)]
    results = run(inputs, outputs, *values)
    for k, (var, a, _) in enumerate(cases):
        value = values[inputs.index(var)]
        want_sorted, want_order = np.sort(value, axis=a, kind="stable"), np.argsort(value, axis=a, kind="stable")
        got_sorted, got_order = results[2 * k], results[2 * k + 1]
        np.testing.assert_array_equal(got_order, want_order, err_msg=f"argsort {var} axis {a}")
        np.testing.assert_array_equal(got_sorted, want_sorted, err_msg=f"sort {var} axis {a}")
        assert np.array_equal(np.signbit(got_sorted), np.signbit(want_sorted)), f"sort {var} axis {a}: signed zeros"
        assert got_sorted.dtype == value.dtype and got_order.dtype == np.int64
    assert [o.dtype for o in outputs[-8:]] == ["float64", "int64", "int32", "int64", "uint8", "int64", "bool", "int64"]
    # the NaN lane: NaNs last, in order of appearance; the signed-zero lane keeps -0, -0, 0, 0 and 0 in order
    np.testing.assert_array_equal(results[5][1, 33:, 2], [0, 1, 2, 3])
    lane, before = results[4][2, :, 0], values[0][2, :, 0]
    np.testing.assert_array_equal(np.signbit(lane[lane == 0]), np.signbit(before[before == 0]))
    check_infer_shape(inputs, outputs, *values)


def test_sort_errors_name_the_input() -> None:
    x, s = T.tensor3("x"), T.scalar("s")
    for f in (T.sort, T.argsort):
        name = f.__name__
        with pytest.raises(ValueError, match=f"{name} axis 3 is out of range for 'x' \\(float64 tensor3\\)"):
            f(x, axis=3)
        with pytest.raises(ValueError, match=f"{name} axis -4 is out of range for 'x'"):
            f(x, axis=-4)
        with pytest.raises(ValueError, match=f"{name} axis -1 is out of range for 's'"):
            f(s)  # a scalar has no axis -1, as in NumPy; axis=None sorts it as a length-1 vector
        with pytest.raises(TypeError, match=f"{name} axis must be an integer or None, got str 'x' for 'x'"):
            f(x, axis="x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=f"{name} kind must be one of .*, got 'fast' for 'x'"):
            f(x, kind="fast")
        with pytest.raises(ValueError, match=f"{name} order= is for structured arrays"):
            f(x, order="f0")
    assert T.sort(s, axis=None).ndim == 1 and T.argsort(s, axis=None).ndim == 1


@st.composite
def distinct_arrays(draw: Any, shape: Any) -> np.ndarray:
    """Arrays whose values are at least 0.2 apart: finite differences then never change the sort order."""
    shape = draw(shape)
    n = int(np.prod(shape))
    ranks = np.array(draw(st.permutations(range(n))), dtype=float).reshape(shape)
    return (ranks - n / 2) * 0.4 + draw(sst.arrays("float64", st.just(shape), low=-0.1, high=0.1))


@given(data=st.data())
def test_sort_gradients(verify_grads: Any, data: st.DataObject) -> None:
    """The gradient goes back to where each sorted element came from (checked against finite
    differences, on distinct values: with ties sort is not differentiable)."""
    a = data.draw(distinct_arrays(sst.shapes(3, 3, min_side=2, max_side=4)))
    v = data.draw(distinct_arrays(sst.shapes(1, 1, min_side=2, max_side=6)))
    cases = {f"axis {axis}": (lambda x, axis=axis: T.sort(x, axis=axis), [a]) for axis in (None, 0, 1, 2, -2)}
    verify_grads({**cases, "vector": (lambda x: T.sort(x) * T.arange(x.shape[0]), [v])})


def test_argsort_is_disconnected(run: Any) -> None:
    """As argmax, argsort's output is not connected to its input for gradients; used as an index,
    the gradient flows through the indexing alone (here to the two smallest entries)."""
    x = T.vector("x")
    with pytest.raises(DisconnectedInputError):
        sf.grad(T.cast(T.argsort(x), "float64").sum(), x)
    two_smallest = x[T.argsort(x)[:2]]
    gx = run([x], sf.grad((two_smallest * [1.0, 10.0]).sum(), x), np.array([3.0, -1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0, 10.0])


def test_extra_ops_namespace() -> None:
    """Theano's ``T.extra_ops.<name>`` runs unchanged: the same functions as ``T.<name>``."""
    assert set(T.extra_ops.__all__) == {"bincount", "compress", "cumsum", "cumprod", "diff", "fill_diagonal",
                                        "fill_diagonal_offset", "repeat", "searchsorted", "squeeze", "to_one_hot",
                                        "unique"}
    for name in T.extra_ops.__all__:
        assert getattr(T.extra_ops, name) is getattr(T, name)


def test_per_step_applications_in_a_loop_become_one(mode: str) -> None:
    """cumsum, cumprod, sort and argsort of each row of a loop's sequence leave the loop as one
    application along the rows' axis (their batch rule), with the same values and gradients."""
    x = T.matrix("x")

    def step(x_t: Any, acc: Any) -> Any:
        ranked = T.cast(T.argsort(x_t), "float64")
        return acc + T.cumsum(x_t) * T.sort(x_t) + T.cumprod(x_t) + ranked

    acc, _ = sf.scan(step, sequences=x, outputs_info=T.zeros_like(x[0]))
    cost = (acc[-1] * [1.0, -2.0, 3.0, 0.5]).sum()
    outputs = [acc, sf.grad(cost, x)]
    rewritten = sf.function([x], outputs, mode=mode)
    moved = {(type(n.op).__name__, n.op.axis) for n in rewritten.fgraph.nodes()
             if type(n.op).__name__ in ("CumSum", "CumProd", "CumProdGrad", "Sort", "ArgSort")}
    assert {("CumSum", 1), ("CumProd", 1), ("Sort", 1), ("ArgSort", 1)} <= moved
    value = np.array([[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 3.0], [2.0, 2.0, -1.0, 0.5]])
    want = sf.function([x], outputs, mode=mode, rewrite=False)(value)
    for got, expected in zip(rewritten(value), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_second_derivatives_through_sort(run: Any) -> None:
    """The Hessian of ``sum(c * sort(x) ** 2)`` is diagonal, ``2 c`` at each element's rank: the
    gradient's scatter (by the sorting order) is differentiated again."""
    x = T.vector("x")
    c = np.array([1.0, -2.0, 3.0, 0.5])
    value = np.array([0.3, -1.2, 2.5, 0.1])
    (hessian,) = run([x], [sf.hessian((T.sort(x) ** 2 * c).sum(), x)], value)
    rank = np.argsort(np.argsort(value))
    np.testing.assert_allclose(hessian, np.diag(2 * c[rank]), rtol=1e-12, atol=1e-14)
