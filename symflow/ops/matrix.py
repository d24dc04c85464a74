"""Matrix constructors and selections (eye, identity_like, tril, triu, diagonal, diag, trace,
fill_diagonal, roll), composed from primitives: index comparisons, ``switch``, pair indexing and
slices. Their gradients and both backends come from those primitives; none has code of its own."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Variable, as_variable
from . import math as m
from .elemwise import cast
from .reduce import normalize_axes
from .shape import arange, as_index_scalar, concatenate, dimshuffle, reshape, shape, shape_i, zeros
from .subtensor import getitem, set_subtensor


def _static_int(value: Any, what: str) -> int:
    """``value`` as a Python int (diagonal offsets are part of the graph's structure)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a Python int, got {value!r}")
    return int(value)


def _below_or_on(x: Variable, k: int) -> Variable:
    """Whether each entry of the last two axes of ``x`` lies on or below its ``k``-th diagonal
    (``column <= row + k``), as a bool matrix that broadcasts against ``x``."""
    rows = dimshuffle(arange(shape_i(x, x.ndim - 2)), (0, "x"))
    cols = dimshuffle(arange(shape_i(x, x.ndim - 1)), ("x", 0))
    return m.le(cols, m.add(rows, k))


def _matrices(x: Any, what: str) -> Variable:
    x = as_variable(x)
    if x.ndim < 2:
        raise TypeError(f"{what} needs a matrix (or a stack of them), got {x.describe()}")
    return x


def eye(n: Any, m_cols: Any = None, k: int = 0, dtype: Any = "floatX") -> Variable:
    """An ``n`` x ``m_cols`` matrix (square if ``m_cols`` is None) with ones on its ``k``-th diagonal
    (above the main one for k > 0) and zeros elsewhere; ``n`` and ``m_cols`` may be symbolic."""
    k = _static_int(k, "eye's k")
    n = as_index_scalar(n, "eye's n")
    cols = n if m_cols is None else as_index_scalar(m_cols, "eye's m")
    on = m.eq(dimshuffle(arange(cols), ("x", 0)), m.add(dimshuffle(arange(n), (0, "x")), k))
    return cast(on, dtypes.as_dtype(dtype))


def tril(x: Any, k: int = 0) -> Variable:
    """``x`` with the entries above its ``k``-th diagonal set to 0 (NumPy's ``tril``; on the last
    two axes). The entries dropped are replaced, not multiplied by 0, so an inf there gives 0."""
    x = _matrices(x, "tril")
    return m.switch(_below_or_on(x, _static_int(k, "tril's k")), x, cast(0, x.dtype))


def triu(x: Any, k: int = 0) -> Variable:
    """``x`` with the entries below its ``k``-th diagonal set to 0 (NumPy's ``triu``)."""
    x = _matrices(x, "triu")
    return m.switch(_below_or_on(x, _static_int(k, "triu's k") - 1), cast(0, x.dtype), x)


def diagonal(x: Any, offset: int = 0) -> Variable:
    """The ``offset``-th diagonal of the matrix ``x`` as a vector (above the main one for offset > 0)."""
    x = as_variable(x)
    if x.ndim != 2:
        raise TypeError(f"diagonal needs a matrix, got {x.describe()}")
    return getitem(x, diagonal_index(x, _static_int(offset, "diagonal's offset")))


def diagonal_index(x: Variable, offset: int | Variable) -> tuple[Variable, Variable]:
    """The (rows, columns) index pair of the ``offset``-th diagonal of the matrix ``x``. ``offset`` is a
    Python int or an int64 scalar, which is clipped to the matrix first so that ``-offset`` cannot overflow."""
    rows, cols = shape_i(x, 0), shape_i(x, 1)
    if isinstance(offset, Variable):
        k = m.clip(offset, m.neg(rows), cols)
        first_row, first_col = m.maximum(m.neg(k), 0), m.maximum(k, 0)
    else:
        first_row, first_col = max(-offset, 0), max(offset, 0)
    steps = arange(m.maximum(m.minimum(m.sub(rows, first_row), m.sub(cols, first_col)), 0))
    return m.add(steps, first_row), m.add(steps, first_col)


def diag(v: Any, k: int = 0) -> Variable:
    """Theano's and NumPy's ``diag``: a vector gives the square matrix with ``v`` on its ``k``-th
    diagonal, a matrix gives its ``k``-th diagonal."""
    v = as_variable(v)
    k = _static_int(k, "diag's k")
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise TypeError(f"diag takes a vector or a matrix, got {v.describe()}")
    side = m.add(shape_i(v, 0), abs(k))
    steps = arange(shape_i(v, 0))
    square = zeros((side, side), dtype=v.dtype)
    return set_subtensor(getitem(square, (m.add(steps, max(-k, 0)), m.add(steps, max(k, 0)))), v)


def roll(x: Any, shift: Any, axis: int | None = None) -> Variable:
    """``x`` with its entries shifted by ``shift`` (symbolic or not) along ``axis``, those pushed off
    the end coming back at the start (NumPy's ``roll``; without an axis, over the flattened array)."""
    x = as_variable(x)
    if axis is None:
        return reshape(roll(x.flatten(), shift, 0), shape(x), ndim=x.ndim)
    (axis,) = normalize_axes(axis, x.ndim, "roll's axis")
    length = shape_i(x, axis)
    period = m.maximum(length, 1)
    if isinstance(shift, Variable) and shift.dtype == "uint64":  # reduced as uint64: as int64 it would not fit
        shift = m.mod(shift, m.cast(period, "uint64"))
    shift = as_index_scalar(shift, "roll's shift")
    cut = m.sub(length, m.mod(shift, period))  # the entries from `cut` on come first
    before = (slice(None),) * axis
    return concatenate([getitem(x, (*before, slice(cut, None))), getitem(x, (*before, slice(None, cut)))], axis)


def _matrix(x: Any, what: str) -> Variable:
    x = as_variable(x)
    if x.ndim != 2:
        raise TypeError(f"{what} needs a matrix, got {x.describe()}")
    return x


def trace(x: Any) -> Variable:
    """The sum of the main diagonal of the matrix ``x`` (NumPy's ``trace``: integers sum in 64 bits;
    0 for an empty matrix)."""
    from .reduce import sum as sum_

    return sum_(diagonal(_matrix(x, "trace")))


def identity_like(x: Any) -> Variable:
    """The identity matrix of the shape and dtype of the matrix ``x`` (ones on the main diagonal,
    also when ``x`` is not square), as Theano's ``identity_like``."""
    x = _matrix(x, "identity_like")
    return eye(shape_i(x, 0), shape_i(x, 1), dtype=x.dtype)


def _diagonal_value(a: Variable, val: Any, what: str) -> Variable:
    """``val`` as a scalar of ``a``'s dtype; refused, as Theano does, when that would lose
    precision (a float into an int matrix, a float64 variable into a float32 one) or it is not a scalar."""
    if dtypes.is_weak(val):  # a Python number
        if not dtypes.fits(val, a.dtype):
            raise TypeError(f"{what}: the value {val!r} does not fit the dtype of {a.describe()}")
        return as_variable(val, a.dtype)
    v = as_variable(val)
    if v.ndim != 0:
        raise TypeError(f"{what} needs a scalar value, got {v.describe()} for {a.describe()}")
    if dtypes.upcast(a.dtype, v.dtype) != a.dtype:
        raise TypeError(f"{what}: the value {v.describe()} would be cast down to the dtype of {a.describe()}; "
                        f"cast it to {a.dtype} first")
    return cast(v, a.dtype) if v.dtype != a.dtype else v


def fill_diagonal(a: Any, val: Any) -> Variable:
    """A copy of the matrix ``a`` with its main diagonal set to the scalar ``val``, as Theano's.

    NumPy's ``fill_diagonal`` without ``wrap``, but not in place. The gradient reaches ``a`` off the
    diagonal and ``val`` as the sum along it, as in Theano."""
    a = _matrix(a, "fill_diagonal")
    val = _diagonal_value(a, val, "fill_diagonal")
    return set_subtensor(getitem(a, diagonal_index(a, 0)), val)


def fill_diagonal_offset(a: Any, val: Any, offset: Any) -> Variable:
    """A copy of the matrix ``a`` with its ``offset``-th diagonal set to the scalar ``val``, as Theano's.

    ``offset`` (above the main diagonal when > 0) is a Python int or a symbolic integer scalar; one
    beyond the matrix changes nothing. Gradients as ``fill_diagonal``'s."""
    a = _matrix(a, "fill_diagonal_offset")
    val = _diagonal_value(a, val, "fill_diagonal_offset")
    k = as_index_scalar(offset, "fill_diagonal_offset's offset")
    return set_subtensor(getitem(a, diagonal_index(a, k)), val)
