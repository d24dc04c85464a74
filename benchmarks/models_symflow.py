"""The benchmark models in symflow, written as the book writes them in Theano.

Only the imports differ from the book: ``import symflow as theano; import symflow.tensor as T``.
Every train function takes one momentum-SGD step on all parameters: dp = mu*dp - lr*g; p += dp.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import symflow as theano
import symflow.tensor as T


class SymflowTrainer:
    """A compiled train function plus the shared variables it updates."""

    def __init__(self, params: dict[str, Any], inputs: list[Any], outputs: Any, cost: Any,
                 lr: float, mu: float, mode: str) -> None:
        self.params = params
        shared = list(params.values())
        grads = T.grad(cost, shared)
        self.dparams = {name: theano.shared(p.get_value() * 0) for name, p in params.items()}
        dparams = list(self.dparams.values())
        steps = [mu * dp - lr * g for dp, g in zip(dparams, grads, strict=True)]  # dp = mu*dp - lr*g
        updates = [(p, p + step) for p, step in zip(shared, steps, strict=True)]  # p += dp
        updates += list(zip(dparams, steps, strict=True))
        started = time.perf_counter()
        self.train = theano.function(inputs=inputs, outputs=outputs, updates=updates, mode=mode)
        self.compile_seconds = time.perf_counter() - started  # function() alone

    def get_params(self) -> dict[str, np.ndarray]:
        return {name: p.get_value() for name, p in self.params.items()}

    def get_momenta(self) -> dict[str, np.ndarray]:
        return {name: dp.get_value() for name, dp in self.dparams.items()}


def _shared(values: dict[str, np.ndarray], names: Any) -> dict[str, Any]:
    return {n: theano.shared(np.array(values[n], dtype=np.float64), name=n) for n in names}


def parity(init: dict[str, np.ndarray], lr: float, mu: float, mode: str = "numba") -> SymflowTrainer:
    """The book's SimpleRNN (chapter 2) with sigmoid; train(x (T, 1), y (T,)) -> [cost, prediction]."""
    p = _shared(init, ("Wx", "Wh", "bh", "h0", "Wo", "bo"))
    thX = T.matrix("X")
    thY = T.ivector("Y")

    def recurrence(x_t, h_t1):
        h_t = T.nnet.sigmoid(x_t.dot(p["Wx"]) + h_t1.dot(p["Wh"]) + p["bh"])
        y_t = T.nnet.softmax(h_t.dot(p["Wo"]) + p["bo"])
        return h_t, y_t

    [h, y], _ = theano.scan(fn=recurrence, outputs_info=[p["h0"], None], sequences=thX, n_steps=thX.shape[0])
    py_x = y[:, 0, :]
    prediction = T.argmax(py_x, axis=1)
    cost = -T.mean(T.log(py_x[T.arange(thY.shape[0]), thY]))
    return SymflowTrainer(p, [thX, thY], [cost, prediction], cost, lr, mu, mode)


def gru_recurrence(p: dict[str, Any]) -> Any:
    """The book's GRU step (chapter 5) with tanh for the candidate activation."""

    def recurrence(x_t, h_t1):
        r = T.nnet.sigmoid(x_t.dot(p["Wxr"]) + h_t1.dot(p["Whr"]) + p["br"])
        z = T.nnet.sigmoid(x_t.dot(p["Wxz"]) + h_t1.dot(p["Whz"]) + p["bz"])
        hhat = T.tanh(x_t.dot(p["Wxh"]) + (r * h_t1).dot(p["Whh"]) + p["bh"])
        return (1 - z) * h_t1 + z * hhat

    return recurrence


def lstm_recurrence(p: dict[str, Any]) -> Any:
    """The book's LSTM step (chapter 5) with full peephole matrices Wci, Wcf, Wco."""

    def recurrence(x_t, h_t1, c_t1):
        i_t = T.nnet.sigmoid(x_t.dot(p["Wxi"]) + h_t1.dot(p["Whi"]) + c_t1.dot(p["Wci"]) + p["bi"])
        f_t = T.nnet.sigmoid(x_t.dot(p["Wxf"]) + h_t1.dot(p["Whf"]) + c_t1.dot(p["Wcf"]) + p["bf"])
        c_t = f_t * c_t1 + i_t * T.tanh(x_t.dot(p["Wxc"]) + h_t1.dot(p["Whc"]) + p["bc"])
        o_t = T.nnet.sigmoid(x_t.dot(p["Wxo"]) + h_t1.dot(p["Who"]) + c_t.dot(p["Wco"]) + p["bo"])
        h_t = o_t * T.tanh(c_t)
        return h_t, c_t

    return recurrence


def language_model(unit: str, init: dict[str, np.ndarray], lr: float, mu: float,
                   mode: str = "numba") -> SymflowTrainer:
    """The book's chapter 6 model with one GRU or LSTM layer; train(x (T,), y (T,)) -> cost."""
    p = _shared(init, init.keys())
    thX = T.ivector("X")
    thY = T.ivector("Y")
    Z = p["We"][thX]
    if unit == "gru":
        h, _ = theano.scan(fn=gru_recurrence(p), sequences=Z, outputs_info=[p["h0"]], n_steps=Z.shape[0])
    else:
        [h, c], _ = theano.scan(fn=lstm_recurrence(p), sequences=Z, outputs_info=[p["h0"], p["c0"]],
                                n_steps=Z.shape[0])
    py_x = T.nnet.softmax(h.dot(p["Wout"]) + p["bout"])
    cost = -T.mean(T.log(py_x[T.arange(thY.shape[0]), thY]))
    return SymflowTrainer(p, [thX, thY], cost, cost, lr, mu, mode)


def minibatch(init: dict[str, np.ndarray], lr: float, mu: float, mode: str = "numba") -> SymflowTrainer:
    """The LSTM language model on padded (T, B) batches; train(X, Y, mask) -> masked mean cross-entropy."""
    p = _shared(init, init.keys())
    thX = T.imatrix("X")
    thY = T.imatrix("Y")
    mask = T.matrix("mask")
    n_steps, batch = thX.shape[0], thX.shape[1]
    M = init["h0"].shape[0]
    Z = p["We"][thX]  # (T, B, D)
    h_init = T.alloc(p["h0"], batch, M)  # the learned initial state, one row per sentence
    c_init = T.alloc(p["c0"], batch, M)
    [h, c], _ = theano.scan(fn=lstm_recurrence(p), sequences=Z, outputs_info=[h_init, c_init], n_steps=n_steps)
    py_x = T.nnet.softmax(h.reshape((n_steps * batch, M)).dot(p["Wout"]) + p["bout"])
    flat_y = thY.flatten()
    flat_mask = mask.flatten()
    log_p = T.log(py_x[T.arange(flat_y.shape[0]), flat_y])
    cost = -T.sum(flat_mask * log_p) / T.sum(flat_mask)
    return SymflowTrainer(p, [thX, thY, mask], cost, cost, lr, mu, mode)
