"""Global settings: float precision, default compile mode, cache location.

Each setting reads its environment variable once at import and can be changed
afterwards by assignment, e.g. ``symflow.config.floatX = "float32"``.
"""

from __future__ import annotations

import os
from pathlib import Path

_FLOATS = ("float32", "float64")
#: settings that take one of a few strings
_CHOICES = {"mode": ("numba", "py"), "numba_fallback": ("warn", "raise"), "rewrite_errors": ("warn", "raise")}


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symflow"


_FLAGS = ("poison_memory", "keep_freed_memory", "flush_subnormals")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _env_flag(name: str, default: bool) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off (any case; unset: ``default``)."""
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be one of 1, true, yes, on or 0, false, no, off; got {value!r}")


class _Config:
    """The settings object exposed as ``symflow.config``."""

    def __init__(self) -> None:
        for attribute, variable, default in (("floatX", "SYMFLOW_FLOATX", "float64"), ("mode", "SYMFLOW_MODE", "numba"),
                                             ("numba_fallback", "SYMFLOW_NUMBA_FALLBACK", "warn"),
                                             ("rewrite_errors", "SYMFLOW_REWRITE_ERRORS", "warn")):
            try:
                setattr(self, attribute, os.environ.get(variable, default))
            except ValueError as exc:
                raise ValueError(f"{variable}: {exc}") from None
        # numba_fallback says what to do when an op has no Numba code: "warn" (run on NumPy) or "raise";
        # rewrite_errors, when a rewrite fails on a graph (a symflow bug): "warn" (build without it) or "raise"
        self.cache_dir = Path(os.environ.get("SYMFLOW_CACHE_DIR") or _default_cache_dir())
        #: fill every array the compiled code allocates with NaN (or a large integer), so that
        #: reading memory before writing it shows; for testing symflow itself
        self.poison_memory = _env_flag("SYMFLOW_POISON_MEMORY", False)
        #: on glibc, ask malloc to keep large freed blocks for reuse instead of handing them back to
        #: the system after every call (set when the first function is compiled with Numba; see
        #: docs/performance.md); SYMFLOW_KEEP_FREED_MEMORY=0 leaves malloc's settings alone
        self.keep_freed_memory = _env_flag("SYMFLOW_KEEP_FREED_MEMORY", True)
        #: compiled functions (mode="numba") store a subnormal float (below 2.2e-308 in float64, 1.2e-38
        #: in float32) as zero when a loop writes a shared variable's new value in place: on x86 a
        #: subnormal makes arithmetic ~50 times slower, and momentum's decay leads to them. The NumPy
        #: backend keeps them. SYMFLOW_FLUSH_SUBNORMALS=0 keeps them in compiled code too
        self.flush_subnormals = _env_flag("SYMFLOW_FLUSH_SUBNORMALS", True)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "floatX":
            if value not in _FLOATS:
                raise ValueError(f"symflow.config.floatX must be one of {_FLOATS}, got {value!r}")
            value = str(value)  # a NumPy dtype equal to one of them is kept as its name
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"symflow.config.{name} must be one of {_CHOICES[name]}, got {value!r}")
        if name == "cache_dir":
            value = Path(value)  # type: ignore[arg-type]
        if name in _FLAGS:
            if value not in (True, False):  # True, False, 1 or 0
                raise ValueError(f"symflow.config.{name} must be True or False, got {value!r}")
            value = bool(value)
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"symflow.config(floatX={self.floatX!r}, mode={self.mode!r}, cache_dir='{self.cache_dir}')"


config = _Config()
