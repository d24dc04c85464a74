"""Indexing: ``x[...]`` with NumPy semantics, and ``set_subtensor`` / ``inc_subtensor``.

Three ops read and three write:

* ``Subtensor``: basic indexing (integers, slices; symbolic or constant components);
* ``AdvancedSubtensor1``: ``x[int_vector]``, rows gathered along axis 0 (embeddings);
* ``AdvancedSubtensor``: integer arrays mixed with slices and ints (``p[arange(n), y]``);

and the ``Inc*`` counterparts set or add ``y`` into a copy of ``x`` at those places. The
gradient of each reading op is its incrementing counterpart applied to zeros.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import describe_value
from ..graph import Apply, Constant, Op, Variable, as_variable
from ..types import TensorType
from . import math as m
from .elemwise import pad_left, reduce_to_input
from .shape import (
    INT64_MAX,
    DimShuffle,
    as_index_scalar,
    axis_index,
    constant_value,
    dimshuffle,
    int64_index,
    shape_i,
    zeros_like,
)

# An index structure is a tuple of entries: "i" (an integer: one scalar input), "a" (an integer
# array: one input), or ("s", has_start, has_stop, has_step) (a slice: one input per component).
Entry = Any


def _index_scalar(e: Any, what: str = "index") -> Variable:
    """An int64 scalar index component; a constant beyond int64 clips to it (``shape.int64_index``)."""
    if isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_)):
        e = min(max(int(e), -INT64_MAX), INT64_MAX)
    return as_index_scalar(e, what)


def _n_inputs(entry: Entry) -> int:
    return sum(entry[1:]) if isinstance(entry, tuple) else 1


def _build_index(idx: tuple[Entry, ...], values: list[Any]) -> tuple[Any, ...]:
    """The NumPy index tuple for ``idx`` from the flat list of component values."""
    it = iter(values)
    out: list[Any] = []
    for entry in idx:
        if isinstance(entry, tuple):
            start = int(next(it)) if entry[1] else None
            stop = int(next(it)) if entry[2] else None
            step = int(next(it)) if entry[3] else None
            if step == 0:
                raise ValueError("slice step cannot be zero")
            out.append(slice(start, stop, step))
        elif entry == "i":
            out.append(int(next(it)))
        else:
            out.append(next(it))
    return tuple(out)


def _check_components(idx: tuple[Entry, ...], components: list[Variable]) -> None:
    it = iter(components)
    for entry in idx:
        for _ in range(_n_inputs(entry)):
            c = next(it)
            want_array = entry == "a"
            if not dtypes.is_int(c.dtype) or (c.ndim == 0) == want_array:
                kind = "integer array" if want_array else "integer scalar"
                raise TypeError(f"index component must be an {kind}, got {c.describe()}")


def _entry_is_full_slice(entry: Entry) -> bool:
    return isinstance(entry, tuple) and not any(entry[1:])


def _sliced_broadcastable(idx: tuple[Entry, ...], x: Variable) -> list[bool]:
    """Broadcastable flags of the dims that slices keep (in order), plus the untouched dims."""
    out = [x.broadcastable[d] if _entry_is_full_slice(e) else False
           for d, e in enumerate(idx) if isinstance(e, tuple)]
    return out + list(x.broadcastable[len(idx):])


def length_one_picks(idx: tuple[Entry, ...], components: Sequence[Variable],
                     length_one: Sequence[bool]) -> list[int] | None:
    """The axes ``idx`` keeps, if each of its integers is a constant 0 or -1 on an axis of length 1
    (``length_one[d]``) and each of its slices is whole: then ``x[idx]`` holds every entry of ``x``.
    None otherwise."""
    it = iter(components)
    kept = []
    for d, entry in enumerate(idx):
        if entry == "i":
            if not length_one[d] or constant_value(next(it)) not in (0, -1):
                return None
        elif _entry_is_full_slice(entry):
            kept.append(d)
        else:
            return None
    return kept


def _axes_put_back(idx: tuple[Entry, ...], x: Variable, components: list[Variable], g: Variable,
                   y: Variable) -> Variable | None:
    """The gradient of ``y = x[idx]`` as ``g`` with axes inserted, when ``idx`` takes the only entry
    of length-1 axes and whole slices elsewhere (the book's ``y[:, 0, :]``): every entry of ``x``
    is an entry of ``y``, so no zeros need filling in. None otherwise."""
    kept = length_one_picks(idx, components, x.broadcastable)
    if kept is None or g.broadcastable != y.broadcastable:
        return None
    order: list[Any] = [kept.index(d) if d in kept else "x" for d in range(len(idx))]
    return dimshuffle(g, (*order, *range(len(kept), g.ndim)))


# ---------------------------------------------------------------------------------------------
# basic indexing
# ---------------------------------------------------------------------------------------------
class Subtensor(Op):
    """``x[idx]`` with integers and slices only (a view in NumPy)."""

    __props__ = ("idx",)

    def __init__(self, idx: tuple[Entry, ...]) -> None:
        self.idx = idx

    def make_node(self, x: Variable, *components: Variable) -> Apply:
        x = as_variable(x)
        if len(self.idx) > x.ndim:
            raise IndexError(f"too many indices ({len(self.idx)}) for {x.describe()}")
        components = tuple(int64_index(as_variable(c)) for c in components)
        _check_components(self.idx, list(components))
        bcast = _sliced_broadcastable(self.idx, x)
        return Apply(self, [x, *components], [TensorType(x.dtype, tuple(bcast))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, *values = inputs
        return [np.asarray(x[_build_index(self.idx, values)])]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, *components = node.inputs
        (g,) = output_grads
        none: list[Variable | None] = [None] * len(components)
        if g is None or dtypes.is_discrete(x.dtype):
            return [None, *none]
        restored = _axes_put_back(self.idx, x, components, g, node.outputs[0])
        if restored is not None:
            return [restored, *none]
        return [IncSubtensor(self.idx, False)(zeros_like(x), g, *components), *none]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        x, *components = node.inputs
        shape = input_shapes[0]
        it = iter(components)
        out = []
        for d, entry in enumerate(self.idx):
            if entry == "i":
                next(it)
                continue
            start = next(it) if entry[1] else None
            stop = next(it) if entry[2] else None
            step = next(it) if entry[3] else None
            out.append(slice_length(shape[d], start, stop, step))
        return [tuple(out) + tuple(shape[len(self.idx):])]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x = node.inputs[0]
        y = node.outputs[0]
        cg.emit(f"{cg.new_name(y, 'sub')} = {_numba_index(node, cg, self.idx, x, node.inputs[1:])}")
        if y.ndim:
            cg.view(y, x)

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        x, *components = values
        if any(batched[1:]):
            if batched[0] or self.idx != ("i",):
                return None
            return [(AdvancedSubtensor1()(x, components[0]), True)]  # rows picked by per-step indices
        return [(Subtensor((("s", False, False, False),) + self.idx)(x, *components), True)]


class IncSubtensor(Op):
    """A copy of ``x`` with ``x[idx]`` set to (or incremented by) ``y``."""

    __props__ = ("idx", "set_instead_of_inc")

    def __init__(self, idx: tuple[Entry, ...], set_instead_of_inc: bool) -> None:
        self.idx = idx
        self.set_instead_of_inc = set_instead_of_inc

    def __str__(self) -> str:
        return f"{'Set' if self.set_instead_of_inc else 'Inc'}Subtensor{{{_idx_str(self.idx)}}}"

    def make_node(self, x: Variable, y: Variable, *components: Variable) -> Apply:
        x, y = as_variable(x), as_variable(y)
        components = tuple(int64_index(as_variable(c)) for c in components)
        _check_components(self.idx, list(components))
        return Apply(self, [x, y, *components], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, y, *values = inputs
        index = _build_index(self.idx, values)
        out = x.copy()
        _check_region(node.inputs[1], y, out[index].shape)
        if self.set_instead_of_inc:
            out[index] = y
        else:
            out[index] += y
        return [out]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, y, *components = node.inputs
        (g,) = output_grads
        none: list[Variable | None] = [None] * len(components)
        if g is None:
            return [None, None, *none]
        gx = IncSubtensor(self.idx, True)(g, zeros_like(y), *components) if self.set_instead_of_inc else g
        gy = _region_grad(Subtensor(self.idx)(g, *components), y)
        return [None if dtypes.is_discrete(x.dtype) else gx, gy, *none]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    numba_reads_elements = (0, 1)  # x is copied element by element
    numba_takes_over_base = True  # see CodeGen.alloc_copy

    def numba_emit(self, node: Apply, cg: Any) -> None:
        """Copy ``x``, then one kernel checks the index and writes (or adds) ``y`` into the region."""
        from ..compile.numba.codegen import KernelWriter

        x, y, *components = node.inputs
        out = cg.alloc_copy(node.outputs[0], x, "inc", node)
        kw = KernelWriter(cg)
        o = kw.param(out)
        comps = [kw.param(cg.value(c)) for c in components]
        known = [constant_value(c) for c in components]
        parts, _, tests = _index_parts(self.idx, comps, o, known, x.broadcastable)
        op = "=" if self.set_instead_of_inc else "+="
        if tests:
            kw.emit(f"if {' or '.join(tests)}:")
            kw.emit("    return 1")
        if y.ndim == 0:
            kw.emit(f"{o}[{', '.join(parts)}] {op} {kw.elem(y, [])}")
        else:
            kw.emit(f"r = {o}[{', '.join(parts)}]")
            for d in range(y.ndim):
                if not y.broadcastable[d]:
                    kw.emit(f"if {kw.dim(y, d)} != r.shape[{d}]:")
                    kw.emit("    return 1")
            with kw.loops([f"r.shape[{d}]" for d in range(y.ndim)]) as idx:
                kw.emit(f"r[{', '.join(idx)}] {op} {kw.elem(y, idx)}")
        kw.emit("return 0")
        status = cg.fresh("st")
        kw.call(status)
        cg.check_status(status, node, "index out of range, or the value does not fit the region")


def _check_region(y_var: Variable, y: np.ndarray, region: tuple[int, ...]) -> None:
    """``y`` (already padded to the region's ndim) must match it except in broadcastable dims."""
    for d, (ys, rs) in enumerate(zip(y.shape, region)):
        if ys != rs and not (y_var.broadcastable[d] and ys == 1):
            raise ValueError(f"cannot put a value of shape {y.shape} into a region of shape {region}")


def _region_grad(g_region: Variable, y: Variable) -> Variable | None:
    if dtypes.is_discrete(y.dtype):
        return None
    return reduce_to_input(g_region, y)


def _idx_str(idx: tuple[Entry, ...]) -> str:
    parts = []
    for e in idx:
        if isinstance(e, tuple):
            parts.append(":".join("?" if has else "" for has in e[1:]).rstrip(":") or ":")
        else:
            parts.append({"i": "int", "a": "array"}[e])
    return ", ".join(parts)


Subtensor.__str__ = lambda self: f"Subtensor{{{_idx_str(self.idx)}}}"  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# gathering rows: x[int_vector]
# ---------------------------------------------------------------------------------------------
class AdvancedSubtensor1(Op):
    """``x[idx]`` for an integer array ``idx``: rows of ``x`` gathered along axis 0 (embedding
    lookups ``We[X]``); the result has shape ``idx.shape + x.shape[1:]``."""

    __props__ = ()

    def make_node(self, x: Variable, idx: Variable) -> Apply:
        x, idx = as_variable(x), int64_index(as_variable(idx))
        if x.ndim == 0:
            raise IndexError(f"cannot index the scalar {x.describe()}")
        if idx.ndim < 1 or not dtypes.is_int(idx.dtype):
            raise TypeError(f"row index must be an integer array, got {idx.describe()}")
        return Apply(self, [x, idx], [TensorType(x.dtype, (*idx.broadcastable, *x.broadcastable[1:]))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, idx = inputs
        _check_rows(idx, x.shape[0])
        return [x[idx]]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, idx = node.inputs
        (g,) = output_grads
        if g is None or dtypes.is_discrete(x.dtype):
            return [None, None]
        return [AdvancedIncSubtensor1(False)(zeros_like(x), g, idx), None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [(*input_shapes[1], *input_shapes[0][1:])]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x, idx = node.inputs
        rows = [cg.dim(x, d) for d in range(1, x.ndim)]
        out = cg.alloc(node.outputs[0], cg.shape_tuple(idx) + rows, "rows")
        flat_idx, flat_out = cg.value(idx), out
        if idx.ndim > 1:  # gather through flat views: idx (n,), out (n, *rows)
            n = " * ".join(cg.shape_tuple(idx))
            flat_idx = cg.reshape(cg.value(idx), [n], node)
            flat_out = cg.reshape(out, [n, *rows], node)
        bad = cg.fresh("bad")
        kernel = cg.kernel(take_rows_2d if x.ndim == 2 else take_rows)
        cg.emit(f"{bad} = {kernel}({cg.value(x)}, {flat_idx}, {flat_out})")
        cg.check(f"{bad} >= 0", node, "row index out of range")

    def batch(self, node: Apply, values: list[Variable], batched: list[bool]) -> list[tuple[Variable, bool]] | None:
        x, idx = values
        if batched[0]:
            return None
        return [(getitem(x, idx), True)]


def _check_rows(idx: np.ndarray, n: int) -> None:
    if idx.size and (idx.max() >= n or idx.min() < -n):
        bad = idx[(idx >= n) | (idx < -n)][0]
        raise IndexError(f"row index {bad} is out of range for an axis of length {n}")


class AdvancedIncSubtensor1(Op):
    """A copy of ``x`` with rows ``idx`` set to / incremented by ``y`` (repeated rows add up)."""

    __props__ = ("set_instead_of_inc",)

    def __init__(self, set_instead_of_inc: bool) -> None:
        self.set_instead_of_inc = set_instead_of_inc

    def __str__(self) -> str:
        return "AdvancedSetSubtensor1" if self.set_instead_of_inc else "AdvancedIncSubtensor1"

    def make_node(self, x: Variable, y: Variable, idx: Variable) -> Apply:
        x, y, idx = as_variable(x), as_variable(y), int64_index(as_variable(idx))
        if idx.ndim < 1 or not dtypes.is_int(idx.dtype):
            raise TypeError(f"row index must be an integer array, got {idx.describe()}")
        if y.ndim != idx.ndim + x.ndim - 1:
            raise TypeError(f"rows {y.describe()} do not fit {x.describe()} indexed by {idx.describe()}")
        return Apply(self, [x, y, idx], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, y, idx = inputs
        _check_rows(idx, x.shape[0])
        _check_region(node.inputs[1], y, (*idx.shape, *x.shape[1:]))
        out = x.copy()
        if self.set_instead_of_inc:
            out[idx] = y
        else:
            np.add.at(out, idx, y)
        return [out]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, y, idx = node.inputs
        (g,) = output_grads
        if g is None:
            return [None, None, None]
        gx = AdvancedIncSubtensor1(True)(g, zeros_like(y), idx) if self.set_instead_of_inc else g
        gy = _region_grad(AdvancedSubtensor1()(g, idx), y)
        return [None if dtypes.is_discrete(x.dtype) else gx, gy, None]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    numba_reads_elements = (0,)  # x is copied element by element
    numba_takes_over_base = True  # see CodeGen.alloc_copy

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x = node.inputs[0]
        out = cg.alloc_copy(node.outputs[0], x, "incrows", node)
        bad = cg.fresh("bad")
        cg.emit(f"{bad} = {self.numba_scatter(node, cg, out, [cg.dim(x, d) for d in range(1, x.ndim)])}")
        cg.check(f"{bad} >= 0", node, "row index out of range")

    def numba_scatter(self, node: Apply, cg: Any, out: str, row_dims: list[str], check_indices: bool = False) -> str:
        """Emit the checks that the rows fit (``row_dims``: the lengths of a row of ``out``) and
        return the call that scatters them into ``out``. The call returns the first position of an
        index out of range, or -1; ``check_indices`` checks the indices now instead, for a scatter
        emitted later, where nothing may fail (the update of a shared variable in place)."""
        x, y, idx = node.inputs
        region = cg.shape_tuple(idx) + row_dims
        for d in range(y.ndim):
            if not y.broadcastable[d]:
                cg.check(f"{cg.dim(y, d)} != {region[d]}", node, "the rows do not fit the indices")
        y_value, flat_idx = cg.value(y), cg.value(idx)
        if idx.ndim > 1:  # scatter through flat views: idx (n,), rows (n, ...)
            n = " * ".join(cg.shape_tuple(idx))
            flat_idx = cg.reshape(flat_idx, [n], node)
            y_value = cg.reshape(cg.copy_of(y, region), [n, *region[idx.ndim:]], node)
        if check_indices:
            bad = cg.fresh("bad")
            cg.emit(f"{bad} = {cg.kernel(first_row_out_of_range)}({flat_idx}, {out}.shape[0])")
            cg.check(f"{bad} >= 0", node, "row index out of range")
        kernel = cg.kernel(scatter_rows_2d if x.ndim == 2 and y.ndim == 2 else scatter_rows)
        return f"{kernel}({out}, {y_value}, {flat_idx}, {not self.set_instead_of_inc})"


def advanced_inc_rows(x: Variable, rows: Variable, idx: Variable) -> Variable:
    """``x`` with ``rows`` added at row indices ``idx`` (repeats accumulate)."""
    return AdvancedIncSubtensor1(False)(x, rows, idx)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# general advanced indexing
# ---------------------------------------------------------------------------------------------
def _advanced_layout(idx: tuple[Entry, ...], x: Variable, comps: list[Variable]) -> list[bool]:
    """Output broadcastable pattern for NumPy advanced indexing with integer arrays."""
    it = iter(comps)
    arrays: list[Variable] = []
    positions: list[int] = []
    slice_bcast: list[tuple[int, bool]] = []
    for d, entry in enumerate(idx):
        if isinstance(entry, tuple):
            for _ in range(_n_inputs(entry)):
                next(it)
            slice_bcast.append((d, x.broadcastable[d] if _entry_is_full_slice(entry) else False))
        else:
            arrays.append(next(it))
            positions.append(d)
    nb = max(a.ndim for a in arrays)
    b_bcast = [all(a.broadcastable[i - (nb - a.ndim)] if i >= nb - a.ndim else True for a in arrays)
               for i in range(nb)]
    rest = list(x.broadcastable[len(idx):])
    contiguous = positions == list(range(positions[0], positions[-1] + 1))
    if contiguous:
        before = [b for d, b in slice_bcast if d < positions[0]]
        after = [b for d, b in slice_bcast if d > positions[-1]]
        return before + b_bcast + after + rest
    return b_bcast + [b for _, b in slice_bcast] + rest


class AdvancedSubtensor(Op):
    """``x[idx]`` mixing integer arrays with integers and slices (NumPy advanced indexing)."""

    __props__ = ("idx",)

    def __init__(self, idx: tuple[Entry, ...]) -> None:
        self.idx = idx

    def __str__(self) -> str:
        return f"AdvancedSubtensor{{{_idx_str(self.idx)}}}"

    def make_node(self, x: Variable, *components: Variable) -> Apply:
        x = as_variable(x)
        if len(self.idx) > x.ndim:
            raise IndexError(f"too many indices ({len(self.idx)}) for {x.describe()}")
        comps = [int64_index(as_variable(c)) for c in components]
        _check_components(self.idx, comps)
        bcast = _advanced_layout(self.idx, x, comps)
        return Apply(self, [x, *comps], [TensorType(x.dtype, tuple(bcast))])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, *values = inputs
        return [np.asarray(x[_build_index(self.idx, values)])]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, *components = node.inputs
        (g,) = output_grads
        none: list[Variable | None] = [None] * len(components)
        if g is None or dtypes.is_discrete(x.dtype):
            return [None, *none]
        return [AdvancedIncSubtensor(self.idx, False)(zeros_like(x), g, *components), *none]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        x, *components = node.inputs
        shape = input_shapes[0]
        comp_shapes = input_shapes[1:]
        it = iter(zip(components, comp_shapes))
        arrays: list[tuple[Variable, tuple[Variable, ...]]] = []
        positions: list[int] = []
        slices: list[tuple[int, Variable]] = []
        for d, entry in enumerate(self.idx):
            if isinstance(entry, tuple):
                parts = [next(it)[0] if has else None for has in entry[1:]]
                slices.append((d, slice_length(shape[d], *parts)))
            else:
                arrays.append(next(it))
                positions.append(d)
        nb = max(a.ndim for a, _ in arrays)
        b_shape = []
        for i in range(nb):  # index arrays broadcast as NumPy's do, length-1 dimensions at run time too
            dim = None
            for a, s in arrays:
                j = i - (nb - a.ndim)
                if j >= 0 and not a.broadcastable[j]:
                    dim = s[j] if dim is None else m.switch(m.eq(dim, 1), s[j], dim)
            b_shape.append(dim if dim is not None else as_variable(1, "int64"))
        rest = list(shape[len(self.idx):])
        if positions == list(range(positions[0], positions[-1] + 1)):
            before = [s for d, s in slices if d < positions[0]]
            after = [s for d, s in slices if d > positions[-1]]
            return [tuple(before + b_shape + after + rest)]
        return [tuple(b_shape + [s for _, s in slices] + rest)]

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x, *components = node.inputs
        if not is_pairs(self.idx, x, components):  # the general case: one generated kernel
            source = _advanced_source(self.idx, x.ndim, [c.ndim for c in components], None)
            out, status = cg.new_name(node.outputs[0], "adv"), cg.fresh("st")
            args = [cg.value(x), *(cg.value(c) for c in components)]
            cg.emit(f"{out}, {status} = {cg.kernel_call(cg.generated_kernel(source), *args)}")
            cg.check_status(status, node, _ADVANCED_ERROR)
            return
        rows, cols = components
        n = _pairs_length(node, cg, rows, cols)
        out = cg.alloc(node.outputs[0], [n], "pairs")
        bad = cg.fresh("bad")
        cg.emit(f"{bad} = {cg.kernel(take_pairs)}({cg.value(x)}, {cg.value(rows)}, {cg.value(cols)}, {out})")
        cg.check(f"{bad} >= 0", node, "index out of range")


class AdvancedIncSubtensor(Op):
    """A copy of ``x`` with ``x[idx]`` (advanced) set to / incremented by ``y``; repeats add up."""

    __props__ = ("idx", "set_instead_of_inc")

    def __init__(self, idx: tuple[Entry, ...], set_instead_of_inc: bool) -> None:
        self.idx = idx
        self.set_instead_of_inc = set_instead_of_inc

    def __str__(self) -> str:
        return f"Advanced{'Set' if self.set_instead_of_inc else 'Inc'}Subtensor{{{_idx_str(self.idx)}}}"

    def make_node(self, x: Variable, y: Variable, *components: Variable) -> Apply:
        x, y = as_variable(x), as_variable(y)
        comps = [int64_index(as_variable(c)) for c in components]
        _check_components(self.idx, comps)
        return Apply(self, [x, y, *comps], [x.type])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, y, *values = inputs
        index = _build_index(self.idx, values)
        out = x.copy()
        _check_region(node.inputs[1], y, out[index].shape)
        if self.set_instead_of_inc:
            out[index] = y
        else:
            np.add.at(out, index, y)
        return [out]

    def grad(self, node: Apply, output_grads: list[Variable | None]) -> list[Variable | None]:
        x, y, *components = node.inputs
        (g,) = output_grads
        none: list[Variable | None] = [None] * len(components)
        if g is None:
            return [None, None, *none]
        gx = AdvancedIncSubtensor(self.idx, True)(g, zeros_like(y), *components) if self.set_instead_of_inc else g
        gy = _region_grad(AdvancedSubtensor(self.idx)(g, *components), y)
        return [None if dtypes.is_discrete(x.dtype) else gx, gy, *none]

    def infer_shape(self, node: Apply, input_shapes: list[tuple[Variable, ...]]) -> list[tuple[Variable, ...]]:
        return [input_shapes[0]]

    numba_reads_elements = (0,)  # x is copied element by element
    numba_takes_over_base = True  # see CodeGen.alloc_copy

    def numba_emit(self, node: Apply, cg: Any) -> None:
        x, y, *components = node.inputs
        if not is_pairs(self.idx, x, components):  # the general case: copy x, then one generated kernel
            out = cg.alloc_copy(node.outputs[0], x, "incadv", node)
            source = _advanced_source(self.idx, x.ndim, [c.ndim for c in components],
                                      "=" if self.set_instead_of_inc else "+=")
            status = cg.fresh("st")
            args = [out, cg.value(y), *(cg.value(c) for c in components)]
            cg.emit(f"{status} = {cg.kernel_call(cg.generated_kernel(source), *args)}")
            cg.check_status(status, node, _ADVANCED_ERROR + ", or the value does not fit the indexed region")
            return
        rows, cols = components
        n = _pairs_length(node, cg, rows, cols)
        if not y.broadcastable[0]:
            cg.check(f"{cg.dim(y, 0)} != {n}", node, "the value does not fit the indexed elements")
        out = cg.alloc_copy(node.outputs[0], x, "incpairs", node)
        bad = cg.fresh("bad")
        call = cg.kernel_call(cg.kernel(scatter_pairs), out, cg.value(y), cg.value(rows), cg.value(cols), n,
                              str(not self.set_instead_of_inc))
        cg.emit(f"{bad} = {call}")
        cg.check(f"{bad} >= 0", node, "index out of range")


# ---------------------------------------------------------------------------------------------
# Numba code
# ---------------------------------------------------------------------------------------------
def _index_parts(idx: tuple[Entry, ...], names: list[str], array: str,
                 known: list[Any] | None = None, broadcastable: tuple[bool, ...] = ()
                 ) -> tuple[list[str], list[str], list[str]]:
    """Index text over the component ``names``, the same index on a length-1 dummy array, and
    the conditions (on ``array``'s shape) under which the index is invalid.

    ``known`` holds the constant value of each component (or None): a constant slice step is
    never zero, and index 0 or -1 of a broadcastable dimension is always valid.
    """
    it = iter(range(len(names)))
    known = known or [None] * len(names)
    parts, dummy, tests = [], [], []
    for d, entry in enumerate(idx):
        if entry == "i":
            k = next(it)
            q = names[k]
            parts.append(q)
            dummy.append("0")
            if not (d < len(broadcastable) and broadcastable[d] and known[k] in (0, -1)):
                tests.append(f"{q} < -{array}.shape[{d}] or {q} >= {array}.shape[{d}]")
            continue
        ks = [next(it) if has else None for has in entry[1:]]
        pieces = [names[k] if k is not None else "" for k in ks]
        if entry[3]:
            if known[ks[2]] in (None, 0):  # type: ignore[index]
                tests.append(f"{pieces[2]} == 0")
            parts.append(f"{pieces[0]}:{pieces[1]}:{pieces[2]}")
        else:
            parts.append(f"{pieces[0]}:{pieces[1]}")
        dummy.append(f"{pieces[0]}:{pieces[1]}")
    return parts, dummy, tests


def _numba_index(node: Apply, cg: Any, idx: tuple[Entry, ...], x: Variable, components: list[Variable]) -> str:
    """The value ``x[idx]`` for a basic index, through a kernel that checks integer indices.

    An out-of-range index records an error and yields the same view of a small dummy array,
    so the (branch-free) calling code can run on safely.
    """
    comps = [cg.value(c) for c in components]
    known = [constant_value(c) for c in components]
    parts, dummy, tests = _index_parts(idx, [f"q{i}" for i in range(len(comps))], "x", known, x.broadcastable)
    if not tests:  # nothing can be out of range: index directly
        direct, _, _ = _index_parts(idx, comps, cg.value(x), known, x.broadcastable)
        return f"{cg.value(x)}[{', '.join(direct)}]"
    from ..compile.numba.codegen import np_dtype

    params = ", ".join(["x"] + [f"q{i}" for i in range(len(comps))])
    ones = ", ".join("1" for _ in range(x.ndim))
    source = "\n".join([
        f"def kernel({params}):",
        f"    if {' or '.join(tests)}:",
        f"        return np.zeros(({ones},), {np_dtype(x.dtype)})[{', '.join(dummy)}], 1",
        f"    return x[{', '.join(parts)}], 0",
    ]) + "\n"
    view, status = cg.fresh("view"), cg.fresh("st")
    cg.emit(f"{view}, {status} = {cg.kernel_call(cg.generated_kernel(source), cg.value(x), *comps)}")
    cg.check_status(status, node, "index out of range (or a zero slice step)")
    return view


def is_pairs(idx: tuple[Entry, ...], x: Variable, components: list[Variable]) -> bool:
    """``x[rows, cols]`` on a matrix with two index vectors (the book's ``p[arange(n), y]``)."""
    return idx == ("a", "a") and x.ndim == 2 and all(c.ndim == 1 for c in components)


def _pairs_length(node: Apply, cg: Any, rows: Variable, cols: Variable) -> str:
    n = cg.fresh("n")
    nr, nc = cg.dim(rows, 0), cg.dim(cols, 0)
    cg.emit(f"{n} = {nc} if {nr} == 1 else {nr}")  # NumPy's broadcasting: a length 1 takes the other's, 0 too
    cg.check(f"({nr} != {n} and {nr} != 1) or ({nc} != {n} and {nc} != 1)", node, "index arrays of different lengths")
    return n


_ADVANCED_ERROR = "index out of range, index arrays that do not broadcast together, or a zero slice step"


def _advanced_source(idx: tuple[Entry, ...], x_ndim: int, comp_ndims: list[int], write: str | None) -> str:
    """A kernel for ``x[idx]`` with integer arrays mixed with integers and slices, by NumPy's rules.

    The slices are applied as a view; the integer arrays (and integers, which count as
    0-d arrays) broadcast together to a shape B, and each output element is read through them.
    B's dimensions come first in the output unless the array entries are adjacent in the index,
    where they replace those entries. To read (``write`` None): ``kernel(x, *components)`` returns
    ``(out, status)``. To write (``"="`` or ``"+="``): ``kernel(x, y, *components)`` writes ``y``
    (broadcast to the indexed region) into ``x`` and returns the status. Status 1 is an error.
    """
    names = [f"q{k}" for k in range(len(comp_ndims))]
    it = iter(zip(names, comp_ndims))
    arrays: list[tuple[int, str, int]] = []  # (dimension of x, component, its ndim)
    slice_names: list[str] = []
    for d, entry in enumerate(idx):
        taken = [next(it) for _ in range(_n_inputs(entry))]
        if isinstance(entry, tuple):
            slice_names += [q for q, _ in taken]
        else:
            arrays.append((d, *taken[0]))
    # the slices as a basic index over the same dimensions (index arrays and ints keep theirs whole)
    full = ("s", False, False, False)
    view, _, checks = _index_parts(tuple(e if isinstance(e, tuple) else full for e in idx), slice_names, "x")
    nb = max(n for _, _, n in arrays)
    positions = [d for d, _, _ in arrays]
    kept = [d for d in range(x_ndim) if d not in positions]  # sliced and untouched dimensions of x
    if positions == list(range(positions[0], positions[-1] + 1)):
        out_dims = ([("x", d) for d in kept if d < positions[0]] + [("b", i) for i in range(nb)]
                    + [("x", d) for d in kept if d > positions[-1]])
    else:
        out_dims = [("b", i) for i in range(nb)] + [("x", d) for d in kept]
    loop = {dim: f"o{k}" for k, dim in enumerate(out_dims)}
    sizes = [f"b{i}" if kind == "b" else f"xs.shape[{i}]" for kind, i in out_dims]
    fail = "1" if write else "np.zeros((" + "1, " * len(out_dims) + "), x.dtype), 1"

    params = ["x", *(["y"] if write else []), *names]
    lines = [f"def kernel({', '.join(params)}):"]
    if checks:
        lines += [f"    if {' or '.join(checks)}:", f"        return {fail}"]
    lines.append(f"    xs = x[{', '.join(view)}]")
    lines += [f"    b{i} = 1" for i in range(nb)]
    for _, q, n in arrays:  # B: the index arrays broadcast together (aligned on their last dimension)
        for j in range(n):
            b = f"b{nb - n + j}"
            lines += [f"    if {q}.shape[{j}] != 1:", f"        if {b} == 1:", f"            {b} = {q}.shape[{j}]",
                      f"        elif {b} != {q}.shape[{j}]:", f"            return {fail}"]
    if write:
        lines += [f"    if y.shape[{k}] != {size} and y.shape[{k}] != 1:\n        return 1"
                  for k, size in enumerate(sizes)]
    else:
        lines.append(f"    out = runtime.new_array(({', '.join(sizes)},), xs.dtype)")
    indent = "    "
    for k, size in enumerate(sizes):
        lines.append(f"{indent}for o{k} in range({size}):")
        indent += "    "
    source_index = []
    for d in range(x_ndim):
        if d not in positions:
            source_index.append(loop[("x", d)])
            continue
        _, q, n = next(a for a in arrays if a[0] == d)
        at = ", ".join(f"0 if {q}.shape[{j}] == 1 else {loop[('b', nb - n + j)]}" for j in range(n))
        lines += [f"{indent}i{d} = {q}[{at}]" if n else f"{indent}i{d} = {q}",
                  f"{indent}if i{d} < 0:", f"{indent}    i{d} += xs.shape[{d}]",
                  f"{indent}if i{d} < 0 or i{d} >= xs.shape[{d}]:", f"{indent}    return {fail}"]
        source_index.append(f"i{d}")
    element = f"xs[{', '.join(source_index)}]"
    if write:
        at = ", ".join(f"0 if y.shape[{k}] == 1 else o{k}" for k in range(len(sizes)))
        lines.append(f"{indent}{element} {write} y[{at}]")
        lines.append("    return 0")
    else:
        lines.append(f"{indent}out[{', '.join(f'o{k}' for k in range(len(sizes)))}] = {element}")
        lines.append("    return out, 0")
    return "\n".join(lines) + "\n"


def take_rows(x, idx, out):  # type: ignore[no-untyped-def]
    """Kernel: out[k] = x[idx[k]]; returns the position of a bad index, or -1."""
    n = x.shape[0]
    if out.shape[1:] != x.shape[1:]:
        return 0
    for k in range(idx.shape[0]):
        i = idx[k]
        if i < 0:
            i += n
        if i < 0 or i >= n:
            return k
        out[k] = x[i]
    return -1


def take_rows_2d(x, idx, out):  # type: ignore[no-untyped-def]
    """Kernel: take_rows for a matrix, copying element by element (Numba's row assignment brings its
    error-message formatting into the compile: about a second, cold)."""
    n, m = x.shape
    if out.shape[1] != m:
        return 0
    for k in range(idx.shape[0]):
        i = idx[k]
        if i < 0:
            i += n
        if i < 0 or i >= n:
            return k
        for j in range(m):
            out[k, j] = x[i, j]
    return -1


def first_row_out_of_range(idx, n):  # type: ignore[no-untyped-def]
    """Kernel: the first position k of a row index idx[k] outside [-n, n), or -1."""
    for k in range(idx.shape[0]):
        if idx[k] < -n or idx[k] >= n:
            return k
    return -1


def scatter_rows(out, y, idx, accumulate):  # type: ignore[no-untyped-def]
    """Kernel: out[idx[k]] += y[k], or = y[k] (later repeats win); y may hold a single row for all."""
    n = out.shape[0]
    single = y.shape[0] == 1
    if not single and y.shape[0] < idx.shape[0]:
        return 0
    for d in range(1, out.ndim):  # the rows may broadcast along length-1 dimensions
        if y.shape[d] != out.shape[d] and y.shape[d] != 1:
            return 0
    for k in range(idx.shape[0]):
        i = idx[k]
        if i < 0:
            i += n
        if i < 0 or i >= n:
            return k
        if accumulate:
            out[i] += y[0 if single else k]
        else:
            out[i] = y[0 if single else k]
    return -1


def scatter_rows_2d(out, y, idx, accumulate):  # type: ignore[no-untyped-def]
    """Kernel: scatter_rows for matrices, element by element (see take_rows_2d)."""
    n, m = out.shape
    single, across = y.shape[0] == 1, y.shape[1] == 1
    if (not single and y.shape[0] < idx.shape[0]) or (not across and y.shape[1] != m):
        return 0
    for k in range(idx.shape[0]):
        i = idx[k]
        if i < 0:
            i += n
        if i < 0 or i >= n:
            return k
        r = 0 if single else k
        for j in range(m):
            v = y[r, 0 if across else j]
            out[i, j] = out[i, j] + v if accumulate else v
    return -1


def take_pairs(x, rows, cols, out):  # type: ignore[no-untyped-def]
    """Kernel: out[k] = x[rows[k], cols[k]] (a length-1 index vector repeats)."""
    n0, n1 = x.shape
    r1, c1 = rows.shape[0] == 1, cols.shape[0] == 1
    if (not r1 and rows.shape[0] < out.shape[0]) or (not c1 and cols.shape[0] < out.shape[0]):
        return 0
    for k in range(out.shape[0]):
        i = rows[0 if r1 else k]
        j = cols[0 if c1 else k]
        if i < 0:
            i += n0
        if j < 0:
            j += n1
        if i < 0 or i >= n0 or j < 0 or j >= n1:
            return k
        out[k] = x[i, j]
    return -1


def scatter_pairs(out, y, rows, cols, n, accumulate):  # type: ignore[no-untyped-def]
    """Kernel: out[rows[k], cols[k]] += y[k], or = y[k] (later repeats win), for k < n."""
    n0, n1 = out.shape
    r1, c1, y1 = rows.shape[0] == 1, cols.shape[0] == 1, y.shape[0] == 1
    if (not y1 and y.shape[0] < n) or (not r1 and rows.shape[0] < n) or (not c1 and cols.shape[0] < n):
        return 0
    for k in range(n):
        i = rows[0 if r1 else k]
        j = cols[0 if c1 else k]
        if i < 0:
            i += n0
        if j < 0:
            j += n1
        if i < 0 or i >= n0 or j < 0 or j >= n1:
            return k
        v = y[0 if y1 else k]
        out[i, j] = out[i, j] + v if accumulate else v
    return -1


# ---------------------------------------------------------------------------------------------
# slice lengths as symbolic expressions
# ---------------------------------------------------------------------------------------------
def _clip(v: Any, lo: Any, hi: Any) -> Variable:
    return m.minimum(m.maximum(v, lo), hi)


def _count(span: Variable, step: Variable) -> Variable:
    """How many of ``span`` consecutive positions a slice of ``step`` visits (0 if ``span <= 0``):
    ``(span - 1) // |step| + 1``, written so that no step (``±2**63`` included) overflows int64."""
    visited = m.add(m.switch(m.lt(step, 0), m.int_div(m.sub(1, span), step), m.int_div(m.sub(span, 1), step)), 1)
    return m.switch(m.gt(span, 0), visited, 0)


def slice_length(n: Variable, start: Any, stop: Any, step: Any) -> Variable:
    """Symbolic ``len(range(n)[start:stop:step])`` (components may be None)."""
    step_value = 1 if step is None else constant_value(step)
    if step_value is not None and step_value > 0:
        s = as_variable(step_value if step is None else step)
        lo = 0 if start is None else _clip(m.switch(m.lt(start, 0), m.add(start, n), start), 0, n)
        hi = n if stop is None else _clip(m.switch(m.lt(stop, 0), m.add(stop, n), stop), 0, n)
        return m.cast(_count(m.sub(hi, lo), s), "int64")
    if step_value is not None and step_value < 0:
        s = as_variable(step)
        lo = m.sub(n, 1) if start is None else _clip(m.switch(m.lt(start, 0), m.add(start, n), start), -1, m.sub(n, 1))
        hi = -1 if stop is None else _clip(m.switch(m.lt(stop, 0), m.add(stop, n), stop), -1, m.sub(n, 1))
        return m.cast(_count(m.sub(lo, hi), s), "int64")
    # the step's sign is known only at run time: Python's slice rules, each choice made by switch
    s = as_variable(step)
    neg = m.lt(s, 0)
    lower = m.switch(neg, -1, 0)
    upper = m.switch(neg, m.sub(n, 1), n)

    def bound(v: Any, default: Variable) -> Variable:
        if v is None:
            return default
        return m.switch(m.lt(v, 0), m.maximum(m.add(v, n), lower), m.minimum(v, upper))

    lo = bound(start, m.switch(neg, upper, lower))
    hi = bound(stop, m.switch(neg, lower, upper))
    return m.cast(_count(m.switch(neg, m.sub(lo, hi), m.sub(hi, lo)), s), "int64")


# ---------------------------------------------------------------------------------------------
# the ``x[...]`` front end
# ---------------------------------------------------------------------------------------------
def _is_array_index(e: Any) -> bool:
    if isinstance(e, Variable):
        return e.ndim > 0
    return isinstance(e, (list, np.ndarray))


def getitem(x: Any, index: Any) -> Variable:
    """NumPy-style indexing of a symbolic tensor."""
    x = as_variable(x)
    entries = list(index) if isinstance(index, tuple) else [index]
    entries = [_list_index(e) if isinstance(e, list) else e for e in entries]
    ellipses = [i for i, e in enumerate(entries) if e is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis (...)")
    consumed = sum(1 for e in entries if e is not None and e is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for {x.describe()}: {consumed} given")
    if ellipses:
        at = ellipses[0]
        entries[at:at + 1] = [slice(None)] * (x.ndim - consumed)
    for e in entries:
        _check_index_type(e, x)
    if any(_is_array_index(e) for e in entries):
        return _advanced_getitem(x, entries)
    return _basic_getitem(x, entries)


def _list_index(e: list[Any]) -> np.ndarray:
    """A list index as an array; an empty one is an empty int64 index, as in NumPy (not float64)."""
    a = np.asarray(e)
    return a.astype("int64") if a.size == 0 and a.dtype == "float64" else a


def _check_index_type(e: Any, x: Variable) -> None:
    if e is None or isinstance(e, slice):
        return
    if isinstance(e, (bool, np.bool_)):
        raise IndexError("boolean scalar indices are not supported")
    if isinstance(e, (int, np.integer)):
        _check_fits_int64(e, x)
        return
    v = e if isinstance(e, Variable) else np.asarray(e)
    dtype = v.dtype if isinstance(v, Variable) else v.dtype.name
    if dtype == "bool":
        raise IndexError(f"boolean mask indexing of {x.describe()} is not supported; index with integer "
                         "arrays (e.g. from np.nonzero) or use T.switch")
    if not dtypes.is_int(dtype):
        raise IndexError(f"indices must be integers or slices, got {dtype} index into {x.describe()}")
    if not isinstance(v, Variable):
        _check_fits_int64(v, x)


def _check_fits_int64(e: Any, x: Variable) -> None:
    """A constant index beyond int64 is out of range on every axis (cast to int64, a uint64 one wrapped)."""
    a = np.asarray(e)
    bad = [v for v in (a.max(), a.min()) if not -INT64_MAX - 1 <= int(v) <= INT64_MAX] if a.size else []
    if bad:
        raise IndexError(f"index {bad[0]} is out of range for every axis of {x.describe()}: an index must fit "
                         f"int64, got {describe_value(e)}")


def _slice_parts(s: slice) -> tuple[Entry, list[Variable]]:
    parts = [s.start, s.stop, s.step]
    comps = [_index_scalar(p, "slice bound") for p in parts if p is not None]
    if s.step is not None and constant_value(comps[-1]) == 0:
        raise ValueError("slice step cannot be zero")
    return ("s", s.start is not None, s.stop is not None, s.step is not None), comps


def _basic_getitem(x: Variable, entries: list[Any]) -> Variable:
    idx: list[Entry] = []
    comps: list[Variable] = []
    pattern: list[Any] = []
    out_dim = 0
    for e in entries:
        if e is None:
            pattern.append("x")
        elif isinstance(e, slice):
            entry, c = _slice_parts(e)
            idx.append(entry)
            comps += c
            pattern.append(out_dim)
            out_dim += 1
        else:
            idx.append("i")
            comps.append(_index_scalar(e))
    n_rest = x.ndim - len(idx)
    pattern += list(range(out_dim, out_dim + n_rest))
    while len(idx) > (1 if "x" not in pattern else 0) and _entry_is_full_slice(idx[-1]):
        idx.pop()  # x[:] keeps one full slice: it is an indexing expression that set_subtensor writes into
    out = Subtensor(tuple(idx))(x, *comps) if idx else x
    if "x" in pattern:
        out = dimshuffle(out, tuple(pattern))
    return out  # type: ignore[no-any-return]


def _advanced_getitem(x: Variable, entries: list[Any]) -> Variable:
    if any(e is None for e in entries):
        raise IndexError("None (newaxis) cannot be combined with integer-array indices; add the axis "
                         "with dimshuffle before or after indexing")
    idx: list[Entry] = []
    comps: list[Variable] = []
    for e in entries:
        if isinstance(e, slice):
            entry, c = _slice_parts(e)
            idx.append(entry)
            comps += c
        elif _is_array_index(e):
            idx.append("a")
            comps.append(as_variable(e))
        else:
            idx.append("i")
            comps.append(_index_scalar(e))
    while idx and _entry_is_full_slice(idx[-1]):
        idx.pop()
    if idx and idx[0] == "a" and all(isinstance(e, tuple) for e in idx[1:]):
        # rows first, then slice the remaining dims: x[rows, a:b] = x[rows][..., a:b]
        rows = AdvancedSubtensor1()(x, comps[0])
        if len(idx) == 1:
            return rows  # type: ignore[no-any-return]
        lead = (("s", False, False, False),) * comps[0].ndim
        out = Subtensor(lead + tuple(idx[1:]))(rows, *comps[1:])
        _WRITES_INTO[out] = (x, tuple(idx), comps)  # set_subtensor(x[rows, a:b], y) writes into x
        return out  # type: ignore[no-any-return]
    return AdvancedSubtensor(tuple(idx))(x, *comps)  # type: ignore[no-any-return]


#: ``x[rows, a:b]``, built as ``x[rows][:, a:b]``, by its result: (x, its index, the index's parts)
_WRITES_INTO: weakref.WeakKeyDictionary[Variable, tuple[Variable, tuple[Entry, ...], list[Variable]]] = \
    weakref.WeakKeyDictionary()


def _inc_or_set(sub: Variable, y: Any, set_instead_of_inc: bool, name: str) -> Variable:
    node = sub.owner
    if node is None or not isinstance(node.op, (Subtensor, AdvancedSubtensor1, AdvancedSubtensor)):
        if node is not None and isinstance(node.op, DimShuffle):
            raise TypeError(f"{name}: indices with None (newaxis) cannot be assigned to")
        raise TypeError(f"{name} needs an indexing expression such as x[1:3] or x[idx] as its first argument, "
                        f"got {sub.describe()}")
    x, region = node.inputs[0], _WRITES_INTO.get(sub)
    if region is not None:
        x = region[0]
    y = as_variable(y) if isinstance(y, Variable) else _weak_constant(y, x.dtype)
    if y.dtype != x.dtype:
        unsafe = dtypes.is_float(y.dtype) and not dtypes.is_float(x.dtype)
        if unsafe or not np.can_cast(y.dtype, x.dtype, "same_kind"):
            raise TypeError(f"{name}: cannot store {y.describe()} into {x.describe()}; "
                            f"cast it with .astype('{x.dtype}')")
        y = m.cast(y, x.dtype)
    if y.ndim > sub.ndim:
        raise ValueError(f"{name}: value {y.describe()} has more dimensions than the region ({sub.ndim})")
    y = pad_left(y, sub.ndim)
    op = node.op
    if region is not None:
        return AdvancedIncSubtensor(region[1], set_instead_of_inc)(x, y, *region[2])  # type: ignore[no-any-return]
    if isinstance(op, Subtensor):
        return IncSubtensor(op.idx, set_instead_of_inc)(x, y, *node.inputs[1:])  # type: ignore[no-any-return]
    if isinstance(op, AdvancedSubtensor1):
        return AdvancedIncSubtensor1(set_instead_of_inc)(x, y, node.inputs[1])  # type: ignore[no-any-return]
    return AdvancedIncSubtensor(op.idx, set_instead_of_inc)(x, y, *node.inputs[1:])  # type: ignore[no-any-return]


def _weak_constant(value: Any, dtype: str) -> Variable:
    if isinstance(value, (bool, int, float)) and dtypes.fits(value, dtype):
        return Constant(value, dtype=dtype)
    return as_variable(value)


def set_subtensor(sub: Variable, y: Any) -> Variable:
    """``x`` with the region ``sub = x[...]`` replaced by ``y``: ``T.set_subtensor(x[2:], 0)``."""
    return _inc_or_set(sub, y, True, "set_subtensor")


def inc_subtensor(sub: Variable, y: Any) -> Variable:
    """``x`` with ``y`` added to the region ``sub = x[...]`` (repeated indices add up)."""
    return _inc_or_set(sub, y, False, "inc_subtensor")


def take(x: Any, indices: Any, axis: int | None = None) -> Variable:
    """Elements of ``x`` at ``indices`` along ``axis`` (None: of the flattened array)."""
    from .shape import flatten

    x = as_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    axis %= x.ndim
    indices = _list_index(indices) if isinstance(indices, list) else indices
    return getitem(x, (slice(None),) * axis + (as_variable(indices),))


def flip(x: Any, axis: int | Sequence[int] | None = None) -> Variable:
    """NumPy's flip: ``x`` with the order of its entries reversed along ``axis`` (an int or a tuple;
    None: every axis), as a ``::-1`` slice."""
    x = as_variable(x)
    if axis is None:
        axes = list(range(x.ndim))
    else:
        given = axis if isinstance(axis, (tuple, list)) else (axis,)
        axes = [axis_index(a, x, "flip axis") for a in given]
        if len(set(axes)) != len(axes):
            raise ValueError(f"flip: an axis appears twice in {tuple(given)}")
    if not axes:
        return x
    reverse = slice(None, None, -1)
    return getitem(x, tuple(reverse if d in axes else slice(None) for d in range(max(axes) + 1)))


def shape_of(x: Variable) -> tuple[Variable, ...]:
    return tuple(shape_i(x, d) for d in range(x.ndim))
