"""The model file format: an uncompressed ``.npz`` holding a format marker, a version, the model's
kind and JSON configuration, and every parameter array.

Version 2 adds the optimizer state (the arrays ``optimizer.N.J`` and the configuration's
``optimizer_state``); a file without optimizer state is written as version 1, which older code reads.

Saving writes a temporary file next to the target and renames it over the target, so an existing
file is never left half-written, and arrays holding NaN or infinite numbers (a diverged model) are
not written at all. Loading checks the marker, version, kind and integrity (finite numbers
included), and says which of them is wrong.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "symflow-models"
VERSION = 2
_META = ("__format__", "__version__", "__kind__", "__config__")


class ModelFileError(ValueError):
    """A file that cannot be loaded as a model: wrong kind, damaged, or from a newer format."""


def save_model_file(path: str | os.PathLike[str], kind: str, config: dict[str, Any],
                    arrays: dict[str, np.ndarray], version: int = VERSION) -> Path:
    """Write ``arrays`` and ``config`` atomically to ``path`` (exactly that name; no suffix is added),
    marked with format ``version`` (the lowest that holds what is written)."""
    if not 1 <= version <= VERSION:
        raise ValueError(f"format version must be in [1, {VERSION}], got {version}")
    path = Path(path)
    try:
        config_text = json.dumps(config)
    except TypeError as e:
        raise ValueError(f"the model configuration cannot be saved: {e}") from None
    payload: dict[str, np.ndarray] = {
        "__format__": np.array(FORMAT), "__version__": np.array(version), "__kind__": np.array(kind),
        "__config__": np.array(config_text),
    }
    for name, value in arrays.items():
        if name in _META:
            raise ValueError(f"parameter name {name!r} is reserved")
        payload[name] = np.asarray(value)
        problem = _non_finite(name, payload[name])
        if problem:
            raise ValueError(f"cannot save to {str(path)!r}: {problem} (has training diverged?); nothing was "
                             "written")
    directory = path.parent if str(path.parent) else Path(".")
    _check_target(path, directory)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, mode)  # mkstemp makes it 0600, which the rename would give the target
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _non_finite(name: str, value: np.ndarray) -> str | None:
    """What is wrong with array ``name`` if it holds NaN or infinite numbers (no model has them), else None."""
    if value.dtype.kind != "f":
        return None
    bad = ~np.isfinite(value)
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{name} holds {int(bad.sum())} NaN or infinite value(s) of {value.size}, the first "
            f"{float(value[first])} at index {first}")


def _check_target(path: Path, directory: Path) -> None:
    """Refuse a target that is a directory, or whose directory is missing or is a file, naming which."""
    if path.is_dir():
        raise IsADirectoryError(f"cannot save to {str(path)!r}: it is a directory; give a file name")
    if directory.is_dir():
        return
    for parent in (directory, *directory.parents):
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"cannot save to {str(path)!r}: {str(parent)!r} is a file, not a directory")
    raise FileNotFoundError(f"cannot save to {str(path)!r}: the directory {str(directory)!r} does not exist")


def _file_mode(path: Path) -> int:
    """The permissions the saved file gets: those of the file it replaces, else the umask's default."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def load_model_file(path: str | os.PathLike[str], expected_kind: str | tuple[str, ...] | None = None
                    ) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """``(kind, config, arrays)`` of a model file, or ModelFileError saying why it is not a usable one."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a directory, not a model file")
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(6)
    if not head:
        raise ModelFileError(f"{str(path)!r} is empty; it is not a model file")
    if head.startswith(b"\x93NUMPY"):
        raise ModelFileError(f"{str(path)!r} is a single NumPy array (.npy), not a model file saved by save()")
    if not head.startswith(b"PK"):
        raise ModelFileError(f"{str(path)!r} is not a model file: expected an .npz archive written by save()")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError, MemoryError) as e:
        raise ModelFileError(f"{str(path)!r} is truncated or corrupted and cannot be read "
                             f"({type(e).__name__}: {e})") from None
    not_arrays = sorted(name for name, value in arrays.items() if not isinstance(value, np.ndarray))
    if not_arrays:
        raise ModelFileError(f"{str(path)!r} is a damaged model file: its member(s) {not_arrays} are not NumPy "
                             "arrays (.npy)")
    if "__format__" not in arrays or str(arrays["__format__"]) != FORMAT:
        raise ModelFileError(f"{str(path)!r} is an .npz archive but not a symflow model file (no {FORMAT!r} "
                             f"marker; arrays: {sorted(arrays)[:6]})")
    missing = [name for name in _META if name not in arrays]
    if missing:
        raise ModelFileError(f"{str(path)!r} is a damaged model file: it lacks the member(s) {missing}")
    version = _scalar(path, arrays["__version__"], "__version__", "iu")
    if version > VERSION:
        raise ModelFileError(f"{str(path)!r} was written by a newer version of the format ({version}); this "
                             f"code reads up to version {VERSION}")
    if version < 1:
        raise ModelFileError(f"{str(path)!r} has format version {version}; versions start at 1")
    kind = _scalar(path, arrays["__kind__"], "__kind__", "U")
    wanted = (expected_kind,) if isinstance(expected_kind, str) else expected_kind
    if wanted is not None and kind not in wanted:
        raise ModelFileError(f"{str(path)!r} holds a {kind}, not a {' or '.join(wanted)}")
    try:
        config = json.loads(_scalar(path, arrays["__config__"], "__config__", "U"))
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{str(path)!r} has a damaged configuration ({e})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{str(path)!r} has a damaged configuration: expected a JSON object, got "
                             f"{type(config).__name__}")
    for name, value in arrays.items():
        problem = _non_finite(name, value)
        if problem:
            raise ModelFileError(f"{str(path)!r} is damaged: {problem}")
    return kind, config, {k: v for k, v in arrays.items() if k not in _META}


def _scalar(path: Path, value: np.ndarray, name: str, kinds: str) -> Any:
    """The Python value of a metadata member, refusing one of the wrong shape or dtype."""
    if value.shape != () or value.dtype.kind not in kinds:
        expected = "an integer" if kinds == "iu" else "a string"
        raise ModelFileError(f"{str(path)!r} is a damaged model file: {name} should be {expected} scalar, got an "
                             f"array of shape {value.shape} and dtype {value.dtype}")
    return value.item()
