"""The elementwise math: each scalar op with its NumPy function, Numba expression and gradient.

Adding an operation means adding one ``scalar_op(...)`` line and its ``@op.defvjp`` rule here;
the Elemwise machinery, both backends and fusion pick it up from the registry.
"""

from __future__ import annotations

import math
from functools import reduce as _reduce
from typing import Any

import numpy as np

from .. import dtypes
from ..graph import Variable, as_variable
from .elemwise import cast, elemwise, scalar_op


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def _round_away(x: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def _power(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NumPy's power, except that an integer to a negative integer power is truncated toward zero
    (1 for 1, +-1 for -1, else 0) as compiled code computes it, where NumPy raises."""
    x, y = np.asarray(x), np.asarray(y)
    if not (x.dtype.kind in "iub" and y.dtype.kind in "iu" and np.any(y < 0)):
        return np.power(x, y)
    negative = y < 0
    inverse = np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 0, 1, -1), 0))
    return np.where(negative, inverse, np.power(x, np.where(negative, 0, y))).astype(np.result_type(x, y))


def _math_function(fn: Any) -> Any:
    """A function of Python's ``math`` applied to each element (NumPy has no ``erf``), in the input's dtype."""
    elementwise = np.frompyfunc(fn, 1, 1)

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return np.asarray(elementwise(x.astype("float64")), dtype="float64").astype(x.dtype)

    return apply


# --- arithmetic ----------------------------------------------------------------------------------
ADD = scalar_op("add", 2, np.add, "({0} + {1})", commutative=True, identity=0)
SUB = scalar_op("sub", 2, np.subtract, "({0} - {1})")
MUL = scalar_op("mul", 2, np.multiply, "({0} * {1})", commutative=True, identity=1)
TRUE_DIV = scalar_op("true_div", 2, np.true_divide, "({0} / {1})", dtype_rule="float")
# LLVM's signed division is undefined for the most negative value over -1; NumPy wraps it to itself
INT_DIV = scalar_op("int_div", 2, np.floor_divide,
                    lambda dts, out: "(-{0} if {1} == -1 else {0} // {1})" if out.startswith("int") else "({0} // {1})",
                    bools_as="int8")
MOD = scalar_op("mod", 2, np.mod, "({0} % {1})", bools_as="int8")
POW = scalar_op("pow", 2, _power, "({0} ** {1})", bools_as="int8")
NEG = scalar_op("neg", 1, np.negative, "(-{0})")
ABS = scalar_op("abs", 1, np.abs, "abs({0})")
SGN = scalar_op("sgn", 1, np.sign, "(({0} > 0) - ({0} < 0) if {0} == {0} else {0})")  # NaN stays NaN
SQR = scalar_op("sqr", 1, np.square, "({0} * {0})")
MAXIMUM = scalar_op("maximum", 2, np.maximum, "({0} if ({0} >= {1} or {0} != {0}) else {1})", commutative=True)
MINIMUM = scalar_op("minimum", 2, np.minimum, "({0} if ({0} <= {1} or {0} != {0}) else {1})", commutative=True)
RECIPROCAL = scalar_op("reciprocal", 1, lambda x: 1.0 / x, "(1.0 / {0})", dtype_rule="float")

# --- float functions -----------------------------------------------------------------------------
EXP = scalar_op("exp", 1, np.exp, "math.exp({0})", dtype_rule="float")
EXP2 = scalar_op("exp2", 1, np.exp2, "(2.0 ** {0})", dtype_rule="float")
EXPM1 = scalar_op("expm1", 1, np.expm1, "math.expm1({0})", dtype_rule="float")
LOG = scalar_op("log", 1, np.log, "(math.log({0}) if {0} > 0 else (-math.inf if {0} == 0 else math.nan))",
                dtype_rule="float")
LOG2 = scalar_op("log2", 1, np.log2, "(math.log2({0}) if {0} > 0 else (-math.inf if {0} == 0 else math.nan))",
                 dtype_rule="float")
LOG10 = scalar_op("log10", 1, np.log10,
                  "(math.log10({0}) if {0} > 0 else (-math.inf if {0} == 0 else math.nan))", dtype_rule="float")
LOG1P = scalar_op("log1p", 1, np.log1p,
                  "(math.log1p({0}) if {0} > -1 else (-math.inf if {0} == -1 else math.nan))", dtype_rule="float")
SQRT = scalar_op("sqrt", 1, np.sqrt, "(math.sqrt({0}) if {0} >= 0 else math.nan)", dtype_rule="float")
SIN = scalar_op("sin", 1, np.sin, "math.sin({0})", dtype_rule="float")
COS = scalar_op("cos", 1, np.cos, "math.cos({0})", dtype_rule="float")
TAN = scalar_op("tan", 1, np.tan, "math.tan({0})", dtype_rule="float")
ARCTAN = scalar_op("arctan", 1, np.arctan, "math.atan({0})", dtype_rule="float")
ARCSIN = scalar_op("arcsin", 1, np.arcsin, "(math.asin({0}) if -1 <= {0} <= 1 else math.nan)", dtype_rule="float")
ARCCOS = scalar_op("arccos", 1, np.arccos, "(math.acos({0}) if -1 <= {0} <= 1 else math.nan)", dtype_rule="float")
ARCTAN2 = scalar_op("arctan2", 2, np.arctan2, "math.atan2({0}, {1})", dtype_rule="float")
ERF = scalar_op("erf", 1, _math_function(math.erf), "math.erf({0})", dtype_rule="float")
ERFC = scalar_op("erfc", 1, _math_function(math.erfc), "math.erfc({0})", dtype_rule="float")
SINH = scalar_op("sinh", 1, np.sinh, "math.sinh({0})", dtype_rule="float")
COSH = scalar_op("cosh", 1, np.cosh, "math.cosh({0})", dtype_rule="float")
TANH = scalar_op("tanh", 1, np.tanh, "runtime.tanh({0})", dtype_rule="float")  # vectorises, unlike math.tanh
SIGMOID = scalar_op("sigmoid", 1, _stable_sigmoid, "runtime.sigmoid({0})", dtype_rule="float")
SOFTPLUS = scalar_op("softplus", 1, lambda x: np.logaddexp(0, x),
                     "({0} + math.log1p(math.exp(-{0})) if {0} > 0 else math.log1p(math.exp({0})))",
                     dtype_rule="float")
# np.floor, not math.floor: Numba's math.floor gives an int64, wrong for NaN, inf and beyond 2**63
FLOOR = scalar_op("floor", 1, np.floor, "np.floor({0})", dtype_rule="float")
CEIL = scalar_op("ceil", 1, np.ceil, "np.ceil({0})", dtype_rule="float")
ROUND_HALF_EVEN = scalar_op("round_half_to_even", 1, np.rint, "np.rint({0})", dtype_rule="float")
ROUND_HALF_AWAY = scalar_op("round_half_away_from_zero", 1, _round_away,
                            "math.copysign(np.floor(abs({0}) + 0.5), {0})", dtype_rule="float")

# --- comparisons and logic -----------------------------------------------------------------------
EQ = scalar_op("eq", 2, np.equal, "({0} == {1})", dtype_rule="bool", commutative=True)
NEQ = scalar_op("neq", 2, np.not_equal, "({0} != {1})", dtype_rule="bool", commutative=True)
LT = scalar_op("lt", 2, np.less, "({0} < {1})", dtype_rule="bool")
LE = scalar_op("le", 2, np.less_equal, "({0} <= {1})", dtype_rule="bool")
GT = scalar_op("gt", 2, np.greater, "({0} > {1})", dtype_rule="bool")
GE = scalar_op("ge", 2, np.greater_equal, "({0} >= {1})", dtype_rule="bool")
AND = scalar_op("and", 2, np.bitwise_and, "({0} & {1})", dtype_rule="discrete", commutative=True)
OR = scalar_op("or", 2, np.bitwise_or, "({0} | {1})", dtype_rule="discrete", commutative=True)
XOR = scalar_op("xor", 2, np.bitwise_xor, "({0} ^ {1})", dtype_rule="discrete", commutative=True)
INVERT = scalar_op("invert", 1, np.invert, lambda dts, out: "(not {0})" if out == "bool" else "(~{0})",
                   dtype_rule="discrete")
SWITCH = scalar_op("switch", 3, lambda c, a, b: np.where(c, a, b), "({1} if {0} else {2})", dtype_inputs=(1, 2))
ISNAN = scalar_op("isnan", 1, np.isnan, "math.isnan({0})", dtype_rule="bool")
ISINF = scalar_op("isinf", 1, np.isinf, "math.isinf({0})", dtype_rule="bool")


# ---------------------------------------------------------------------------------------------
# public builders
# ---------------------------------------------------------------------------------------------
def add(*xs: Any) -> Variable:
    """Elementwise sum of two or more terms."""
    if len(xs) < 2:
        raise TypeError("add needs at least two terms")
    return _reduce(lambda a, b: elemwise(ADD, a, b), xs)  # type: ignore[no-any-return]


def mul(*xs: Any) -> Variable:
    """Elementwise product of two or more factors."""
    if len(xs) < 2:
        raise TypeError("mul needs at least two factors")
    return _reduce(lambda a, b: elemwise(MUL, a, b), xs)  # type: ignore[no-any-return]


def sub(a: Any, b: Any) -> Variable:
    """``a - b``; refused for two bool tensors, as NumPy refuses it (use ``xor`` or ``neq``)."""
    if _is_bool(a) and _is_bool(b):  # Python numbers are left to elemwise, which fits them to the tensor
        a_, b_ = as_variable(a), as_variable(b)
        raise TypeError(f"cannot subtract the bool tensors {a_.describe()} and {b_.describe()}: use xor(a, b) "
                        "(a ^ b) or neq(a, b), or cast them to a number type first")
    return elemwise(SUB, a, b)


def _is_bool(x: Any) -> bool:
    """Whether ``x`` (a variable, a NumPy value or a Python value) is of dtype bool."""
    return x.dtype == "bool" if isinstance(x, Variable) else np.asarray(x).dtype == np.bool_


def true_div(a: Any, b: Any) -> Variable:
    """``a / b``; integers give floats."""
    return elemwise(TRUE_DIV, a, b)


def int_div(a: Any, b: Any) -> Variable:
    """``a // b``: floor division as NumPy's ``//`` (toward minus infinity, also for negative integers
    and floats); two bools divide as int8, as in NumPy."""
    return elemwise(INT_DIV, a, b)


floor_div = int_div  # Theano's two names for the same floor division


def mod(a: Any, b: Any) -> Variable:
    return elemwise(MOD, a, b)


def pow(a: Any, b: Any) -> Variable:  # noqa: A001 - Theano's name
    """``a ** b``; an integer to a negative integer power is truncated toward zero (``2 ** -1`` is 0)."""
    return elemwise(POW, a, b)


def neg(x: Any) -> Variable:
    """``-x``; refused for bool tensors, as NumPy refuses it (use ``invert`` for logical not)."""
    x = as_variable(x)
    if x.dtype == "bool":
        raise TypeError(f"cannot negate the bool tensor {x.describe()}: use invert(x) (~x) for logical not, "
                        "or cast it to a number type first")
    return elemwise(NEG, x)


def abs(x: Any) -> Variable:  # noqa: A001 - Theano's name
    return elemwise(ABS, x)


def sgn(x: Any) -> Variable:
    return elemwise(SGN, x)


def sqr(x: Any) -> Variable:
    return elemwise(SQR, x)


def sqrt(x: Any) -> Variable:
    return elemwise(SQRT, x)


def reciprocal(x: Any) -> Variable:
    return elemwise(RECIPROCAL, x)


def exp(x: Any) -> Variable:
    return elemwise(EXP, x)


def exp2(x: Any) -> Variable:
    return elemwise(EXP2, x)


def expm1(x: Any) -> Variable:
    return elemwise(EXPM1, x)


def log(x: Any) -> Variable:
    return elemwise(LOG, x)


def log2(x: Any) -> Variable:
    return elemwise(LOG2, x)


def log10(x: Any) -> Variable:
    return elemwise(LOG10, x)


def log1p(x: Any) -> Variable:
    return elemwise(LOG1P, x)


def sin(x: Any) -> Variable:
    return elemwise(SIN, x)


def cos(x: Any) -> Variable:
    return elemwise(COS, x)


def tan(x: Any) -> Variable:
    return elemwise(TAN, x)


def arctan(x: Any) -> Variable:
    return elemwise(ARCTAN, x)


def arcsin(x: Any) -> Variable:
    """Inverse sine; NaN outside [-1, 1]."""
    return elemwise(ARCSIN, x)


def arccos(x: Any) -> Variable:
    """Inverse cosine; NaN outside [-1, 1]."""
    return elemwise(ARCCOS, x)


def arctan2(y: Any, x: Any) -> Variable:
    """The angle of the point ``(x, y)``, in ``[-pi, pi]`` (NumPy's ``arctan2``; ``y`` first)."""
    return elemwise(ARCTAN2, y, x)


def erf(x: Any) -> Variable:
    """The error function ``2/sqrt(pi) * integral of exp(-t**2) from 0 to x``."""
    return elemwise(ERF, x)


def erfc(x: Any) -> Variable:
    """``1 - erf(x)``, accurate also where erf(x) is close to 1."""
    return elemwise(ERFC, x)


def sinh(x: Any) -> Variable:
    return elemwise(SINH, x)


def cosh(x: Any) -> Variable:
    return elemwise(COSH, x)


def tanh(x: Any) -> Variable:
    return elemwise(TANH, x)


def sigmoid(x: Any) -> Variable:
    """The logistic function ``1 / (1 + exp(-x))``, computed without overflow."""
    return elemwise(SIGMOID, x)


def softplus(x: Any) -> Variable:
    """``log(1 + exp(x))``, computed without overflow."""
    return elemwise(SOFTPLUS, x)


def relu(x: Any, alpha: Any = 0) -> Variable:
    """Rectifier: ``x`` where positive, ``alpha * x`` elsewhere (leaky when alpha != 0)."""
    if isinstance(alpha, (int, float)) and alpha == 0:
        return switch(gt(x, 0), x, 0)
    return switch(gt(x, 0), x, mul(alpha, x))


def maximum(a: Any, b: Any) -> Variable:
    return elemwise(MAXIMUM, a, b)


def minimum(a: Any, b: Any) -> Variable:
    return elemwise(MINIMUM, a, b)


def largest(*xs: Any) -> Variable:
    """The elementwise largest of one or more tensors (broadcast together), as Theano's ``largest``.

    NaN wins, as in ``maximum``; a tie passes the gradient to the first of them."""
    if not xs:
        raise TypeError("largest needs at least one tensor")
    return _reduce(maximum, xs[1:], as_variable(xs[0]))  # type: ignore[no-any-return]


def smallest(*xs: Any) -> Variable:
    """The elementwise smallest of one or more tensors (broadcast together), as Theano's ``smallest``."""
    if not xs:
        raise TypeError("smallest needs at least one tensor")
    return _reduce(minimum, xs[1:], as_variable(xs[0]))  # type: ignore[no-any-return]


def clip(x: Any, a_min: Any, a_max: Any) -> Variable:
    """Limit ``x`` to ``[a_min, a_max]``; the gradient passes where x is inside."""
    return minimum(maximum(x, a_min), a_max)


def floor(x: Any) -> Variable:
    return elemwise(FLOOR, x)


def ceil(x: Any) -> Variable:
    return elemwise(CEIL, x)


def round(x: Any, mode: str = "half_to_even") -> Variable:  # noqa: A001 - Theano's name
    """Round to the nearest integer (``mode``: ``'half_to_even'`` or ``'half_away_from_zero'``)."""
    ops = {"half_to_even": ROUND_HALF_EVEN, "half_away_from_zero": ROUND_HALF_AWAY}
    if mode not in ops:
        raise ValueError(f"round mode must be one of {sorted(ops)}, got {mode!r}")
    return elemwise(ops[mode], x)


def eq(a: Any, b: Any) -> Variable:
    return elemwise(EQ, a, b)


def neq(a: Any, b: Any) -> Variable:
    return elemwise(NEQ, a, b)


def lt(a: Any, b: Any) -> Variable:
    return elemwise(LT, a, b)


def le(a: Any, b: Any) -> Variable:
    return elemwise(LE, a, b)


def gt(a: Any, b: Any) -> Variable:
    return elemwise(GT, a, b)


def ge(a: Any, b: Any) -> Variable:
    return elemwise(GE, a, b)


def and_(a: Any, b: Any) -> Variable:
    return elemwise(AND, a, b)


def or_(a: Any, b: Any) -> Variable:
    return elemwise(OR, a, b)


def xor(a: Any, b: Any) -> Variable:
    return elemwise(XOR, a, b)


def invert(x: Any) -> Variable:
    return elemwise(INVERT, x)


def isnan(x: Any) -> Variable:
    return elemwise(ISNAN, x)


def isinf(x: Any) -> Variable:
    return elemwise(ISINF, x)


def switch(cond: Any, a: Any, b: Any) -> Variable:
    """``a`` where ``cond`` is true, else ``b`` (NumPy's ``where``)."""
    return elemwise(SWITCH, cond, a, b)


where = switch


def isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Variable:
    """Whether ``|a - b| <= atol + rtol * |b|`` elementwise (bool), as NumPy's ``isclose``.

    Not symmetric in a and b. Equal infinities are close; NaN only to NaN, and only with ``equal_nan``.
    Integers are compared as floats, so their difference cannot overflow."""
    a, b = as_variable(a), as_variable(b)
    if not isinstance(equal_nan, (bool, np.bool_)):
        raise TypeError(f"isclose's equal_nan must be a bool, got {type(equal_nan).__name__} {equal_nan!r}")
    dtype = dtypes.upgrade_to_float(dtypes.upcast(a.dtype, b.dtype))
    x, y = cast(a, dtype), cast(b, dtype)
    within = and_(le(abs(sub(x, y)), add(atol, mul(rtol, abs(y)))), invert(isinf(y)))
    close = or_(within, eq(x, y))
    return or_(close, and_(isnan(x), isnan(y))) if equal_nan else close


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Variable:
    """Whether every element of ``a`` is close to ``b`` (``isclose``), as a bool scalar; True when empty."""
    from .reduce import all as all_

    return all_(isclose(a, b, rtol, atol, equal_nan))

# ---------------------------------------------------------------------------------------------
# gradients (vector-Jacobian products): f(*inputs, output, g) -> gradient per input
# ---------------------------------------------------------------------------------------------
ADD.defvjp(lambda x, y, out, g: [g, g])
SUB.defvjp(lambda x, y, out, g: [g, neg(g)])
MUL.defvjp(lambda x, y, out, g: [mul(g, y), mul(g, x)])
TRUE_DIV.defvjp(lambda x, y, out, g: [true_div(g, y), neg(true_div(mul(g, out), y))])
INT_DIV.defvjp(lambda x, y, out, g: [mul(g, 0), mul(g, 0)])  # piecewise constant, like floor
MOD.defvjp(lambda x, y, out, g: [g, neg(mul(g, int_div(x, y)))])
NEG.defvjp(lambda x, out, g: [neg(g)])
ABS.defvjp(lambda x, out, g: [mul(g, sgn(x))])
SGN.defvjp(lambda x, out, g: [mul(g, 0)])
SQR.defvjp(lambda x, out, g: [mul(mul(g, 2), x)])
SQRT.defvjp(lambda x, out, g: [true_div(mul(g, 0.5), out)])
RECIPROCAL.defvjp(lambda x, out, g: [neg(mul(g, sqr(out)))])
EXP.defvjp(lambda x, out, g: [mul(g, out)])
EXP2.defvjp(lambda x, out, g: [mul(g, mul(out, float(np.log(2.0))))])
EXPM1.defvjp(lambda x, out, g: [mul(g, add(out, 1))])
LOG.defvjp(lambda x, out, g: [true_div(g, x)])
LOG2.defvjp(lambda x, out, g: [true_div(g, mul(x, float(np.log(2.0))))])
LOG10.defvjp(lambda x, out, g: [true_div(g, mul(x, float(np.log(10.0))))])
LOG1P.defvjp(lambda x, out, g: [true_div(g, add(x, 1))])
SIN.defvjp(lambda x, out, g: [mul(g, cos(x))])
COS.defvjp(lambda x, out, g: [neg(mul(g, sin(x)))])
TAN.defvjp(lambda x, out, g: [mul(g, add(1, sqr(out)))])
ARCTAN.defvjp(lambda x, out, g: [true_div(g, add(1, sqr(x)))])
ARCSIN.defvjp(lambda x, out, g: [true_div(g, sqrt(sub(1, sqr(x))))])
ARCCOS.defvjp(lambda x, out, g: [neg(true_div(g, sqrt(sub(1, sqr(x)))))])
ARCTAN2.defvjp(lambda y, x, out, g: [true_div(mul(g, x), add(sqr(x), sqr(y))),
                                     neg(true_div(mul(g, y), add(sqr(x), sqr(y))))])
ERF.defvjp(lambda x, out, g: [mul(g, mul(2 / math.sqrt(math.pi), exp(neg(sqr(x)))))])
ERFC.defvjp(lambda x, out, g: [mul(g, mul(-2 / math.sqrt(math.pi), exp(neg(sqr(x)))))])
SINH.defvjp(lambda x, out, g: [mul(g, cosh(x))])
COSH.defvjp(lambda x, out, g: [mul(g, sinh(x))])
TANH.defvjp(lambda x, out, g: [mul(g, sub(1, sqr(out)))])
SIGMOID.defvjp(lambda x, out, g: [mul(g, mul(out, sub(1, out)))])
SOFTPLUS.defvjp(lambda x, out, g: [mul(g, sigmoid(x))])
MAXIMUM.defvjp(lambda x, y, out, g: [mul(g, ge(x, y)), mul(g, lt(x, y))])
MINIMUM.defvjp(lambda x, y, out, g: [mul(g, le(x, y)), mul(g, gt(x, y))])
SWITCH.defvjp(lambda c, a, b, out, g: [None, switch(c, g, 0), switch(c, 0, g)])
for _op in (FLOOR, CEIL, ROUND_HALF_EVEN, ROUND_HALF_AWAY):
    _op.defvjp(lambda x, out, g: [mul(g, 0)])
for _op in (EQ, NEQ, LT, LE, GT, GE, AND, OR, XOR, INVERT, ISNAN, ISINF):
    _op.defvjp(lambda *args: [None] * (len(args) - 2))


@POW.defvjp
def _pow_vjp(x: Variable, y: Variable, out: Variable, g: Variable) -> list[Variable | None]:
    # d/dx x**y = y * x**(y-1);  d/dy x**y = x**y * log(x)
    return [mul(g, mul(y, pow(x, sub(y, 1)))), mul(g, mul(out, log(x)))]


__all__ = [
    "abs", "add", "allclose", "and_", "arccos", "arcsin", "arctan", "arctan2", "cast", "ceil", "clip", "cos", "cosh",
    "eq", "erf", "erfc", "exp", "exp2", "expm1", "floor", "floor_div", "ge", "gt", "int_div", "invert", "isclose",
    "isinf", "isnan", "largest", "le", "log", "log10", "log1p", "log2", "lt", "maximum", "minimum", "mod", "mul",
    "neg", "neq", "or_", "pow", "reciprocal", "relu", "round", "sgn", "sigmoid", "sin", "sinh", "smallest",
    "softplus", "sqr", "sqrt", "sub", "switch", "tan", "tanh", "true_div", "where", "xor",
]
