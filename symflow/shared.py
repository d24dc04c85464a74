"""Shared variables: named arrays that live between function calls (model parameters, state)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .graph import Variable
from .types import TensorType


class SharedVariable(Variable):
    """A variable whose value is stored here and read (and updated) by every function using it.

    ``default_update`` (an expression or None) is applied by any function that uses the variable
    and does not update it explicitly; random streams use it to advance their state.
    """

    #: changes whenever any shared variable's array is replaced. A compiled function passes the
    #: arrays of its shared variables as one table of addresses and lengths, which it builds again
    #: only when this has changed (``NumbaRunner.shared_table``).
    storage_version = 0

    def __init__(self, value: np.ndarray, name: str | None, broadcastable: tuple[bool, ...] | None) -> None:
        if broadcastable is None:
            broadcastable = (False,) * value.ndim
        if len(broadcastable) != value.ndim:
            raise ValueError(
                f"broadcastable={broadcastable} has {len(broadcastable)} entries for a {value.ndim}-d value"
            )
        super().__init__(TensorType(value.dtype.name, tuple(broadcastable)), name=name)
        self.default_update: Variable | None = None
        self._value = self._checked(value, borrow=True)

    @property
    def _value(self) -> np.ndarray:
        """The stored array (C-contiguous, writeable, of the variable's dtype)."""
        return self._array

    @_value.setter
    def _value(self, array: np.ndarray) -> None:
        self._array = array
        SharedVariable.storage_version += 1

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """The current value (a copy unless ``borrow=True``; a borrowed array may change in place)."""
        return self._value if borrow else self._value.copy()

    def set_value(self, value: Any, borrow: bool = False) -> None:
        """Replace the value; refuses a different ndim or a dtype that cannot be cast safely."""
        self._value = self._checked(value, borrow)

    @property
    def value(self) -> np.ndarray:
        return self.get_value()

    def _checked(self, value: Any, borrow: bool) -> np.ndarray:
        label = f"shared variable {self.describe()}"
        array = dtypes.stored_as(value, self.dtype, label)
        value, borrow = array, borrow or array is not value
        problem = self.type.value_problem(value)
        if problem is not None:
            raise ValueError(f"cannot set {label}: {problem}")
        if not borrow or not value.flags.c_contiguous or not value.flags.writeable:
            value = np.array(value, order="C", copy=True)
        return value

    def __repr__(self) -> str:
        return self.name or f"<shared {self.type}>"


def shared(
    value: Any,
    name: str | None = None,
    borrow: bool = False,
    broadcastable: tuple[bool, ...] | None = None,
    dtype: str | None = None,
) -> SharedVariable:
    """Create a shared variable holding ``value`` (copied unless ``borrow=True``).

    Python floats become ``config.floatX``, Python ints int64; arrays keep their dtype.
    All dimensions are non-broadcastable unless ``broadcastable`` says otherwise, as in Theano.
    """
    if isinstance(value, Variable):
        raise TypeError("shared() takes a value (array or number), not a symbolic variable")
    if dtype is not None:
        array = np.array(dtypes.as_plain_array(value, "shared()"), dtype=dtypes.as_dtype(dtype))
        borrow = True
    elif isinstance(value, np.ndarray):
        array = dtypes.as_plain_array(value, "shared()")  # a view of a subclass's data, not a copy
    elif isinstance(value, np.generic):  # NumPy scalars keep their dtype (np.float64 is also a float)
        array, borrow = np.asarray(value), True
    elif isinstance(value, (bool, int, float)):
        array = np.array(value, dtype=dtypes.python_scalar_dtype(value))
        borrow = True
    else:
        array = dtypes.as_plain_array(value, "shared()")
        if array.dtype == object:
            raise TypeError(f"shared() cannot hold {type(value).__name__} {value!r}")
        if array.dtype.kind == "f":
            array = array.astype(dtypes.as_dtype("floatX"))
        borrow = True
    dtypes.as_dtype(array.dtype)  # refuses unsupported dtypes with a clear message
    if not borrow:
        array = array.copy()
    return SharedVariable(array, name, broadcastable)
