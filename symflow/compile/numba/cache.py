"""The on-disk store of generated modules.

A generated module is named by the hash of its source, which records the versions of
symflow, Numba and NumPy, so a changed graph or library never matches an old entry. Numba
keeps the compiled code beside it. A second process building the same function imports the
module and Numba loads the compiled code instead of compiling. Files are written atomically
(temporary file, then rename), so concurrent processes never see half a file; an entry Numba
cannot read is deleted and compiled again, with a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import types
import warnings
from pathlib import Path

from ...config import config

_PACKAGE = "_symflow_generated"


def source_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def module_dir() -> Path:
    path = Path(config.cache_dir) / "generated"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=".py")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _numba_cache_dir(path: Path) -> Path:
    from numba.core.caching import _CacheLocator

    return Path(config.cache_dir) / "numba" / _CacheLocator.get_suitable_cache_subpath(str(path))


def _clear_compiled(path: Path) -> None:
    """Delete Numba's cached code for one generated module."""
    stem = path.stem
    for directory in (_numba_cache_dir(path), path.parent / "__pycache__"):
        if directory.is_dir():
            for f in directory.glob(f"{stem}.*"):
                f.unlink(missing_ok=True)


def load_module(source: str) -> types.ModuleType:
    """Import (compiling or loading from cache) the generated module with this source."""
    key = source_key(source)
    name = f"{_PACKAGE}.sf_{key}"
    if name in sys.modules:
        return sys.modules[name]
    path = module_dir() / f"sf_{key}.py"
    try:
        current = path.read_text() if path.exists() else None
    except OSError:
        current = None
    if current != source:
        if current is not None:
            warnings.warn(f"symflow: generated module {path.name} did not match its hash; rewriting it", stacklevel=4)
            _clear_compiled(path)
        _write_atomically(path, source)
    try:
        return _import(name, path)
    except Exception as first:
        if not _has_compiled(path):
            raise
        warnings.warn(f"symflow: could not load the cached compiled code for {path.name} ({type(first).__name__}: "
                      f"{first}); compiling it again", stacklevel=4)
        _clear_compiled(path)
        return _import(name, path)


def _has_compiled(path: Path) -> bool:
    d = _numba_cache_dir(path)
    return d.is_dir() and any(d.glob(f"{path.stem}.*"))


def _import(name: str, path: Path) -> types.ModuleType:
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(_PACKAGE)
        package.__path__ = []  # a namespace for generated modules
        sys.modules[_PACKAGE] = package
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import generated module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def clear_cache() -> None:
    """Remove every generated module and compiled kernel from ``config.cache_dir``."""
    for sub in ("generated", "numba"):
        shutil.rmtree(Path(config.cache_dir) / sub, ignore_errors=True)
