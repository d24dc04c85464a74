"""Elementwise math: every scalar op against NumPy, Theano's dtype and broadcasting rules, and
the gradient of every differentiable op against finite differences.

To keep compilations few on the Numba backend, each test checks all the ops of a table in one
compiled graph (each op on its own inputs); hypothesis varies values and sizes, not types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.errors import InputError, ShapeError
from symflow.ops.elemwise import SCALAR_OPS
from symflow.testing import strategies as sst

#: matrices with sides 2..4: one type, many sizes (no length-1 dims to turn broadcastable)
MATRICES = sst.shapes(min_dims=2, max_dims=2, min_side=2, max_side=4)
HALF_INTEGERS = [k + 0.5 for k in range(-4, 4)]
INTEGERS = list(range(-4, 5))


def _round_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# name -> (builder, NumPy reference, (low, high), values to keep away from); the domains avoid
# kinks, jumps and singularities so the same values serve the gradient checks
UNARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], tuple[float, float], list[float]]] = {
    "neg": (T.neg, np.negative, (-2, 2), []),
    "abs": (T.abs, np.abs, (-2, 2), [0.0]),
    "sgn": (T.sgn, np.sign, (-2, 2), [0.0]),
    "sqr": (T.sqr, np.square, (-2, 2), []),
    "sqrt": (T.sqrt, np.sqrt, (0.1, 3), []),
    "reciprocal": (T.reciprocal, np.reciprocal, (-2, 2), [0.0]),
    "exp": (T.exp, np.exp, (-2, 2), []),
    "exp2": (T.exp2, np.exp2, (-2, 2), []),
    "expm1": (T.expm1, np.expm1, (-2, 2), []),
    "log": (T.log, np.log, (0.1, 3), []),
    "log2": (T.log2, np.log2, (0.1, 3), []),
    "log10": (T.log10, np.log10, (0.1, 3), []),
    "log1p": (T.log1p, np.log1p, (-0.8, 2), []),
    "sin": (T.sin, np.sin, (-3, 3), []),
    "cos": (T.cos, np.cos, (-3, 3), []),
    "tan": (T.tan, np.tan, (-1.2, 1.2), []),
    "arctan": (T.arctan, np.arctan, (-3, 3), []),
    "arcsin": (T.arcsin, np.arcsin, (-0.9, 0.9), []),
    "arccos": (T.arccos, np.arccos, (-0.9, 0.9), []),
    "erf": (T.erf, np.vectorize(math.erf, otypes=["float64"]), (-2.5, 2.5), []),
    "erfc": (T.erfc, np.vectorize(math.erfc, otypes=["float64"]), (-2.5, 2.5), []),
    "sinh": (T.sinh, np.sinh, (-2, 2), []),
    "cosh": (T.cosh, np.cosh, (-2, 2), []),
    "tanh": (T.tanh, np.tanh, (-3, 3), []),
    "sigmoid": (T.nnet.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-4, 4), []),
    "softplus": (T.nnet.softplus, lambda x: np.log1p(np.exp(x)), (-4, 4), []),
    "floor": (T.floor, np.floor, (-3, 3), INTEGERS),
    "ceil": (T.ceil, np.ceil, (-3, 3), INTEGERS),
    "round_half_to_even": (T.round, np.rint, (-3, 3), HALF_INTEGERS),
    "round_half_away_from_zero": (lambda x: T.round(x, "half_away_from_zero"), _round_away, (-3, 3),
                                  HALF_INTEGERS),
}

# name -> (builder, NumPy reference); checked on float and on integer operands
BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "add": (T.add, np.add),
    "sub": (T.sub, np.subtract),
    "mul": (T.mul, np.multiply),
    "true_div": (T.true_div, np.true_divide),
    "int_div": (T.int_div, np.floor_divide),
    "mod": (T.mod, np.mod),
    "pow": (T.pow, np.power),
    "arctan2": (T.arctan2, np.arctan2),
    "maximum": (T.maximum, np.maximum),
    "minimum": (T.minimum, np.minimum),
    "eq": (T.eq, np.equal),
    "neq": (T.neq, np.not_equal),
    "lt": (T.lt, np.less),
    "le": (T.le, np.less_equal),
    "gt": (T.gt, np.greater),
    "ge": (T.ge, np.greater_equal),
}
LOGICAL = {"and": (T.and_, np.bitwise_and), "or": (T.or_, np.bitwise_or), "xor": (T.xor, np.bitwise_xor)}
OTHER = {"switch", "isnan", "isinf", "invert"}


def test_every_scalar_op_is_covered() -> None:
    """A new scalar op must get a row in one of the tables above."""
    ops = {name for name in SCALAR_OPS if not name.startswith("cast_")}
    covered = set(UNARY) | set(BINARY) | set(LOGICAL) | OTHER
    assert ops - covered == set()


def _matrix(dtype: str, name: str) -> Any:
    return T.tensor(dtype, (False, False), name)


# ---------------------------------------------------------------------------------------------
# values against NumPy
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(data=st.data())
def test_unary_values(run: Any, dtype: str, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    values = {name: data.draw(sst.arrays(dtype, shape, low, high, avoid=avoid))
              for name, (_, _, (low, high), avoid) in UNARY.items()}
    inputs = {name: _matrix(dtype, name) for name in UNARY}
    outputs = [UNARY[name][0](inputs[name]) for name in UNARY]
    results = run(list(inputs.values()), outputs, *values.values())
    for name, out, result in zip(UNARY, outputs, results, strict=True):
        assert out.dtype == dtype and result.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(result, UNARY[name][1](values[name]), atol=1e-6,
                                   rtol=1e-5 if dtype == "float32" else 1e-12, err_msg=name)


@given(data=st.data())
def test_binary_float_values(run: Any, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    a, b = (data.draw(sst.arrays("float64", shape, 0.5, 3.0)) for _ in range(2))
    x, y = _matrix("float64", "x"), _matrix("float64", "y")
    outputs = [build(x, y) for build, _ in BINARY.values()]
    for name, out, result in zip(BINARY, outputs, run([x, y], outputs, a, b), strict=True):
        expected = BINARY[name][1](a, b)
        np.testing.assert_allclose(result, expected, rtol=1e-12, err_msg=name)
        assert result.dtype == expected.dtype == np.dtype(out.dtype), name


@given(a=sst.arrays("int32", (3, 4), -9, 9), b=sst.arrays("int32", (3, 4), 1, 4))
def test_binary_integer_values(run: Any, a: np.ndarray, b: np.ndarray) -> None:
    """Integer semantics follow NumPy: floor division and modulo of negatives, true division to float."""
    x, y, p = T.imatrix("x"), T.imatrix("y"), T.imatrix("p")
    outputs = [build(p if name == "pow" else x, y) for name, (build, _) in BINARY.items()]
    base = np.abs(a) % 4  # small non-negative bases for pow
    for name, out, result in zip(BINARY, outputs, run([x, y, p], outputs, a, b, base), strict=True):
        expected = BINARY[name][1](base if name == "pow" else a, b)
        np.testing.assert_array_equal(result, expected, err_msg=name)
        assert result.dtype == expected.dtype == np.dtype(out.dtype), name


def test_integer_to_negative_integer_power_truncates_in_both_backends(run: Any) -> None:
    """NumPy refuses an integer to a negative integer power; both backends give 1 / a**-b truncated
    toward zero instead (what compiled integer arithmetic computes), so they agree."""
    a, b = T.ivector("a"), T.ivector("b")
    base = np.array([3, 1, 2, -1, -1, -2, 0, 5, 2], "int32")
    exponent = np.array([-2, -1, 2, -1, -2, -1, -1, 0, 3], "int32")
    out = run([a, b], a**b, base, exponent)
    np.testing.assert_array_equal(out, [0, 1, 4, -1, 1, 0, 0, 1, 8])
    assert out.dtype == "int32"


def test_inverse_trigonometry_and_erf_at_special_points(run: Any) -> None:
    """Outside [-1, 1] arcsin and arccos are NaN (not an error), arctan2 keeps the sign of a zero ``y``
    as NumPy does, erf and erfc reach their limits, and erfc keeps its tiny tail."""
    x, y = T.vector("x"), T.vector("y")
    points = np.array([-2.0, -1.0, 0.0, 1.0, 1.5, np.inf, -np.inf, np.nan])
    ys = np.array([0.0, -0.0, 1.0, -1.0, 0.0, np.inf, -np.inf, 3.0])
    xs = np.array([-1.0, -1.0, 0.0, 0.0, 2.0, -np.inf, 1.0, np.nan])
    outs = run([x, y], [T.arcsin(x), T.arccos(x), T.erf(x), T.erfc(x), T.erfc(x * 10), T.arctan2(y, x)],
               points, ys)
    with np.errstate(invalid="ignore"):
        expected = [np.arcsin(points), np.arccos(points)]
    erf, erfc = np.vectorize(math.erf), np.vectorize(math.erfc)
    expected += [erf(points), erfc(points), erfc(points * 10), np.arctan2(ys, points)]
    for k, (got, want) in enumerate(zip(outs, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=str(k))
        number = ~np.isnan(want)  # the sign of a NaN means nothing
        np.testing.assert_array_equal(np.signbit(got[number]), np.signbit(want[number]), err_msg=str(k))
    assert outs[4][4] > 0  # erfc(15) = 7.2e-100, where 1 - erf(15) is 0
    assert run([x, y], T.arctan2(y, x), xs, ys)[0] == np.pi and T.erf(T.fvector()).dtype == "float32"


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint64"])
def test_integer_division_at_its_edges_follows_numpy(run: Any, dtype: str) -> None:
    """``//`` and ``%`` by 0 give 0, and the most negative value ``// -1`` wraps to itself, as in
    NumPy; compiled int64 code gave 0 for ``INT64_MIN // -1`` (LLVM's division is undefined there)."""
    info = np.iinfo(dtype)
    minus_one = -1 if info.min < 0 else 1
    a = np.array([info.min, info.min, minus_one, 0, 1, info.max, info.max, info.min, 7], dtype)
    b = np.array([minus_one, 0, minus_one, 0, 0, minus_one, 0, 1, 2 * minus_one], dtype)
    x, y = T.vector("x", dtype=dtype), T.vector("y", dtype=dtype)
    quotient, remainder = run([x, y], [x // y, x % y], a, b)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(quotient, np.floor_divide(a, b))
        np.testing.assert_array_equal(remainder, np.mod(a, b))
    assert quotient.dtype == remainder.dtype == dtype


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "int8", "int16", "bool"])
def test_float_functions_of_small_integers_are_computed_in_the_result_dtype(run: Any, dtype: str) -> None:
    """``exp`` of int8 is float64 and computed so (NumPy alone computes it in float16), and sigmoid
    and softplus of unsigned ints do not wrap ``-abs(x)`` around."""
    x = T.vector("x", dtype=dtype)
    values = np.array([0, 1, 2, 3], dtype) if dtype != "bool" else np.array([False, True])
    real = values.astype("float64")
    functions = {T.exp: np.exp, T.tanh: np.tanh, T.sqrt: np.sqrt, T.nnet.sigmoid: lambda v: 1 / (1 + np.exp(-v)),
                 T.nnet.softplus: lambda v: np.log1p(np.exp(v))}
    outs = run([x], [f(x) for f in functions], values)
    for out, reference in zip(outs, functions.values(), strict=True):
        assert out.dtype == "float64"
        np.testing.assert_allclose(out, reference(real), rtol=1e-12)


def test_negating_a_bool_tensor_is_refused() -> None:
    """NumPy refuses ``-`` of bools; compiled code computed it, so the backends disagreed."""
    with pytest.raises(TypeError, match=r"cannot negate the bool tensor 'b' \(bool vector\): use invert"):
        -T.vector("b", dtype="bool")  # noqa: B018


def test_subtracting_two_bool_tensors_is_refused(run: Any) -> None:
    """NumPy refuses ``-`` of two bools; compiled code computed xor, so the backends disagreed.
    A bool minus a number is a number, as in NumPy."""
    a, b = T.vector("a", dtype="bool"), T.vector("b", dtype="bool")
    for make in (lambda: a - b, lambda: T.sub(a, True), lambda: True - b):
        with pytest.raises(TypeError, match=r"cannot subtract the bool tensors .*: use xor"):
            make()
    got = run([a], [a - 1, 2 - a], np.array([True, False]))
    np.testing.assert_array_equal(got[0], [0, -1])
    np.testing.assert_array_equal(got[1], [1, 2])


def test_logical_values(run: Any) -> None:
    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    ai, bi = np.array([12, 5, -3, 0], "int32"), np.array([10, 3, 7, -1], "int32")
    x, y = T.tensor("bool", (False,), "x"), T.tensor("bool", (False,), "y")
    i, j = T.ivector("i"), T.ivector("j")
    outputs = [build(x, y) for build, _ in LOGICAL.values()] + [build(i, j) for build, _ in LOGICAL.values()]
    results = run([x, y, i, j], outputs, a, b, ai, bi)
    for k, (name, (_, ref)) in enumerate(LOGICAL.items()):
        np.testing.assert_array_equal(results[k], ref(a, b), err_msg=name)
        np.testing.assert_array_equal(results[k + len(LOGICAL)], ref(ai, bi), err_msg=name)
    assert [r.dtype.name for r in results] == ["bool"] * 3 + ["int32"] * 3
    for build, _ in LOGICAL.values():
        with pytest.raises(TypeError, match="bool or integer"):
            build(T.vector(), T.vector())


def test_invert_isnan_isinf(run: Any) -> None:
    b, i, x = T.tensor("bool", (False,), "b"), T.ivector("i"), T.vector("x")
    v = np.array([1.0, np.nan, np.inf, -np.inf])
    out = run([b, i, x], [~b, T.invert(i), T.isnan(x), T.isinf(x)],
              np.array([True, False]), np.array([0, 5], "int32"), v)
    np.testing.assert_array_equal(out[0], [False, True])
    np.testing.assert_array_equal(out[1], [-1, -6])
    np.testing.assert_array_equal(out[2], np.isnan(v))
    np.testing.assert_array_equal(out[3], np.isinf(v))
    assert T.isnan(x).dtype == "bool"
    with pytest.raises(TypeError):
        T.invert(x)


@given(data=st.data())
def test_switch_values(run: Any, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    a, b, c = (data.draw(sst.arrays("float64", shape)) for _ in range(3))
    x, y, z = (_matrix("float64", n) for n in "xyz")
    np.testing.assert_array_equal(run([x, y, z], T.switch(T.gt(x, 0), y, z), a, b, c), np.where(a > 0, b, c))
    assert T.where is T.switch


def test_relu_clip_and_rounding_special_points(run: Any) -> None:
    x = T.vector("x")
    v = np.array([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5])
    out = run([x], [T.nnet.relu(x), T.nnet.relu(x, 0.1), T.clip(x, -1.0, 1.0), x.clip(-1, 1),
                    T.round(x), T.round(x, "half_away_from_zero"), T.nnet.hard_sigmoid(x)], v)
    np.testing.assert_allclose(out[0], np.maximum(v, 0))
    np.testing.assert_allclose(out[1], np.where(v > 0, v, 0.1 * v))
    np.testing.assert_allclose(out[2], np.clip(v, -1, 1))
    np.testing.assert_allclose(out[3], np.clip(v, -1, 1))
    np.testing.assert_array_equal(out[4], [-2.0, -2.0, -0.0, 0.0, 0.0, 2.0, 2.0])
    np.testing.assert_array_equal(out[5], [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(out[6], np.clip(0.2 * v + 0.5, 0, 1))
    with pytest.raises(ValueError, match="round mode"):
        T.round(x, "up")


def test_rounding_and_sign_of_non_finite_and_huge_values(run: Any) -> None:
    """NaN, infinities and values beyond int64 go through rounding and sgn as NumPy's do (Numba's
    math.floor would pass them through an int64)."""
    x, f = T.vector("x"), T.fvector("f")
    v = np.array([np.nan, np.inf, -np.inf, 1e20, -1e20, 2.0**63 + 2048.0, -2.5, 2.5])
    ops = [T.floor, T.ceil, T.round, lambda y: T.round(y, "half_away_from_zero"), T.sgn]
    refs = [np.floor, np.ceil, np.rint, lambda y: np.copysign(np.floor(np.abs(y) + 0.5), y), np.sign]
    out = run([x, f], [op(x) for op in ops] + [op(f) for op in ops], v, v.astype("float32"))
    for k, ref in enumerate(refs):
        np.testing.assert_array_equal(out[k], ref(v), err_msg=str(k))
        np.testing.assert_array_equal(out[k + len(ops)], ref(v.astype("float32")), err_msg=str(k))
        assert out[k + len(ops)].dtype == "float32"


def test_sigmoid_and_softplus_do_not_overflow(run: Any) -> None:
    x = T.vector("x")
    v = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    sig, sp, g = run([x], [T.nnet.sigmoid(x), T.nnet.softplus(x), sf.grad(T.nnet.sigmoid(x).sum(), x)], v)
    np.testing.assert_allclose(sig, [0.0, np.exp(-40.0), 0.5, 1.0, 1.0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(sp, [0.0, np.log1p(np.exp(-40.0)), np.log(2.0), 40.0, 1000.0], rtol=1e-12)
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# dtype rules
# ---------------------------------------------------------------------------------------------
DTYPE_CASES = [
    ("fvector + dvector", lambda: T.fvector() + T.dvector(), "float64"),
    ("float32 input, float64 weights", lambda: T.dot(T.fmatrix("X"), sf.shared(np.zeros((2, 2)))), "float64"),
    ("fmatrix * float64 shared", lambda: T.fmatrix() * sf.shared(np.ones((2, 2))), "float64"),
    ("int32 + float32", lambda: T.ivector() + T.fvector(), "float64"),
    ("int8 + float32", lambda: T.bvector() + T.fvector(), "float32"),
    ("int8 + uint8", lambda: T.bvector() + T.tensor("uint8", (False,)), "int16"),
    ("int32 + int64", lambda: T.ivector() + T.lvector(), "int64"),
    ("fvector * 2.0 (weak)", lambda: T.fvector() * 2.0, "float32"),
    ("fvector * 0.1 (weak)", lambda: T.fvector() * 0.1, "float32"),
    ("fvector * np.float64(0.1) (strong)", lambda: T.fvector() * np.float64(0.1), "float64"),
    ("2 * fvector (weak int)", lambda: 2 * T.fvector(), "float32"),
    ("1 - fvector", lambda: 1 - T.fvector(), "float32"),
    ("ivector * 1.5", lambda: T.ivector() * 1.5, "float64"),
    ("ivector * 2", lambda: T.ivector() * 2, "int32"),
    ("bool + 1", lambda: T.tensor("bool", (False,)) + 1, "int64"),
    ("fvector * np.float64 (strong)", lambda: T.fvector() * np.float64(2.0), "float64"),
    ("fvector * np.float32", lambda: T.fvector() * np.float32(2.0), "float32"),
    ("fvector + float64 array", lambda: T.fvector() + np.ones(3), "float64"),
    ("ivector / ivector", lambda: T.ivector() / T.ivector(), "float64"),
    ("ivector / 2", lambda: T.ivector() / 2, "float64"),
    ("fvector / 2", lambda: T.fvector() / 2, "float32"),
    ("ivector // 2", lambda: T.ivector() // 2, "int32"),
    ("fvector // 2", lambda: T.fvector() // 2, "float32"),
    ("ivector % 3", lambda: T.ivector() % 3, "int32"),
    ("ivector ** 2", lambda: T.ivector() ** 2, "int32"),
    ("exp(ivector)", lambda: T.exp(T.ivector()), "float64"),
    ("exp(fvector)", lambda: T.exp(T.fvector()), "float32"),
    ("sqrt(lvector)", lambda: T.sqrt(T.lvector()), "float64"),
    ("-ivector", lambda: -T.ivector(), "int32"),
    ("abs(ivector)", lambda: abs(T.ivector()), "int32"),
    ("fvector < 1.0", lambda: T.fvector() < 1.0, "bool"),
    ("eq(ivector, 1)", lambda: T.eq(T.ivector(), 1), "bool"),
    ("switch(cond, fvector, dvector)", lambda: T.switch(T.ivector() > 0, T.fvector(), T.dvector()), "float64"),
    ("switch(float cond, fvector, 0)", lambda: T.switch(T.dvector(), T.fvector(), 0), "float32"),
    ("maximum(fvector, 0.5)", lambda: T.maximum(T.fvector(), 0.5), "float32"),
    ("relu(fmatrix)", lambda: T.nnet.relu(T.fmatrix()), "float32"),
    ("sigmoid(fmatrix)", lambda: T.nnet.sigmoid(T.fmatrix()), "float32"),
    ("astype", lambda: T.fvector().astype("int16"), "int16"),
    ("cast floatX", lambda: T.cast(T.ivector(), "floatX"), "float64"),
]


@pytest.mark.parametrize("build, expected", [c[1:] for c in DTYPE_CASES], ids=[c[0] for c in DTYPE_CASES])
def test_dtype_rules(build: Callable[[], Any], expected: str) -> None:
    assert build().dtype == expected


def test_computed_dtypes_match_declared(run: Any) -> None:
    """The values a function returns have the dtypes the graph declares (weak scalars included)."""
    f, i = T.fvector("f"), T.ivector("i")
    outs = [f * 2.0, f * 0.1, i * 1.5, i * 2, i / 2, f / 2, T.exp(i), f + i]
    results = run([f, i], outs, np.array([1.0, 3.0], "float32"), np.ones(2, "int32"))
    assert [r.dtype.name for r in results] == ["float32", "float32", "float64", "int32", "float64", "float32",
                                               "float64", "float64"]
    np.testing.assert_array_equal(results[1], np.array([1.0, 3.0], "float32") * np.float32(0.1))


def test_floatx_controls_weak_floats() -> None:
    old = sf.config.floatX
    try:
        sf.config.floatX = "float32"
        assert (T.ivector() * 1.5).dtype == "float64"  # int32 needs float64 to be exact, as in Theano
        assert (T.bvector() * 1.5).dtype == "float32"
        assert T.vector().dtype == "float32"
        assert T.constant(1.5).dtype == "float32"
    finally:
        sf.config.floatX = old
    assert T.vector().dtype == "float64"
    with pytest.raises(ValueError, match="floatX"):
        sf.config.floatX = "float16"


# ---------------------------------------------------------------------------------------------
# broadcasting
# ---------------------------------------------------------------------------------------------
PATTERNS = [((3, 1), (1, 4)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((), (2, 3))]


@pytest.mark.parametrize("shapes", PATTERNS, ids=str)
@given(data=st.data())
def test_broadcasting_along_broadcastable_dims(run: Any, shapes: tuple[tuple[int, ...], ...],
                                               data: st.DataObject) -> None:
    a, b = (data.draw(sst.arrays("float64", s)) for s in shapes)
    x = T.tensor("float64", tuple(s == 1 for s in a.shape), "x")
    y = T.tensor("float64", tuple(s == 1 for s in b.shape), "y")
    out = x * y + x
    np.testing.assert_allclose(run([x, y], out, a, b), a * b + a)
    assert out.broadcastable == tuple(s == 1 for s in np.broadcast_shapes(a.shape, b.shape))


def test_row_col_vector_broadcast(run: Any) -> None:
    m, r, c, v = T.matrix("m"), T.row("r"), T.col("c"), T.vector("v")
    M = np.arange(6.0).reshape(2, 3)
    R, C, V = np.array([[1.0, 2.0, 3.0]]), np.array([[10.0], [20.0]]), np.array([1.0, 1.0, 1.0])
    out = run([m, r, c, v], [m + r, m + c, m + v, r + c], M, R, C, V)
    for got, expected in zip(out, [M + R, M + C, M + V, R + C], strict=True):
        np.testing.assert_array_equal(got, expected)
    assert (r + r).broadcastable == (True, False)
    assert (r + c).broadcastable == (False, False)
    assert (m + v).broadcastable == (False, False)
    assert (T.scalar() + v).broadcastable == (False,)


def test_non_broadcastable_length_one_dim_raises(run: Any) -> None:
    a, b = T.matrix("a"), T.matrix("b")
    out = a + b  # the line the error must point at
    line = _lineno_of("out = a + b  # the line")
    with pytest.raises(ShapeError) as info:
        run([a, b], out, np.ones((2, 3)), np.ones((1, 3)))
    message = str(info.value)
    assert "add" in message
    assert "(2, 3)" in message and "(1, 3)" in message
    assert "use T.addbroadcast(x, axis) if a length-1 dimension should repeat" in message  # no shared input
    assert f"{__file__}\", line {line}" in message
    w = sf.shared(np.ones((1, 3)), name="w")
    with pytest.raises(ShapeError, match="or create the shared variable with broadcastable=..."):
        run([a], a + w, np.ones((2, 3)))
    # declaring the dimension broadcastable makes it broadcast
    fixed = run([a, b], a + T.addbroadcast(b, 0), np.ones((2, 3)), np.ones((1, 3)))
    np.testing.assert_array_equal(fixed, np.full((2, 3), 2.0))


def test_mismatched_lengths_raise(run: Any) -> None:
    x, y = T.vector("x"), T.vector("y")
    with pytest.raises(ShapeError, match=r"\(3,\) and \(2,\)") as info:
        run([x, y], x * y, np.ones(3), np.ones(2))
    assert "broadcastable" not in str(info.value)  # no length-1 dimension: no hint about broadcasting


def test_broadcastable_input_of_wrong_length_is_refused(run: Any) -> None:
    r = T.row("r")
    with pytest.raises(InputError, match="broadcastable"):
        run([r], r * 2, np.ones((2, 3)))
    np.testing.assert_array_equal(run([r], r * 2, np.ones((1, 3))), np.full((1, 3), 2.0))


def test_addbroadcast_checks_length_at_run_time(run: Any) -> None:
    m = T.matrix("m")
    out = T.addbroadcast(m, 0) * 2
    np.testing.assert_array_equal(run([m], out, np.ones((1, 2))), [[2.0, 2.0]])
    with pytest.raises(ValueError, match="broadcastable"):
        run([m], out, np.ones((3, 2)))
    assert T.unbroadcast(T.row(), 0).broadcastable == (False, False)
    assert T.patternbroadcast(T.matrix(), (False, True)).broadcastable == (False, True)


def _lineno_of(text: str) -> int:
    with open(__file__) as f:
        for number, line in enumerate(f, start=1):
            if text in line and "_lineno_of" not in line:
                return number
    raise AssertionError(f"{text!r} not found")


# ---------------------------------------------------------------------------------------------
# gradients against finite differences
# ---------------------------------------------------------------------------------------------
@given(data=st.data())
def test_unary_gradients(verify_grads: Any, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    verify_grads({name: (build, [data.draw(sst.arrays("float64", shape, low, high, avoid=avoid, margin=0.05))])
                  for name, (build, _, (low, high), avoid) in UNARY.items()})


@given(data=st.data())
def test_unary_gradients_float32(verify_grads: Any, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    names = ["tanh", "sigmoid", "exp", "log", "sqr", "sin"]
    verify_grads({name: (UNARY[name][0], [data.draw(sst.arrays("float32", shape, max(UNARY[name][2][0], -2.0),
                                                                 min(UNARY[name][2][1], 2.0)))])
                  for name in names})


SMOOTH_BINARY = {
    "add": T.add, "sub": T.sub, "mul": T.mul, "true_div": T.true_div, "pow": T.pow, "arctan2": T.arctan2,
    "mul3": lambda a, b: T.mul(a, b, a), "add3": lambda a, b: T.add(a, b, 1.0),
}


@given(data=st.data())
def test_smooth_binary_gradients(verify_grads: Any, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    verify_grads({name: (build, [data.draw(sst.positive("float64", shape, 0.5, 2.0)) for _ in range(2)])
                  for name, build in SMOOTH_BINARY.items()})


@pytest.mark.parametrize("shapes", PATTERNS, ids=str)
@given(data=st.data())
def test_binary_gradients_with_broadcasting(verify_grads: Any, shapes: tuple[tuple[int, ...], ...],
                                            data: st.DataObject) -> None:
    """Gradients of broadcast inputs are summed back to their own shape."""
    verify_grads({name: (SMOOTH_BINARY[name], [data.draw(sst.positive("float64", s, 0.5, 2.0)) for s in shapes])
                  for name in ["add", "sub", "mul", "true_div", "pow"]})


@given(data=st.data())
def test_piecewise_gradients(verify_grads: Any, data: st.DataObject) -> None:
    """maximum/minimum away from ties, int_div/mod away from their jumps, switch, relu, clip."""
    shape = data.draw(MATRICES)

    def arr(low: float = -2.0, high: float = 2.0, avoid: tuple[float, ...] = ()) -> np.ndarray:
        return data.draw(sst.arrays("float64", shape, low, high, avoid=avoid, margin=0.1))

    a = arr()
    tie_free = a + arr(-1.0, 1.0, avoid=(0.0,))
    y = arr(0.5, 2.0)
    x = y * (data.draw(sst.arrays("int64", shape, -3, 3)) + arr(0.2, 0.8))  # x / y stays off integers
    kinky = arr(avoid=(0.0, -1.0, 1.0))
    verify_grads({
        "maximum": (T.maximum, [a, tie_free]),
        "minimum": (T.minimum, [a, tie_free]),
        "int_div": (T.int_div, [x, y]),
        "mod": (T.mod, [x, y]),
        "switch": (lambda c, p, q: T.switch(T.gt(c, 0), p * c, q), [kinky, arr(), arr()]),
        "relu": (T.nnet.relu, [kinky]),
        "leaky relu": (lambda v: T.nnet.relu(v, 0.3), [kinky]),
        "clip": (lambda v: T.clip(v, -1.0, 1.0), [kinky]),
        "hard_sigmoid": (lambda v: T.nnet.hard_sigmoid(v * 2.5), [kinky]),
    })


@given(data=st.data())
def test_cast_gradients(verify_grads: Any, data: st.DataObject) -> None:
    shape = data.draw(MATRICES)
    verify_grads({"float32 -> float64": (lambda v: T.cast(v, "float64") * 3.0,
                                         [data.draw(sst.arrays("float32", shape, -2, 2))])})
    verify_grads({"float64 -> float32": (lambda v: T.cast(v * 2, "float32"),
                                         [data.draw(sst.arrays("float64", shape, -2, 2))])},
                 eps=1e-2, rtol=1e-3, atol=1e-3)


@given(x=sst.arrays("float32", (2, 3), -1, 1), w=sst.arrays("float64", (3, 2), -1, 1))
def test_mixed_precision_gradient(verify_grads: Any, x: np.ndarray, w: np.ndarray) -> None:
    """float32 inputs with float64 weights: the graph runs in float64, gradients keep each input's dtype."""
    verify_grads({"tanh(dot)": (lambda x, w: T.tanh(T.dot(x, w)), [x, w])})
    X, W = T.fmatrix("X"), T.dmatrix("W")
    gx, gw = sf.grad(T.tanh(T.dot(X, W)).sum(), [X, W])
    assert (gx.dtype, gw.dtype) == ("float32", "float64")


def test_gradients_at_special_points(run: Any) -> None:
    """Conventions where the derivative jumps: abs'(0) = 0, relu'(0) = 0, a tie in maximum goes left;
    flat ops (floor, ceil, round, sgn, floor division) give a zero gradient, not a disconnection."""
    x, y = T.vector("x"), T.vector("y")
    v = np.array([0.0, 1.0, -1.0])
    flat = [T.floor(x), T.ceil(x), T.round(x), T.sgn(x), x // 2.0]
    grads = [sf.grad(T.abs(x).sum(), x), sf.grad(T.nnet.relu(x).sum(), x)] + \
        [sf.grad(e.sum(), x) for e in flat] + sf.grad(T.maximum(x, y).sum(), [x, y])
    out = run([x, y], grads, v, np.array([0.0, 2.0, -1.0]))
    np.testing.assert_array_equal(out[0], [0.0, 1.0, -1.0])
    np.testing.assert_array_equal(out[1], [0.0, 1.0, 0.0])
    for g in out[2:7]:
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out[7], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(out[8], [0.0, 1.0, 0.0])


# --- compositions: largest/smallest, floor_div, isclose/allclose ---------------------------------
@given(data=st.data())
def test_largest_and_smallest_broadcast_any_number_of_tensors(run: Any, data: st.DataObject) -> None:
    n, k = data.draw(st.integers(0, 3)), data.draw(st.integers(2, 4))
    A = data.draw(sst.arrays("float64", (n, k), -3, 3))
    B = data.draw(sst.arrays("float64", (k,), -3, 3))
    INTS = data.draw(sst.arrays("int32", (n, k), -3, 3))
    a, b, i, c = T.matrix("a"), T.vector("b"), T.imatrix("i"), T.scalar("c")
    outputs = [T.largest(a, b, c), T.smallest(a, b, c), T.largest(a, i), T.smallest(i, 1), T.largest(b, a)]
    results = run([a, b, i, c], outputs, A, B, INTS, 0.5)
    expected = [np.maximum(np.maximum(A, B), 0.5), np.minimum(np.minimum(A, B), 0.5), np.maximum(A, INTS),
                np.minimum(INTS, 1), np.maximum(B, A)]
    for out, got, want in zip(outputs, results, expected, strict=True):
        np.testing.assert_array_equal(got, want)
        assert out.dtype == got.dtype.name == want.dtype.name
    assert T.largest(a) is a and T.smallest(b) is b
    for fn in (T.largest, T.smallest):
        with pytest.raises(TypeError, match=f"{fn.__name__} needs at least one tensor"):
            fn()


def test_largest_and_smallest_of_nan(run: Any) -> None:
    x, y = T.vector("x"), T.vector("y")
    X, Y = np.array([np.nan, 1.0, -np.inf]), np.array([2.0, np.nan, 0.0])
    big, small = run([x, y], [T.largest(x, y, 0.0), T.smallest(x, y, 0.0)], X, Y)
    np.testing.assert_array_equal(big, np.maximum(np.maximum(X, Y), 0.0))
    np.testing.assert_array_equal(small, np.minimum(np.minimum(X, Y), 0.0))


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "float32", "float64", "bool"])
def test_floor_div_is_numpys_floor_division(run: Any, dtype: str) -> None:
    """Toward minus infinity for negative integers and floats, with NumPy's special values (inf, NaN,
    -0.0, division by 0); two bools give int8, as in NumPy."""
    if dtype == "bool":
        a, b = np.array([True, False, True, False]), np.array([True, True, False, False])
    elif dtype.startswith("u"):
        a, b = np.array([7, 0, 255, 3, 0], dtype), np.array([2, 3, 0, 255, 0], dtype)
    elif dtype.startswith("i"):
        lowest = np.iinfo(dtype).min
        a = np.array([7, -7, 7, -7, 0, 5, lowest, lowest, 3, -1], dtype)
        b = np.array([2, 2, -2, -2, 3, 0, -1, 1, 0, 3], dtype)
    else:
        a = np.array([7.5, -7.5, 7, -7, 1, -1, 0, np.inf, np.nan, 1, -1, -0.0, 5, -3e38, 0], dtype)
        b = np.array([2, 2, -2, -2, np.inf, np.inf, 0, 2, 1, 0, 0, 3, -np.inf, 1e-30, -1], dtype)
    x, y = T.vector("x", dtype=dtype), T.vector("y", dtype=dtype)
    outputs = [T.floor_div(x, y), x // y, T.int_div(x, y), T.floor_div(x[:0], y[:0])]
    with np.errstate(all="ignore"):
        want = np.floor_divide(a, b)
    for out, got in zip(outputs, run([x, y], outputs, a, b), strict=True):
        assert out.dtype == got.dtype.name == want.dtype.name
        if got.size:
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0.0 where NumPy has it
    assert T.floor_div is T.int_div


def test_floor_div_of_mixed_types_and_its_gradient_is_zero(run: Any) -> None:
    x, i = T.vector("x"), T.ivector("i")
    X, INTS = np.array([-3.5, 2.0, 7.25]), np.array([-2, 3, 2], "int32")
    q, r, g = run([x, i], [T.floor_div(x, i), T.floor_div(i, -2), T.grad(T.floor_div(x, 2.0).sum(), x)], X, INTS)
    np.testing.assert_array_equal(q, X // INTS)
    np.testing.assert_array_equal(r, INTS // -2)
    assert r.dtype == np.int32
    np.testing.assert_array_equal(g, np.zeros(3))


ISCLOSE_A = np.array([1.0, 1.0, 1e10, 1e-8, np.inf, np.inf, -np.inf, np.nan, np.nan, 1.0, 0.0, 1e-7, 2.0])
ISCLOSE_B = np.array([1.0 + 1e-6, 1.1, 1.00001e10, 0.0, np.inf, -np.inf, 1.0, np.nan, 1.0, np.inf, -0.0, 0.0, 2.0])


def test_isclose_and_allclose_follow_numpy(run: Any) -> None:
    """Relative to ``b`` (not symmetric), equal infinities close, NaN only to NaN with equal_nan,
    integers compared as floats (no wrap-around), empty inputs all close."""
    a, b = T.vector("a"), T.vector("b")
    f32, i8, u8 = T.fvector("f32"), T.tensor("int8", (False,), "i8"), T.tensor("uint8", (False,), "u8")
    F32 = ISCLOSE_A.astype("float32")
    I8, U8 = np.array([-128, 127, 5, 0], "int8"), np.array([0, 255, 5, 1], "uint8")
    outputs = [T.isclose(a, b), T.isclose(b, a), T.isclose(a, b, equal_nan=True), T.isclose(a, b, rtol=0.2),
               T.isclose(a, b, rtol=0, atol=1e-7), T.isclose(f32, b), T.isclose(i8, u8), T.isclose(i8, 1, atol=4),
               T.allclose(a, a), T.allclose(a, a, equal_nan=True), T.allclose(a[:2], a[:2] + 1e-9),
               T.allclose(a[:0], b[:0]), T.isclose(a[:0], b[:0]), T.allclose(i8, u8), T.isclose(a, 1.0)]
    with np.errstate(all="ignore"):
        expected = [np.isclose(ISCLOSE_A, ISCLOSE_B), np.isclose(ISCLOSE_B, ISCLOSE_A),
                    np.isclose(ISCLOSE_A, ISCLOSE_B, equal_nan=True), np.isclose(ISCLOSE_A, ISCLOSE_B, rtol=0.2),
                    np.isclose(ISCLOSE_A, ISCLOSE_B, rtol=0, atol=1e-7), np.isclose(F32, ISCLOSE_B),
                    np.isclose(I8, U8), np.isclose(I8, 1, atol=4), np.allclose(ISCLOSE_A, ISCLOSE_A),
                    np.allclose(ISCLOSE_A, ISCLOSE_A, equal_nan=True), np.allclose(ISCLOSE_A[:2], ISCLOSE_A[:2] + 1e-9),
                    np.allclose([], []), np.isclose([], []), np.allclose(I8, U8), np.isclose(ISCLOSE_A, 1.0)]
    results = run([a, b, f32, i8, u8], outputs, ISCLOSE_A, ISCLOSE_B, F32, I8, U8)
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        assert out.dtype == "bool" and got.dtype == np.bool_, k
        assert got.shape == np.shape(want), k
        np.testing.assert_array_equal(got, want, err_msg=str(k))
    assert results[0].tolist() != results[2].tolist()  # equal_nan matters here
    with pytest.raises(TypeError, match="isclose's equal_nan must be a bool, got str 'yes'"):
        T.isclose(a, b, equal_nan="yes")  # type: ignore[arg-type]


def test_isclose_is_not_differentiable() -> None:
    a = T.vector("a")
    with pytest.raises(sf.errors.DisconnectedInputError):
        T.grad(T.sum(T.cast(T.isclose(a, 1.0), "float64")), a)


@given(data=st.data())
def test_largest_and_smallest_gradients(verify_grads: Any, data: st.DataObject) -> None:
    # values kept apart: at a tie the gradient goes to the first argument, which finite differences cannot see
    A = data.draw(sst.arrays("float64", (3, 2), -3, -1))
    B = data.draw(sst.arrays("float64", (2,), 1, 3))
    C = data.draw(sst.arrays("float64", (3, 2), -0.5, 0.5))
    verify_grads({
        "largest": (lambda a, b, c: T.largest(a, b, c) * c, [A, B, C]),
        "smallest": (lambda a, b, c: T.smallest(c, b, a) * b, [A, B, C]),
        "largest of one": (T.largest, [C]),
    })


def test_bool_floor_div_mod_and_pow_compute_in_int8_as_numpy(run: Any) -> None:
    """NumPy has no bool loop for ``//``, ``%`` and ``**``: bools (also a Python bool beside a bool
    tensor) are computed in int8, division by False included; bool with a wider type upcasts as usual."""
    a, b, i = T.vector("a", dtype="bool"), T.vector("b", dtype="bool"), T.ivector("i")
    A, B = np.array([True, False, True, False]), np.array([True, True, False, False])
    INTS = np.array([3, -2, 0, 1], "int32")
    outputs = [a // b, a % b, a ** b, T.mod(a, True), T.pow(True, b), a % i]
    with np.errstate(all="ignore"):
        want = [A // B, A % B, A ** B, np.mod(A, True), np.power(True, B), A % INTS]
    for out, got, w in zip(outputs, run([a, b, i], outputs, A, B, INTS), want, strict=True):
        assert out.dtype == got.dtype.name == w.dtype.name, out
        np.testing.assert_array_equal(got, w)
