"""Random sampling as pure ops on an explicit state.

The state is a uint64 vector ``[key, counter]``. Draw ``i`` is the SplitMix64 hash of
``key + (counter + i) * golden``, so a stream is a pure function of the state: the NumPy and
Numba backends give identical numbers, and a function that samples returns the advanced state
as an update. Only standard uniform and normal samples are ops; everything else (ranges,
Bernoulli, choice) is composed from them in :mod:`symflow.random`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType
from .shape import constant_value

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser applied to uint64 values (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def raw_draws(key: np.uint64, counter: np.uint64, n: int) -> np.ndarray:
    """``n`` uint64 draws of the stream ``key`` starting at ``counter``."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64) + counter
        return splitmix(key + i * GOLDEN)


def to_unit(bits: np.ndarray, dtype: str) -> np.ndarray:
    """Uniform floats in [0, 1) from uint64 draws (53 bits for float64, 24 for float32)."""
    if dtype == "float32":
        return ((bits >> np.uint64(40)).astype(np.float64) * 2.0**-24).astype(np.float32)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def derive_key(seed: int, index: int) -> int:
    """Independent stream keys from one seed."""
    with np.errstate(over="ignore"):
        z = np.array([seed], dtype=np.uint64) * GOLDEN + np.uint64(index) * _M2 + np.uint64(1)
        return int(splitmix(splitmix(z))[0])


class RandomOp(Op):
    """Standard samples of ``kind`` (``'uniform'`` in [0, 1) or ``'normal'``) of a given shape.

    Inputs: the state and an int64 shape vector. Outputs: the advanced state and the sample.
    """

    __props__ = ("kind", "dtype", "ndim")
    stateful = True

    def __init__(self, kind: str, dtype: str, ndim: int) -> None:
        if kind not in ("uniform", "normal"):
            raise ValueError(f"unknown random kind {kind!r}")
        self.kind = kind
        self.dtype = dtype
        self.ndim = ndim

    def make_node(self, state: Variable, shape: Variable) -> Apply:
        state, shape = as_variable(state), as_variable(shape)
        if state.dtype != "uint64" or state.ndim != 1:
            raise TypeError(f"random state must be a uint64 vector, got {state.describe()}")
        if shape.ndim != 1 or shape.dtype != "int64":
            raise TypeError(f"random shape must be an int64 vector, got {shape.describe()}")
        bcast = _shape_broadcastable(shape, self.ndim)
        return Apply(self, [state, shape], [state.type, TensorType(self.dtype, bcast)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        state, shape = inputs
        if len(shape) != self.ndim:
            raise ValueError(f"random shape {tuple(shape)} should have {self.ndim} entries")
        if np.any(shape < 0):
            raise ValueError(f"negative dimension in random shape {tuple(shape)}")
        n = int(np.prod(shape))
        key, counter = state[0], state[1]
        if self.kind == "uniform":
            sample = to_unit(raw_draws(key, counter, n), self.dtype)
            used = n
        else:
            u = to_unit(raw_draws(key, counter, 2 * n), "float64")
            radius = np.sqrt(-2.0 * np.log1p(-u[:n]))
            sample = (radius * np.cos(2.0 * np.pi * u[n:])).astype(self.dtype)
            used = 2 * n
        with np.errstate(over="ignore"):
            new_state = np.array([key, counter + np.uint64(used)], dtype=np.uint64)
        return [new_state, sample.reshape(tuple(int(s) for s in shape))]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        return [None, None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        from .subtensor import getitem

        shape = node.inputs[1]
        return [input_shapes[0], tuple(getitem(shape, i) for i in range(self.ndim))]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        state, shape = node.inputs
        new_state, sample = node.outputs
        st, shp = cg.value(state), cg.value(shape)
        dims = [f"{shp}[{i}]" for i in range(self.ndim)]
        for d in dims:
            cg.check(f"{d} < 0", node, "negative dimension in a random shape")
        n = cg.fresh("n")
        cg.emit(f"{n} = {' * '.join(dims) or '1'}")
        flat = cg.fresh("draws")

        cg.emit(f"{flat} = {cg.empty([n], self.dtype)}")
        kernel = {("uniform", "float64"): uniform64, ("uniform", "float32"): uniform32}.get((self.kind, self.dtype))
        used = n
        if kernel is None:
            kernel, used = normal_kernel, f"2 * {n}"
        cg.emit(f"{cg.kernel(kernel)}({st}[0], {st}[1], {flat})")
        state_name = cg.new_name(new_state, "rng")
        cg.emit(f"{state_name} = {cg.empty(['2'], 'uint64')}")
        cg.emit(f"{state_name}[0] = {st}[0]")
        cg.emit(f"{state_name}[1] = {st}[1] + np.uint64({used})")
        name = cg.new_name(sample, "rand")
        if self.ndim == 0:
            cg.emit(f"{name} = {flat}[0]")
        else:
            cg.emit(f"{name} = {cg.reshape(flat, dims, node)}")


def uniform64(key, counter, out):  # type: ignore[no-untyped-def]
    """Kernel: float64 uniforms in [0, 1) of the stream ``key`` from ``counter`` (as ``raw_draws``)."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    for i in range(out.shape[0]):
        z = key + (counter + np.uint64(i)) * golden
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float64(z >> np.uint64(11)) * 2.0**-53


def uniform32(key, counter, out):  # type: ignore[no-untyped-def]
    """Kernel: float32 uniforms (24 random bits each)."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    for i in range(out.shape[0]):
        z = key + (counter + np.uint64(i)) * golden
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float32(np.float64(z >> np.uint64(40)) * 2.0**-24)


def normal_kernel(key, counter, out):  # type: ignore[no-untyped-def]
    """Kernel: standard normals by Box-Muller from uniform draws i and n + i."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    n = out.shape[0]
    for i in range(n):
        z = key + (counter + np.uint64(i)) * golden
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        w = key + (counter + np.uint64(n + i)) * golden
        w = (w ^ (w >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        w = (w ^ (w >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        w = w ^ (w >> np.uint64(31))
        u = np.float64(z >> np.uint64(11)) * 2.0**-53
        v = np.float64(w >> np.uint64(11)) * 2.0**-53
        out[i] = np.sqrt(-2.0 * np.log1p(-u)) * np.cos(2.0 * np.pi * v)


def _shape_broadcastable(shape: Variable, ndim: int) -> tuple[bool, ...]:
    """Dims known to be 1 from a constant shape or a stack of constant entries."""
    from ..graph import Constant

    if isinstance(shape, Constant):
        return tuple(int(s) == 1 for s in shape.data)
    node = shape.owner
    if node is not None and type(node.op).__name__ == "Join" and len(node.inputs) == ndim:
        entries = [x.owner.inputs[0] if x.owner is not None else x for x in node.inputs]
        return tuple(constant_value(e) == 1 for e in entries)
    return (False,) * ndim
