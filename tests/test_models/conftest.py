"""Model tests run on the NumPy backend by default; set SYMFLOW_MODEL_TEST_MODES=py,numba to add others.

The models compile many large graphs (training steps with scan and its gradient), so running every test
on every backend is slow; the op and scan suites already compare the backends op by op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import symflow

MODES = os.environ.get("SYMFLOW_MODEL_TEST_MODES", "py").split(",")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _compile_mode(mode: str) -> Iterator[None]:
    """Models compile with ``symflow.config.mode``; set it to the backend under test."""
    saved = symflow.config.mode
    symflow.config.mode = mode
    yield
    symflow.config.mode = saved
