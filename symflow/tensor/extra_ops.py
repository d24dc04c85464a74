"""``T.extra_ops``: where Theano keeps ``cumsum``, ``cumprod``, ``diff``, ``fill_diagonal``,
``fill_diagonal_offset``, ``repeat``, ``squeeze`` and ``to_one_hot`` (the same functions as in ``T``),
so ``T.extra_ops.to_one_hot(y, 10)`` runs unchanged."""

from __future__ import annotations

from ..ops.extra import cumprod, cumsum, diff, to_one_hot
from ..ops.matrix import fill_diagonal, fill_diagonal_offset
from ..ops.shape import repeat, squeeze

__all__ = ["cumprod", "cumsum", "diff", "fill_diagonal", "fill_diagonal_offset", "repeat", "squeeze", "to_one_hot"]
