"""Variables: operators, the Theano methods, Python protocols that make no sense symbolically,
constants from Python and NumPy values, repr, eval, and the graph walks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.graph import Constant, ancestors, clone_replace, graph_inputs, toposort


@pytest.fixture
def run(mode: str) -> Any:
    def go(inputs: list[Any], outputs: Any, *values: Any) -> Any:
        return sf.function(inputs, outputs, mode=mode, on_unused_input="ignore")(*values)

    return go


A = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, 0.5]])


def test_operators(run: Any) -> None:
    x, y = T.matrix("x"), T.matrix("y")
    b = np.full((2, 3), 1.5)
    ops = [x + y, x - y, x * y, x / y, x // y, x % y, x ** 2, -x, +x, abs(x), 2 + x, 2 - x, 2 * x, 2 / x, 2 // x,
           2 % x, 2 ** x, x < y, x <= y, x > y, x >= y, (x > 0) & (y > 0), (x > 0) | (y > 0), (x > 0) ^ (y > 0),
           ~(x > 0), x @ y.T, np.ones((2, 3)) + x, np.ones((2, 3)) * x]
    expected = [A + b, A - b, A * b, A / b, A // b, A % b, A ** 2, -A, A, abs(A), 2 + A, 2 - A, 2 * A, 2 / A, 2 // A,
                2 % A, 2 ** A, A < b, A <= b, A > b, A >= b, (A > 0) & (b > 0), (A > 0) | (b > 0), (A > 0) ^ (b > 0),
                ~(A > 0), A @ b.T, 1 + A, A]
    for k, (got, want) in enumerate(zip(run([x, y], ops, A, b), expected, strict=True)):
        np.testing.assert_allclose(got, want, err_msg=str(k))
    assert isinstance(np.ones((2, 3)) + x, sf.Variable)  # NumPy defers to the symbolic variable
    assert (x == x) is True and (x == y) is False  # == is identity, so variables can be dict keys
    assert {x: 1}[x] == 1


def test_methods(run: Any) -> None:
    x = T.matrix("x")
    cases = [
        (x.dot(x.T), A @ A.T), (x.T, A.T), (x.shape, np.array(A.shape)), (x.sum(), A.sum()),
        (x.sum(axis=0), A.sum(0)), (x.mean(axis=1), A.mean(1)), (x.max(), A.max()), (x.min(axis=0), A.min(0)),
        (x.prod(axis=1), A.prod(1)), (x.argmax(axis=1), A.argmax(1)), (x.argmin(), A.argmin()), (x.std(), A.std()),
        (x.var(axis=0), A.var(0)), (x.reshape((3, 2)), A.reshape(3, 2)), (x.flatten(), A.ravel()),
        (x.dimshuffle(1, 0), A.T), (x.dimshuffle("x", 0, 1), A[None]), (x.astype("int32"), A.astype("int32")),
        (x.norm(2), np.linalg.norm(A)), (x.norm(1, axis=1), np.abs(A).sum(1)), (x.clip(-1, 1), np.clip(A, -1, 1)),
        (x.transpose(), A.T), (x.squeeze(), A), (x.size, A.size), (x.copy(), A), (x.round(), np.round(A)),
        (x.any(), A.any()), (x.all(axis=1), A.all(1)), (x.repeat(2, axis=0), A.repeat(2, 0)),
        (x.cumsum(), A.cumsum()), (x.cumprod(axis=0), A.cumprod(0)), (x.sort(), np.sort(A)),
        (x.sort(axis=None), np.sort(A, axis=None)), (x.argsort(axis=0), A.argsort(0)),
    ]
    for k, ((_, want), got) in enumerate(zip(cases, run([x], [c[0] for c in cases], A), strict=True)):
        np.testing.assert_allclose(got, want, err_msg=str(k))
        assert got.shape == np.shape(want), k
    assert x.ndim == 2 and x.dtype == "float64" and x.broadcastable == (False, False)
    assert x.astype("int32").dtype == "int32" and x.astype("float64") is x


def test_python_protocols_raise_clear_errors() -> None:
    x = T.matrix("x")
    with pytest.raises(TypeError, match=r"'x' \(float64 matrix\) has no truth value.*T.switch"):
        bool(x)
    with pytest.raises(TypeError, match="truth value"):
        if x > 0:
            pass
    with pytest.raises(TypeError, match=r"cannot iterate.*'x'.*scan"):
        iter(x)
    with pytest.raises(TypeError, match="cannot iterate"):
        a, b = x.shape
    with pytest.raises(TypeError, match=r"len\(\).*x.shape\[0\]"):
        len(x)


def test_constants_from_python_and_numpy(run: Any) -> None:
    cases = {
        T.constant(3): ("int64", ()), T.constant(3.0): ("float64", ()), T.constant(True): ("bool", ()),
        T.constant([1, 2]): ("int64", (False,)), T.constant([[1.0, 2.0]]): ("float64", (True, False)),
        T.constant(np.float32(2)): ("float32", ()), T.constant(np.arange(3, dtype="int16")): ("int16", (False,)),
        T.constant(3, dtype="float32"): ("float32", ()),
        T.as_tensor_variable(np.zeros((2, 1))): ("float64", (False, True)),
    }
    for c, (dtype, bcast) in cases.items():
        assert isinstance(c, Constant) and (c.dtype, c.broadcastable) == (dtype, bcast)
    assert not T.constant(np.zeros(3)).data.flags.writeable  # constants are read-only
    with pytest.raises(TypeError, match="without loss"):
        T.constant(np.array([1.5]), dtype="int32")
    with pytest.raises(TypeError):
        T.constant("text")
    with pytest.raises(TypeError, match="not supported"):
        T.constant(1j)
    with pytest.raises(TypeError, match="expected a 2-d"):
        T.as_tensor_variable(1.0, ndim=2)
    s = T.scalar("s")
    stacked = T.as_tensor_variable([s, 1.0])  # a list holding variables becomes a stack
    np.testing.assert_array_equal(run([s], stacked, 4.0), [4.0, 1.0])
    np.testing.assert_array_equal(run([], T.constant(np.arange(3)) * 2), [0, 2, 4])


def test_repr_and_describe() -> None:
    x = T.matrix("x")
    assert repr(x) == "x" and x.describe() == "'x' (float64 matrix)"
    assert repr(x + 1) == "add.out"
    assert repr(T.constant(2.0)) == "2.0" and repr(T.constant([1, 2])) == "[1,2]"
    assert repr(T.vector()) == "<float64(?)>"
    assert "Constant{" in repr(T.constant(np.zeros(10)))


def test_eval(mode: str) -> None:
    x = T.matrix("x")
    np.testing.assert_array_equal((x * 2).eval({x: np.ones((1, 2))}, mode=mode), [[2.0, 2.0]])
    assert (T.constant(2.0) * 3).eval(mode=mode) == 6.0


def test_locations_point_at_the_users_line() -> None:
    x = T.vector("x")
    y = T.tanh(x) * 2  # built here
    line = _line_of("y = T.tanh(x) * 2  # built here")
    assert y.location.filename == __file__ and y.location.lineno == line
    assert x.location.lineno == line - 1
    assert "T.tanh(x) * 2" in str(y.location)


def _line_of(text: str) -> int:
    with open(__file__) as f:
        return next(n for n, line in enumerate(f, 1) if text in line and "_line_of" not in line)


def test_walks() -> None:
    x, w = T.vector("x"), sf.shared(np.ones(3), name="w")
    h = T.tanh(x * w)
    y = h.sum() + 1.0
    nodes = toposort([y])
    assert nodes.index(h.owner) < nodes.index(y.owner)
    assert set(graph_inputs([y])) >= {x, w}
    assert h in ancestors([y])
    assert h.owner not in toposort([y], stop_at=[h])
    z = T.vector("z")
    (y2,) = clone_replace([y], {x: z})
    assert z in graph_inputs([y2]) and x not in graph_inputs([y2])
    assert y2.owner is not y.owner


def test_op_equality_and_apply() -> None:
    x = T.matrix("x")
    a, b = x.sum(axis=0), x.sum(axis=0)
    assert a.owner.op == b.owner.op and hash(a.owner.op) == hash(b.owner.op)
    assert a.owner.op != x.sum(axis=1).owner.op
    with pytest.raises(TypeError, match="not a symflow Variable"):
        sf.Apply(a.owner.op, [np.zeros(2)], [x.type])  # type: ignore[list-item]
