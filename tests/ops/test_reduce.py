"""Reductions (sum, prod, max, min, any, all, argmax, argmin) and what builds on them (mean,
var, std, norm): values and dtypes against NumPy, shapes, gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.errors import DisconnectedInputError
from symflow.testing import strategies as sst

REDUCTIONS = ["sum", "prod", "max", "min", "mean", "var", "std"]
AXES = [(None, False), (0, False), (-1, True), ((0, 2), False), ((0, 2), True), ((), False)]
#: 3-d arrays with sides 2..3 (one type for all sizes)
CUBES = sst.shapes(min_dims=3, max_dims=3, min_side=2, max_side=3)


@pytest.mark.parametrize("axis, keepdims", AXES, ids=str)
@given(data=st.data())
def test_values_against_numpy(run: Any, axis: Any, keepdims: bool, data: st.DataObject) -> None:
    value = data.draw(sst.arrays("float64", CUBES, -2, 2))
    x = T.tensor3("x")
    methods = [getattr(x, fn)(axis=axis, keepdims=keepdims) for fn in REDUCTIONS]
    functions = [getattr(T, fn)(x, axis=axis, keepdims=keepdims) for fn in REDUCTIONS]
    results = run([x], methods + functions, value)
    for k, fn in enumerate(REDUCTIONS):
        expected = getattr(np, fn)(value, axis=axis, keepdims=keepdims)
        for got in (results[k], results[k + len(REDUCTIONS)]):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=fn)
            assert got.shape == np.shape(expected), fn
        assert methods[k].broadcastable == tuple(s == 1 for s in np.shape(expected)) or not keepdims


def test_arg_reductions(run: Any) -> None:
    value = np.random.default_rng(1).normal(size=(3, 4))
    x = T.matrix("x")
    cases = [(fn, axis, keepdims) for fn in ("argmax", "argmin") for axis in (None, 0, 1, -1)
             for keepdims in (False, True)]
    outputs = [getattr(x, fn)(axis=axis, keepdims=keepdims) for fn, axis, keepdims in cases]
    outputs += [getattr(T, fn)(x, axis=axis, keepdims=keepdims) for fn, axis, keepdims in cases]
    results = run([x], outputs, value)
    for k, (fn, axis, keepdims) in enumerate(cases * 2):
        np.testing.assert_array_equal(results[k], getattr(np, fn)(value, axis=axis, keepdims=keepdims))
        assert results[k].dtype == np.int64 and outputs[k].dtype == "int64"


def test_arg_reductions_over_several_axes(run: Any) -> None:
    """As in Theano: the index into the reduced axes' entries, flattened in axis order."""
    value = np.random.default_rng(2).normal(size=(3, 4, 5))
    x = T.tensor3("x")
    cases = [(fn, axes, keepdims) for fn in ("argmax", "argmin") for axes in ((0, 1), (2, 0), (0, 1, 2))
             for keepdims in (False, True)]
    results = run([x], [getattr(x, fn)(axis=axes, keepdims=keepdims) for fn, axes, keepdims in cases], value)
    for got, (fn, axes, keepdims) in zip(results, cases):
        axes = tuple(sorted(axes))
        kept = [d for d in range(3) if d not in axes]
        merged = value.transpose(kept + list(axes)).reshape([value.shape[d] for d in kept] + [-1])
        expected = getattr(np, fn)(merged, axis=-1)
        if keepdims:
            expected = np.expand_dims(expected, axes)
        np.testing.assert_array_equal(got, expected, err_msg=f"{fn} {axes} {keepdims}")


def test_argmax_book_usage(run: Any) -> None:
    """``T.argmax(p, axis=1)`` gives the predicted class of each row."""
    p = T.matrix("p")
    value = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    np.testing.assert_array_equal(run([p], T.argmax(p, axis=1), value), [1, 0])


def test_any_all(run: Any) -> None:
    x = T.matrix("x")
    value = np.array([[1.0, -1.0], [2.0, 3.0]])
    out = run([x], [T.any(x < 0, axis=1), T.all(x > 0, axis=0), (x > 0).all(), (x > 5).any(keepdims=True)], value)
    np.testing.assert_array_equal(out[0], [True, False])
    np.testing.assert_array_equal(out[1], [True, False])
    assert out[2].ndim == 0 and not out[2]
    assert out[3].shape == (1, 1) and not out[3].any()
    assert T.any(x).dtype == "bool"


DTYPES = [
    ("sum", "int32", "int64"), ("sum", "bool", "int64"), ("sum", "int64", "int64"), ("sum", "float32", "float32"),
    ("sum", "uint8", "uint64"), ("prod", "int16", "int64"), ("max", "int32", "int32"), ("min", "float32", "float32"),
    ("mean", "int32", "float64"), ("mean", "float32", "float32"), ("mean", "float64", "float64"),
    ("var", "float32", "float32"), ("std", "int64", "float64"),
]


def test_result_dtypes(run: Any) -> None:
    inputs = [T.tensor(in_dtype, (False,), f"x{k}") for k, (_, in_dtype, _) in enumerate(DTYPES)]
    outputs = [getattr(x, fn)() for x, (fn, _, _) in zip(inputs, DTYPES, strict=True)]
    values = [np.array([1, 0, 1, 1], dtype=in_dtype) for _, in_dtype, _ in DTYPES]
    results = run(inputs, outputs, *values)
    for (fn, in_dtype, out_dtype), out, result, value in zip(DTYPES, outputs, results, values, strict=True):
        case = f"{fn}({in_dtype})"
        assert out.dtype == out_dtype, case
        assert result.dtype == np.dtype(out_dtype), case
        np.testing.assert_allclose(result, getattr(np, fn)(value), err_msg=case)


def test_sum_with_dtype_argument(run: Any) -> None:
    x = T.bvector("x")
    out = x.sum(dtype="float32")
    assert out.dtype == "float32"
    assert run([x], out, np.array([100, 100], "int8")) == 200.0


def test_float32_sums_accumulate_in_float64(run: Any) -> None:
    """Sums of float32 (and what builds on them: mean, var, norm) keep float32's precision over
    millions of terms, whole or along an axis; one by one in float32 such a sum drifts by 1%."""
    value = np.random.default_rng(0).uniform(0.0, 0.2, size=2_000_000).astype("float32")
    x, tall, wide = T.fvector("x"), T.fmatrix("tall"), T.fmatrix("wide")
    outs = run([x, tall, wide], [x.sum(), x.mean(), x.var(), x.norm(2), tall.sum(axis=0),
                                 wide.sum(axis=1, keepdims=True), T.prod(1 + x / 1e6)],
               value, value.reshape(-1, 4), value.reshape(4, -1))
    exact = value.astype("float64")
    refs = [exact.sum(), exact.mean(), exact.var(), np.sqrt((exact**2).sum()), exact.reshape(-1, 4).sum(axis=0),
            exact.reshape(4, -1).sum(axis=1, keepdims=True),
            np.prod((1 + value / np.float32(1e6)).astype("float64"))]  # float32 factors, multiplied exactly
    for k, (got, ref) in enumerate(zip(outs, refs)):
        assert got.dtype == "float32", k
        np.testing.assert_allclose(got, ref, rtol=1e-5, err_msg=str(k))


def test_norms(run: Any) -> None:
    value = np.random.default_rng(2).normal(size=(3, 4))
    x = T.matrix("x")
    orders = (1, 2, 3, np.inf)
    results = run([x], [x.norm(L) for L in orders] + [T.norm(x, L, axis=1) for L in orders], value)
    for k, L in enumerate(orders):
        np.testing.assert_allclose(results[k], np.linalg.norm(value.ravel(), L), rtol=1e-12)
        np.testing.assert_allclose(results[k + len(orders)], np.linalg.norm(value, L, axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="norm order"):
        x.norm(0)


def test_book_renormalisation(mode: str) -> None:
    """The language model rescales each embedding row to unit length with ``.norm(2)``."""
    We = sf.shared(np.random.default_rng(3).normal(size=(4, 3)), name="We")
    sf.function([], [], updates=[(We, We / We.norm(2, axis=1, keepdims=True))], mode=mode)()
    np.testing.assert_allclose(np.linalg.norm(We.get_value(), axis=1), np.ones(4))


def test_axis_errors() -> None:
    x = T.matrix("x")
    with pytest.raises(ValueError, match="out of range"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="out of range"):
        x.max(axis=-3)
    with pytest.raises(ValueError, match="repeated"):
        x.sum(axis=(0, -2))
    with pytest.raises(TypeError, match="symbolic"):
        x.sum(axis=T.iscalar())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_max_and_min_of_long_rows_with_nans_and_infinities(run: Any, dtype: str) -> None:
    """Rows long enough for the vectorised loops (and a remainder): a NaN anywhere in a row, first,
    in the middle or last, makes its max and min NaN, as NumPy's; infinities and an extremum in the
    last column count; over all elements and over each axis, in float32 and float64."""
    x = T.matrix("x", dtype=dtype)
    rng = np.random.default_rng(8)
    value = rng.normal(size=(7, 37)).astype(dtype)
    value[0, 0] = value[1, 18] = value[2, 36] = np.nan
    value[3, 36], value[3, 35] = 50.0, -50.0
    value[4, 5], value[4, 30] = np.inf, -np.inf
    value[5] = -np.inf
    outputs = [x.max(axis=1), x.min(axis=1), x.max(axis=0), x.min(axis=0), x[3:].max(), x[3:].min(), x.max()]
    got = run([x], outputs, value)
    want = [value.max(axis=1), value.min(axis=1), value.max(axis=0), value.min(axis=0), value[3:].max(),
            value[3:].min(), value.max()]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_max_of_empty_raises(run: Any) -> None:
    x = T.matrix("x")
    with pytest.raises(ValueError, match="empty"):
        run([x], x.max(axis=1), np.zeros((2, 0)))
    with pytest.raises(ValueError, match="empty"):
        run([x], x.argmax(), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        run([x], x.argmin(axis=-1), np.zeros((3, 0)))


def test_reducing_a_nonempty_axis_of_an_empty_array(run: Any) -> None:
    """As in NumPy, only an empty reduced axis is an error: max over axis 1 of a (0, 2) array is empty."""
    x = T.matrix("x")
    empty = np.zeros((0, 2))
    results = run([x], [x.max(axis=1), x.min(axis=1, keepdims=True), x.argmax(axis=1), x.argmin(axis=-1)], empty)
    for got, want in zip(results, [np.zeros(0), np.zeros((0, 1)), np.zeros(0, "int64"), np.zeros(0, "int64")],
                         strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype


def test_infer_shape(check_infer_shape: Any) -> None:
    x = T.tensor3("x")
    outputs = [getattr(x, fn)(axis=axis, keepdims=keepdims) for fn in REDUCTIONS for axis, keepdims in AXES]
    outputs += [x.argmax(axis=axis, keepdims=keepdims) for axis in (None, 1) for keepdims in (False, True)]
    check_infer_shape([x], outputs, np.ones((2, 3, 4)))


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis, keepdims", AXES[:5], ids=str)
@given(data=st.data())
def test_gradients(verify_grads: Any, axis: Any, keepdims: bool, data: st.DataObject) -> None:
    shape = data.draw(CUBES)
    smooth = data.draw(sst.arrays("float64", shape, -2, 2, avoid=[0.0], margin=0.1))  # zeros: see below
    # distinct, well separated values: max/min have no ties, std's spread stays away from 0
    distinct = (np.array(data.draw(st.permutations(range(int(np.prod(shape))))), dtype="float64") * 0.3
                - 1.0).reshape(shape)
    cases = {fn: (lambda x, fn=fn: getattr(x, fn)(axis=axis, keepdims=keepdims), [smooth])
             for fn in ("sum", "mean", "var", "prod")}
    cases |= {fn: (lambda x, fn=fn: getattr(x, fn)(axis=axis, keepdims=keepdims), [distinct])
              for fn in ("max", "min", "std")}
    verify_grads(cases)


@given(data=st.data())
def test_norm_gradients(verify_grads: Any, data: st.DataObject) -> None:
    shape = data.draw(sst.shapes(min_dims=2, max_dims=2, min_side=2))
    value = data.draw(sst.arrays("float64", shape, -2, 2, avoid=[0.0], margin=0.2))
    distinct = (np.array(data.draw(st.permutations(range(int(np.prod(shape))))), dtype="float64") + 1.0).reshape(shape)
    verify_grads({"L1": (lambda x: x.norm(1, axis=-1), [value]), "L2": (lambda x: x.norm(2, axis=-1), [value]),
                  "L3": (lambda x: x.norm(3, axis=-1), [value]),
                  "Linf": (lambda x: x.norm(np.inf, axis=-1), [distinct])})


def test_prod_gradient_with_zeros(mode: str, verify_grads: Any) -> None:
    """prod's gradient stays exact with one or several zero factors (no division by zero)."""
    value = np.array([[0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [2.0, 3.0, 4.0]])
    verify_grads({"prod": (lambda x: x.prod(axis=1), [value])})
    x = T.matrix("x")
    g = sf.function([x], sf.grad(x.prod(axis=1).sum(), x), mode=mode)(value)
    np.testing.assert_allclose(g, [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0], [12.0, 8.0, 6.0]])


def test_prod_second_derivatives_with_zero_factors(mode: str) -> None:
    """The Hessian of prod is the product of the other factors off the diagonal, with no, one, two
    or three zero factors (the gradient's branch for nonzero factors still depends on a zero, and
    with two zeros each one's entry depends on the other)."""
    x = T.vector("x")
    hessian = sf.function([x], sf.hessian(T.prod(x), x), mode=mode)
    for point in ([1.5, 2.0, 3.0, -1.0], [0.0, 2.0, 3.0, -1.0], [2.0, 3.0, 0.0, -1.0],
                  [0.0, 2.0, 0.0, -1.5], [0.0, 0.0, 3.0, 0.0], [-0.0, 0.0, 0.0, 0.0]):
        v = np.array(point)
        expected = [[0.0 if i == j else np.prod(np.delete(v, [i, j])) for j in range(4)] for i in range(4)]
        np.testing.assert_allclose(hessian(v), expected, err_msg=str(point))


def test_reduction_over_broadcastable_input(verify_grads: Any) -> None:
    verify_grads({"row": (lambda x: x.sum(axis=0) * x.mean(axis=1, keepdims=True), [np.array([[1.0, 2.0, 3.0]])])})


def test_argmax_is_disconnected() -> None:
    """As in Theano, argmax's output is not connected to its input for gradients."""
    x = T.vector("x")
    with pytest.raises(DisconnectedInputError):
        sf.grad(T.cast(x.argmax(), "float64"), x)


def test_float_max_and_min_fold_with_the_vectorising_extremum() -> None:
    """Float max/min kernels fold with ``runtime.nan_max``/``nan_min`` (LLVM vectorises that loop;
    the NaN-testing select it replaced stays scalar); integer ones keep the select."""
    x, k = T.matrix("x"), T.imatrix("k")
    f = sf.function([x, k], [x.max(axis=1), x.min(), k.max(axis=0)], mode="numba")
    kernels = "\n".join(f._run.cg.generated.values())
    assert "runtime.nan_max(" in kernels and "runtime.nan_min(" in kernels
    assert kernels.count("runtime.nan_max(") == 1  # not the integer max
    got = f(np.array([[1.0, np.nan], [3.0, -2.0]]), np.array([[1, 5], [4, 2]], dtype="int32"))
    assert np.isnan(got[0][0]) and got[0][1] == 3.0 and np.isnan(got[1])
    np.testing.assert_array_equal(got[2], [4, 5])


def test_max_and_argmax_is_the_pair(run: Any, check_infer_shape: Any) -> None:
    """Theano's max_and_argmax: the maximum and its index over the same axes (None: the flattened array)."""
    x, i = T.tensor3("x"), T.imatrix("i")
    X = np.array([[[1.0, 5, -2], [np.nan, 0, 3]], [[4, 4, 1], [-1, -7, 9]]])
    INTS = np.array([[3, -1, 3], [0, 8, 8]], "int32")
    cases = [(x, None, False), (x, 0, False), (x, -1, True), (x, (0, 2), False), (i, 1, False), (i, None, True)]
    outputs = [v for var, axis, keep in cases for v in T.max_and_argmax(var, axis, keepdims=keep)]
    results = run([x, i], outputs, X, INTS)
    values = {x: X, i: INTS}
    for k, (var, axis, keep) in enumerate(cases):
        got_max, got_arg = results[2 * k], results[2 * k + 1]
        want_max = np.max(values[var], axis=axis, keepdims=keep)
        np.testing.assert_array_equal(got_max, want_max)
        assert got_max.dtype == want_max.dtype and got_arg.dtype == np.int64
        if isinstance(axis, tuple):  # Theano's argmax over several axes: of their entries flattened
            moved = np.moveaxis(values[var], axis, (-2, -1)).reshape(values[var].shape[1], -1)
            np.testing.assert_array_equal(got_arg, np.argmax(moved, axis=-1))
        else:
            np.testing.assert_array_equal(got_arg, np.argmax(values[var], axis=axis, keepdims=keep))
    check_infer_shape([x, i], outputs, X, INTS)
    with pytest.raises(ValueError, match="out of range"):
        T.max_and_argmax(x, 3)


@given(data=st.data())
def test_max_and_argmax_gradient_flows_through_the_max(verify_grads: Any, data: st.DataObject) -> None:
    a = np.array(data.draw(st.permutations(range(6))), "float64").reshape(2, 3) * 0.7 - 2  # no near ties
    verify_grads({"max of axis 1": (lambda x: T.max_and_argmax(x, 1)[0], [a]),
                  "max of all": (lambda x: T.max_and_argmax(x)[0] * 2, [a])})
    x = T.matrix("x")
    with pytest.raises(DisconnectedInputError):
        T.grad(T.cast(T.max_and_argmax(x)[1], "float64"), x)
