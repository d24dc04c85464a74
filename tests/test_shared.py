"""Shared variables: construction, dtypes, get_value/set_value with copies and borrowing, and the
checks on set_value (ndim, unsafe dtype changes, broadcastable dims)."""

from __future__ import annotations

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T


def test_dtypes_follow_theano() -> None:
    assert sf.shared(np.zeros((2, 3))).dtype == "float64"  # float64 weights by default
    assert sf.shared(np.zeros(2, "float32")).dtype == "float32"
    assert sf.shared(np.float32(1.0)).dtype == "float32"  # NumPy scalars keep their dtype
    assert sf.shared(np.int32(1)).dtype == "int32"
    assert sf.shared(1.0).dtype == "float64" and sf.shared(1).dtype == "int64" and sf.shared(True).dtype == "bool"
    assert sf.shared([1, 2]).dtype == "int64" and sf.shared([1.0, 2.0]).dtype == "float64"
    assert sf.shared(np.zeros(3), dtype="float32").dtype == "float32"


def test_broadcastable_and_names() -> None:
    s = sf.shared(np.zeros((1, 3)), name="b")
    assert s.broadcastable == (False, False)  # never broadcastable unless asked, as in Theano
    r = sf.shared(np.zeros((1, 3)), broadcastable=(True, False))
    assert r.broadcastable == (True, False)
    assert s.name == "b" and repr(s) == "b"
    with pytest.raises(ValueError, match="broadcastable"):
        sf.shared(np.zeros((2, 3)), broadcastable=(True, False))
    with pytest.raises(ValueError, match="entries"):
        sf.shared(np.zeros((2, 3)), broadcastable=(False,))


def test_refused_values() -> None:
    with pytest.raises(TypeError, match="symbolic"):
        sf.shared(T.vector())
    with pytest.raises(TypeError, match="not supported"):
        sf.shared(np.zeros(2, complex))
    with pytest.raises(TypeError):
        sf.shared("text")


def test_values_are_copied_unless_borrowed() -> None:
    a = np.zeros(3)
    s = sf.shared(a)
    a[0] = 5
    assert s.get_value()[0] == 0
    b = sf.shared(a, borrow=True)
    a[1] = 7
    assert b.get_value()[1] == 7
    v = s.get_value()
    v[0] = 9
    assert s.get_value()[0] == 0
    assert np.shares_memory(s.get_value(borrow=True), s.get_value(borrow=True))
    new = np.ones(3)
    s.set_value(new)
    new[0] = 100
    assert s.get_value()[0] == 1
    s.set_value(new, borrow=True)
    assert s.get_value()[0] == 100
    np.testing.assert_array_equal(s.value, new)


def test_zero_twin() -> None:
    """The book's momentum buffers: ``shared(p.get_value() * 0)``."""
    W = sf.shared(np.random.default_rng(0).normal(size=(3, 2)), name="W")
    dW = sf.shared(W.get_value() * 0, name="dW")
    assert dW.dtype == "float64" and dW.get_value().shape == (3, 2) and not dW.get_value().any()


def test_set_value_checks() -> None:
    W = sf.shared(np.zeros((2, 2)), name="W")
    with pytest.raises(ValueError, match=r"'W'.*ndim 2.*shape \(3,\)"):
        W.set_value(np.zeros(3))
    W.set_value(np.zeros((5, 4)))  # a new shape of the same ndim is fine
    W.set_value(np.zeros((2, 2), "float32"))  # safe casts are fine
    W.set_value(np.ones((2, 2), "int32"))
    assert W.get_value().dtype == np.float64 and W.get_value()[0, 0] == 1.0
    k = sf.shared(np.zeros(2, "int32"), name="k")
    with pytest.raises(TypeError, match=r"'k'.*int32.*float64.*unsafe"):
        k.set_value(np.zeros(2))
    with pytest.raises(TypeError, match="int64"):
        k.set_value(np.zeros(2, "int64"))
    with pytest.raises(TypeError, match="does not fit"):
        k.set_value([1.5, 2])
    k.set_value([1, 2])
    assert k.get_value().dtype == np.int32
    f = sf.shared(np.zeros(2, "float32"), name="f")
    with pytest.raises(TypeError, match="unsafe"):
        f.set_value(np.zeros(2))
    f.set_value([0.1, 0.2])  # Python floats are weak
    assert f.get_value().dtype == np.float32
    f.set_value([16777217])  # Python numbers round into a float dtype ...
    assert f.get_value()[0] == 16777216.0
    with pytest.raises(TypeError, match=r"'f' \(float32 vector\): \[1e\+40\] overflows float32"):
        f.set_value([1e40])  # ... but never overflow
    assert f.get_value()[0] == 16777216.0
    s = sf.shared(np.float32(0), name="s")  # NumPy scalars are not weak: exact values only, as in a call
    s.set_value(np.float64(0.5))
    with pytest.raises(TypeError, match=r"'s' \(float32 scalar\): np.float64\(0.1\) does not fit float32 exactly"):
        s.set_value(np.float64(0.1))
    assert s.get_value() == 0.5
    with pytest.raises(TypeError, match="cannot store"):
        f.set_value("text")
    with pytest.raises(TypeError, match="cannot store"):
        f.set_value(None)
    r = sf.shared(np.zeros((1, 3)), broadcastable=(True, False), name="r")
    with pytest.raises(ValueError, match="broadcastable"):
        r.set_value(np.zeros((2, 3)))
    s = sf.shared(0.5, name="s")
    s.set_value(2)
    assert s.get_value().ndim == 0 and s.get_value() == 2.0
    with pytest.raises(ValueError, match="ndim"):
        s.set_value(np.array([1.0]))


def test_shared_variables_are_graph_leaves(mode: str) -> None:
    W = sf.shared(np.eye(2), name="W")
    x = T.vector("x")
    f = sf.function([x], x.dot(W), mode=mode)
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [1.0, 2.0])
    W.set_value(2 * np.eye(2))  # functions read the current value at each call
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [2.0, 4.0])
    assert W.owner is None and isinstance(W, sf.Variable)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_shared_values_are_plain_arrays() -> None:
    """shared() and set_value keep a subclass's data as a plain array, refuse masked arrays and ragged
    lists with the variable's name, and leave the old value after a refusal."""
    data = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = sf.shared(np.matrix(data), name="W")
    assert type(W.get_value(borrow=True)) is np.ndarray
    W.set_value(np.matrix(data * 2), borrow=True)
    assert type(W.get_value(borrow=True)) is np.ndarray and W.get_value()[1, 1] == 8.0
    masked = np.ma.masked_array(data, mask=[[True, False], [False, False]])
    with pytest.raises(TypeError, match="shared variable 'W' .*: got a masked array"):
        W.set_value(masked)
    with pytest.raises(TypeError, match=r"shared variable 'W' .*: cannot make an array of list \[\[1, 2\], \[3\]\]"):
        W.set_value([[1, 2], [3]])
    np.testing.assert_array_equal(W.get_value(), data * 2)
    with pytest.raises(TypeError, match=r"shared\(\): got a masked array"):
        sf.shared(masked)
    with pytest.raises(TypeError, match=r"shared\(\): got a masked array"):
        sf.shared(masked, dtype="float32")  # the dtype path dropped the mask
    assert type(sf.shared(np.matrix(data), dtype="float32").get_value(borrow=True)) is np.ndarray
