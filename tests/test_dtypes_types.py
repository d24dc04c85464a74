"""Dtype names and promotion rules, and TensorType: construction, descriptions, value checks."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow import dtypes
from symflow.types import TensorType, tensor_type


@pytest.mark.parametrize("spec, name", [("float32", "float32"), (np.float64, "float64"), (np.dtype("int8"), "int8"),
                                        ("floatX", "float64"), (bool, "bool"), ("uint16", "uint16")])
def test_as_dtype(spec: object, name: str) -> None:
    assert dtypes.as_dtype(spec) == name


def test_unsupported_dtypes_are_refused() -> None:
    with pytest.raises(TypeError, match="not supported"):
        dtypes.as_dtype("complex128")
    with pytest.raises(TypeError, match="not supported"):
        dtypes.as_dtype("float16")
    with pytest.raises(TypeError, match="not a dtype"):
        dtypes.as_dtype(object())


@pytest.mark.parametrize("args, result", [
    (("float32", "float64"), "float64"), (("int32", "float32"), "float64"), (("int8", "float32"), "float32"),
    (("int16", "int32"), "int32"), (("uint8", "int8"), "int16"), (("bool", "int8"), "int8"),
    (("int64", "float32"), "float64"), (("float32",), "float32"),
])
def test_upcast(args: tuple[str, ...], result: str) -> None:
    assert dtypes.upcast(*args) == result


def test_upgrade_to_float_and_kinds() -> None:
    assert dtypes.upgrade_to_float("float32") == "float32"
    assert dtypes.upgrade_to_float("int32") == "float64"
    assert dtypes.upgrade_to_float("int64") == "float64"
    assert dtypes.is_float("float32") and not dtypes.is_float("int32")
    assert dtypes.is_int("uint8") and not dtypes.is_int("bool")
    assert dtypes.is_discrete("bool") and dtypes.is_discrete("int64") and not dtypes.is_discrete("float64")


def test_weak_python_scalars() -> None:
    assert dtypes.resolve_weak("float32", [2.0]) == "float32"
    assert dtypes.resolve_weak("int32", [1.5]) == "float64"
    assert dtypes.resolve_weak("int32", [2]) == "int32"
    assert dtypes.resolve_weak("bool", [2]) == "int64"
    assert dtypes.resolve_weak(None, [2, 1.5]) == "float64"
    assert dtypes.resolve_weak(None, [True]) == "bool"
    assert dtypes.fits(300, "int8") is False and dtypes.fits(100, "int8") is True
    assert dtypes.fits(1.5, "int32") is False and dtypes.fits(2.0, "int32") is True
    b = T.vector("b", dtype="int8")  # as docs/porting.md says: an int that does not fit widens to int64
    assert (b + 3).dtype == "int8" and (b + 300).dtype == "int64" and (T.ivector() + 2**40).dtype == "int64"


def test_variable_constructors() -> None:
    cases = {
        T.scalar(): ("float64", ()), T.vector(): ("float64", (False,)), T.matrix(): ("float64", (False, False)),
        T.row(): ("float64", (True, False)), T.col(): ("float64", (False, True)),
        T.tensor3(): ("float64", (False,) * 3), T.tensor4(): ("float64", (False,) * 4),
        T.ivector(): ("int32", (False,)), T.iscalar(): ("int32", ()), T.fmatrix(): ("float32", (False, False)),
        T.lvector(): ("int64", (False,)), T.dmatrix(): ("float64", (False,) * 2),
        T.bvector(): ("int8", (False,)), T.wvector(): ("int16", (False,)), T.ftensor3(): ("float32", (False,) * 3),
        T.matrix(dtype="int16"): ("int16", (False, False)), T.tensor("float32", (True,)): ("float32", (True,)),
    }
    for v, (dtype, bcast) in cases.items():
        assert (v.dtype, v.broadcastable, v.ndim) == (dtype, bcast, len(bcast))
    assert T.matrix("X").name == "X"
    with pytest.raises(TypeError, match="always makes"):
        T.ivector("x", dtype="float32")


def test_tensor_type() -> None:
    t = TensorType("float32", (True, False))
    assert t.ndim == 2 and t.dtype == "float32"
    assert t == TensorType(np.float32, [1, 0]) and hash(t) == hash(TensorType("float32", (True, False)))
    assert t.describe() == "float32 row" and str(t) == "float32(1,?)"
    assert TensorType("int32", (False,)).describe() == "int32 vector"
    assert TensorType("float64", (False, True)).describe() == "float64 col"
    assert tensor_type("float64", 5).describe() == "float64 5-d tensor"
    assert t.with_dtype("float64") == TensorType("float64", (True, False))
    x = t("x")
    assert isinstance(x, sf.Variable) and x.type == t and x.name == "x"


def test_value_problem() -> None:
    t = TensorType("float64", (True, False))
    assert t.value_problem(np.zeros((1, 3))) is None
    assert "ndim" in t.value_problem(np.zeros(3))
    assert "dtype" in t.value_problem(np.zeros((1, 3), "float32"))
    assert "broadcastable" in t.value_problem(np.zeros((2, 3)))


def test_floatx() -> None:
    old = sf.config.floatX
    try:
        sf.config.floatX = "float32"
        assert dtypes.as_dtype("floatX") == "float32" and T.matrix().dtype == "float32"
        assert sf.shared(1.5).dtype == "float32" and sf.shared([1.0, 2.0]).dtype == "float32"
    finally:
        sf.config.floatX = old
    assert "floatX='float64'" in repr(sf.config)


def test_settings_are_checked_where_they_are_read() -> None:
    """On/off settings take 1/true/yes/on and 0/false/no/off from the environment (anything else is an
    error naming the variable) and True or False by assignment; floatX is kept as a name."""
    script = "import symflow; c = symflow.config; print(c.poison_memory, c.flush_subnormals, c.keep_freed_memory)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMFLOW_")}
    for values, printed in [({"SYMFLOW_POISON_MEMORY": "Yes", "SYMFLOW_FLUSH_SUBNORMALS": "off",
                              "SYMFLOW_KEEP_FREED_MEMORY": "false"}, "True False False"), ({}, "False True True")]:
        done = subprocess.run([sys.executable, "-c", script], env={**env, **values}, capture_output=True, text=True)
        assert done.stdout.strip() == printed, done.stderr
    for variable, value in [("SYMFLOW_FLUSH_SUBNORMALS", "maybe"), ("SYMFLOW_FLOATX", "float16"),
                            ("SYMFLOW_REWRITE_ERRORS", "ignore"), ("SYMFLOW_NUMBA_FALLBACK", "no")]:
        done = subprocess.run([sys.executable, "-c", script], env={**env, variable: value}, capture_output=True,
                              text=True)
        assert done.returncode != 0 and f"ValueError: {variable}" in done.stderr, done.stderr
    for name in ("rewrite_errors", "numba_fallback"):
        with pytest.raises(ValueError, match=f"config.{name} must be one of \\('warn', 'raise'\\), got 'off'"):
            setattr(sf.config, name, "off")
    done = subprocess.run([sys.executable, "-c", "import symflow; print(symflow.config.rewrite_errors)"],
                          env={**env, "SYMFLOW_REWRITE_ERRORS": "raise"}, capture_output=True, text=True)
    assert done.stdout.strip() == "raise", done.stderr
    old = sf.config.flush_subnormals
    try:
        with pytest.raises(ValueError, match="flush_subnormals must be True or False, got 'no'"):
            sf.config.flush_subnormals = "no"
        sf.config.flush_subnormals = 0
        assert sf.config.flush_subnormals is False
    finally:
        sf.config.flush_subnormals = old
    old_floatx = sf.config.floatX
    try:
        sf.config.floatX = np.dtype("float32")
        assert sf.config.floatX == "float32" and type(sf.config.floatX) is str
    finally:
        sf.config.floatX = old_floatx
