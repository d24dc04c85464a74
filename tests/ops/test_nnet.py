"""T.nnet: softmax and log_softmax (row-wise, a vector giving a 1 x K row; or along an axis),
logsumexp, the cross-entropies, stability at extreme inputs, and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.ops.nnet import LogSumExp, SoftmaxAndLog
from symflow.testing import strategies as sst


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_values_and_types(run: Any, check_infer_shape: Any) -> None:
    m, v = T.matrix("m"), T.vector("v")
    M = np.random.default_rng(0).normal(size=(3, 4))
    V = np.array([1.0, 2.0, 3.0])
    outputs = [T.nnet.softmax(m), T.nnet.softmax(v), T.nnet.log_softmax(m), T.nnet.log_softmax(v),
               T.nnet.logsoftmax(m)]
    results = run([m, v], outputs, M, V)
    np.testing.assert_allclose(results[0], _softmax(M), rtol=1e-12)
    np.testing.assert_allclose(results[0].sum(axis=1), np.ones(3))
    # a vector gives a 1 x K row, as in Theano (hence the book's y[:, 0, :] after scan)
    assert outputs[1].broadcastable == (True, False) and results[1].shape == (1, 3)
    np.testing.assert_allclose(results[1][0], _softmax(V), rtol=1e-12)
    np.testing.assert_allclose(results[2], np.log(_softmax(M)), rtol=1e-12)
    assert results[3].shape == (1, 3)
    np.testing.assert_allclose(results[4], results[2])
    assert T.nnet.softmax(T.fmatrix()).dtype == "float32"
    check_infer_shape([m, v], outputs, M, V)


def _softmax_along(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isinf(top), 0.0, top)
    with np.errstate(divide="ignore"):  # log(0) = -inf for a slice of -inf
        total = np.log(np.exp(x - top).sum(axis=axis, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axis)


def test_softmax_and_log_softmax_along_an_axis_of_any_tensor(run: Any, check_infer_shape: Any) -> None:
    """With ``axis``, any float tensor keeps its shape (a vector stays a vector); empty ones too."""
    x, v = T.tensor3("x"), T.vector("v")
    X = np.random.default_rng(3).normal(size=(2, 3, 4)) * 50  # large: the max must be taken out
    V = np.array([1.0, 2.0, 3.0])
    outputs = [T.nnet.softmax(x, axis=a) for a in (0, 1, 2, -1)] + [T.nnet.log_softmax(x, axis=a) for a in (0, 1, 2)]
    outputs += [T.nnet.softmax(v, axis=0), T.nnet.log_softmax(v, axis=-1)]
    results = run([x, v], outputs, X, V)
    expected = [_softmax_along(X, a) for a in (0, 1, 2, -1)] + [X - _logsumexp(X, a, keepdims=True) for a in (0, 1, 2)]
    expected += [_softmax(V), np.log(_softmax(V))]
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        assert got.shape == want.shape and out.broadcastable == (False,) * want.ndim, k
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=str(k))
    check_infer_shape([x, v], outputs, X, V)
    m = T.matrix("m")
    assert type(T.nnet.softmax(m, axis=-1).owner.op).__name__ == "Softmax"  # rows already: no reshapes
    assert type(T.nnet.log_softmax(v, axis=0).owner.inputs[0].owner.op).__name__ == "LogSoftmax"
    empty = run([x], [T.nnet.softmax(x, axis=0), T.nnet.log_softmax(x, axis=2)], np.zeros((2, 0, 3)))
    assert [e.shape for e in empty] == [(2, 0, 3), (2, 0, 3)]
    with pytest.raises(ValueError, match="softmax's axis 3 is out of range for a 3-d tensor"):
        T.nnet.softmax(x, axis=3)
    with pytest.raises(TypeError, match=r"log_softmax needs a float input, got 'i' \(int32 matrix\)"):
        T.nnet.log_softmax(T.imatrix("i"), axis=0)
    with pytest.raises(TypeError, match="softmax needs at least one axis"):
        T.nnet.softmax(T.scalar("s"), axis=0)


def test_logsumexp_over_any_axes(run: Any, check_infer_shape: Any) -> None:
    """``T.logsumexp`` matches NumPy over every axis form, keeps dims on request, does not overflow,
    and gives -inf (not NaN) for a slice of -inf, +inf for one holding +inf."""
    x = T.tensor3("x")
    X = np.random.default_rng(4).normal(size=(2, 3, 4)) * 300
    X[1, :, 2] = -np.inf
    X[0, 2, :] = -np.inf
    X[1, 0, 0] = np.inf
    forms = [None, 0, 1, -1, (0, 2), (0, 1, 2)]
    outputs = [T.logsumexp(x, axis=a) for a in forms] + [T.logsumexp(x, axis=a, keepdims=True) for a in forms]
    results = run([x], outputs, X)
    expected = [_logsumexp(X, a) for a in forms] + [_logsumexp(X, a, keepdims=True) for a in forms]
    for k, (got, want) in enumerate(zip(results, expected, strict=True)):
        assert np.shape(got) == np.shape(want), k
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=str(k))
    assert np.isneginf(results[3][0, 2]) and np.isposinf(results[3][1, 0]) and not np.isnan(results[1]).any()
    finite = X.copy()
    finite[~np.isfinite(finite)] = 0.0
    check_infer_shape([x], outputs, finite)
    assert T.nnet.logsumexp is T.logsumexp and T.logsumexp(T.fmatrix(), 1).dtype == "float32"
    with pytest.raises(TypeError, match="logsumexp needs a float input"):
        T.logsumexp(T.ivector("i"))


def test_softmax_inside_scan_gives_rows(mode: str) -> None:
    """The book's pattern: softmax of a vector per step stacks to (T, 1, K); ``y[:, 0, :]`` is (T, K)."""
    X = T.matrix("X")
    W = sf.shared(np.random.default_rng(1).normal(size=(2, 3)), name="W")
    y, _ = sf.scan(lambda x_t: T.nnet.softmax(x_t.dot(W)), sequences=X)
    out = sf.function([X], [y, y[:, 0, :]], mode=mode)(np.ones((4, 2)))
    assert out[0].shape == (4, 1, 3) and out[1].shape == (4, 3)
    np.testing.assert_allclose(out[1].sum(axis=1), np.ones(4))


def test_extreme_inputs_stay_finite(run: Any) -> None:
    x = T.matrix("x")
    value = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
    sm, lsm = run([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)], value)
    np.testing.assert_allclose(sm, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)
    np.testing.assert_allclose(lsm, [[0.0, -1000.0, -2000.0], [np.log(1 / 3)] * 3])


def test_long_rows_match_numpy(run: Any) -> None:
    """Rows long enough for the vectorised exponentials (and a remainder), with differences from
    the row maximum down to -800 (below -708 they give 0), -inf (a masked entry) and a NaN row."""
    x = T.matrix("x")
    rng = np.random.default_rng(3)
    value = rng.uniform(-800.0, 5.0, size=(4, 37))
    value[1, ::3] = -np.inf
    value[2] = rng.normal(size=37)
    value[3, 5] = np.nan
    sm, lsm = run([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)], value)
    with np.errstate(invalid="ignore"):
        shift = value.max(axis=1, keepdims=True)
        want_log = value - shift - np.log(np.exp(value - shift).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(sm[:3], np.exp(want_log[:3]), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(lsm[:3], want_log[:3], rtol=1e-13, atol=1e-13)  # log(total) is near 0
    assert np.isnan(sm[3]).all() and np.isnan(lsm[3]).all()


def test_softmax_needs_floats() -> None:
    with pytest.raises(TypeError, match=r"softmax needs a float input, got 'labels' \(int32 vector\)"):
        T.nnet.softmax(T.ivector("labels"))
    with pytest.raises(TypeError, match="log_softmax needs a float input"):
        T.nnet.log_softmax(T.imatrix())


def test_crossentropies(run: Any) -> None:
    rng = np.random.default_rng(2)
    P = rng.uniform(0.1, 1.0, size=(3, 4))
    P /= P.sum(axis=1, keepdims=True)
    Y = np.array([0, 3, 1], "int32")
    Out, Tt = rng.uniform(0.1, 0.9, size=(3, 4)), rng.uniform(0, 1, size=(3, 4))
    Z = rng.normal(size=(3, 4))
    p, y, onehot, o, t, z = T.matrix("p"), T.ivector("y"), T.matrix("onehot"), T.matrix("o"), T.matrix("t"), \
        T.matrix("z")
    outputs = [T.nnet.categorical_crossentropy(p, y), T.nnet.categorical_crossentropy(p, onehot),
               T.nnet.categorical_crossentropy(p[0], y[1]), T.nnet.binary_crossentropy(o, t),
               T.nnet.sigmoid_binary_crossentropy(z, t), T.nnet.crossentropy_softmax_1hot(z, y)]
    results = run([p, y, onehot, o, t, z], outputs, P, Y, np.eye(4)[Y], Out, Tt, Z)
    expected = [-np.log(P[np.arange(3), Y]), -np.log(P[np.arange(3), Y]), -np.log(P[0, Y[1]]),
                -(Tt * np.log(Out) + (1 - Tt) * np.log(1 - Out)),
                -(Tt * np.log(1 / (1 + np.exp(-Z))) + (1 - Tt) * np.log(1 - 1 / (1 + np.exp(-Z)))),
                -np.log(_softmax(Z)[np.arange(3), Y])]
    for k, (got, want) in enumerate(zip(results, expected, strict=True)):
        np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=str(k))
    with pytest.raises(TypeError, match="categorical_crossentropy"):
        T.nnet.categorical_crossentropy(p, T.tensor3())


def test_softmax_crossentropy_gradient_is_p_minus_onehot(mode: str) -> None:
    """d/dz of -log softmax(z)[y] is softmax(z) - onehot(y), also for large logits."""
    z, y = T.matrix("z"), T.ivector("y")
    Z = np.array([[1.0, 2.0, 3.0], [500.0, 0.0, -500.0]])
    Y = np.array([2, 1], "int32")
    expected = _softmax(Z) - np.eye(3)[Y]
    costs = [T.nnet.categorical_crossentropy(T.nnet.softmax(z), y).sum(),
             T.nnet.crossentropy_softmax_1hot(z, y).sum(), -T.nnet.log_softmax(z)[T.arange(2), y].sum()]
    grads = sf.function([z, y], [sf.grad(c, z) for c in costs], mode=mode)(Z, Y)
    np.testing.assert_allclose(grads[1], expected, atol=1e-12)
    np.testing.assert_allclose(grads[2], expected, atol=1e-12)
    np.testing.assert_allclose(grads[0][0], expected[0], atol=1e-12)


@given(data=st.data())
def test_gradients(verify_grads: Any, data: st.DataObject) -> None:
    n, k = data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4))
    logits = data.draw(sst.arrays("float64", (n, k), -3, 3))
    vector = data.draw(sst.arrays("float64", (k,), -3, 3))
    cube = data.draw(sst.arrays("float64", (2, n, k), -3, 3))
    probs = data.draw(sst.arrays("float64", (n, k), 0.1, 0.9))
    targets = data.draw(sst.arrays("float64", (n, k), 0, 1))
    y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    verify_grads({
        "softmax": (T.nnet.softmax, [logits]),
        "softmax of a vector": (T.nnet.softmax, [vector]),
        "log_softmax": (T.nnet.log_softmax, [logits]),
        "softmax then log": (lambda x: T.log(T.nnet.softmax(x)), [logits]),
        "categorical_crossentropy (indices)": (lambda p: T.nnet.categorical_crossentropy(p, y), [probs]),
        "categorical_crossentropy (one-hot)": (T.nnet.categorical_crossentropy, [probs, np.eye(k)[y]]),
        "binary_crossentropy": (T.nnet.binary_crossentropy, [probs, targets]),
        "sigmoid_binary_crossentropy": (T.nnet.sigmoid_binary_crossentropy, [logits, targets]),
        "crossentropy_softmax_1hot": (lambda x: T.nnet.crossentropy_softmax_1hot(x, y), [logits]),
        "softmax and log_softmax from one op": (lambda x: _both(x)[0] * 0.5 + _both(x)[1], [logits]),
        "only the log_softmax of the pair": (lambda x: _both(x)[1], [logits]),
        "only the softmax of the pair": (lambda x: _both(x)[0], [vector]),
        "logsumexp": (lambda x: LogSumExp(False)(x), [logits]),
        "softmax and logsumexp": (lambda x: LogSumExp(True)(x)[0] * 0.5 + LogSumExp(True)(x)[1], [logits]),
        "only the logsumexp of the pair": (lambda x: LogSumExp(True)(x)[1], [logits]),
        "softmax along axis 0": (lambda x: T.nnet.softmax(x, axis=0), [logits]),
        "log_softmax along axis 0 of a 3-d tensor": (lambda x: T.nnet.log_softmax(x, axis=0), [cube]),
        "logsumexp over axis 1": (lambda x: T.logsumexp(x, axis=1), [logits]),
        "logsumexp over axes (0, 2), kept": (lambda x: T.logsumexp(x, axis=(0, 2), keepdims=True), [cube]),
    })


def test_logsumexp_of_rows(run: Any, check_infer_shape: Any) -> None:
    """Each row's log-sum-exp, as a column, with or without the softmax: finite for logits far apart,
    -inf for rows of no entries, and exactly what the log-softmax subtracts."""
    x = T.matrix("x")
    (lse,) = LogSumExp(False).make_node(x).outputs
    sm, lse2 = LogSumExp(True)(x)
    assert lse.broadcastable == (False, True) and sm.type == x.type
    value = np.random.default_rng(4).normal(size=(3, 5)) * np.array([1.0, 1.0, 800.0])[:, None]
    got = run([x], [lse, sm, lse2, x - T.nnet.log_softmax(x)], value)
    top = value.max(axis=1, keepdims=True)
    expected = top + np.log(np.exp(value - top).sum(axis=1, keepdims=True))
    for column in (got[0], got[2], got[3][:, :1]):
        np.testing.assert_allclose(column, expected, rtol=1e-13)
    np.testing.assert_allclose(got[1], _softmax(value), rtol=1e-12)
    check_infer_shape([x], [lse, sm, lse2], value)
    (empty,) = run([x], [lse], np.zeros((2, 0)))
    assert empty.shape == (2, 1) and np.all(empty == -np.inf)
    with pytest.raises(TypeError, match="rows of a matrix"):
        LogSumExp(False)(T.vector("v"))


def test_logsumexp_with_a_bias_row_and_a_scaled_softmax(run: Any, check_infer_shape: Any) -> None:
    """With a bias row ``b`` the rows are those of ``x + b``; ``scaled``, the softmax comes multiplied
    by a column, one factor per row: each variant gives the values of the expression written out,
    also for logits far apart and a factor of 0 or inf. Inputs of the wrong type or shape are errors."""
    x, b, s = T.matrix("x"), T.row("b"), T.col("s")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 5)) * np.array([1.0, 1.0, 800.0])[:, None]
    B, S = rng.normal(size=(1, 5)) * 3, np.array([[-0.5], [0.0], [np.inf]])
    outputs = [LogSumExp(False, True)(x, b), *LogSumExp(True, True)(x, b), *LogSumExp(True, False, True)(x, s),
               *LogSumExp(True, True, True)(x, b, s)]
    assert all(y.type == x.type for y in outputs[1::2]) and outputs[0].broadcastable == (False, True)

    def lse(z: np.ndarray) -> np.ndarray:
        top = z.max(axis=1, keepdims=True)
        return top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]

    Z = X + B
    with np.errstate(invalid="ignore"):  # inf * 0 is nan, as in the product written out
        expected = [lse(Z), _softmax(Z), lse(Z), _softmax(X) * S, lse(X), _softmax(Z) * S, lse(Z)]
    for got, want in zip(run([x, b, s], outputs, X, B, S), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    check_infer_shape([x, b, s], outputs, X, B, S)
    with pytest.raises(sf.errors.ShapeError, match="the bias must have one entry per column"):
        run([x, b], LogSumExp(True, True)(x, b), X, B[:, :4])
    with pytest.raises(sf.errors.ShapeError, match="the scale must have one entry per row"):
        run([x, s], LogSumExp(True, False, True)(x, s), X, S[:2])
    with pytest.raises(TypeError, match="bias must be a row of float64"):
        LogSumExp(False, True)(x, x)
    with pytest.raises(TypeError, match="bias must be a row of float64"):
        LogSumExp(False, True)(x, T.frow("f"))
    with pytest.raises(TypeError, match="scale must be a column of float64"):
        LogSumExp(True, False, True)(x, b)
    with pytest.raises(TypeError, match="takes 3 inputs, got 2"):
        LogSumExp(True, True, True)(x, b)
    with pytest.raises(ValueError, match="only the softmax can be scaled"):
        LogSumExp(False, False, True)


def test_logsumexp_variants_on_long_rows_match_numpy(run: Any) -> None:
    """Rows long enough for the vectorised loops (and a remainder), through each LogSumExp variant:
    a row whose maximum is in the last column with the others 2000 below it (a maximum taken from
    part of the row overflows the exponentials), a row with -inf entries, a NaN row (NaN throughout,
    other rows untouched), and a bias that moves a row's maximum to another column."""
    x, b, s = T.matrix("x"), T.row("b"), T.col("s")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 37))
    X[1] = -1000.0
    X[1, 36] = 1000.0
    X[2, ::4] = -np.inf
    X[3, 17] = np.nan
    B, S = rng.normal(size=(1, 37)), rng.uniform(0.5, 2.0, size=(4, 1))
    outputs = [LogSumExp(False)(x), *LogSumExp(True)(x), LogSumExp(False, True)(x, b), *LogSumExp(True, True)(x, b),
               *LogSumExp(True, False, True)(x, s), *LogSumExp(True, True, True)(x, b, s)]
    with np.errstate(invalid="ignore"):
        Z = X + B
        top_x, top_z = X.max(axis=1, keepdims=True), Z.max(axis=1, keepdims=True)
        lse_x = top_x + np.log(np.exp(X - top_x).sum(axis=1, keepdims=True))
        lse_z = top_z + np.log(np.exp(Z - top_z).sum(axis=1, keepdims=True))
        sm_x, sm_z = np.exp(X - lse_x), np.exp(Z - lse_z)
    expected = [lse_x, sm_x, lse_x, lse_z, sm_z, lse_z, sm_x * S, lse_x, sm_z * S, lse_z]
    for k, (got, want) in enumerate(zip(run([x, b, s], outputs, X, B, S), expected, strict=True)):
        np.testing.assert_allclose(got[:3], want[:3], rtol=1e-12, atol=1e-300, err_msg=str(k))
        assert np.isnan(got[3]).all(), k
    X, B = np.zeros((2, 37)), np.zeros((1, 37))  # the maximum of x + b, not of x, is what is subtracted
    X[:, 36], B[0, 5] = 800.0, 2000.0
    lse, sm, lse_too = run([x, b], [LogSumExp(False, True)(x, b), *LogSumExp(True, True)(x, b)], X, B)
    np.testing.assert_allclose(np.hstack([lse, lse_too]), 2000.0, rtol=1e-15)
    np.testing.assert_array_equal(sm, np.eye(37)[[5, 5]])


@given(data=st.data())
def test_gradients_of_logsumexp_with_bias_and_scale(verify_grads: Any, data: Any) -> None:
    n, k = data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4))
    logits = data.draw(sst.arrays("float64", (n, k), -3, 3))
    bias = data.draw(sst.arrays("float64", (1, k), -3, 3))
    scale = data.draw(sst.arrays("float64", (n, 1), -2, 2))
    verify_grads({
        "logsumexp with a bias": (lambda x, b: LogSumExp(False, True)(x, b), [logits, bias]),
        "softmax and logsumexp with a bias": (lambda x, b: _weighted(LogSumExp(True, True)(x, b)), [logits, bias]),
        "scaled softmax": (lambda x, s: _weighted(LogSumExp(True, False, True)(x, s)), [logits, scale]),
        "scaled softmax with a bias": (lambda x, b, s: _weighted(LogSumExp(True, True, True)(x, b, s)),
                                       [logits, bias, scale]),
        "only its logsumexp": (lambda x, b, s: LogSumExp(True, True, True)(x, b, s)[1], [logits, bias, scale]),
    })


def _weighted(outputs: list[Any]) -> Any:
    """Both outputs of a LogSumExp in one value, the softmax's entries with different weights."""
    y, lse = outputs
    return (y * T.arange(y.shape[1]).astype("float64")).sum(axis=1) + lse[:, 0]


def _both(x: Any) -> list[Any]:
    return SoftmaxAndLog()(x if x.ndim == 2 else x.dimshuffle("x", 0))  # type: ignore[no-any-return]


def test_softmax_and_log_softmax_of_the_same_rows_share_one_op(mode: str) -> None:
    """Where a graph needs both (a cross-entropy's cost and its gradient), one op computes them."""
    x = T.tensor3("x")
    z = x * 2
    f = sf.function([x], [T.nnet.softmax(z), T.nnet.log_softmax(z)], mode=mode)
    assert [type(n.op) for n in f.fgraph.nodes()].count(SoftmaxAndLog) == 1
    value = np.random.default_rng(3).normal(size=(2, 3, 4)) * 3
    sm, lsm = f(value)
    shifted = value * 2 - (value * 2).max(axis=-1, keepdims=True)
    np.testing.assert_allclose(sm, _softmax(value * 2), rtol=1e-12)
    np.testing.assert_allclose(lsm, shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)), atol=1e-12)


def test_softmax_gradient_of_matrices_runs_on_them_directly() -> None:
    """The Numba code of a matrix softmax gradient passes its operands as they are (reversed views
    here), with no reshaping copies; higher ranks are reshaped to rows."""
    from symflow.ops.nnet import SoftmaxGrad

    g, y, g3, y3 = T.matrix("g"), T.matrix("y"), T.tensor3("g3"), T.tensor3("y3")
    outputs = [SoftmaxGrad()(g[::-1], y[::-1]), SoftmaxGrad()(g3, y3)]
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(4, 3)), rng.dirichlet(np.ones(3), size=4),
              rng.normal(size=(2, 4, 3)), rng.dirichlet(np.ones(3), size=(2, 4))]
    f = sf.function([g, y, g3, y3], outputs, mode="numba")
    reshapers = [name for name, src in f._run.cg.generated.items() if ".reshape(" in src]
    assert sum(f.source.count(f"{name}(") for name in reshapers) == 3  # g3, y3 and the result only
    for got, want in zip(f(*values), sf.function([g, y, g3, y3], outputs, mode="py")(*values), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


def test_softmax_kernels_ask_for_wide_vectors() -> None:
    """The softmax kernels' LLVM functions carry ``"prefer-vector-width"="512"`` (``WIDE_KERNEL_OPTIONS``),
    and on a CPU with AVX-512 their loops use its 512-bit registers, which LLVM otherwise leaves unused.
    The kernel computes the softmax."""
    import llvmlite.binding as llvm
    import numba

    from symflow.compile.numba import cache
    from symflow.ops import nnet

    source = nnet.SOFTMAX_SOURCE + f"# {np.random.default_rng().integers(1 << 62)}\n"  # compiled, not loaded
    name = "g_test_" + cache.source_key(source)
    cache.store_kernel(name, source)
    kernel = cache.load_kernel(name)
    signature = (numba.float64[:, ::1], numba.float64[:, ::1])
    kernel.compile(signature)
    assert '"prefer-vector-width"="512"' in kernel.inspect_llvm(signature)
    if "+avx512f" in llvm.get_host_cpu_features().flatten():
        assert "zmm" in kernel.inspect_asm(signature)

    @numba.njit
    def call(x, out):  # type: ignore[no-untyped-def]  # kernels have no Python wrapper
        kernel(x, out)

    x = np.random.default_rng(0).normal(size=(3, 50)) * 5
    out = np.empty_like(x)
    call(x, out)
    np.testing.assert_allclose(out, _softmax(x), rtol=1e-14)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(x))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_elu_selu_softsign_values(run: Any, dtype: str) -> None:
    """Against NumPy, in the input's dtype, finite and exact at the extremes (+-inf, the largest floats)."""
    big = float(np.finfo(dtype).max)
    X = np.array([-np.inf, -big, -1000.0, -2.5, -1e-8, -0.0, 0.0, 1e-8, 0.7, 1000.0, big, np.inf, np.nan], dtype)
    x = T.vector("x", dtype=dtype)
    outputs = [T.nnet.elu(x), T.nnet.elu(x, alpha=0.5), T.nnet.selu(x), T.nnet.softsign(x), T.nnet.softsign(x[:0])]
    with np.errstate(all="ignore"):
        expected = [_elu(X), _elu(X, 0.5), SELU_SCALE * _elu(X, SELU_ALPHA),
                    np.where(np.isinf(X), np.sign(X), X / (1 + np.abs(X))), X[:0]]
    for k, (out, got, want) in enumerate(zip(outputs, run([x], outputs, X), expected, strict=True)):
        assert out.dtype == got.dtype.name == dtype, k
        np.testing.assert_allclose(got, np.asarray(want, dtype), rtol=1e-6 if dtype == "float32" else 1e-14,
                                   err_msg=str(k))
    softsign = run([x], T.nnet.softsign(x), X)
    assert softsign[0] == -1 and softsign[-2] == 1 and np.isnan(softsign[-1])


def test_elu_selu_softsign_of_integers(run: Any) -> None:
    i = T.ivector("i")
    INTS = np.array([-3, 0, 2, -2147483648, 2147483647], "int32")
    outputs = [T.nnet.elu(i), T.nnet.selu(i), T.nnet.softsign(i)]
    expected = [_elu(INTS.astype("float64")), SELU_SCALE * _elu(INTS.astype("float64"), SELU_ALPHA),
                INTS / (1 + np.abs(INTS.astype("float64")))]
    for out, got, want in zip(outputs, run([i], outputs, INTS), expected, strict=True):
        assert out.dtype == got.dtype.name == "float64"
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_elu_selu_softsign_gradients_are_finite_at_extremes(run: Any) -> None:
    """The exponential of a large positive input is never taken, so no inf * 0 NaN in the gradient."""
    x = T.vector("x")
    X = np.array([-np.inf, -1e308, -800.0, -1.0, 0.5, 800.0, 1e308, np.inf])
    grads = run([x], [T.grad(T.sum(f(x)), x) for f in (T.nnet.elu, T.nnet.selu, T.nnet.softsign)], X)
    np.testing.assert_array_equal(grads[0], np.where(X > 0, 1.0, np.exp(np.minimum(X, 0))))
    np.testing.assert_allclose(grads[1], SELU_SCALE * np.where(X > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(X, 0))))
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(grads[2], np.where(np.isinf(X), 0.0, 1 / (1 + np.abs(X)) ** 2), rtol=1e-12)
    assert all(np.isfinite(g).all() for g in grads)


@given(data=st.data())
def test_elu_selu_softsign_gradients(verify_grads: Any, data: st.DataObject) -> None:
    a = data.draw(sst.arrays("float64", (2, 3), -3, 3, avoid=(0.0,)))  # elu and selu have a kink at 0
    verify_grads({
        "elu": (T.nnet.elu, [a]),
        "elu with alpha": (lambda x: T.nnet.elu(x, alpha=0.3), [a]),
        "selu": (T.nnet.selu, [a]),
        "softsign": (T.nnet.softsign, [a]),
    })
