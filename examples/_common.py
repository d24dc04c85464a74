"""Command-line plumbing shared by the examples: common options, data files, output directory, mode."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The models multiply small matrices, where BLAS threads only add overhead (and stall badly on a busy
# machine). Must be set before NumPy is imported; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

import symflow  # noqa: E402
from models.data import DataFileError, find_data_file  # noqa: E402


def parser(name: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the options every example takes: --out, --mode, --seed, --quiet."""
    p = argparse.ArgumentParser(prog=f"{name}.py", description=description, epilog=epilog,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs") / name,
                   help="directory for the outputs (model file, training-curve PNG, generated text)")
    p.add_argument("--mode", choices=["numba", "py"], default=None,
                   help="symflow compile mode (default: symflow.config.mode, i.e. $SYMFLOW_MODE or the library's)")
    p.add_argument("--seed", type=int, default=0, help="random seed for initial weights, data order and sampling")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def positive_int(text: str) -> int:
    """An argparse type for counts that must be at least 1 (``--epochs 0`` would leave nothing to plot)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_data_argument(p: argparse.ArgumentParser, filename: str) -> None:
    p.add_argument("--data", default=None,
                   help=f"path to {filename}, or a directory holding it (default: $SYMFLOW_DATA/{filename})")


def data_file(args: argparse.Namespace, filename: str) -> Path:
    """The data file named by --data or $SYMFLOW_DATA; exits with what to download when it is missing."""
    try:
        return find_data_file(filename, args.data)
    except DataFileError as e:
        sys.exit(f"error: {e}")


def setup(args: argparse.Namespace) -> Path:
    """Apply --mode and create the output directory; returns it."""
    if args.mode is not None:
        if args.mode == "numba":
            x = symflow.tensor.vector("x")
            try:
                symflow.function([x], x + 1, mode="numba")
            except ImportError as e:
                sys.exit(f"error: the compiled (numba) backend is not available ({e}); run with --mode py")
        symflow.config.mode = args.mode
    args.out.mkdir(parents=True, exist_ok=True)
    return args.out


def save_outputs(model: object, out: Path, name: str, title: str) -> None:
    """Save the model and, when matplotlib is there, the training curves; print where they went."""
    path = model.save(out / f"{name}.npz")  # type: ignore[attr-defined]
    print(f"saved model: {path}")
    try:
        png = model.plot_history(out / f"{name}_history.png", title)  # type: ignore[attr-defined]
        print(f"saved training curves: {png}")
    except ImportError as e:
        print(f"skipped the training-curve plot: {e}")
