"""Shared test settings: the backends every op test runs on, and the data directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# the ``mode`` fixture is function-scoped but only names a backend, so it is safe under @given
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("default", max_examples=25, deadline=None, suppress_health_check=_SUPPRESSED)
settings.register_profile("ci", max_examples=15, deadline=None, suppress_health_check=_SUPPRESSED,
                          derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# a missing Numba implementation is a bug here, not something to fall back from
import symflow  # noqa: E402

symflow.config.numba_fallback = "raise"
symflow.config.rewrite_errors = "raise"  # and so is a rewrite that fails on a valid graph
# Tests about a backend ask for one with the ``mode`` fixture (the op suite runs on both); the rest use
# the NumPy reference, since compiling each of them with Numba would add half an hour to a cold run.
# tests/compile/test_numba_backend.py checks that the library's own default is 'numba'.
symflow.config.mode = "py"
symflow.config.poison_memory = True  # compiled code that reads memory it never wrote gives NaN

#: the backends the op suite runs on; results must agree between them
MODES = ["py", "numba"]

DATA_DIR = Path(os.environ.get("SYMFLOW_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"test data not found at {DATA_DIR} (set SYMFLOW_DATA)")
    return DATA_DIR
