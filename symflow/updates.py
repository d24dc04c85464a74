"""Update builders: Theano-style ``(shared, new_value)`` lists for gradient-descent training.

    updates = symflow.updates.momentum(cost, params, learning_rate=1e-2, mu=0.99)
    train = symflow.function([x, y], cost, updates=updates)

Each builder takes the cost (or a list of gradients already computed) and the parameters, and
returns a list of pairs for ``function(updates=...)``. Optimiser state (velocities, moment
estimates) lives in fresh shared variables created here. ``learning_rate`` and the other
hyperparameters may be numbers or symbolic scalars (a shared scalar lets you decay the rate
between calls without recompiling). ``clip_norm`` rescales all gradients together when their
joint L2 norm exceeds it, as the book's ``if |g| > threshold: g = threshold * g / |g|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import dtypes
from .gradient import grad
from .graph import Variable, as_variable
from .ops import math as m
from .ops.shape import constant_value
from .shared import SharedVariable, shared

Updates = list[tuple[SharedVariable, Variable]]


def _check_params(params: Sequence[Any]) -> list[SharedVariable]:
    params = list(params)
    if not params:
        raise ValueError("no parameters to update: params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, SharedVariable):
            what = p.describe() if isinstance(p, Variable) else type(p).__name__
            raise TypeError(f"params[{i}] is {what}; update builders need shared variables (symflow.shared)")
        if not dtypes.is_float(p.dtype):
            raise TypeError(f"params[{i}] ({p.describe()}) is not a float variable and cannot be trained")
    if len(set(params)) != len(params):
        raise ValueError("params lists the same shared variable twice")
    return params


def get_or_compute_grads(loss_or_grads: Any, params: Sequence[SharedVariable]) -> list[Variable]:
    """Gradients of a scalar cost w.r.t. ``params``, or the given list of gradients checked against them."""
    if isinstance(loss_or_grads, (list, tuple)):
        if len(loss_or_grads) != len(params):
            raise ValueError(f"got {len(loss_or_grads)} gradients for {len(params)} parameters; give one per "
                             "parameter")
        for g, p in zip(loss_or_grads, params, strict=True):
            if g is None:
                raise TypeError(f"the gradient for {p.describe()} is None (the cost does not depend on it): leave "
                                "the parameter out, or take gradients with return_disconnected='zero'")
        grads = [as_variable(g) for g in loss_or_grads]
        for g, p in zip(grads, params, strict=True):
            if g.ndim != p.ndim:
                raise ValueError(f"the gradient for {p.describe()} has {g.ndim} dimensions, expected {p.ndim}")
        return grads
    return list(grad(loss_or_grads, list(params)))


def clip_by_norm(grads: Sequence[Variable], max_norm: Any, epsilon: float = 1e-7) -> list[Variable]:
    """Rescale ``grads`` together so their joint L2 norm is at most ``max_norm`` (unchanged below it)."""
    known = constant_value(max_norm) if isinstance(max_norm, Variable) else max_norm
    if isinstance(known, (int, float, np.number)) and not known > 0:  # a shared value is read at run time
        raise ValueError(f"max_norm must be positive, got {max_norm!r}")
    grads = [as_variable(g) for g in grads]
    total = m.sqr(grads[0]).sum()
    for g in grads[1:]:
        total = total + m.sqr(g).sum()
    norm = m.sqrt(total)
    scale = m.minimum(1.0, m.true_div(max_norm, m.add(norm, epsilon)))
    return [m.cast(m.mul(g, scale), g.dtype) for g in grads]


def _grads(loss_or_grads: Any, params: Sequence[Any], clip_norm: Any) -> tuple[list[SharedVariable], list[Variable]]:
    params = _check_params(params)
    grads = get_or_compute_grads(loss_or_grads, params)
    if clip_norm is not None:
        grads = clip_by_norm(grads, clip_norm)
    return params, grads


def _zeros_like(p: SharedVariable, what: str) -> SharedVariable:
    return shared(np.zeros_like(p.get_value(borrow=True)), name=f"{what}_{p.name or 'param'}")


def _fit(expr: Any, like: Variable) -> Variable:
    """Keep the parameter's dtype (a float32 weight must not be promoted by a float64 rate)."""
    expr = as_variable(expr)
    return m.cast(expr, like.dtype) if expr.dtype != like.dtype else expr


def sgd(loss_or_grads: Any, params: Sequence[Any], learning_rate: Any, clip_norm: Any = None) -> Updates:
    """Plain gradient descent: ``p = p - lr * g``."""
    params, grads = _grads(loss_or_grads, params, clip_norm)
    return [(p, _fit(p - learning_rate * g, p)) for p, g in zip(params, grads, strict=True)]


def momentum(loss_or_grads: Any, params: Sequence[Any], learning_rate: Any, mu: Any = 0.9,
             clip_norm: Any = None) -> Updates:
    """The book's momentum: ``dp = mu*dp - lr*g; p = p + dp`` (one velocity per parameter)."""
    params, grads = _grads(loss_or_grads, params, clip_norm)
    updates: Updates = []
    for p, g in zip(params, grads, strict=True):
        dp = _zeros_like(p, "velocity")
        new_dp = _fit(mu * dp - learning_rate * g, p)
        updates += [(p, _fit(p + new_dp, p)), (dp, new_dp)]
    return updates


def nesterov(loss_or_grads: Any, params: Sequence[Any], learning_rate: Any, mu: Any = 0.9,
             clip_norm: Any = None) -> Updates:
    """Nesterov momentum (Sutskever's form): ``dp = mu*dp - lr*g; p = p + mu*dp - lr*g``."""
    params, grads = _grads(loss_or_grads, params, clip_norm)
    updates: Updates = []
    for p, g in zip(params, grads, strict=True):
        dp = _zeros_like(p, "velocity")
        new_dp = _fit(mu * dp - learning_rate * g, p)
        updates += [(p, _fit(p + mu * new_dp - learning_rate * g, p)), (dp, new_dp)]
    return updates


def rmsprop(loss_or_grads: Any, params: Sequence[Any], learning_rate: Any = 1e-3, rho: Any = 0.9,
            epsilon: float = 1e-6, clip_norm: Any = None) -> Updates:
    """RMSprop: divide each step by a running root-mean-square of recent gradients."""
    params, grads = _grads(loss_or_grads, params, clip_norm)
    updates: Updates = []
    for p, g in zip(params, grads, strict=True):
        acc = _zeros_like(p, "meansquare")
        new_acc = _fit(rho * acc + (1 - rho) * m.sqr(g), p)
        updates += [(p, _fit(p - learning_rate * g / m.sqrt(new_acc + epsilon), p)), (acc, new_acc)]
    return updates


def adam(loss_or_grads: Any, params: Sequence[Any], learning_rate: Any = 1e-3, beta1: float = 0.9,
         beta2: float = 0.999, epsilon: float = 1e-8, clip_norm: Any = None) -> Updates:
    """Adam (Kingma & Ba) with bias-corrected first and second moment estimates."""
    params, grads = _grads(loss_or_grads, params, clip_norm)
    t = shared(np.array(0.0), name="adam_t")  # float64 whatever the parameters: exact to 2**53 steps
    t_new = t + 1
    step = learning_rate * m.sqrt(1 - beta2**t_new) / (1 - beta1**t_new)
    updates: Updates = [(t, _fit(t_new, t))]
    for p, g in zip(params, grads, strict=True):
        m1 = _zeros_like(p, "adam_m")
        v = _zeros_like(p, "adam_v")
        new_m = _fit(beta1 * m1 + (1 - beta1) * g, p)
        new_v = _fit(beta2 * v + (1 - beta2) * m.sqr(g), p)
        updates += [(p, _fit(p - step * new_m / (m.sqrt(new_v) + epsilon), p)), (m1, new_m), (v, new_v)]
    return updates


#: builders by name, for code that picks the optimiser from a setting
BUILDERS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "rmsprop": rmsprop, "adam": adam}

__all__ = ["BUILDERS", "adam", "clip_by_norm", "get_or_compute_grads", "momentum", "nesterov", "rmsprop", "sgd"]
