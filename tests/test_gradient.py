"""grad, jacobian, hessian: the error paths, consider_constant, known_grads, disconnected_grad /
stop_gradient, grad_clip, gradients of gradients, and where gradient nodes say they were built."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.errors import DisconnectedInputError, ShapeError

X = np.array([1.0, 2.0, 3.0])


@pytest.fixture
def run(mode: str) -> Any:
    def go(inputs: list[Any], outputs: Any, *values: Any) -> Any:
        return sf.function(inputs, outputs, mode=mode, on_unused_input="ignore")(*values)

    return go


def test_cost_must_be_a_scalar() -> None:
    x = T.matrix("x")
    with pytest.raises(TypeError, match=r"cost must be a scalar, got 'x' \(float64 matrix\).*sum\(\)"):
        sf.grad(x, x)
    with pytest.raises(TypeError, match="scalar"):
        T.grad(x * 2, [x])
    with pytest.raises(TypeError, match="float scalar"):
        sf.grad(T.ivector("i").sum(), x)


def test_wrt_must_be_a_float_variable() -> None:
    x, i = T.vector("x"), T.ivector("i")
    with pytest.raises(TypeError, match=r"cannot differentiate with respect to 'i' \(int32 vector\)"):
        sf.grad((x * i).sum(), i)
    with pytest.raises(TypeError, match="cannot differentiate"):
        sf.grad(x.sum(), [x, i])
    with pytest.raises(TypeError, match="wrt must be symbolic variables, got float"):
        sf.grad(x.sum(), 3.0)
    with pytest.raises(TypeError, match="wrt must be symbolic"):
        sf.grad(x.sum(), [x, np.ones(3)])


def test_disconnected_inputs(run: Any) -> None:
    x, y = T.vector("x"), T.vector("y")
    cost = (x ** 2).sum()
    with pytest.raises(DisconnectedInputError, match=r"does not depend on 'y' \(float64 vector\).*test_gradient.py"):
        sf.grad(cost, y)
    with pytest.raises(DisconnectedInputError, match="disconnected_inputs='ignore'"):
        sf.grad(cost, [x, y])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gx, gy = sf.grad(cost, [x, y], disconnected_inputs="warn")
    assert len(caught) == 1 and "does not depend on 'y'" in str(caught[0].message)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gy_ignored = sf.grad(cost, y, disconnected_inputs="ignore")
    got = run([x, y], [gx, gy, gy_ignored], X, X)
    np.testing.assert_array_equal(got[0], 2 * X)
    np.testing.assert_array_equal(got[1], np.zeros(3))
    np.testing.assert_array_equal(got[2], np.zeros(3))
    for spelling in ("None", "none", "Disconnected"):  # Theano's spellings; symflow has no disconnected type
        assert sf.grad(cost, y, disconnected_inputs="ignore", return_disconnected=spelling) is None
    with pytest.raises(ValueError, match="return_disconnected must be 'zero', 'None' or 'Disconnected'"):
        sf.grad(cost, y, disconnected_inputs="ignore", return_disconnected="bogus")
    with pytest.raises(ValueError, match="disconnected_inputs"):
        sf.grad(cost, x, disconnected_inputs="maybe")


def test_single_variable_or_list() -> None:
    x, W = T.vector("x"), sf.shared(np.ones(3), name="W")
    cost = (x * W).sum()
    assert isinstance(sf.grad(cost, W), sf.Variable)
    grads = T.grad(cost, [W, x])
    assert isinstance(grads, list) and len(grads) == 2
    assert [g.type for g in grads] == [W.type, x.type]


def test_consider_constant(run: Any) -> None:
    x = T.vector("x")
    y = x ** 2
    z = (y * x).sum()
    g_full, g_const = sf.grad(z, x), sf.grad(z, x, consider_constant=[y])
    out = run([x], [g_full, g_const], X)
    np.testing.assert_allclose(out[0], 3 * X ** 2)
    np.testing.assert_allclose(out[1], X ** 2)  # y treated as a constant
    # as in Theano, a constant that is asked for gets its own gradient, and passes none on
    gx, gy = sf.grad(z, [x, y], consider_constant=[y])
    g_self = sf.grad((x * 3).sum(), x, consider_constant=[x])
    out = run([x], [gx, gy, g_self], X)
    np.testing.assert_allclose(out[0], X ** 2)
    np.testing.assert_allclose(out[1], X)
    np.testing.assert_allclose(out[2], np.full_like(X, 3.0))


def test_disconnected_grad_and_stop_gradient(run: Any) -> None:
    x = T.vector("x")
    y = x ** 2
    grads = [sf.grad((sf.disconnected_grad(y) * x).sum(), x), sf.grad((sf.stop_gradient(y) * x).sum(), x),
             sf.grad((T.disconnected_grad(y) * x).sum(), x)]
    for g in run([x], grads, X):
        np.testing.assert_allclose(g, X ** 2)
    np.testing.assert_array_equal(run([x], sf.stop_gradient(y), X), X ** 2)  # identity forwards
    with pytest.raises(DisconnectedInputError):
        sf.grad(sf.stop_gradient(y).sum(), x)


def test_known_grads(run: Any) -> None:
    x = T.vector("x")
    y = x ** 2
    grads = [sf.grad(None, x, known_grads={y: T.ones_like(y)}),
             sf.grad(x.sum(), x, known_grads={y: T.ones_like(y)}),
             sf.grad(None, x, known_grads={y: np.array([1.0, 0.0, 2.0])})]
    out = run([x], grads, X)
    np.testing.assert_allclose(out[0], 2 * X)
    np.testing.assert_allclose(out[1], 2 * X + 1)
    np.testing.assert_allclose(out[2], [2.0, 0.0, 12.0])
    with pytest.raises(ValueError, match="known_grads"):
        sf.grad(None, x, known_grads={y: T.matrix()})
    with pytest.raises(ValueError, match="cost or known_grads"):
        sf.grad(None, x)


def test_grad_clip(run: Any) -> None:
    x = T.vector("x")
    y = x ** 2
    g = sf.grad((sf.grad_clip(y, -1.0, 1.0) * 3).sum(), x)  # upstream gradient 3 is clipped to 1
    g2 = sf.grad((T.grad_clip(x, -0.5, 2.5) * T.constant([1.0, 2.0, 3.0])).sum(), x)
    out = run([x], [g, g2, sf.grad_clip(y, -1.0, 1.0)], X)
    np.testing.assert_allclose(out[0], 2 * X)
    np.testing.assert_allclose(out[1], [1.0, 2.0, 2.5])
    np.testing.assert_allclose(out[2], X ** 2)  # the forward value is untouched
    with pytest.raises(ValueError, match="lower <= upper"):
        sf.grad_clip(x, 1.0, -1.0)


def test_second_order(run: Any) -> None:
    s, x = T.scalar("s"), T.vector("x")
    g = sf.grad(s ** 3, s)
    gg = sf.grad(g, s)
    ggg = sf.grad(gg, s)
    hv = sf.grad((sf.grad((T.tanh(x) ** 2).sum(), x) * T.constant([1.0, 0.0, 0.0])).sum(), x)
    out = run([s, x], [g, gg, ggg, hv], 2.0, X)
    assert [float(v) for v in out[:3]] == [12.0, 12.0, 6.0]
    t = np.tanh(X[0])
    d2 = 2 * (1 - t ** 2) ** 2 - 4 * t ** 2 * (1 - t ** 2)  # d2/dx2 tanh(x)^2
    np.testing.assert_allclose(out[3], [d2, 0.0, 0.0], rtol=1e-10)


def test_jacobian(run: Any) -> None:
    x, s = T.vector("x"), T.scalar("s")
    jac = sf.jacobian(x ** 2, x)
    j_list = sf.jacobian(x * s, [x, s])
    j_scalar = sf.jacobian((x ** 2).sum(), x)
    j_matrix = T.jacobian(T.outer(x, x), x)
    out = run([x, s], [jac, *j_list, j_scalar, j_matrix], X, 2.0)
    np.testing.assert_allclose(out[0], np.diag(2 * X))
    np.testing.assert_allclose(out[1], 2 * np.eye(3))
    np.testing.assert_allclose(out[2], X)
    np.testing.assert_allclose(out[3], 2 * X)
    expected = np.zeros((9, 3))  # d(x_i x_j)/dx_k, rows flattened
    for i in range(3):
        for j in range(3):
            expected[3 * i + j, i] += X[j]
            expected[3 * i + j, j] += X[i]
    np.testing.assert_allclose(out[4], expected)


def test_hessian(run: Any) -> None:
    x, y = T.vector("x"), T.vector("y")
    cost = (x ** 3).sum() + (T.outer(x, x)).sum() + (x * y).sum() + (y ** 2).sum()
    hx = sf.hessian(cost, x)
    hxy = T.hessian(cost, [x, y])
    out = run([x, y], [hx, *hxy], X, X)
    expected = np.diag(6 * X) + 2.0
    np.testing.assert_allclose(out[0], expected)
    np.testing.assert_allclose(out[1], expected)
    np.testing.assert_allclose(out[2], 2 * np.eye(3))
    with pytest.raises(TypeError, match="vectors"):
        sf.hessian(cost, T.matrix())


def test_gradient_through_shared_weights_and_book_updates(mode: str) -> None:
    """``T.grad(cost, params)`` for shared weights, then SGD with momentum: the cost falls."""
    rng = np.random.default_rng(0)
    W = sf.shared(rng.normal(size=(3, 2)) * 0.1, name="W")
    b = sf.shared(np.zeros(2), name="b")
    X_, Y_ = T.matrix("X"), T.matrix("Y")
    cost = ((X_.dot(W) + b - Y_) ** 2).mean()
    params = [W, b]
    grads = T.grad(cost, params)
    dparams = [sf.shared(p.get_value() * 0) for p in params]
    updates = [(p, p + 0.9 * dp - 0.1 * g) for p, dp, g in zip(params, dparams, grads, strict=True)]
    updates += [(dp, 0.9 * dp - 0.1 * g) for dp, g in zip(dparams, grads, strict=True)]
    train = sf.function([X_, Y_], cost, updates=updates, mode=mode)
    xs = rng.normal(size=(20, 3))
    ys = xs.dot(np.array([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]]))
    costs = [float(train(xs, ys)) for _ in range(60)]
    assert costs[-1] < 0.05 * costs[0]


def test_runtime_errors_in_gradients_name_the_users_line(mode: str) -> None:
    """A shape error in the backward pass points at the line that built the forward operation."""
    x, y = T.vector("x"), T.vector("y")
    z = (x * y).sum()  # the forward operation
    line = next(n for n, text in enumerate(open(__file__), 1) if "z = (x * y).sum()  # the forward" in text)
    f = sf.function([x, y], sf.grad(z, x), mode=mode)
    with pytest.raises(ShapeError) as info:
        f(np.ones(3), np.ones(2))
    message = str(info.value)
    assert f'line {line}' in message and "(3,)" in message and "(2,)" in message
