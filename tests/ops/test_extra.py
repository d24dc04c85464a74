"""cumsum: values and dtypes against NumPy, shapes and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow.tensor as T
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
