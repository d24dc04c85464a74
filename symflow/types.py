"""TensorType: a dtype and a broadcastable pattern, the static type of every variable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dtypes import as_dtype

_NDIM_NAMES = {0: "scalar", 1: "vector", 2: "matrix", 3: "tensor3", 4: "tensor4"}


@dataclass(frozen=True)
class TensorType:
    """An n-dimensional array type.

    ``broadcastable[d]`` is True when dimension ``d`` is known to have length 1 and may be
    broadcast against any length, as in Theano. Only such dimensions broadcast.
    """

    dtype: str
    broadcastable: tuple[bool, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", as_dtype(self.dtype))
        object.__setattr__(self, "broadcastable", tuple(bool(b) for b in self.broadcastable))

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)

    def __call__(self, name: str | None = None):
        """Create a fresh input variable of this type (``T.TensorType('float64', (False,))('x')``)."""
        from .graph import Variable

        return Variable(self, name=name)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(dtype, self.broadcastable)

    def describe(self) -> str:
        """Human description such as ``float32 matrix`` or ``int32 vector``."""
        kind = _NDIM_NAMES.get(self.ndim, f"{self.ndim}-d tensor")
        if self.ndim == 2 and self.broadcastable == (True, False):
            kind = "row"
        elif self.ndim == 2 and self.broadcastable == (False, True):
            kind = "col"
        return f"{self.dtype} {kind}"

    def __str__(self) -> str:
        pattern = ",".join("1" if b else "?" for b in self.broadcastable)
        return f"{self.dtype}({pattern})"

    def value_problem(self, value: np.ndarray) -> str | None:
        """Why an array does not fit this type, or None when it does."""
        if value.ndim != self.ndim:
            return f"expected {self.describe()} (ndim {self.ndim}), got ndim {value.ndim} with shape {value.shape}"
        if value.dtype.name != self.dtype:
            return f"expected dtype {self.dtype}, got {value.dtype.name}"
        for d, b in enumerate(self.broadcastable):
            if b and value.shape[d] != 1:
                return f"dimension {d} is broadcastable and must have length 1, got shape {value.shape}"
        return None


def tensor_type(dtype: str, ndim: int) -> TensorType:
    """A type with no broadcastable dimensions."""
    return TensorType(dtype, (False,) * ndim)
