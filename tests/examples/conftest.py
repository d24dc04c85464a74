"""Example runs use the NumPy backend by default; set SYMFLOW_MODEL_TEST_MODES=py,numba to add others
(see tests/test_models/conftest.py)."""

from __future__ import annotations

import os

import pytest

MODES = os.environ.get("SYMFLOW_MODEL_TEST_MODES", "py").split(",")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param
