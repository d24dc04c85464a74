"""Global settings: float precision, default compile mode, cache location.

Each setting reads its environment variable once at import and can be changed
afterwards by assignment, e.g. ``symflow.config.floatX = "float32"``.
"""

from __future__ import annotations

import os
from pathlib import Path

_FLOATS = ("float32", "float64")
_MODES = ("numba", "py")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symflow"


class _Config:
    """The settings object exposed as ``symflow.config``."""

    def __init__(self) -> None:
        self.floatX = os.environ.get("SYMFLOW_FLOATX", "float64")
        self.mode = os.environ.get("SYMFLOW_MODE", "numba")
        self.cache_dir = Path(os.environ.get("SYMFLOW_CACHE_DIR") or _default_cache_dir())
        #: what to do when an op has no Numba code: "warn" (run on NumPy) or "raise"
        self.numba_fallback = os.environ.get("SYMFLOW_NUMBA_FALLBACK", "warn")
        #: fill every array the compiled code allocates with NaN (or a large integer), so that
        #: reading memory before writing it shows; for testing symflow itself
        self.poison_memory = os.environ.get("SYMFLOW_POISON_MEMORY", "") not in ("", "0")
        #: on glibc, ask malloc to keep large freed blocks for reuse instead of handing them back to
        #: the system after every call (set when the first function is compiled with Numba; see
        #: docs/performance.md); SYMFLOW_KEEP_FREED_MEMORY=0 leaves malloc's settings alone
        self.keep_freed_memory = os.environ.get("SYMFLOW_KEEP_FREED_MEMORY", "1") not in ("", "0")
        #: compiled functions (mode="numba") store a subnormal float (below 2.2e-308 in float64, 1.2e-38
        #: in float32) as zero when a loop writes a shared variable's new value in place: on x86 a
        #: subnormal makes arithmetic ~50 times slower, and momentum's decay leads to them. The NumPy
        #: backend keeps them. SYMFLOW_FLUSH_SUBNORMALS=0 keeps them in compiled code too
        self.flush_subnormals = os.environ.get("SYMFLOW_FLUSH_SUBNORMALS", "1") not in ("", "0")

    def __setattr__(self, name: str, value: object) -> None:
        if name == "floatX" and value not in _FLOATS:
            raise ValueError(f"symflow.config.floatX must be one of {_FLOATS}, got {value!r}")
        if name == "mode" and value not in _MODES:
            raise ValueError(f"symflow.config.mode must be one of {_MODES}, got {value!r}")
        if name == "numba_fallback" and value not in ("warn", "raise"):
            raise ValueError(f"symflow.config.numba_fallback must be 'warn' or 'raise', got {value!r}")
        if name == "cache_dir":
            value = Path(value)  # type: ignore[arg-type]
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"symflow.config(floatX={self.floatX!r}, mode={self.mode!r}, cache_dir='{self.cache_dir}')"


config = _Config()
