"""symflow.updates: each builder against the same update written out in NumPy, plus clipping and errors."""

from __future__ import annotations

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow import updates

TARGET = np.array([[1.0, -2.0], [0.5, 3.0]])


def _problem():
    """A quadratic cost 0.5 * |W x - t|^2 with its NumPy gradient."""
    W = sf.shared(np.array([[0.3, -0.1], [0.2, 0.4]]), name="W")
    b = sf.shared(np.array([0.1, -0.2]), name="b")
    x = T.vector("x")
    cost = 0.5 * T.sum(T.sqr(T.dot(W, x) + b - T.constant(TARGET[0])))

    def grads(Wv: np.ndarray, bv: np.ndarray, xv: np.ndarray) -> list[np.ndarray]:
        r = Wv @ xv + bv - TARGET[0]
        return [np.outer(r, xv), r]

    return W, b, x, cost, grads


def _run(builder, n_steps: int = 4, **kwargs):
    W, b, x, cost, grads = _problem()
    f = sf.function([x], cost, updates=builder(cost, [W, b], **kwargs), mode="py")
    xs = [np.array([1.0, 2.0]), np.array([-1.0, 0.5]), np.array([0.3, 0.3]), np.array([2.0, -1.0])][:n_steps]
    for xv in xs:
        f(xv)
    return [W.get_value(), b.get_value()], xs, grads


def _numpy(step, xs, grads, state_init):
    params = [np.array([[0.3, -0.1], [0.2, 0.4]]), np.array([0.1, -0.2])]
    state = [state_init(p) for p in params]
    for t, xv in enumerate(xs, start=1):
        gs = grads(*params, xv)
        for i, (p, g) in enumerate(zip(params, gs, strict=True)):
            params[i], state[i] = step(p, g, state[i], t)
    return params


def test_momentum_is_the_books_rule() -> None:
    lr, mu = 0.1, 0.9
    got, xs, grads = _run(updates.momentum, learning_rate=lr, mu=mu)

    def step(p, g, dp, t):
        dp = mu * dp - lr * g
        return p + dp, dp

    for a, b in zip(got, _numpy(step, xs, grads, np.zeros_like), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_nesterov() -> None:
    lr, mu = 0.05, 0.8
    got, xs, grads = _run(updates.nesterov, learning_rate=lr, mu=mu)

    def step(p, g, dp, t):
        dp = mu * dp - lr * g
        return p + mu * dp - lr * g, dp

    for a, b in zip(got, _numpy(step, xs, grads, np.zeros_like), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_sgd_and_rmsprop() -> None:
    got, xs, grads = _run(updates.sgd, learning_rate=0.1)
    for a, b in zip(got, _numpy(lambda p, g, s, t: (p - 0.1 * g, s), xs, grads, np.zeros_like), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)

    got, xs, grads = _run(updates.rmsprop, learning_rate=0.01, rho=0.9, epsilon=1e-6)

    def step(p, g, acc, t):
        acc = 0.9 * acc + 0.1 * g**2
        return p - 0.01 * g / np.sqrt(acc + 1e-6), acc

    for a, b in zip(got, _numpy(step, xs, grads, np.zeros_like), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_adam() -> None:
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    got, xs, grads = _run(updates.adam, learning_rate=lr, beta1=b1, beta2=b2, epsilon=eps)

    def step(p, g, state, t):
        m, v = state
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        a = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        return p - a * m / (np.sqrt(v) + eps), (m, v)

    for a, b in zip(got, _numpy(step, xs, grads, lambda p: (np.zeros_like(p), np.zeros_like(p))), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_clip_by_norm_rescales_jointly() -> None:
    g1, g2 = T.vector("g1"), T.vector("g2")
    f = sf.function([g1, g2], updates.clip_by_norm([g1, g2], 1.0), mode="py")
    big = f(np.array([3.0, 0.0]), np.array([0.0, 4.0]))  # joint norm 5
    np.testing.assert_allclose(big[0], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(big[1], [0.0, 0.8], rtol=1e-6)
    small = f(np.array([0.3, 0.0]), np.array([0.0, 0.4]))
    np.testing.assert_allclose(small[0], [0.3, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="max_norm must be positive"):
        updates.clip_by_norm([g1], 0)


def test_momentum_with_clipping_takes_bounded_steps() -> None:
    got, _, _ = _run(updates.sgd, n_steps=1, learning_rate=1.0, clip_norm=0.5)
    start = [np.array([[0.3, -0.1], [0.2, 0.4]]), np.array([0.1, -0.2])]
    step = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(got, start, strict=True)))
    assert step == pytest.approx(0.5, rel=1e-6)


def test_gradients_may_be_given_and_symbolic_rate_decays() -> None:
    W, b, x, cost, _ = _problem()
    lr = sf.shared(np.array(0.1), name="lr")
    grads = sf.grad(cost, [W, b])
    f = sf.function([x], cost, updates=updates.sgd(grads, [W, b], lr), mode="py")
    before = W.get_value()
    lr.set_value(np.array(0.0))
    f(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(W.get_value(), before)


def test_float32_parameters_stay_float32() -> None:
    w = sf.shared(np.ones(3, dtype="float32"), name="w")
    x = T.vector("x", dtype="float32")
    cost = T.sum(T.sqr(w * x))
    f = sf.function([x], cost, updates=updates.adam(cost, [w], learning_rate=0.1), mode="py")
    f(np.ones(3, dtype="float32"))
    assert w.get_value().dtype == np.float32


def test_adams_step_count_does_not_depend_on_the_first_parameters_dtype() -> None:
    """The step counter is float64 whatever the parameters: with a float32 parameter listed first,
    a float64 one took float32 bias corrections (an error of 2e-6 after three steps)."""
    small = sf.shared(np.ones(2, dtype="float32"), name="small")
    w = sf.shared(np.array([0.3, -0.7]), name="w")
    cost = T.sum(T.sqr(w)) + T.sum(small)
    f = sf.function([], cost, updates=updates.adam(cost, [small, w], learning_rate=0.1), mode="py")
    p, m1, v = np.array([0.3, -0.7]), np.zeros(2), np.zeros(2)
    for t in range(1, 4):
        f()
        g = 2 * p
        m1, v = 0.9 * m1 + 0.1 * g, 0.999 * v + 0.001 * g**2
        p = p - 0.1 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m1 / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(w.get_value(), p, rtol=1e-12)


def test_clip_norm_refuses_a_constant_that_is_not_positive() -> None:
    """A non-positive max_norm would reverse (or zero) every step; constants are checked however given."""
    g = T.vector("g")
    for bad in (0, -1.0, np.float32(0), np.int64(-1), T.constant(-1.0), T.constant(np.nan)):
        with pytest.raises(ValueError, match="max_norm must be positive, got"):
            updates.clip_by_norm([g], bad)
    updates.clip_by_norm([g], sf.shared(1.0))  # a shared value is read at run time


def test_a_missing_gradient_is_named() -> None:
    W, b, x, cost, _ = _problem()
    grads = sf.grad(T.sum(W), [W, b], disconnected_inputs="ignore", return_disconnected="None")
    with pytest.raises(TypeError, match=r"the gradient for 'b' \(float64 vector\) is None"):
        updates.sgd(grads, [W, b], 0.1)


def test_bad_parameters_are_refused() -> None:
    W, b, x, cost, _ = _problem()
    with pytest.raises(TypeError, match="shared variables"):
        updates.momentum(cost, [x], 0.1)
    with pytest.raises(ValueError, match="same shared variable twice"):
        updates.momentum(cost, [W, W], 0.1)
    with pytest.raises(ValueError, match="2 gradients for 1 parameters"):
        updates.sgd([T.matrix(), T.vector()], [W], 0.1)
    with pytest.raises(ValueError, match="params is empty"):
        updates.sgd(cost, [], 0.1)
    counter = sf.shared(np.array(3, dtype="int64"), name="counter")
    with pytest.raises(TypeError, match="not a float variable"):
        updates.sgd(cost, [counter], 0.1)


@pytest.mark.parametrize("name", sorted(updates.BUILDERS))
def test_every_builder_lowers_the_cost(name: str) -> None:
    W, b, x, cost, _ = _problem()
    kwargs = {"learning_rate": 0.05}
    f = sf.function([x], cost, updates=updates.BUILDERS[name](cost, [W, b], **kwargs), mode="py")
    xv = np.array([1.0, 2.0])
    first = f(xv)
    for _ in range(30):
        last = f(xv)
    assert last < 0.5 * first
