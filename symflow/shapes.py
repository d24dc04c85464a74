"""Symbolic shape inference: output shapes as int64 scalar graphs, from each Op's rule."""

from __future__ import annotations

from collections.abc import Sequence

from .graph import Variable, toposort
from .ops.shape import shape_i


def infer_shapes(outputs: Sequence[Variable], inputs: Sequence[Variable] = ()) -> list[tuple[Variable, ...]]:
    """The shape of each output, expressed through the shapes (and values) of the inputs."""
    shapes: dict[Variable, tuple[Variable, ...]] = {}

    def shape_of(x: Variable) -> tuple[Variable, ...]:
        if x not in shapes:
            shapes[x] = tuple(shape_i(x, d) for d in range(x.ndim))
        return shapes[x]

    for node in toposort(outputs, stop_at=inputs):
        in_shapes = [shape_of(x) for x in node.inputs]
        for y, s in zip(node.outputs, node.op.infer_shape(node, in_shapes)):
            if len(s) != y.ndim:
                raise RuntimeError(f"{node.op}.infer_shape gave {len(s)} dimensions for a {y.ndim}-d output")
            shapes[y] = tuple(s)
    return [shape_of(y) for y in outputs]
