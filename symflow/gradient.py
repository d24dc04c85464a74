"""Reverse-mode differentiation: ``grad``, ``jacobian``, ``hessian``.

``grad`` walks the graph from the cost back to the requested variables, asking each Op for
its vector-Jacobian product and summing the contributions that reach each variable. The
result is itself a graph, so gradients of gradients work the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from . import dtypes
from .errors import DisconnectedInputError
from .graph import Variable, as_variable, built_at, toposort
from .ops import math as m
from .ops.shape import patternbroadcast, zeros_like


def grad(
    cost: Variable | None,
    wrt: Variable | Sequence[Variable],
    consider_constant: Sequence[Variable] | None = None,
    disconnected_inputs: str = "raise",
    known_grads: dict[Variable, Any] | None = None,
    return_disconnected: str = "zero",
) -> Any:
    """Gradient of the scalar ``cost`` with respect to ``wrt`` (one variable or a list).

    ``consider_constant`` variables are treated as constants: no gradient flows through them to
    the variables they are computed from (one of them in ``wrt`` still gets its own).
    ``known_grads`` maps variables to gradients supplied from elsewhere (the cost may then be
    None). ``disconnected_inputs`` says what to do when the cost does not depend on a requested
    variable: ``'raise'``, ``'warn'`` or ``'ignore'``; the gradient is then zero, or None with
    ``return_disconnected='None'`` (or ``'Disconnected'``: symflow has no disconnected type).
    """
    single = isinstance(wrt, Variable) or not isinstance(wrt, Iterable)
    wrt_list = [wrt] if single else list(wrt)  # type: ignore[list-item]
    for w in wrt_list:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {type(w).__name__}")
        if dtypes.is_discrete(w.dtype):
            raise TypeError(
                f"grad: cannot differentiate with respect to {w.describe()}: integer and bool variables "
                "have no gradient (cast to a float type first if you mean a continuous quantity)"
            )
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}")
    if return_disconnected not in ("zero", "None", "none", "Disconnected"):
        raise ValueError(f"return_disconnected must be 'zero', 'None' or 'Disconnected' (as None), got "
                         f"{return_disconnected!r}")

    seeds: dict[Variable, Variable] = {}
    if cost is not None:
        cost = as_variable(cost)
        if cost.ndim != 0:
            raise TypeError(f"grad: the cost must be a scalar, got {cost.describe()}; "
                            "reduce it first (e.g. cost.sum() or cost.mean())")
        if not dtypes.is_float(cost.dtype):
            raise TypeError(f"grad: the cost must be a float scalar, got {cost.describe()}")
        seeds[cost] = m.cast(as_variable(1.0), cost.dtype)
    for v, g in (known_grads or {}).items():
        g = as_variable(g)
        if g.ndim != v.ndim:
            raise ValueError(f"known_grads: gradient {g.describe()} does not match {v.describe()}")
        seeds[v] = m.cast(g, v.dtype) if g.dtype != v.dtype else g
    if not seeds:
        raise ValueError("grad needs a cost or known_grads")

    grads = backprop(seeds, wrt_list, consider_constant or ())

    results: list[Any] = []
    for w in wrt_list:
        g = grads.get(w)
        if g is None:
            message = (f"grad: the cost does not depend on {w.describe()}"
                       + (f" (created at {w.location})" if w.location else ""))
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(message + "; pass disconnected_inputs='ignore' to get zeros")
            if disconnected_inputs == "warn":
                warnings.warn(message, stacklevel=2)
            g = zeros_like(w) if return_disconnected == "zero" else None
        results.append(g)
    return results[0] if single else results


def backprop(
    seeds: dict[Variable, Variable], wrt: Sequence[Variable], consider_constant: Sequence[Variable] = ()
) -> dict[Variable, Variable]:
    """Propagate the seed gradients back to ``wrt``; returns the total gradient of each reached."""
    wrt_set = set(wrt)
    constant = set(consider_constant)
    # as in Theano, a constant gets its own gradient when requested, and passes none on
    blocked = constant - wrt_set
    nodes = toposort(list(seeds), stop_at=constant)
    # variables through which a requested variable influences the seeds
    leads_to_wrt: set[Variable] = set(wrt_set)
    for node in nodes:
        if any(x in leads_to_wrt and x not in blocked for x in node.inputs):
            leads_to_wrt.update(node.outputs)

    contributions: dict[Variable, list[Variable]] = {v: [g] for v, g in seeds.items()}
    for node in reversed(nodes):
        if not any(y in contributions for y in node.outputs):
            continue
        if not any(x in leads_to_wrt and x not in blocked for x in node.inputs):
            continue
        out_grads = [_total(contributions.get(y)) for y in node.outputs]
        with built_at(node.trace, note=f"(in the gradient of {node.op}) "):
            in_grads = node.op.grad(node, out_grads)
        if len(in_grads) != len(node.inputs):
            raise RuntimeError(f"{node.op}.grad returned {len(in_grads)} gradients for {len(node.inputs)} inputs")
        for x, gx in zip(node.inputs, in_grads):
            if gx is None or x not in leads_to_wrt or x in blocked or dtypes.is_discrete(x.dtype):
                continue
            contributions.setdefault(x, []).append(_fit(gx, x, node))
    return {w: _total(contributions[w]) for w in wrt if w in contributions}  # type: ignore[misc]


def _total(terms: list[Variable] | None) -> Variable | None:
    if not terms:
        return None
    total = terms[0]
    for t in terms[1:]:
        total = m.add(total, t)
    return total


def _fit(g: Variable, x: Variable, node: Any) -> Variable:
    """Check a gradient against its variable's type; cast dtype, relax broadcastability."""
    g = as_variable(g)
    if g.ndim != x.ndim:
        raise RuntimeError(f"{node.op}.grad gave a {g.ndim}-d gradient for the {x.ndim}-d input {x.describe()}")
    if g.dtype != x.dtype:
        g = m.cast(g, x.dtype)
    if g.broadcastable != x.broadcastable:
        g = patternbroadcast(g, x.broadcastable)
    return g


def jacobian(expression: Variable, wrt: Variable | Sequence[Variable],
             disconnected_inputs: str = "raise") -> Any:
    """Jacobian of a vector (or scalar) expression: row ``i`` is ``grad(expression[i], wrt)``.

    Built with ``scan`` over the entries of ``expression``, as in Theano.
    """
    from .ops.shape import arange, flatten, shape_i
    from .scan import scan

    expression = as_variable(expression)
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)  # type: ignore[list-item]
    if expression.ndim == 0:
        out = grad(expression, wrt_list, disconnected_inputs=disconnected_inputs)
        return out[0] if single else out
    flat = flatten(expression)

    def row(i: Variable) -> list[Variable]:
        return grad(flat[i], wrt_list, disconnected_inputs=disconnected_inputs)

    rows, _ = scan(row, sequences=arange(shape_i(flat, 0)), return_list=True)
    return rows[0] if single else rows


def hessian(cost: Variable, wrt: Variable | Sequence[Variable], disconnected_inputs: str = "raise") -> Any:
    """Hessian of a scalar cost with respect to vector variable(s)."""
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)  # type: ignore[list-item]
    out = []
    for w in wrt_list:
        if w.ndim != 1:
            raise TypeError(f"hessian: wrt must be vectors, got {w.describe()}")
        g = grad(cost, w, disconnected_inputs=disconnected_inputs)
        out.append(jacobian(g, w, disconnected_inputs=disconnected_inputs))
    return out[0] if single else out
