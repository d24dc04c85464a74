"""Dtype names and promotion rules (NumPy promotion; Python numbers are weak, as in NEP 50)."""

from __future__ import annotations

import functools

import numpy as np

from .config import config

BOOL = ("bool",)
INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOATS = ("float32", "float64")
ALL = BOOL + INTS + FLOATS

#: one-letter prefixes of the variable constructors (``ivector``, ``fmatrix`` ...)
PREFIX = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}


def as_dtype(dtype: object) -> str:
    """Normalise a dtype spec (str, NumPy dtype or type, ``'floatX'``) to a supported name."""
    if type(dtype) is str and dtype in ALL:  # the common case; np.dtype(...).name costs ~15 us
        return dtype
    if dtype == "floatX":
        return config.floatX
    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}") from None
    if name not in ALL:
        raise TypeError(f"dtype {name!r} is not supported by symflow (supported: {', '.join(ALL)})")
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def is_int(dtype: str) -> bool:
    return dtype in INTS


def is_discrete(dtype: str) -> bool:
    """True for integer and bool dtypes, which carry no gradient."""
    return dtype not in FLOATS


@functools.cache  # every elementwise node asks; NumPy's promotion takes microseconds
def upcast(*dtypes: str) -> str:
    """The dtype NumPy promotes these to (int32 with float32 gives float64, as in Theano)."""
    return np.result_type(*[np.dtype(d) for d in dtypes]).name


def upgrade_to_float(dtype: str) -> str:
    """The float dtype a float-valued function (exp, true division ...) gives for ``dtype``."""
    if dtype in FLOATS:
        return dtype
    if dtype in ("bool", "int8", "uint8", "int16", "uint16"):
        return "float32" if config.floatX == "float32" else "float64"
    return "float64"


def python_scalar_dtype(value: object) -> str:
    """The dtype a Python number gets when nothing else decides it."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int64"
    return config.floatX


def is_weak(value: object) -> bool:
    """Whether ``value`` is a Python number (bool, int or float, not a NumPy scalar), whose dtype
    gives way to the tensors it meets (``resolve_weak``)."""
    return isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def resolve_weak(strong: str | None, weak_values: list[object]) -> str:
    """Result dtype of strong operands (dtype ``strong``, None if none) with weak Python numbers.

    A Python float only widens integer/bool results to floatX; a Python int only widens bool;
    neither ever changes a float32 array into float64.
    """
    kinds = {("f" if isinstance(v, float) else "b" if isinstance(v, bool) else "i") for v in weak_values}
    if strong is None:
        return config.floatX if "f" in kinds else "int64" if "i" in kinds else "bool"
    if "f" in kinds and strong not in FLOATS:
        return upgrade_to_float(strong) if strong != "bool" else config.floatX
    if "i" in kinds and strong == "bool":
        return "int64"
    return strong


def fits(value: object, dtype: str) -> bool:
    """Whether a Python number is represented exactly in ``dtype``."""
    if dtype in FLOATS or dtype == "bool":
        return dtype != "bool" or isinstance(value, (bool, np.bool_)) or value in (0, 1)
    if isinstance(value, float) and not value.is_integer():
        return False
    info = np.iinfo(dtype)
    return info.min <= value <= info.max  # type: ignore[operator]


def as_plain_array(value: object, label: str, error: type[Exception] = TypeError, note: str = "") -> np.ndarray:
    """``value`` as a NumPy array of the base class (the data of a subclass such as np.matrix, the
    numbers of a list), or ``error`` naming ``label`` (and ending with ``note``): a masked array, whose
    mask would be lost, or nested lists of unequal lengths."""
    if isinstance(value, np.ma.MaskedArray):
        raise error(f"{label}: got a masked array, whose mask symflow would ignore; pass value.filled(...) "
                    f"or value.data{note}")
    try:
        return np.asarray(value)
    except ValueError as exc:  # ragged nesting
        raise error(f"{label}: cannot make an array of {type(value).__name__} {value!r}: {exc}{note}") from None


def stored_as(value: object, dtype: str, label: str) -> np.ndarray:
    """``value`` (an array or numbers, not symbolic) as an array of ``dtype``, for ``label`` (say,
    "shared variable 'W' (float32 vector)"), or a TypeError: NumPy arrays by a safe cast, other values
    only if they convert exactly, but for Python numbers into a float dtype, which may round (not
    overflow). NumPy scalars are not weak: ``np.float64(0.1)`` does not fit float32, as in a call."""
    if isinstance(value, np.ndarray):
        value = as_plain_array(value, label)
        if value.dtype.name == dtype or np.can_cast(value.dtype, dtype, "safe"):
            return value.astype(dtype, copy=False)
        raise TypeError(f"{label}: refusing to store a {value.dtype.name} array in {dtype} (an unsafe cast); "
                        f"convert it first with .astype('{dtype}')")
    array = as_plain_array(value, label)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{label}: cannot store {type(value).__name__} {value!r}")
    with np.errstate(all="ignore"):  # a lossy cast is reported below
        converted = array.astype(dtype)
    if is_float(dtype) and array.dtype.kind in "iuf" and not isinstance(value, np.generic):
        if overflows(array, converted):
            raise TypeError(f"{label}: {value!r} overflows {dtype}")
    elif not np.array_equal(converted, array):
        raise TypeError(f"{label}: {value!r} does not fit {dtype} exactly")
    return converted


def overflows(value: np.ndarray, converted: np.ndarray) -> bool:
    """Whether converting ``value`` to a float dtype turned finite numbers into infinities."""
    return not np.array_equal(np.isfinite(value), np.isfinite(converted))
