"""The benchmark models in JAX: the book's equations with lax.scan, one jitted train step per model.

The step returns new parameters and momenta (JAX is functional); the trainer object keeps them. JAX
compiles once per input shape, so every sentence length is a separate compilation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

jax.config.update("jax_enable_x64", True)
sigmoid = jax.nn.sigmoid


class JaxTrainer:
    """Parameters and momenta as dicts of arrays, and a jitted momentum-SGD step built from a loss."""

    def __init__(self, init: dict[str, np.ndarray], loss: Callable[..., Any], lr: float, mu: float,
                 has_aux: bool = False) -> None:
        self.params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in init.items()}
        self.dparams = {k: jnp.zeros_like(v) for k, v in self.params.items()}
        self.has_aux = has_aux

        def step(params, dparams, *inputs):
            out, grads = jax.value_and_grad(loss, has_aux=has_aux)(params, *inputs)
            dparams = {k: mu * dparams[k] - lr * grads[k] for k in params}
            params = {k: params[k] + dparams[k] for k in params}
            return params, dparams, out

        self._step = jax.jit(step)

    def train(self, *inputs: Any) -> Any:
        self.params, self.dparams, out = self._step(self.params, self.dparams, *inputs)
        if self.has_aux:  # (cost, prediction)
            return [out[0], out[1]]
        return out

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.params.items()}

    def get_momenta(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.dparams.items()}


def _cross_entropy(logits: Any, targets: Any) -> Any:
    """-log softmax(logits)[t] per row (log_softmax equals the book's log(softmax(.)))."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]


def parity(init: dict[str, np.ndarray], lr: float, mu: float) -> JaxTrainer:
    """The book's SimpleRNN with sigmoid; train(x (T, 1), y (T,)) -> [cost, prediction]."""

    def loss(p, x, y):
        def step(h, x_t):
            h = sigmoid(x_t @ p["Wx"] + h @ p["Wh"] + p["bh"])
            return h, h

        _, h = lax.scan(step, p["h0"], x)
        logits = h @ p["Wo"] + p["bo"]
        return jnp.mean(_cross_entropy(logits, y)), jnp.argmax(logits, axis=1)

    return JaxTrainer(init, loss, lr, mu, has_aux=True)


def gru_step(p: dict[str, Any], h: Any, x_t: Any) -> tuple[Any, Any]:
    """The book's GRU step with tanh for the candidate activation; works on (M,) or (B, M) states."""
    r = sigmoid(x_t @ p["Wxr"] + h @ p["Whr"] + p["br"])
    z = sigmoid(x_t @ p["Wxz"] + h @ p["Whz"] + p["bz"])
    hhat = jnp.tanh(x_t @ p["Wxh"] + (r * h) @ p["Whh"] + p["bh"])
    h = (1 - z) * h + z * hhat
    return h, h


def lstm_step(p: dict[str, Any], state: tuple[Any, Any], x_t: Any) -> tuple[tuple[Any, Any], Any]:
    """The book's LSTM step with full peephole matrices Wci, Wcf, Wco."""
    h, c = state
    i = sigmoid(x_t @ p["Wxi"] + h @ p["Whi"] + c @ p["Wci"] + p["bi"])
    f = sigmoid(x_t @ p["Wxf"] + h @ p["Whf"] + c @ p["Wcf"] + p["bf"])
    c = f * c + i * jnp.tanh(x_t @ p["Wxc"] + h @ p["Whc"] + p["bc"])
    o = sigmoid(x_t @ p["Wxo"] + h @ p["Who"] + c @ p["Wco"] + p["bo"])
    h = o * jnp.tanh(c)
    return (h, c), h


def _hidden(unit: str, p: dict[str, Any], z: Any, h0: Any, c0: Any) -> Any:
    if unit == "gru":
        _, h = lax.scan(lambda s, x_t: gru_step(p, s, x_t), h0, z)
    else:
        _, h = lax.scan(lambda s, x_t: lstm_step(p, s, x_t), (h0, c0), z)
    return h


def language_model(unit: str, init: dict[str, np.ndarray], lr: float, mu: float) -> JaxTrainer:
    """One GRU or LSTM layer language model; train(x (T,), y (T,)) -> cost."""

    def loss(p, x, y):
        h = _hidden(unit, p, p["We"][x], p["h0"], p.get("c0"))
        return jnp.mean(_cross_entropy(h @ p["Wout"] + p["bout"], y))

    return JaxTrainer(init, loss, lr, mu)


def minibatch(init: dict[str, np.ndarray], lr: float, mu: float) -> JaxTrainer:
    """The LSTM language model on padded (T, B) batches; train(X, Y, mask) -> masked mean cross-entropy."""

    def loss(p, x, y, mask):
        batch, m = x.shape[1], p["h0"].shape[0]
        h0 = jnp.broadcast_to(p["h0"], (batch, m))
        c0 = jnp.broadcast_to(p["c0"], (batch, m))
        h = _hidden("lstm", p, p["We"][x], h0, c0)  # (T, B, M)
        return jnp.sum(mask * _cross_entropy(h @ p["Wout"] + p["bout"], y)) / jnp.sum(mask)

    return JaxTrainer(init, loss, lr, mu)
