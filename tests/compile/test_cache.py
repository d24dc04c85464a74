"""The disk cache: a second process loads compiled code; damaged or concurrent use never breaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = """
import json, warnings
import numpy as np
import symflow as sf, symflow.tensor as T
x = T.vector('x')
w = sf.shared(np.arange(3.0), name='w')
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    f = sf.function([x], (x * w).sum() + T.exp(x).sum(), mode='numba')
    value = float(f(np.ones(3)))
print(json.dumps({'cached': f._run.loaded_from_cache, 'value': value,
                  'warnings': [str(w.message) for w in caught if 'symflow' in str(w.message)]}))
"""
EXPECTED = 3.0 + 3 * float(__import__("math").e)


def _start(cache: Path) -> subprocess.Popen:
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def run(cache: Path) -> dict:
    return _result(_start(cache))


def test_second_process_loads_compiled_code(tmp_path: Path) -> None:
    first = run(tmp_path)
    second = run(tmp_path)
    assert not first["cached"]
    assert second["cached"]
    assert first["value"] == second["value"] == EXPECTED


MAIN_LIBRARY_SCRIPT = """
import json, sys
import numpy as np
import symflow as sf, symflow.tensor as T
offset = float(sys.argv[1])
x = T.vector('x')
w = sf.shared(np.arange(3.0), name='w')
f = sf.function([x], (x * w).sum() + T.exp(x).sum(), mode='numba')
from symflow.compile.numba.cache import load_module
(library,) = [compiled.library for compiled in load_module(f.source).symflow_main.overloads.values()]
g = sf.function([x], (x * w).sum() + T.exp(x).sum() + offset, mode='numba')  # compiled now, same kernels
print(json.dumps({'cached': f._run.loaded_from_cache, 'library': type(library).__name__,
                  'ir_kept': getattr(library, '_shared_module', None) is not None,
                  'f': float(f(np.ones(3))), 'g': float(g(np.ones(3)))}))
"""


def test_a_main_function_is_cached_as_machine_code_without_its_ir(tmp_path: Path) -> None:
    """A main function's cache entry holds its machine code and the names it defines
    (``jit.MainLibrary``), not its IR, which no function links: a second process loads it without
    parsing IR, runs it, and compiles and runs another function using the same kernels."""
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(tmp_path))
    runs = []
    for offset in np.random.default_rng().uniform(1, 2, size=2):  # g is new in each process
        done = subprocess.run([sys.executable, "-c", MAIN_LIBRARY_SCRIPT, repr(float(offset))], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append((offset, json.loads(done.stdout.strip().splitlines()[-1])))
    (_, first), (offset, second) = runs
    assert not first["cached"] and second["cached"]
    assert first["library"] == second["library"] == "MainLibrary"
    assert not second["ir_kept"]
    assert second["f"] == EXPECTED and second["g"] == pytest.approx(EXPECTED + offset, rel=1e-12)


def test_damaged_compiled_code_is_recompiled_with_a_warning(tmp_path: Path) -> None:
    run(tmp_path)
    damaged = list((tmp_path / "numba").rglob("*.nbc"))
    assert damaged
    for f in damaged:
        f.write_bytes(b"not a pickle")
    result = run(tmp_path)
    assert result["value"] == EXPECTED
    assert any("compil" in w for w in result["warnings"]), result["warnings"]


def test_edited_generated_source_is_rewritten(tmp_path: Path) -> None:
    run(tmp_path)
    (main,) = (tmp_path / "generated").glob("sf_*.py")
    main.write_text(main.read_text() + "\n# edited\n")
    result = run(tmp_path)
    assert result["value"] == EXPECTED
    assert any("did not match" in w for w in result["warnings"]), result["warnings"]


def test_generated_files_that_are_not_text_are_written_again(tmp_path: Path) -> None:
    run(tmp_path)
    for generated in (tmp_path / "generated").glob("*.py"):  # the main module and the kernels
        generated.write_bytes(b"\xff\xfe" + generated.read_bytes())
    result = run(tmp_path)
    assert result["value"] == EXPECTED
    assert any("did not match" in w for w in result["warnings"]), result["warnings"]
    assert run(tmp_path)["cached"]


def test_a_cache_directory_that_cannot_be_written_is_replaced_by_a_temporary_one(tmp_path: Path) -> None:
    """Here the directory is a file (a read-only one, which root can write, is the same case): the
    function compiles in a temporary directory, with a warning naming SYMFLOW_CACHE_DIR, and Numba
    keeps nothing anywhere else."""
    cache = tmp_path / "a file"
    cache.write_text("not a directory")
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(cache), NUMBA_CACHE_DIR=str(tmp_path / "numba's own"))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["value"] == EXPECTED and not result["cached"]
    assert any("cannot write the cache directory" in w and "SYMFLOW_CACHE_DIR" in w for w in result["warnings"])
    assert not (tmp_path / "numba's own").exists()
    assert cache.read_text() == "not a directory"


def test_concurrent_processes_share_one_cache(tmp_path: Path) -> None:
    processes = [_start(tmp_path) for _ in range(3)]
    results = [_result(p) for p in processes]
    assert all(r["value"] == EXPECTED for r in results)
    assert run(tmp_path)["cached"]


LIGHT_LOAD_SCRIPT = """
import json, os, sys
import numpy as np
import symflow as sf, symflow.tensor as T
x = T.vector('x')
w = sf.shared(np.arange(3.0), name='w')
f = sf.function([x], (x * w).sum() + T.exp(x).sum(), mode='numba')
registries = 'numba.np.linalg' in sys.modules  # imported by Numba's registry refresh
value = float(f(np.ones(3)))
offset = float(os.getpid())  # a constant no other process used: this function must be compiled
g = sf.function([x], (x * w).sum() + offset, mode='numba')
print(json.dumps({'cached': f._run.loaded_from_cache, 'registries': registries, 'value': value,
                  'other': float(g(np.ones(3))), 'offset': offset, 'other_cached': g._run.loaded_from_cache}))
"""


def test_loading_skips_numbas_registries_and_compiling_still_works(tmp_path: Path) -> None:
    """A cache hit loads without Numba's registry refresh (most of a warm start); a function compiled
    afterwards in the same process gets the full refresh from Numba's compiler and runs correctly."""
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(tmp_path))
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", LIGHT_LOAD_SCRIPT], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert not first["cached"] and first["registries"]
    assert second["cached"] and not second["registries"]
    for run_ in runs:
        assert run_["value"] == EXPECTED
        assert not run_["other_cached"]
        assert run_["other"] == 3.0 + run_["offset"]


def test_a_moved_cache_directory_is_used_where_it_is(tmp_path: Path) -> None:
    """A cache directory that was moved works, and nothing is written where it was: the stored Python
    code of its modules names their old files, from which Numba would locate compiled code."""
    import shutil

    old, new = tmp_path / "old", tmp_path / "new"
    first = run(old)
    shutil.move(old, new)
    moved = run(new)
    assert moved["value"] == first["value"] == EXPECTED
    assert not old.exists()
    assert run(new)["cached"]


def test_module_code_is_kept_and_checked(tmp_path: Path) -> None:
    """The compiled code of a generated module is stored beside it and used only for the same source;
    a damaged copy is compiled again."""
    from symflow.compile.numba.cache import _module_code

    path = tmp_path / "sf_test.py"
    path.write_text("VALUE = 1\n")
    first = _module_code(path)
    (stored,) = (tmp_path / "__pycache__").glob("sf_test.*.code")
    assert _module_code(path).co_code == first.co_code

    def value(code: object) -> object:
        namespace: dict[str, object] = {}
        exec(code, namespace)  # noqa: S102 - the test's own module
        return namespace["VALUE"]

    data = bytearray(stored.read_bytes())
    data[-3] ^= 0xFF
    stored.write_bytes(bytes(data))
    assert value(_module_code(path)) == 1
    assert stored.read_bytes() != bytes(data)  # rewritten
    path.write_text("VALUE = 2\n")
    assert value(_module_code(path)) == 2
    assert value(_module_code(path)) == 2


def test_loading_falls_back_to_numbas_lookup_if_its_internals_change(monkeypatch, tmp_path: Path) -> None:
    """``LoadingCache`` uses two private methods of Numba's cache; without them (another Numba
    version) it takes Numba's own lookup, registry refresh included, and still loads."""
    import numba

    from symflow.compile.numba.jit import LoadingCache

    source = tmp_path / "cached_fn.py"
    source.write_text("def double(x):\n    return 2 * x\n")
    namespace: dict = {"__name__": "cached_fn", "__file__": str(source)}
    exec(compile(source.read_text(), str(source), "exec"), namespace)  # noqa: S102 - the test's own code
    monkeypatch.delattr(numba.core.caching.Cache, "_load_overload")
    calls = []
    monkeypatch.setattr(numba.core.caching.Cache, "load_overload",
                        lambda self, sig, ctx: calls.append(sig))  # Numba's own lookup: a miss
    dispatcher = numba.njit(namespace["double"])
    dispatcher._cache = LoadingCache(namespace["double"])
    dispatcher.compile((numba.float64,))
    assert calls and dispatcher(2.5) == 5.0


def test_generated_source_names_the_modules_that_shape_its_compiled_code() -> None:
    """The cache key is the generated source, so it carries a hash of each module whose code changes
    what Numba makes of it: the runtime (compiled into it) and the lowering of main functions (jit)."""
    import numpy as np

    import symflow as sf
    import symflow.tensor as T
    from symflow.compile.numba import jit, runtime
    from symflow.compile.numba.codegen import module_fingerprint

    x = T.vector("x")
    f = sf.function([x], x * 2, mode="numba")
    np.testing.assert_array_equal(f(np.ones(2)), [2.0, 2.0])
    for module in (jit, runtime):
        assert module_fingerprint(module) in f.source, module.__name__


BLAS_SCRIPT = """
import sys
import numpy as np
import symflow as sf, symflow.tensor as T
warm = sys.argv[1] == 'warm'  # (compiling loads all of Numba's linear algebra, scipy.linalg included)
x = T.matrix('x')
doubled = sf.function([x], x * 2, mode='numba')
doubled(np.ones((2, 2)))
assert not warm or 'scipy.linalg.cython_blas' not in sys.modules  # no matrix product: nothing loaded
product = sf.function([x], x.dot(x.T), mode='numba')
value = np.arange(1600.0).reshape(40, 40) / 1000  # 64,000 multiply-adds: BLAS
np.testing.assert_allclose(product(value), value @ value.T, rtol=1e-12)
assert not warm or ('scipy.linalg.cython_blas' in sys.modules and 'scipy.linalg' not in sys.modules)
import scipy.linalg
from scipy.linalg import blas, cython_blas
np.testing.assert_allclose(blas.dgemm(1.0, value, value.T), value @ value.T, rtol=1e-12)
print(len(cython_blas.__pyx_capi__))
"""


def test_matrix_products_load_blas_without_importing_scipy_linalg(tmp_path: Path) -> None:
    """A function whose kernels call BLAS loads SciPy's BLAS bindings (the extension module alone,
    which Numba calls into) when it is built from the cache: a warm start does not pay for
    ``scipy.linalg``'s own import at the first product. SciPy imported later by the user works."""
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(tmp_path))
    for phase in ("cold", "warm"):
        done = subprocess.run([sys.executable, "-c", BLAS_SCRIPT, phase], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{phase}: {done.stderr}"
        assert int(done.stdout.strip().splitlines()[-1]) > 0


def test_a_kernel_file_carries_hashes_of_the_code_it_compiles_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated kernel's file names hashes of ``runtime`` (whose functions it inlines) and ``jit``
    (its options), so a change of either rewrites the file, and Numba compiles the kernel again."""
    from symflow.compile.numba import cache, jit, runtime
    from symflow.compile.numba.codegen import module_fingerprint

    source = f"def kernel(x):\n    return x + {np.random.default_rng().integers(1 << 40)}\n"
    name = "g_test_" + cache.source_key(source)
    path = cache.module_dir() / f"{name}.py"
    cache.store_kernel(name, source)
    text = path.read_text()
    assert module_fingerprint(runtime) in text and module_fingerprint(jit) in text
    monkeypatch.setattr(cache, "kernel_header", lambda: cache.KERNEL_HEADER.format(runtime="0" * 16, jit="0" * 16))
    cache.store_kernel(name, source)
    assert path.read_text() != text and path.read_text().endswith(source)


def test_symflows_own_kernels_are_cached_per_version_of_runtime_and_jit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Numba checks only a function's own file before loading its cached code, yet symflow's fixed
    kernels compile in ``runtime``'s intrinsics (``ops.dot.blas_gemm`` calls ``runtime.xgemm``): their
    cache folder is named by a hash of ``runtime.py`` and ``jit.py``, so a change of either compiles
    them again. Generated modules keep their place (their source carries the hashes)."""
    import hashlib

    from symflow.compile.numba import cache, jit, runtime
    from symflow.ops import dot as dot_module

    def digest(module: object) -> str:
        return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]  # type: ignore[attr-defined]

    assert jit.support_fingerprint() == f"{digest(runtime)}-{digest(jit)}"

    def folder() -> str:
        locator = jit.SymflowCacheLocator.from_function(dot_module.gemm, dot_module.__file__)
        return locator.get_cache_path()  # type: ignore[no-any-return,union-attr]

    here = folder()
    assert f"symflow-{jit.support_fingerprint()}" in here
    monkeypatch.setattr(jit, "support_fingerprint", lambda: "0" * 16)
    assert folder() != here and "symflow-" + "0" * 16 in folder()
    generated = cache.module_dir() / "g_test_locator.py"
    generated.parent.mkdir(parents=True, exist_ok=True)
    generated.write_text("def kernel(x):\n    return x\n")
    locator = jit.SymflowCacheLocator.from_function(dot_module.gemm, str(generated))
    assert "symflow-" not in locator.get_cache_path()  # type: ignore[union-attr]


def test_kernels_are_kept_as_ir_and_run_compiled_into_their_callers() -> None:
    """A kernel compiles to optimised LLVM IR only (``jit.KernelLibrary``), with no machine code of its
    own: it runs as the copy compiled into each caller. Its disk cache entry holds that IR; a new
    dispatcher of the same kernel loads it, and a caller compiled against the loaded kernel runs it."""
    import numba

    from symflow.compile.numba import cache, jit

    offset = int(np.random.default_rng().integers(1 << 40))  # a kernel no earlier run has cached
    source = f"def kernel(x, out):\n    for i in range(x.shape[0]):\n        out[i] = 2.0 * x[i] + {offset}\n"
    name = "g_test_" + cache.source_key(source)
    cache.store_kernel(name, source)
    x = np.arange(5.0)
    for attempt in ("compiled", "loaded"):
        sys.modules.pop(f"{cache._PACKAGE}.{name}", None)  # import the file again: a new dispatcher
        kernel = cache.load_kernel(name)
        kernel.compile((numba.float64[::1], numba.float64[::1]))
        assert sum(kernel.stats.cache_hits.values()) == (attempt == "loaded")
        (library,) = [compiled.library for compiled in kernel.overloads.values()]
        assert isinstance(library, jit.KernelLibrary), attempt
        assert getattr(library, "_compiled_object", None) is None  # Numba's hook stores any machine code made
        assert library.serialize_using_object_code()[1] == jit.KERNEL_IR
        np.testing.assert_array_equal(_called_from_compiled_code(kernel, x), 2.0 * x + offset)


def _called_from_compiled_code(kernel: object, x: np.ndarray) -> np.ndarray:
    """``kernel(x, out)`` run from a function compiled now (kernels have no Python wrapper)."""
    import numba

    @numba.njit
    def call(x, out):  # type: ignore[no-untyped-def]
        kernel(x, out)  # type: ignore[operator]

    out = np.zeros_like(x)
    call(x, out)
    return out


def test_importing_symflow_does_not_import_numba() -> None:
    """Numba loads only when a function is compiled for it (about 0.3 s of every start): the op
    modules' kernels name ``runtime``'s intrinsics (``gemm.intrinsics``), which ``jit_kernel``
    binds when it compiles them, instead of importing ``runtime``."""
    script = "import sys, symflow, symflow.tensor; print('numba' in sys.modules, 'llvmlite' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
