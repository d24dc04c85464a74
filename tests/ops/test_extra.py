"""cumsum, diff and to_one_hot: values and dtypes against NumPy, shapes, gradients and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.errors import IndexingError
from symflow.testing import strategies as sst

X3 = np.arange(24.0).reshape(2, 3, 4) - 7.0


def test_values_against_numpy(run: Any, check_infer_shape: Any) -> None:
    x, i, b = T.tensor3("x"), T.ivector("i"), T.tensor("bool", (False,), "b")
    axes = [None, 0, 1, 2, -1]
    outputs = [T.cumsum(x, axis=a) for a in axes] + [T.cumsum(i), T.cumsum(b)]
    ivalue, bvalue = np.array([3, -1, 2], "int32"), np.array([True, False, True])
    results = run([x, i, b], outputs, X3, ivalue, bvalue)
    for a, got in zip(axes, results[:len(axes)], strict=True):
        np.testing.assert_array_equal(got, np.cumsum(X3, axis=a))
    np.testing.assert_array_equal(results[-2], np.cumsum(ivalue))
    np.testing.assert_array_equal(results[-1], np.cumsum(bvalue))
    assert [o.dtype for o in outputs[-2:]] == ["int64", "int64"]
    assert [r.dtype.name for r in results[-2:]] == ["int64", "int64"]
    assert T.cumsum(T.fvector()).dtype == "float32"
    check_infer_shape([x, i, b], outputs, X3, ivalue, bvalue)
    with pytest.raises(ValueError, match="out of range"):
        T.cumsum(x, axis=3)


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
