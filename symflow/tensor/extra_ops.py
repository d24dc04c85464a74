"""``T.extra_ops``: where Theano keeps ``bincount``, ``compress``, ``cumsum``, ``cumprod``, ``diff``,
``fill_diagonal``, ``fill_diagonal_offset``, ``repeat``, ``searchsorted``, ``squeeze``, ``to_one_hot``
and ``unique`` (the same functions as in ``T``), so ``T.extra_ops.to_one_hot(y, 10)`` runs unchanged."""

from __future__ import annotations

from ..ops.extra import cumprod, cumsum, diff, to_one_hot
from ..ops.matrix import fill_diagonal, fill_diagonal_offset
from ..ops.selection import bincount, compress, searchsorted, unique
from ..ops.shape import repeat, squeeze

__all__ = ["bincount", "compress", "cumprod", "cumsum", "diff", "fill_diagonal", "fill_diagonal_offset", "repeat",
           "searchsorted", "squeeze", "to_one_hot", "unique"]
