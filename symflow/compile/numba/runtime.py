"""Run-time support: what generated modules import, and the memory allocator's settings."""

from __future__ import annotations

import ctypes
import functools
import importlib
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ...config import config
from ...types import TensorType

# glibc serves blocks above M_MMAP_THRESHOLD with fresh pages from the system and returns free
# memory above M_TRIM_THRESHOLD at the top of the heap after each free. Its defaults adapt only
# up to the largest block seen, so a function whose temporaries are large (a minibatch's logits,
# 11 MB each) gets its memory back from the system, and takes a page fault per 4 KiB, on every
# call: 36% of the minibatch language model's time, measured. Fixed limits keep freed blocks for
# the next call: 32 MiB is glibc's largest mmap threshold; 128 MiB of free memory may stay held.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
TRIM_THRESHOLD_BYTES = 128 * 2**20
MMAP_THRESHOLD_BYTES = 32 * 2**20
_GLIBC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
_allocator_set = False


@functools.cache  # platform.libc_ver reads the interpreter's binary; every compile asks
def _on_glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_memory(libc: Any = None) -> bool:
    """Set glibc's trim and mmap thresholds (once per process; see above). Nothing happens off
    glibc, with ``config.keep_freed_memory`` false, or when the environment already sets malloc's
    thresholds or tunables. Returns whether the thresholds were set."""
    global _allocator_set
    if _allocator_set or not config.keep_freed_memory or any(v in os.environ for v in _GLIBC_VARIABLES):
        return False
    if libc is None:
        if not _on_glibc():
            return False
        libc = ctypes.CDLL(None)
    mmap_set = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)  # 1 on success
    trim_set = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    _allocator_set = bool(mmap_set and trim_set)
    return _allocator_set


def perform_fallback(module: str, cls: str, props: tuple[Any, ...],
                     input_types: tuple[tuple[str, tuple[bool, ...]], ...]) -> Callable[..., tuple[Any, ...]]:
    """A callable running an op's NumPy implementation, for ops without Numba code.

    The op is rebuilt from its class and props, so generated modules can recreate it in any
    process; the compiled code calls it in Numba's object mode.
    """
    op = getattr(importlib.import_module(module), cls)(*props)
    node = op.make_node(*[TensorType(dtype, bcast)() for dtype, bcast in input_types])

    def run(*args: Any) -> tuple[Any, ...]:
        values = [np.asarray(a) for a in args]
        outs = op.perform(node, values)
        return tuple(np.ascontiguousarray(o) if o.ndim else o[()] for o in outs)

    return run


@intrinsic
def step_row(typingctx: Any, buffer: Any, index: Any) -> Any:
    """``buffer[index]`` (``0 <= index < len(buffer)``, unchecked) as a view that holds no reference.

    Loops read and write their buffers through one row view per step. Numba counts references
    atomically, about 12 ns per view at the main function's optimisation level. A row used only
    during its step needs no reference: the loop keeps its buffer alive (see ``CodeGen.alloc``).
    It must not escape the step; changing this code needs a codegen ``VERSION`` bump.
    """
    if not isinstance(buffer, types.Array) or buffer.ndim < 2 or not isinstance(index, types.Integer):
        return None
    row_type = buffer.copy(ndim=buffer.ndim - 1, layout="C" if buffer.layout == "C" else "A")

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        parent = context.make_array(signature.args[0])(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, parent.shape)
        strides = cgutils.unpack_tuple(builder, parent.strides)
        offset = builder.mul(context.cast(builder, args[1], signature.args[1], types.intp), strides[0])
        start = builder.gep(builder.bitcast(parent.data, cgutils.voidptr_t), [offset])
        row = context.make_array(signature.return_type)(context, builder)
        context.populate_array(row, data=builder.bitcast(start, parent.data.type),
                               shape=cgutils.pack_array(builder, shape[1:]),
                               strides=cgutils.pack_array(builder, strides[1:]),
                               itemsize=parent.itemsize, meminfo=None, parent=None)
        return row._getvalue()

    return row_type(buffer, index), codegen
