"""Hypothesis strategies for property-based tests of symbolic expressions.

    from hypothesis import given
    from symflow.testing import strategies as sst, verify_grad

    @given(sst.arrays("float64", sst.shapes(max_dims=2), low=-2, high=2))
    def test_tanh_grad(x):
        verify_grad(T.tanh, [x])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised only without the dev extra
    raise ImportError("symflow.testing.strategies needs hypothesis: pip install hypothesis") from exc


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(dtype: str = "float64", shape: Any = None, low: float = -3.0, high: float = 3.0,
           avoid: Sequence[float] = (), margin: float = 0.1) -> st.SearchStrategy:
    """Arrays of ``dtype`` with values in ``[low, high]``, kept ``margin`` away from each value in
    ``avoid`` (kinks and singularities such as 0 for ``abs`` or ``log``). ``shape`` is a tuple or
    a strategy of shapes (default: up to 3-d, sides up to 4)."""
    shape = shapes() if shape is None else shape
    if np.dtype(dtype).kind in "iu":
        return hnp.arrays(dtype, shape, elements=st.integers(int(low), int(high)))
    width = 32 if np.dtype(dtype) == np.float32 else 64
    # draw from the allowed intervals directly (filtering would discard too many draws)
    pieces = [st.floats(_representable(lo, hi, width), _representable(hi, lo, width), width=width,
                        allow_nan=False, allow_infinity=False)
              for lo, hi in _allowed(low, high, avoid, margin)]
    if not pieces:
        raise ValueError(f"no values in [{low}, {high}] are {margin} away from all of {list(avoid)}")
    return hnp.arrays(dtype, shape, elements=st.one_of(pieces))


def _allowed(low: float, high: float, avoid: Sequence[float], margin: float) -> list[tuple[float, float]]:
    """``[low, high]`` without the open intervals of radius ``margin`` around the ``avoid`` values,
    as closed intervals strictly farther than ``margin`` from each of them."""
    intervals = [(float(low), float(high))]
    for a in sorted(avoid):
        below, above = float(np.nextafter(a - margin, -np.inf)), float(np.nextafter(a + margin, np.inf))
        intervals = [piece for lo, hi in intervals
                     for piece in ([(lo, hi)] if hi < below or lo > above else [(lo, below), (above, hi)])
                     if piece[0] <= piece[1]]
    return intervals


def _representable(bound: float, towards: float, width: int) -> float:
    """The float of ``width`` bits nearest ``bound`` that does not lie beyond it (moving ``towards``)."""
    if width == 64:
        return float(bound)
    value = np.float32(bound)
    exact = float(value)  # compare in float64: NumPy would round a Python float to float32 first
    if (towards > bound and exact < bound) or (towards < bound and exact > bound):
        value = np.nextafter(value, np.float32(towards))
    return float(value)


def well_conditioned(dtype: str = "float64", shape: Any = None) -> st.SearchStrategy:
    """Values of moderate size (|x| in [0.1, 2]), fine for most smooth functions and their gradients."""
    return arrays(dtype, shape, low=-2.0, high=2.0, avoid=(0.0,), margin=0.1)


def positive(dtype: str = "float64", shape: Any = None, low: float = 0.1, high: float = 3.0) -> st.SearchStrategy:
    """Strictly positive values (for log, sqrt, division)."""
    return arrays(dtype, shape, low=low, high=high)


@st.composite
def broadcastable_shapes(draw: Any, n: int = 2, min_dims: int = 0, max_dims: int = 3,
                         max_side: int = 4) -> list[tuple[int, ...]]:
    """``n`` shapes that broadcast together: a base shape, with some dimensions set to 1 in some
    inputs and leading dimensions dropped from others (length-1 dims become broadcastable in
    ``verify_grad``)."""
    base = draw(shapes(min_dims=min_dims, max_dims=max_dims, min_side=2, max_side=max_side))
    out = []
    for _ in range(n):
        dims = [1 if draw(st.booleans()) and draw(st.booleans()) else s for s in base]
        drop = draw(st.integers(0, len(dims)))
        out.append(tuple(dims[drop:]) if draw(st.booleans()) else tuple(dims))
    return out


def same_shape_arrays(n: int, dtype: str = "float64", low: float = -2.0, high: float = 2.0,
                      shape: Any = None) -> st.SearchStrategy:
    """``n`` arrays of one common (drawn) shape."""
    shape_strategy = shapes() if shape is None else (st.just(shape) if isinstance(shape, tuple) else shape)
    return shape_strategy.flatmap(lambda s: st.tuples(*[arrays(dtype, s, low, high) for _ in range(n)]))
