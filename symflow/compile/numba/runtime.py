"""Run-time support imported by generated modules."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ...types import TensorType


def perform_fallback(module: str, cls: str, props: tuple[Any, ...],
                     input_types: tuple[tuple[str, tuple[bool, ...]], ...]) -> Callable[..., tuple[Any, ...]]:
    """A callable running an op's NumPy implementation, for ops without Numba code.

    The op is rebuilt from its class and props, so generated modules can recreate it in any
    process; the compiled code calls it in Numba's object mode.
    """
    op = getattr(importlib.import_module(module), cls)(*props)
    node = op.make_node(*[TensorType(dtype, bcast)() for dtype, bcast in input_types])

    def run(*args: Any) -> tuple[Any, ...]:
        values = [np.asarray(a) for a in args]
        outs = op.perform(node, values)
        return tuple(np.ascontiguousarray(o) if o.ndim else o[()] for o in outs)

    return run
