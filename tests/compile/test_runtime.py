"""The Numba backend's run-time support: glibc's malloc keeps large freed blocks for reuse."""

from __future__ import annotations

import platform
import sys

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
