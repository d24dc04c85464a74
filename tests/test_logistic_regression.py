"""Logistic regression written the Theano way (shared weights, T.grad, updates, function) on
synthetic data: the cost falls and the accuracy is high."""

from __future__ import annotations

import numpy as np

import symflow as theano
import symflow.tensor as T


def _data(rng: np.random.Generator, n: int = 200, d: int = 4, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    x = centres[y] + rng.normal(size=(n, d))
    return x.astype("float32"), y.astype("int32")


def test_softmax_regression_learns(mode: str) -> None:
    rng = np.random.default_rng(0)
    X_train, Y_train = _data(rng)
    d, k = X_train.shape[1], 3
    W = theano.shared(rng.normal(size=(d, k)) / np.sqrt(d), name="W")  # float64 weights
    b = theano.shared(np.zeros(k), name="b")
    thX, thY = T.fmatrix("X"), T.ivector("Y")  # float32 data with float64 weights: float64 graph
    lr = T.scalar("learning_rate")
    p_y = T.nnet.softmax(thX.dot(W) + b)
    cost = -T.mean(T.log(p_y[T.arange(thY.shape[0]), thY]))
    prediction = T.argmax(p_y, axis=1)
    gW, gb = T.grad(cost, [W, b])
    train = theano.function(inputs=[thX, thY, lr], outputs=cost, updates=[(W, W - lr * gW), (b, b - lr * gb)],
                            allow_input_downcast=True, mode=mode)
    predict = theano.function(inputs=[thX], outputs=prediction, mode=mode)
    assert p_y.dtype == "float64"

    costs = []
    for epoch in range(40):
        for start in range(0, len(X_train), 50):
            costs.append(float(train(X_train[start:start + 50], Y_train[start:start + 50], 0.5 * 0.99**epoch)))
    assert costs[-1] < 0.25 * costs[0]
    assert np.mean(costs[-4:]) < np.mean(costs[:4])
    accuracy = np.mean(predict(X_train) == Y_train)
    assert accuracy > 0.9
    X_test, Y_test = _data(np.random.default_rng(0), n=100)  # same centres (same seed), fresh noise
    assert np.mean(predict(X_test) == Y_test) > 0.85


def test_binary_logistic_regression_with_momentum(mode: str) -> None:
    """The book's update rule: ``dp = mu*dp - lr*g; p = p + dp``, with sigmoid and binary cross-entropy."""
    rng = np.random.default_rng(1)
    n, d = 200, 3
    X = rng.normal(size=(n, d))
    w_true = np.array([2.0, -1.0, 0.5])
    Y = (X.dot(w_true) + 0.3 * rng.normal(size=n) > 0).astype("float64")
    w = theano.shared(np.zeros(d), name="w")
    c = theano.shared(0.0, name="c")
    thX, thY = T.matrix("X"), T.vector("Y")
    p = T.nnet.sigmoid(thX.dot(w) + c)
    cost = T.nnet.binary_crossentropy(T.clip(p, 1e-7, 1 - 1e-7), thY).mean()
    params = [w, c]
    grads = T.grad(cost, params)
    dparams = [theano.shared(q.get_value() * 0) for q in params]
    mu, lr = 0.9, 0.1
    updates = [(q, q + mu * dq - lr * g) for q, dq, g in zip(params, dparams, grads, strict=True)]
    updates += [(dq, mu * dq - lr * g) for dq, g in zip(dparams, grads, strict=True)]
    train = theano.function([thX, thY], cost, updates=updates, mode=mode)
    costs = [float(train(X, Y)) for _ in range(100)]
    assert costs[-1] < 0.5 * costs[0]
    predicted = theano.function([thX], p > 0.5, mode=mode)(X)
    assert np.mean(predicted == Y.astype(bool)) > 0.9
    assert np.dot(w.get_value(), w_true) > 0  # it found the right direction
