"""The Numba backend's run-time support: glibc's malloc keeps large freed blocks for reuse; loop
rows are views without reference counts; the table of shared arrays is patched where they changed;
sigmoid and tanh are accurate and vectorise."""

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


def test_step_row_takes_no_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's ``step_row`` views take no reference; Numba's own views each take one. The kernel is
    kept a call that LLVM knows nothing about: inlined (on CPUs where its code is short enough, say
    without AVX-512), or declared with what LLVM found about it (it touches only its arguments' memory),
    LLVM drops the references of Numba's views as well."""
    from symflow.compile.numba import jit

    monkeypatch.setattr(jit, "INLINE_MAX_INSTRUCTIONS", 0)
    monkeypatch.setattr(jit, "declare_kernel_attributes", lambda declaration, function: None)
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


def _sweep() -> np.ndarray:
    rng = np.random.default_rng(7)
    spread = [rng.normal(size=20000) * scale for scale in (1e-300, 1e-12, 1e-6, 1e-3, 0.1, 1, 3, 10, 30, 400)]
    edges = [0.0, -0.0, np.inf, -np.inf, 1e308, -1e308, 5e-324, -5e-324]
    edges += [sign * x for x in (18.5, 19, 36, 37, 354, 355, 700, 708, 709, 710, 744, 745, 746, 800)
              for sign in (1, -1)]
    return np.concatenate([*spread, np.array(edges)])


@pytest.mark.parametrize("name, exact, ulps", [
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), 2),
    ("tanh", np.tanh, 3),
])
def test_sigmoid_and_tanh_are_within_a_few_ulps(name: str, exact: Any, ulps: int) -> None:
    """``runtime.sigmoid`` and ``runtime.tanh`` against extended-precision values, over 20 orders of
    magnitude and at the edges (overflow of exp, results below the smallest normal float, infinities,
    signed zeros); NaN stays NaN."""
    import numba

    function = getattr(runtime, name)

    @numba.njit(error_model="numpy")
    def apply(x, out):  # type: ignore[no-untyped-def]
        for i in range(x.shape[0]):
            out[i] = function(x[i])

    x = np.append(_sweep(), np.nan)
    got = np.empty_like(x)
    apply(x, got)
    with np.errstate(over="ignore"):
        want = exact(x[:-1].astype(np.longdouble)).astype(np.float64)
    assert np.isnan(got[-1])
    error = np.abs(got[:-1] - want) / np.spacing(np.abs(want))
    assert error.max() <= ulps, x[:-1][error.argmax()]
    assert np.array_equal(np.signbit(got[:-1]), np.signbit(want))


def test_sigmoid_and_tanh_kernels_vectorise() -> None:
    """The elementwise kernels of ``sigmoid`` and ``tanh`` compute several elements per instruction
    (packed arithmetic on 256- or 512-bit registers) and call no libm function (one element each)."""
    import re

    from symflow.compile.numba import cache
    from symflow.tensor import nnet, tanh, vector

    v = vector("v")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new function: its kernels are typed now
    f = sf.function([v], [nnet.sigmoid(v * offset), tanh(v - offset)], mode="numba")
    x = np.linspace(-5, 5, 37)
    got = f(x)
    np.testing.assert_allclose(got[0], 1 / (1 + np.exp(-x * offset)), rtol=1e-15)
    np.testing.assert_allclose(got[1], np.tanh(x - offset), rtol=1e-15, atol=1e-16)
    names = re.findall(r"load_kernel\('(g_\w+)'\)", f.source)
    for function in ("sigmoid", "tanh"):
        sources = {n: (cache.module_dir() / f"{n}.py").read_text() for n in names}
        (name,) = [n for n, text in sources.items() if f"runtime.{function}(" in text]
        namespace: dict[str, Any] = {}  # the same kernel compiled now (Numba shows no code it loaded)
        exec(compile(sources[name], name, "exec"), namespace)
        kernel = namespace["kernel"]
        for signature in cache.load_kernel(name).signatures:
            kernel.compile(signature)
        assembly = "".join(kernel.inspect_asm(signature) for signature in kernel.signatures)
        assert re.search(r"\tv(mul|add|sub|div)pd\s+[^\n]*%[yz]mm", assembly), function
        assert not re.search(r"\b(exp|expm1|tanh)\b", assembly), function  # no call into libm


def test_scalar_sigmoid_and_tanh_compile_in_the_main_function() -> None:
    """0-d sigmoid and tanh are computed in the main function itself, which imports ``runtime``: the
    function compiles (no warning of a fall back to NumPy) and gives NumPy's values."""
    import warnings

    from symflow.tensor import nnet, scalar, tanh

    s = scalar("s")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new function: compiled now
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = sf.function([s], [nnet.sigmoid(s * offset), tanh(s - offset)], mode="numba")
        got = f(0.3)
    np.testing.assert_allclose(got[0], 1 / (1 + np.exp(-0.3 * offset)), rtol=1e-15)
    np.testing.assert_allclose(got[1], np.tanh(0.3 - offset), rtol=1e-15)


def test_new_array_allocates_like_np_empty() -> None:
    """``runtime.new_array`` gives a writable C-contiguous array of the shape and dtype asked for, named
    by a NumPy scalar type or by an array's dtype, and refuses negative dimensions as ``np.empty`` does."""
    import numba

    @numba.njit
    def make(n: int, m: int, like: np.ndarray) -> tuple[Any, Any, Any]:
        a = runtime.new_array((n, m), np.float32)
        a[:] = 1.5
        b = runtime.new_array((n,), like.dtype)
        b[:] = 7
        return a, b, runtime.new_array((n, 0, m), np.int64)

    a, b, empty = make(3, 4, np.zeros(2, np.int16))
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    np.testing.assert_array_equal(a, np.full((3, 4), 1.5, np.float32))
    assert b.dtype == np.int16 and list(b) == [7, 7, 7]
    assert empty.shape == (3, 0, 4) and empty.dtype == np.int64
    with pytest.raises(ValueError, match="negative dimensions"):
        make(-1, 4, np.zeros(2, np.int16))
    with pytest.raises(ValueError, match="negative dimensions"):
        make(2, -4, np.zeros(2, np.int16))


def test_generated_code_allocates_without_np_empty() -> None:
    """Allocations in generated code and kernels go through ``runtime.new_array``: Numba compiles
    ``np.empty``'s implementation as a function of its own for each ndim and dtype."""
    import re

    from symflow.compile.numba import cache

    x = sf.tensor.matrix("x")
    i = sf.tensor.ivector("i")
    y = sf.tensor.nnet.softmax(x[i] * 2.0)
    f = sf.function([x, i], [y, y.sum(axis=0), sf.grad(y[:, 0].sum(), x)], mode="numba")
    got = f(np.arange(6.0).reshape(3, 2), np.array([2, 0], np.int32))
    z = np.arange(6.0).reshape(3, 2)[[2, 0]] * 2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got[0], e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    names = re.findall(r"load_kernel\('(g_\w+)'\)", f.source)
    sources = [(cache.module_dir() / f"{n}.py").read_text() for n in names]
    assert any("runtime.new_array(" in text for text in sources)
    assert not any("np.empty(" in text for text in sources + [f.source])
