"""Scan over vectors and with 0-d states: every step value reaching the inner graph, and every
unstacked final value, is a 0-d array (never a NumPy scalar), whatever the ops do with it.

The functions are built with ``rewrite=False``: the scan rewrites would move this per-step work
out of the loop, and the loop itself is what is tested here."""

from __future__ import annotations

import numpy as np

import symflow as sf
import symflow.tensor as T
from symflow.testing import verify_grad

X = np.array([1.0, 2.0, 3.0])


def test_step_values_pass_through_unchanged(mode: str) -> None:
    """Ops that return their input as is (identity-like) see 0-d arrays."""
    x = T.vector("x")
    outputs = [sf.scan(step, sequences=x)[0] for step in (lambda x_t: x_t.copy(), sf.disconnected_grad,
                                                          lambda x_t: sf.grad_clip(x_t, -1.0, 1.0))]
    for got in sf.function([x], outputs, mode=mode, rewrite=False)(X):
        np.testing.assert_array_equal(got, X)


def test_scalar_shared_variable_updated_in_the_loop(mode: str) -> None:
    x = T.vector("x")
    total = sf.shared(0.0, name="total")
    doubled, updates = sf.scan(lambda x_t: (x_t * 2, {total: total + x_t}), sequences=x)
    out = sf.function([x], doubled, updates=updates, mode=mode, rewrite=False)(X)
    np.testing.assert_array_equal(out, 2 * X)
    assert total.get_value().shape == () and total.get_value() == 6.0


def test_gradient_with_respect_to_scalars(mode: str) -> None:
    def rnn(x: sf.Variable, w: sf.Variable, h0: sf.Variable) -> sf.Variable:
        h, _ = sf.scan(lambda x_t, h, w: T.tanh(x_t * w + h), sequences=x, outputs_info=h0, non_sequences=w)
        return h[-1]

    verify_grad(rnn, [X * 0.3, np.array(0.5), np.array(0.1)], mode=mode)
    w = sf.shared(0.5, name="w")
    x = T.vector("x")
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t * w + h), sequences=x, outputs_info=T.constant(0.0))
    g = sf.function([x], sf.grad(h.sum(), w), mode=mode, rewrite=False)(X)
    assert isinstance(g, np.ndarray) and g.shape == ()
