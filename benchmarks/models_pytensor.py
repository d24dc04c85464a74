"""The benchmark models in PyTensor (Theano's successor): the book's code with PyTensor's names.

``T.nnet.sigmoid`` is ``pt.sigmoid`` and ``T.nnet.softmax`` is ``pt.special.softmax`` here; the graphs
and the momentum-SGD updates are otherwise line for line those of models_symflow.py.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

with warnings.catch_warnings():  # PyTensor warns at import when it finds no BLAS for its C backend
    warnings.simplefilter("ignore")
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import get_default_mode


def modes() -> list[tuple[str, str | None]]:
    """(row label, mode) for PyTensor's default mode and its NUMBA mode (or C when NUMBA is the default)."""
    default_linker = type(get_default_mode().linker).__name__
    if "Numba" in default_linker:  # PyTensor >= 3 compiles with Numba by default
        return [("pytensor NUMBA (its default)", "NUMBA"), ("pytensor C (CVM)", "CVM")]
    return [(f"pytensor default ({default_linker})", None), ("pytensor NUMBA", "NUMBA")]


class PytensorTrainer:
    """A compiled train function plus the shared variables it updates."""

    def __init__(self, params: dict[str, Any], inputs: list[Any], outputs: Any, cost: Any,
                 lr: float, mu: float, mode: str | None) -> None:
        self.params = params
        shared = list(params.values())
        grads = pytensor.grad(cost, shared)
        self.dparams = {name: pytensor.shared(p.get_value() * 0) for name, p in params.items()}
        dparams = list(self.dparams.values())
        steps = [mu * dp - lr * g for dp, g in zip(dparams, grads, strict=True)]  # dp = mu*dp - lr*g
        updates = [(p, p + step) for p, step in zip(shared, steps, strict=True)]  # p += dp
        updates += list(zip(dparams, steps, strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            self.train = pytensor.function(inputs=inputs, outputs=outputs, updates=updates, mode=mode)
            self.compile_seconds = time.perf_counter() - started  # function() alone

    def get_params(self) -> dict[str, np.ndarray]:
        return {name: p.get_value() for name, p in self.params.items()}

    def get_momenta(self) -> dict[str, np.ndarray]:
        return {name: dp.get_value() for name, dp in self.dparams.items()}


def _shared(values: dict[str, np.ndarray], names: Any) -> dict[str, Any]:
    return {n: pytensor.shared(np.array(values[n], dtype=np.float64), name=n) for n in names}


def _scan(fn: Any, sequences: Any, outputs_info: Any) -> Any:
    return pytensor.scan(fn=fn, sequences=sequences, outputs_info=outputs_info, n_steps=sequences.shape[0],
                         return_updates=False)


def parity(init: dict[str, np.ndarray], lr: float, mu: float, mode: str | None = None) -> PytensorTrainer:
    """The book's SimpleRNN with sigmoid; train(x (T, 1), y (T,)) -> [cost, prediction]."""
    p = _shared(init, ("Wx", "Wh", "bh", "h0", "Wo", "bo"))
    thX = pt.dmatrix("X")
    thY = pt.ivector("Y")

    def recurrence(x_t, h_t1):
        h_t = pt.sigmoid(x_t.dot(p["Wx"]) + h_t1.dot(p["Wh"]) + p["bh"])
        y_t = pt.special.softmax(h_t.dot(p["Wo"]) + p["bo"])
        return h_t, y_t

    h, py_x = _scan(recurrence, thX, [p["h0"], None])  # softmax of a vector is a vector here: no [:, 0, :]
    prediction = pt.argmax(py_x, axis=1)
    cost = -pt.mean(pt.log(py_x[pt.arange(thY.shape[0]), thY]))
    return PytensorTrainer(p, [thX, thY], [cost, prediction], cost, lr, mu, mode)


def gru_recurrence(p: dict[str, Any]) -> Any:
    """The book's GRU step with tanh for the candidate activation."""

    def recurrence(x_t, h_t1):
        r = pt.sigmoid(x_t.dot(p["Wxr"]) + h_t1.dot(p["Whr"]) + p["br"])
        z = pt.sigmoid(x_t.dot(p["Wxz"]) + h_t1.dot(p["Whz"]) + p["bz"])
        hhat = pt.tanh(x_t.dot(p["Wxh"]) + (r * h_t1).dot(p["Whh"]) + p["bh"])
        return (1 - z) * h_t1 + z * hhat

    return recurrence


def lstm_recurrence(p: dict[str, Any]) -> Any:
    """The book's LSTM step with full peephole matrices Wci, Wcf, Wco."""

    def recurrence(x_t, h_t1, c_t1):
        i_t = pt.sigmoid(x_t.dot(p["Wxi"]) + h_t1.dot(p["Whi"]) + c_t1.dot(p["Wci"]) + p["bi"])
        f_t = pt.sigmoid(x_t.dot(p["Wxf"]) + h_t1.dot(p["Whf"]) + c_t1.dot(p["Wcf"]) + p["bf"])
        c_t = f_t * c_t1 + i_t * pt.tanh(x_t.dot(p["Wxc"]) + h_t1.dot(p["Whc"]) + p["bc"])
        o_t = pt.sigmoid(x_t.dot(p["Wxo"]) + h_t1.dot(p["Who"]) + c_t.dot(p["Wco"]) + p["bo"])
        h_t = o_t * pt.tanh(c_t)
        return h_t, c_t

    return recurrence


def language_model(unit: str, init: dict[str, np.ndarray], lr: float, mu: float,
                   mode: str | None = None) -> PytensorTrainer:
    """One GRU or LSTM layer language model; train(x (T,), y (T,)) -> cost."""
    p = _shared(init, init.keys())
    thX = pt.ivector("X")
    thY = pt.ivector("Y")
    Z = p["We"][thX]
    if unit == "gru":
        h = _scan(gru_recurrence(p), Z, [p["h0"]])
    else:
        h, c = _scan(lstm_recurrence(p), Z, [p["h0"], p["c0"]])
    py_x = pt.special.softmax(h.dot(p["Wout"]) + p["bout"], axis=-1)
    cost = -pt.mean(pt.log(py_x[pt.arange(thY.shape[0]), thY]))
    return PytensorTrainer(p, [thX, thY], cost, cost, lr, mu, mode)


def minibatch(init: dict[str, np.ndarray], lr: float, mu: float, mode: str | None = None) -> PytensorTrainer:
    """The LSTM language model on padded (T, B) batches; train(X, Y, mask) -> masked mean cross-entropy."""
    p = _shared(init, init.keys())
    thX = pt.imatrix("X")
    thY = pt.imatrix("Y")
    mask = pt.dmatrix("mask")
    n_steps, batch = thX.shape[0], thX.shape[1]
    M = init["h0"].shape[0]
    Z = p["We"][thX]  # (T, B, D)
    h_init = pt.alloc(p["h0"], batch, M)
    c_init = pt.alloc(p["c0"], batch, M)
    h, c = _scan(lstm_recurrence(p), Z, [h_init, c_init])
    py_x = pt.special.softmax(h.reshape((n_steps * batch, M)).dot(p["Wout"]) + p["bout"], axis=-1)
    flat_y = thY.flatten()
    flat_mask = mask.flatten()
    log_p = pt.log(py_x[pt.arange(flat_y.shape[0]), flat_y])
    cost = -pt.sum(flat_mask * log_p) / pt.sum(flat_mask)
    return PytensorTrainer(p, [thX, thY, mask], cost, cost, lr, mu, mode)
