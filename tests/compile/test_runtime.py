"""The Numba backend's run-time support: glibc's malloc keeps large freed blocks for reuse; loop
rows are views without reference counts; the table of shared arrays is patched where they changed."""

from __future__ import annotations

import platform
import sys
from typing import Any

import numpy as np
import pytest

import symflow as sf
from symflow.compile.numba import runtime


class FakeLibc:
    """Records mallopt calls instead of changing this process's allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    monkeypatch.setattr(runtime, "_allocator_set", False)
    for name in runtime._GLIBC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sf.config, "keep_freed_memory", True)
    return FakeLibc()


def test_thresholds_are_set_once(fresh: FakeLibc) -> None:
    assert runtime.keep_freed_memory(fresh)
    assert fresh.calls == [(runtime.M_MMAP_THRESHOLD, 32 * 2**20), (runtime.M_TRIM_THRESHOLD, 128 * 2**20)]
    assert not runtime.keep_freed_memory(fresh)  # once per process
    assert len(fresh.calls) == 2


def test_the_setting_and_the_environment_can_turn_it_off(fresh: FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sf.config, "keep_freed_memory", False)
    assert not runtime.keep_freed_memory(fresh)
    monkeypatch.setattr(sf.config, "keep_freed_memory", True)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")  # the user tuned malloc: leave it alone
    assert not runtime.keep_freed_memory(fresh)
    assert fresh.calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_thresholds(fresh: FakeLibc) -> None:
    assert runtime.keep_freed_memory()  # the real mallopt returns 1 for valid values


def _add_one(src: Any, dst: Any) -> int:
    for j in range(src.shape[0]):
        dst[j] = src[j] + 1
    return 0


def _rows_by(view: str) -> Any:
    """A main-pipeline function setting row ``i + 1`` of a buffer to row ``i`` plus one, in order,
    by a kernel given the two rows as ``view`` makes them."""
    import numba

    from symflow.compile.numba.jit import MAIN_OPTIONS, jit_kernel

    namespace = {"step_row": runtime.step_row, "add_one": jit_kernel(_add_one)}
    exec(f"def shift(buf):\n    for i in range(buf.shape[0] - 1):\n        add_one({view})\n", namespace)  # noqa: S102
    return numba.njit(**MAIN_OPTIONS)(namespace["shift"])


@pytest.mark.parametrize("make", [
    lambda: np.arange(24.0).reshape(6, 4),                         # C-contiguous
    lambda: np.arange(24.0).reshape(6, 4)[::-1],                   # negative first stride
    lambda: np.asfortranarray(np.arange(24.0).reshape(6, 4)),      # column-major
    lambda: np.arange(48.0).reshape(6, 8)[:, ::2],                 # strided rows
    lambda: np.arange(48.0).reshape(4, 3, 4).transpose(0, 2, 1),   # rows that are matrices
])
def test_step_row_is_the_row_of_its_buffer(make: Any) -> None:
    buffer = make()
    expected = buffer.copy()
    for i in range(expected.shape[0] - 1):
        expected[i + 1] = expected[i] + 1
    _rows_by("step_row(buf, i), step_row(buf, i + 1)")(buffer)
    np.testing.assert_array_equal(buffer, expected)  # written through the view, read back in order


def test_step_row_takes_no_reference() -> None:
    """The loop's ``step_row`` views take no reference; Numba's own views each take one."""
    buffer = np.zeros((5, 3))
    plain, borrowed = _rows_by("buf[i], buf[i + 1]"), _rows_by("step_row(buf, i), step_row(buf, i + 1)")
    for f in (plain, borrowed):
        f(buffer)
    np.testing.assert_array_equal(buffer, np.repeat(np.arange(5.0)[:, None], 3, axis=1))
    increfs = {f: next(iter(f.inspect_llvm().values())).count("call void @NRT_incref") for f in (plain, borrowed)}
    assert increfs[plain] - increfs[borrowed] == 2  # one per view in the loop


def test_address_table_reads_again_only_the_arrays_replaced() -> None:
    arrays = [np.zeros((2, 3)), np.ones(4), np.zeros(())]
    table = runtime.address_table(arrays)
    assert table[0] == arrays[0].__array_interface__["data"][0] and table[1:3].tolist() == [2, 3]
    replaced = [arrays[0], np.ones(7), arrays[2]]
    patched = runtime.address_table(replaced, (table, arrays))
    np.testing.assert_array_equal(patched, runtime.address_table(replaced))
    np.testing.assert_array_equal(table, runtime.address_table(arrays))  # the old table is unchanged
