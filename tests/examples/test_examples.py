"""Each example runs as a script: --help, a quick run on tiny settings writing its outputs, the parity
example reaching 100%, the poetry classifier beating chance on the real poems, and missing data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import load_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ["parity", "poetry_generation", "poetry_classifier", "language_model", "char_lstm"]


def run(name: str, *args: str, env_data: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SYMFLOW_DATA"}
    env["OPENBLAS_NUM_THREADS"] = "1"
    if env_data is not None:
        env["SYMFLOW_DATA"] = env_data
    result = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], capture_output=True, text=True,
                            env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def _check_outputs(out: Path, model_file: str) -> None:
    assert (out / model_file).is_file()
    load_model(out / model_file)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    png = out / model_file.replace(".npz", "_history.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", NAMES)
def test_help(name: str) -> None:
    text = run(name, "--help").stdout
    for option in ("--out", "--mode", "--epochs", "--seed"):
        assert option in text
    if name != "parity":
        assert "--data" in text


@pytest.mark.parametrize("name", NAMES)
def test_zero_epochs_is_refused_with_a_clear_message(name: str, tmp_path: Path) -> None:
    """Training zero epochs would leave an empty history to plot; argparse refuses it up front."""
    result = run(name, "--epochs", "0", "--out", str(tmp_path / "out"), check=False)
    assert result.returncode == 2
    assert "argument --epochs: must be at least 1, got 0" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_parity_reaches_100_percent(tmp_path: Path, mode: str) -> None:
    stdout = run("parity", "--mode", mode, "--quiet", "--out", str(tmp_path)).stdout
    assert "accuracy over all steps: 1.0000" in stdout
    assert "parity of the whole string: 1.0000" in stdout
    _check_outputs(tmp_path, "parity.npz")


def test_poetry_classifier_beats_chance_on_real_poems(tmp_path: Path, data_dir: Path, mode: str) -> None:
    stdout = run("poetry_classifier", "--mode", mode, "--quiet", "--data", str(data_dir), "--epochs", "5",
                 "--out", str(tmp_path)).stdout
    accuracy = float(stdout.split("validation accuracy:")[1].split()[0])
    assert accuracy > 0.7, stdout  # chance is 0.5: both poets get the same number of lines
    _check_outputs(tmp_path, "poetry_classifier.npz")


def test_poetry_classifier_tiny_bidirectional(tmp_path: Path, data_dir: Path, mode: str) -> None:
    run("poetry_classifier", "--mode", mode, "--quiet", "--data", str(data_dir), "--samples-per-class", "30",
        "--epochs", "1", "--unit", "lstm", "--hidden", "4", "--embed", "4", "--bidirectional", "--dropout", "0.2",
        "--out", str(tmp_path))
    _check_outputs(tmp_path, "poetry_classifier.npz")


def test_poetry_generation_prints_four_lines(tmp_path: Path, data_dir: Path, mode: str) -> None:
    stdout = run("poetry_generation", "--mode", mode, "--quiet", "--max-lines", "60", "--epochs", "1",
                 "--vocab-size", "100", "--embed", "8", "--hidden", "8", "--batch-size", "16", "--out", str(tmp_path),
                 env_data=str(data_dir)).stdout
    lines = (tmp_path / "generated.txt").read_text().splitlines()
    assert len(lines) == 4
    assert "\n".join(lines) in stdout
    _check_outputs(tmp_path, "poetry_lm.npz")


def test_language_model_with_lstm_and_analogies(tmp_path: Path, data_dir: Path, mode: str) -> None:
    stdout = run("language_model", "--mode", mode, "--quiet", "--data", str(data_dir / "tinyshakespeare.txt"),
                 "--unit", "lstm", "--max-sentences", "150", "--epochs", "1", "--vocab-size", "300", "--embed", "6",
                 "--hidden", "6", "--bptt-truncate", "4", "--analogy", "the,a,you", "--analogy", "xyzzy,man,woman",
                 "--out", str(tmp_path)).stdout
    assert "the - a = ? - you:  euclidean: " in stdout and "cosine: " in stdout
    assert "xyzzy,man,woman: skipped, not in the vocabulary: xyzzy" in stdout
    assert (tmp_path / "analogies.txt").read_text().count("\n") == 2
    _check_outputs(tmp_path, "lstm_language_model.npz")


def test_char_lstm_samples_at_each_temperature(tmp_path: Path, data_dir: Path, mode: str) -> None:
    run("char_lstm", "--mode", mode, "--quiet", "--data", str(data_dir), "--max-lines", "40", "--epochs", "1",
        "--embed", "4", "--hidden", "8", "--lines", "2", "--temperature", "0.5", "2.0", "--prefix", "First",
        "--out", str(tmp_path))
    text = (tmp_path / "generated.txt").read_text().splitlines()
    assert text[0] == "--- temperature 0.5" and text[3] == "--- temperature 2.0"
    assert all(line.startswith("First") for line in text[1:3] + text[4:6])
    model = load_model(tmp_path / "char_lstm.npz")
    assert model.vocab.joiner == "" and model.units()[0].__class__.__name__ == "LSTM"
    assert np.isfinite(model.perplexity([model.vocab.encode(list("First"))]))


@pytest.mark.parametrize(("name", "needed", "source"), [
    ("poetry_generation", "robert_frost.txt", "gutenberg"),
    ("poetry_classifier", "edgar_allan_poe.txt", "gutenberg"),
    ("language_model", "tinyshakespeare.txt", "karpathy/char-rnn"),
    ("char_lstm", "tinyshakespeare.txt", "karpathy/char-rnn"),
])
def test_missing_data_says_what_to_download(name: str, needed: str, source: str, tmp_path: Path) -> None:
    result = run(name, "--out", str(tmp_path / "out"), check=False)
    assert result.returncode != 0
    assert needed in result.stderr and source in result.stderr and "--data" in result.stderr
    assert "Traceback" not in result.stderr
    result = run(name, "--out", str(tmp_path / "out"), env_data=str(tmp_path), check=False)
    assert result.returncode != 0 and "SYMFLOW_DATA" in result.stderr
