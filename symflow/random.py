"""RandomStreams: random variables whose state lives in shared variables.

Each call (``srng.uniform((3, 4))``) makes a new stream with its own state, a shared uint64
``[key, counter]``. A function that uses the sample advances the state (a default update),
so every call draws fresh numbers; inside ``scan`` the state advances every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .graph import Variable, as_variable
from .ops import math as m
from .ops.random import RandomOp, derive_key
from .ops.reduce import sum as sum_
from .ops.shape import as_index_scalar, dimshuffle, stack
from .shared import SharedVariable, shared


class RandomStreams:
    """Theano's ``RandomStreams(seed)``: ``uniform``, ``normal``, ``binomial``, ``choice`` ..."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = int(np.random.SeedSequence(seed).entropy % (2**63)) if seed is None else int(seed)
        self.state_updates: list[SharedVariable] = []

    # -- state ---------------------------------------------------------------------------------
    @property
    def initial_seed(self) -> int:
        """The seed every stream of this object derives its key from (given, or drawn when None was)."""
        return self._seed

    def _new_state(self) -> SharedVariable:
        index = len(self.state_updates)
        state = shared(np.array([derive_key(self._seed, index), 0], dtype=np.uint64), name=f"rng_state{index}")
        self.state_updates.append(state)
        return state

    def seed(self, seed: int) -> None:
        """Restart every stream of this object from ``seed``."""
        self._seed = int(seed)
        for index, state in enumerate(self.state_updates):
            state.set_value(np.array([derive_key(self._seed, index), 0], dtype=np.uint64))

    def _draw(self, kind: str, size: Any, dtype: str) -> Variable:
        shape, ndim = _shape_vector(size)
        state = self._new_state()
        new_state, sample = RandomOp(kind, dtype, ndim)(state, shape)
        state.default_update = new_state
        return sample  # type: ignore[no-any-return]

    # -- distributions -------------------------------------------------------------------------
    def uniform(self, size: Any = (), low: Any = 0.0, high: Any = 1.0, dtype: Any = None,
                ndim: int | None = None) -> Variable:
        """Uniform samples in ``[low, high)``."""
        dtype = _float_dtype(dtype, low, high)
        u = self._draw("uniform", size, dtype)
        if _is_const(low, 0.0) and _is_const(high, 1.0):
            return u
        return m.cast(m.add(low, m.mul(u, m.sub(high, low))), dtype)

    def normal(self, size: Any = (), avg: Any = 0.0, std: Any = 1.0, dtype: Any = None,
               ndim: int | None = None) -> Variable:
        """Normal samples with mean ``avg`` and standard deviation ``std``."""
        dtype = _float_dtype(dtype, avg, std)
        z = self._draw("normal", size, dtype)
        if _is_const(avg, 0.0) and _is_const(std, 1.0):
            return z
        return m.cast(m.add(avg, m.mul(std, z)), dtype)

    def binomial(self, size: Any = (), n: int = 1, p: Any = 0.5, dtype: Any = "int64",
                 ndim: int | None = None) -> Variable:
        """Binomial counts of ``n`` trials with success probability ``p`` (n=1: Bernoulli, e.g. dropout masks)."""
        dtype = dtypes.as_dtype(dtype)
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"binomial n must be a non-negative int, got {n!r}")
        if n == 1:
            u = self._draw("uniform", size, "float64")
            return m.cast(m.lt(u, p), dtype)
        trials_shape = _entries(size) + [as_index_scalar(n)]
        u = self._draw("uniform", trials_shape, "float64")
        p_var = as_variable(p)
        p_b = dimshuffle(p_var, tuple(range(p_var.ndim)) + ("x",)) if p_var.ndim else p_var
        return m.cast(sum_(m.lt(u, p_b), axis=-1), dtype)

    def choice(self, size: Any = (), a: Any = 2, replace: bool = True, p: Any = None,
               dtype: Any = "int64", ndim: int | None = None) -> Variable:
        """Indices drawn from ``range(a)`` (``a`` an int) or elements of the vector ``a``,
        uniformly or with probabilities ``p`` (which need not be normalised)."""
        if not replace:
            raise NotImplementedError("choice(replace=False) is not supported; shuffle with a permutation instead")
        dtype = dtypes.as_dtype(dtype)
        a_var = as_variable(a)
        if a_var.ndim not in (0, 1):
            raise ValueError(f"choice: a must be an int or a vector, got {a_var.describe()}")
        from .ops.shape import shape_i
        from .ops.subtensor import getitem

        n = a_var if a_var.ndim == 0 else shape_i(a_var, 0)
        u = self._draw("uniform", size, "float64")
        if p is None:
            idx = m.cast(m.minimum(m.floor(m.mul(u, n)), m.sub(n, 1)), "int64")
        else:
            from .ops.extra import cumsum

            cdf = cumsum(as_variable(p))
            total = getitem(cdf, -1)
            target = m.mul(u, total)
            flat_target = dimshuffle(target, tuple(range(target.ndim)) + ("x",))
            idx = m.cast(m.minimum(sum_(m.le(cdf, flat_target), axis=-1), m.sub(n, 1)), "int64")
        return m.cast(getitem(a_var, idx) if a_var.ndim == 1 else idx, dtype)

    def random_integers(self, size: Any = (), low: int = 0, high: int = 1, dtype: Any = "int64") -> Variable:
        """Integers uniform in ``[low, high]`` (inclusive, as Theano)."""
        u = self._draw("uniform", size, "float64")
        span = m.add(m.sub(high, low), 1)
        return m.cast(m.add(low, m.minimum(m.floor(m.mul(u, span)), m.sub(span, 1))), dtypes.as_dtype(dtype))

    def permutation_keys(self, n: Any) -> Variable:
        """``n`` uniform keys; ``argsort`` them for a random permutation."""
        return self._draw("uniform", (n,), "float64")


def _float_dtype(dtype: Any, *params: Any) -> str:
    if dtype is not None:
        d = dtypes.as_dtype(dtype)
        if not dtypes.is_float(d):
            raise TypeError(f"continuous samples need a float dtype, got {d}")
        return d
    found = [p.dtype for p in params if isinstance(p, Variable) and dtypes.is_float(p.dtype)]
    return dtypes.upcast(*found) if found else dtypes.as_dtype("floatX")


def _is_const(x: Any, value: float) -> bool:
    return isinstance(x, (int, float)) and float(x) == value


def _entries(size: Any) -> list[Variable]:
    if isinstance(size, Variable):
        if size.ndim == 0:
            return [as_index_scalar(size, "size")]
        from .ops.shape import _shape_entries

        return [as_index_scalar(e, "size") for e in _shape_entries(size)]
    if isinstance(size, (int, np.integer)):
        return [as_index_scalar(size, "size")]
    return [as_index_scalar(s, "size") for s in size]


def _shape_vector(size: Any) -> tuple[Variable, int]:
    entries = _entries(size)
    if not entries:
        return as_variable(np.zeros(0, dtype="int64")), 0
    return stack(entries), len(entries)
