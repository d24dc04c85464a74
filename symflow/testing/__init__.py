"""Tools to test gradients of your own expressions: ``verify_grad`` and hypothesis ``strategies``.

    from symflow.testing import verify_grad
    verify_grad(lambda x, w: T.tanh(x.dot(w)), [x_value, w_value])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..types import TensorType

#: finite-difference step and tolerances per dtype (central differences)
EPS = {"float64": 1e-6, "float32": 3e-3}
RTOL = {"float64": 1e-4, "float32": 3e-2}
ATOL = {"float64": 1e-6, "float32": 3e-3}


class GradientError(AssertionError):
    """The symbolic gradient disagrees with finite differences."""


def verify_grad(
    fn: Callable[..., Any],
    points: Sequence[np.ndarray],
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    rng: np.random.Generator | int | None = 0,
    mode: str | None = None,
    wrt: Sequence[int] | None = None,
) -> None:
    """Check ``grad`` of ``fn`` against central finite differences at ``points``.

    ``fn`` maps symbolic variables (one per point, typed like the point; length-1 dimensions
    broadcastable) to a symbolic result of any shape, which is projected on a fixed random
    direction to get a scalar. Tolerances default by dtype (``EPS``, ``RTOL``, ``ATOL``). On
    failure raises GradientError naming the worst element. ``wrt`` limits the check to the
    inputs at those positions (e.g. to skip integer indices).
    """
    import symflow

    points = [np.asarray(p) for p in points]
    variables = [TensorType(p.dtype.name, tuple(s == 1 for s in p.shape))(f"in{i}") for i, p in enumerate(points)]
    out = fn(*variables)
    out = symflow.tensor.as_tensor_variable(out)
    # the direction is an input, not a constant, so the compiled graphs depend only on the types
    # (a backend that specialises on constant shapes compiles once per signature, not per shape)
    f_out = symflow.function(variables, out, mode=mode, on_unused_input="ignore")
    projection = np.random.default_rng(rng).uniform(0.5, 1.5, size=np.shape(f_out(*points))).astype(out.dtype)
    direction = TensorType(out.dtype, out.broadcastable)("direction")
    cost = (out * direction).sum()
    positions = list(range(len(points))) if wrt is None else list(wrt)
    for i in positions:
        if points[i].dtype.kind != "f":
            raise TypeError(f"verify_grad: input {i} has dtype {points[i].dtype}; exclude it with wrt=")
    grads = symflow.grad(cost, [variables[i] for i in positions], disconnected_inputs="ignore")
    f_grad = symflow.function([*variables, direction], grads, mode=mode, on_unused_input="ignore")
    analytic = f_grad(*points, projection)

    def f_value(*values: np.ndarray) -> np.ndarray:
        return np.asarray(f_out(*values), dtype="float64")

    for k, i in enumerate(positions):
        dtype = points[i].dtype.name
        step = eps if eps is not None else EPS[dtype]
        r = rtol if rtol is not None else RTOL[dtype]
        a = atol if atol is not None else ATOL[dtype]
        numeric = np.zeros(points[i].shape, dtype="float64")
        for idx in np.ndindex(points[i].shape):
            plus = [p.copy() for p in points]
            minus = [p.copy() for p in points]
            plus[i][idx] += step
            minus[i][idx] -= step
            # difference the outputs before projecting: unchanged entries cancel exactly, so large
            # outputs elsewhere cost no precision
            change = np.sum((f_value(*plus) - f_value(*minus)) * projection)
            numeric[idx] = float(change) / (float(plus[i][idx]) - float(minus[i][idx]))
        got = np.asarray(analytic[k], dtype="float64")
        error = np.abs(got - numeric)
        limit = a + r * np.abs(numeric)
        if np.any(~(error <= limit)):
            worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(error), np.inf, error - limit))), error.shape)
            raise GradientError(
                f"gradient of input {i} (dtype {dtype}, shape {points[i].shape}) is wrong at index "
                f"{tuple(int(j) for j in worst)}: symbolic {got[worst]!r}, finite differences {numeric[worst]!r} "
                f"(abs error {error[worst]:.3g}, allowed {limit[worst]:.3g}; eps={step}, rtol={r}, atol={a})"
            )


__all__ = ["ATOL", "EPS", "GradientError", "RTOL", "verify_grad"]
