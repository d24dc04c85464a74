"""Exceptions raised by symflow, each a subclass of the matching built-in exception."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .graph import Apply


class SymflowError(Exception):
    """Base class of symflow's own errors."""


class ShapeError(SymflowError, ValueError):
    """Arrays of incompatible shapes met in an operation at run time. A ``ValueError`` that an op's
    own code raises (a user's op refusing a value, say) arrives as this too, with its message."""


class IndexingError(SymflowError, IndexError):
    """An index out of range at run time."""


class InputError(SymflowError, TypeError):
    """A value passed to a compiled function does not fit the input's type."""


class MissingInputError(SymflowError, ValueError):
    """A graph needs an input variable that was not given to ``function``."""


class UnusedInputError(SymflowError, ValueError):
    """An input given to ``function`` is not needed by any output or update."""


class DisconnectedInputError(SymflowError, ValueError):
    """``grad`` was asked for a variable the cost does not depend on."""


class ExecutionError(SymflowError, RuntimeError):
    """An operation failed at run time for a reason other than shapes or indices."""


def describe_value(value: Any) -> str:
    """``float64 array of shape (3, 4)`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name} array of shape {value.shape}"
    return f"{type(value).__name__} {value!r}"


def runtime_error(node: Apply, values: list[Any], exc: BaseException) -> Exception:
    """Wrap an exception raised while computing ``node`` with the op, shapes and source line."""
    shapes = ", ".join(describe_value(v) for v in values)
    where = f"\nThe operation was built at:\n  {node.trace}" if node.trace else ""
    message = f"{node.op} failed: {exc}\n  its inputs: {shapes}{where}"
    if isinstance(exc, IndexError):
        return IndexingError(message)
    if isinstance(exc, (ValueError, ArithmeticError)):
        return ShapeError(message) if isinstance(exc, ValueError) else ExecutionError(message)
    return ExecutionError(message)
