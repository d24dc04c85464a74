"""Identity ops that change only how gradients flow: stop them, or clip them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import Apply, Op, Variable, as_variable
from . import math as m


class IdentityForward(Op):
    """The forward pass of both ops: the input itself (a view in compiled code); subclasses say
    what happens to the gradient."""

    __props__ = ()

    def make_node(self, x: Variable) -> Apply:
        x = as_variable(x)
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0]]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        cg.bind(node.outputs[0], cg.value(node.inputs[0]))
        cg.view(node.outputs[0], node.inputs[0])

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        return [(self.make_node(values[0]).outputs[0], True)]


class DisconnectedGrad(IdentityForward):
    """Identity in the forward pass; no gradient flows back through it."""

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None]


class GradClip(IdentityForward):
    """Identity in the forward pass; the gradient passing back is clipped to ``[lower, upper]``."""

    __props__ = ("lower", "upper")

    def __init__(self, lower: float, upper: float) -> None:
        if not lower <= upper:
            raise ValueError(f"grad_clip needs lower <= upper, got {lower} and {upper}")
        self.lower = float(lower)
        self.upper = float(upper)

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        (g,) = output_grads
        return [None if g is None else m.clip(g, self.lower, self.upper)]


def disconnected_grad(x: Any) -> Variable:
    """``x``, treated as a constant by ``grad`` (also called ``stop_gradient``)."""
    return DisconnectedGrad()(as_variable(x))  # type: ignore[no-any-return]


stop_gradient = disconnected_grad


def grad_clip(x: Any, lower: float, upper: float) -> Variable:
    """``x``, with the gradient flowing back through it clipped elementwise to ``[lower, upper]``."""
    return GradClip(lower, upper)(as_variable(x))  # type: ignore[no-any-return]
