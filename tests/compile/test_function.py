"""symflow.function: input checks on every call, keyword calls, defaults, missing and unused
inputs, updates (targets, types, old values, atomicity), givens, output forms, and aliasing."""

from __future__ import annotations

import math
import os
import pickle
import re
import subprocess
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.errors import InputError, MissingInputError, ShapeError, UnusedInputError


# ---------------------------------------------------------------------------------------------
# inputs, checked on each call
# ---------------------------------------------------------------------------------------------
def test_argument_count(mode: str) -> None:
    x, y = T.fvector("x"), T.iscalar("y")
    f = sf.function([x, y], x * y, mode=mode, name="scale")
    v = np.ones(3, "float32")
    with pytest.raises(TypeError, match=r"function 'scale' is missing argument 1 'y'.*\(int32 scalar\)"):
        f(v)
    with pytest.raises(TypeError, match="takes 2 arguments, got 3"):
        f(v, 1, 2)
    np.testing.assert_array_equal(f(v, 2), [2.0, 2.0, 2.0])


def test_ndim_is_checked(mode: str) -> None:
    x = T.fvector("x")
    f = sf.function([x], x * 2, mode=mode)
    with pytest.raises(InputError, match=r"argument 0 'x' \(float32 vector\): expected 1 dimension,.*\(3, 2\)"):
        f(np.ones((3, 2), "float32"))
    with pytest.raises(InputError, match="created at"):
        f(np.ones((3, 2), "float32"))
    with pytest.raises(InputError, match="expected 1 dimension,"):
        f(1.0)


def test_downcast_refused_unless_allowed(mode: str) -> None:
    x, k = T.fvector("x"), T.iscalar("k")
    f = sf.function([x, k], x * k, mode=mode)
    with pytest.raises(InputError, match=r"float64.*float32.*allow_input_downcast=True") as info:
        f(np.ones(3), 1)
    assert "'x'" in str(info.value) and "shape (3,)" in str(info.value)
    with pytest.raises(InputError, match="int64.*int32.*allow_input_downcast"):
        f(np.ones(3, "float32"), np.array(3))
    with pytest.raises(InputError, match="2.5 does not fit int32.*allow_input_downcast"):
        f(np.ones(3, "float32"), 2.5)
    with pytest.raises(InputError, match="allow_input_downcast"):
        f(np.ones(3, "float32"), 2**40)
    g = sf.function([x, k], x * k, mode=mode, allow_input_downcast=True)
    np.testing.assert_allclose(g(np.ones(3) / 3, 2.7), np.full(3, np.float32(1 / 3) * 2, "float32"))
    identity = sf.function([x], x, mode=mode, allow_input_downcast=True)
    assert identity(np.ones(3) / 3).dtype == np.float32


def test_values_that_convert_exactly_are_accepted(mode: str) -> None:
    x, k = T.fvector("x"), T.iscalar("k")
    f = sf.function([x, k], x * k, mode=mode)
    np.testing.assert_array_equal(f([1.0, 2.0], 3), [3.0, 6.0])  # Python floats are weak
    np.testing.assert_array_equal(f([1, 2], np.int64(3)), [3.0, 6.0])  # a NumPy scalar that fits
    np.testing.assert_array_equal(f(np.ones(2, "float32"), 2.0), [2.0, 2.0])  # 2.0 fits int32 exactly
    np.testing.assert_array_equal(f(np.ones(2, "int8"), True), [1.0, 1.0])  # safe array casts
    s = T.fscalar("s")
    g = sf.function([s], s * 1, mode=mode)
    assert g(np.float64(0.5)) == 0.5
    with pytest.raises(InputError, match="does not fit float32"):
        g(np.float64(0.1))  # a float64 NumPy scalar is strong: it must convert exactly
    with pytest.raises(InputError, match=r"argument 0 's' \(float32 scalar\): the value 1e\+40 overflows float32"):
        g(1e40)  # a weak Python float rounds, but does not overflow
    with pytest.raises(InputError, match="overflows float32"):
        f([1.0, 1e40], 1)
    assert g(0.1) == np.float32(0.1) and g(math.inf) == math.inf and np.isnan(g(math.nan))  # rounding is fine
    with pytest.raises(InputError, match="symbolic variable"):
        f(x, 1)
    with pytest.raises(InputError, match="cannot use str"):
        f("abc", 1)


def test_broadcastable_inputs_need_length_one(mode: str) -> None:
    r = T.row("r")
    f = sf.function([r], r + 1, mode=mode)
    with pytest.raises(InputError, match="dimension 0 is broadcastable"):
        f(np.ones((2, 3)))
    assert f(np.ones((1, 3))).shape == (1, 3)


def test_keyword_calls_by_input_name(mode: str) -> None:
    x, y = T.vector("x"), T.scalar("y")
    f = sf.function([x, sf.In(y, name="scale")], x * y, mode=mode)
    np.testing.assert_array_equal(f(x=np.ones(2), scale=3.0), [3.0, 3.0])
    np.testing.assert_array_equal(f(np.ones(2), scale=2.0), [2.0, 2.0])
    with pytest.raises(TypeError, match=r"no input named 'y' \(named inputs: 'x', 'scale'\)"):
        f(np.ones(2), y=2.0)
    with pytest.raises(TypeError, match="two values for input 'x'"):
        f(np.ones(2), x=np.ones(2))


def test_in_defaults(mode: str) -> None:
    x, lr = T.vector("x"), T.scalar("lr")
    f = sf.function([x, sf.In(lr, value=0.5)], x * lr, mode=mode)
    np.testing.assert_array_equal(f(np.ones(2)), [0.5, 0.5])
    np.testing.assert_array_equal(f(np.ones(2), 2.0), [2.0, 2.0])
    np.testing.assert_array_equal(f(np.ones(2), lr=3.0), [3.0, 3.0])
    with pytest.raises(TypeError, match="symbolic variable"):
        sf.In(np.ones(2))  # type: ignore[arg-type]


def test_invalid_inputs_list() -> None:
    x, W = T.vector("x"), sf.shared(np.ones(2), name="W")
    with pytest.raises(TypeError, match="shared variable 'W'.*explicit input"):
        sf.function([x, W], x * W)
    with pytest.raises(TypeError, match="constant"):
        sf.function([T.constant(1.0)], x)
    with pytest.raises(TypeError, match="computed from other variables"):
        sf.function([x * 2], x)
    with pytest.raises(ValueError, match="given twice"):
        sf.function([x, x], x)
    with pytest.raises(TypeError, match="symbolic variables"):
        sf.function([np.ones(2)], x)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="mode"):
        sf.function([x], x, mode="fast")
    with pytest.raises(ValueError, match="on_unused_input"):
        sf.function([x], x, on_unused_input="maybe")


def test_missing_inputs() -> None:
    x, y = T.vector("x"), T.vector("y")
    pattern = r"(?s)needs the input 'y' \(float64 vector\).*inputs=.*givens="
    with pytest.raises(MissingInputError, match=pattern) as info:
        sf.function([x], x + y)
    assert __file__ in str(info.value)  # where the missing input was created
    with pytest.raises(MissingInputError):
        sf.function([], x.sum())


def test_unused_inputs(mode: str) -> None:
    x, y = T.vector("x"), T.vector("y")
    with pytest.raises(UnusedInputError, match=r"argument 1 'y'.*not used.*on_unused_input"):
        sf.function([x, y], x * 2, mode=mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = sf.function([x, y], x * 2, on_unused_input="warn", mode=mode)
    assert len(caught) == 1 and "'y'" in str(caught[0].message) and caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = sf.function([x, y], x * 2, on_unused_input="ignore", mode=mode)
    np.testing.assert_array_equal(f(np.ones(2), np.ones(5)), [2.0, 2.0])
    np.testing.assert_array_equal(g(np.ones(2), np.ones(5)), [2.0, 2.0])


# ---------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------
def test_output_forms(mode: str) -> None:
    x = T.vector("x")
    v = np.array([1.0, 2.0])
    single = sf.function([x], x.sum(), mode=mode)(v)
    assert isinstance(single, np.ndarray) and single.shape == () and single == 3.0  # 0-d outputs are 0-d arrays
    as_list = sf.function([x], [x.sum()], mode=mode)(v)
    assert isinstance(as_list, list) and len(as_list) == 1 and as_list[0].shape == ()
    pair = sf.function([x], (x * 2, x[0]), mode=mode)(v)
    assert isinstance(pair, list) and pair[1].shape == () and isinstance(pair[1], np.ndarray)
    assert sf.function([x], [], mode=mode, on_unused_input="ignore")(v) == []
    assert sf.function([x], None, mode=mode, on_unused_input="ignore")(v) is None
    assert sf.function([], T.constant(2.0), mode=mode)() == 2.0
    plain = sf.function([x], 3, mode=mode, on_unused_input="ignore")(v)  # a Python number, as with [3]
    assert isinstance(plain, np.ndarray) and plain == 3
    assert sf.function([x], [x[1], 3], mode=mode)(v) == [2.0, 3]
    same = sf.function([x], [x * 2, x * 2], mode=mode)(v)
    same[0][0] = 100.0
    assert same[1][0] == 2.0  # two outputs never share memory


def test_outputs_never_alias_shared_storage_or_inputs(mode: str) -> None:
    a = sf.shared(np.array([1.0, 2.0]), name="a")
    x = T.vector("x")
    cases = [
        sf.function([], a, mode=mode),
        sf.function([], a[::-1], mode=mode),
        sf.function([], a.reshape((1, 2)), mode=mode),
        sf.function([], a * 1, updates=[(a, a * 1)], mode=mode),
        sf.function([], a + 0, updates=[(a, a + 0)], mode=mode),
    ]
    for f in cases:
        out = f()
        out[...] = 100.0
        np.testing.assert_array_equal(a.get_value(), [1.0, 2.0])
    # an output that is also the new value of an update (merged into one variable) is a copy
    f = sf.function([], a * 2, updates=[(a, a * 2)], mode=mode)
    out = f()
    out[...] = 100.0
    np.testing.assert_array_equal(a.get_value(), [2.0, 4.0])
    value = np.array([3.0, 4.0])
    out = sf.function([x], x, mode=mode)(value)
    out[0] = 0.0
    assert value[0] == 3.0
    b = sf.shared(np.zeros(2), name="b")
    sf.function([x], [], updates=[(b, x)], mode=mode)(value)
    value[1] = -1.0
    np.testing.assert_array_equal(b.get_value(), [3.0, 4.0])  # an update never keeps the caller's array


# ---------------------------------------------------------------------------------------------
# updates
# ---------------------------------------------------------------------------------------------
def test_updates_use_old_values_then_write_together(mode: str) -> None:
    a, b = sf.shared(np.array([1.0, 2.0]), name="a"), sf.shared(np.array([3.0, 4.0]), name="b")
    swap = sf.function([], [], updates=[(a, b), (b, a)], mode=mode)
    swap()
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    n = sf.shared(0, name="n")
    step = sf.function([], n, updates=OrderedDict([(n, n + 1)]), mode=mode)
    assert [int(step()) for _ in range(3)] == [0, 1, 2]  # outputs see the values before the update
    c = sf.shared(1.0, name="c")
    both = sf.function([], [], updates={c: c * 10, a: a + c}, mode=mode)
    both()
    assert c.get_value() == 10.0
    np.testing.assert_array_equal(a.get_value(), [4.0, 5.0])  # a used the old c


def test_update_targets_must_be_shared() -> None:
    x = T.vector("x")
    with pytest.raises(TypeError, match=r"update target 'x' \(float64 vector\) is not a shared variable"):
        sf.function([x], x, updates=[(x, x + 1)])
    with pytest.raises(TypeError, match="not a shared variable"):
        sf.function([x], x, updates=[(np.ones(2), x)])
    with pytest.raises(TypeError, match="pair"):
        sf.function([x], x, updates=[x])
    a = sf.shared(np.ones(2), name="a")
    with pytest.raises(ValueError, match="updated twice"):
        sf.function([x], x, updates=[(a, x), (a, x * 2)])


def test_update_types_must_fit(mode: str) -> None:
    x = T.vector("x")
    W = sf.shared(np.zeros((2, 2)), name="W")
    with pytest.raises(TypeError, match=r"(?s)update of 'W' \(float64 matrix\) has 1 dimensions.*keep.*2"):
        sf.function([x], [], updates=[(W, x)])
    k = sf.shared(np.zeros(2, "int32"), name="k")
    with pytest.raises(TypeError, match=r"(?s)update of 'k'.*float64.*astype\('int32'\)") as info:
        sf.function([], [], updates=[(k, k + 1.5)])
    assert __file__ in str(info.value)  # where the update expression was built
    f32 = sf.shared(np.zeros(2, "float32"), name="f32")
    with pytest.raises(TypeError, match="float64"):
        sf.function([x], [], updates=[(f32, f32 + x)])
    ok = sf.function([], [], updates=[(f32, f32 + 1.5), (k, (k + 1).astype("int32"))], mode=mode)
    ok()
    assert f32.get_value().dtype == np.float32 and k.get_value().dtype == np.int32
    np.testing.assert_array_equal(f32.get_value(), [1.5, 1.5])
    widened = sf.shared(np.zeros(2), name="widened")
    sf.function([], [], updates=[(widened, T.ones((2,), dtype="int32"))], mode=mode)()  # a safe cast
    assert widened.get_value().dtype == np.float64 and widened.get_value()[0] == 1.0
    for value, problem in [(1.5, "1.5 does not fit int32 exactly"), (np.int64(2**40), "does not fit int32"),
                           (np.array([1.7, 2.9]), "refusing to store a float64 array in int32")]:
        with pytest.raises(TypeError, match=re.escape("update of 'k' (int32 vector): ") + ".*" + re.escape(problem)):
            sf.function([], [], updates=[(k, value)])  # values, not expressions, are checked too
    with pytest.raises(TypeError, match=r"update of 'f32' \(float32 vector\): \[1e\+40\] overflows float32"):
        sf.function([], [], updates=[(f32, [1e40])])
    sf.function([], [], updates=[(k, [3, 4]), (f32, [0.25, 0.25])], mode=mode)()
    np.testing.assert_array_equal(k.get_value(), [3, 4])
    np.testing.assert_array_equal(f32.get_value(), [0.25, 0.25])
    r = sf.shared(np.zeros((1, 3)), broadcastable=(True, False), name="r")
    sf.function([], [], updates=[(r, T.ones((1, 3)) + r)], mode=mode)()
    np.testing.assert_array_equal(r.get_value(), np.ones((1, 3)))
    grown = r + T.matrix("m")  # may have more rows than r keeps
    with pytest.raises(ShapeError, match=r"(?s)dimension 0.*the update of 'r' \(float64 row\).*grown = r \+"):
        sf.function([grown.owner.inputs[1]], [], updates=[(r, grown)], mode=mode)(np.ones((2, 3)))
    np.testing.assert_array_equal(r.get_value(), np.ones((1, 3)))


def test_a_call_that_raises_changes_no_shared_value(mode: str) -> None:
    x = T.vector("x")
    n = sf.shared(0.0, name="n")
    acc = sf.shared(np.zeros(3), name="acc")
    f = sf.function([x], x.sum(), updates=[(n, n + 1), (acc, acc + x)], mode=mode)
    with pytest.raises(ShapeError):
        f(np.ones(2))
    assert n.get_value() == 0.0 and not acc.get_value().any()
    with pytest.raises(InputError):
        f(np.ones((3, 1)))
    assert n.get_value() == 0.0
    f(np.ones(3))
    assert n.get_value() == 1.0
    np.testing.assert_array_equal(acc.get_value(), np.ones(3))


def test_a_call_rerun_on_the_numpy_backend_writes_each_update_to_its_variable(mode: str) -> None:
    """A scan with per-step outputs and no steps is run on the NumPy backend (compiled code cannot
    know the shape of a step it never ran); every update, also those compiled in place, lands on
    its own variable, as in a compiled call."""
    X, h0 = T.matrix("X"), T.vector("h0")
    b, c = sf.shared(np.array([10.0, 20.0]), name="b"), sf.shared(np.array(5.0), name="c")
    d, steps = sf.shared(np.array(7.0), name="d"), sf.shared(np.array(0, "int64"), name="steps")
    (_, ys), _ = sf.scan(lambda x_t, h: (T.tanh(h + x_t), h * x_t), sequences=X, outputs_info=[h0, None])
    f = sf.function([X, h0], ys.sum(), updates=[(b, b * 2 + 1), (c, c + 1), (d, d + ys.sum() + 100),
                                                (steps, steps + 1)], mode=mode)
    for rows in (2, 0, 1):
        f(np.ones((rows, 2)), np.ones(2))
    np.testing.assert_array_equal(b.get_value(), [87.0, 167.0])
    assert (c.get_value(), steps.get_value()) == (8.0, 3) and steps.get_value().dtype == np.int64
    assert d.get_value() == pytest.approx(7.0 + 300 + (2 + 2 * np.tanh(2.0)) + 0 + 2)  # + each call's ys.sum()


def test_no_default_updates_leaves_out_all_or_the_listed_ones(mode: str) -> None:
    """As in Theano: True leaves out every default update, a list only those of its variables."""
    a, b = sf.shared(np.array(0.0), name="a"), sf.shared(np.array(0.0), name="b")
    a.default_update, b.default_update = a + 1, b + 10
    for skip, want in [([a], (0.0, 20.0)), ((b,), (2.0, 20.0)), (True, (2.0, 20.0)), (False, (4.0, 40.0))]:
        f = sf.function([], a + b, no_default_updates=skip, mode=mode)
        f(), f()
        assert (float(a.get_value()), float(b.get_value())) == want, skip
    with pytest.raises(TypeError, match="no_default_updates must be True, False or a list of shared variables"):
        sf.function([], a + b, no_default_updates="yes")


def test_shape_errors_name_the_operation_shapes_and_line(mode: str) -> None:
    x, W = T.matrix("x"), sf.shared(np.ones((3, 2)), name="W")
    h = T.tanh(x.dot(W))  # the user's line
    line = next(n for n, text in enumerate(open(__file__), 1) if "h = T.tanh(x.dot(W))  # the user's" in text)
    f = sf.function([x], h, mode=mode)
    with pytest.raises(ShapeError) as info:
        f(np.ones((2, 4)))
    message = str(info.value)
    assert "Dot" in message and "(2, 4)" in message and "(3, 2)" in message
    assert f'"{__file__}", line {line}' in message


# ---------------------------------------------------------------------------------------------
# givens
# ---------------------------------------------------------------------------------------------
def test_givens(mode: str) -> None:
    x, y = T.vector("x"), T.vector("y")
    data = sf.shared(np.array([1.0, 2.0, 3.0]), name="data")
    W = sf.shared(np.array([2.0, 2.0, 2.0]), name="W")
    f = sf.function([y], x * 2, givens={x: y + 1}, mode=mode)
    np.testing.assert_array_equal(f(np.ones(2)), [4.0, 4.0])
    g = sf.function([], x * W, givens=[(x, data)], mode=mode)
    np.testing.assert_array_equal(g(), [2.0, 4.0, 6.0])
    h = sf.function([y], x * W, givens={W: y, x: data}, mode=mode)  # a shared variable replaced too
    np.testing.assert_array_equal(h(np.ones(3)), [1.0, 2.0, 3.0])
    i = T.lscalar("i")
    batch = sf.function([i], x.sum(), givens={x: data[i:i + 2]}, mode=mode)
    assert batch(1) == 5.0
    with pytest.raises(TypeError, match="different ndim"):
        sf.function([], x, givens={x: T.matrix()})
    with pytest.raises(TypeError, match="lose precision"):
        sf.function([y], T.fvector("f") * 2, givens={T.fvector("f"): y})
    assert sf.function([], data[i:i + 2].sum(), givens={i: 1}, mode=mode)() == 5.0  # values for variables
    with pytest.raises(TypeError, match=r"givens: the value for 'i' \(int64 scalar\): 2.7 does not fit int64 exactly"):
        sf.function([], data[i:i + 2].sum(), givens={i: 2.7})
    with pytest.raises(ValueError, match=r"givens: 'y' \(float64 vector\) is input 0 of the function"):
        sf.function([y], y.sum(), givens={y: data})  # which would it be?


def test_trust_input_skips_checks(mode: str) -> None:
    x = T.vector("x")
    f = sf.function([x], x * 2, mode=mode)
    f.trust_input = True
    np.testing.assert_array_equal(f(np.ones(2)), [2.0, 2.0])
    assert "x" in repr(f) and f.inputs == [x] and len(f.outputs) == 1


# ---------------------------------------------------------------------------------------------
# pickling
# ---------------------------------------------------------------------------------------------
PARITY_X, PARITY_Y = np.linspace(-1, 1, 6)[:, None], np.array([0, 1, 1, 0, 1, 0], "int32")  # one sequence


def _parity_step(mode: str) -> tuple[list[sf.SharedVariable], sf.compile.function.Function]:
    """A small scan train function with momentum updates: the kind of function worth pickling."""
    rng = np.random.default_rng(5)
    Wx, Wh, Wo = (sf.shared(rng.normal(size=s) * 0.5, name=n) for s, n in [((1, 4), "Wx"), ((4, 4), "Wh"),
                                                                          ((4, 2), "Wo")])
    h0 = sf.shared(np.zeros(4), name="h0")
    params = [Wx, Wh, Wo, h0]
    velocities = [sf.shared(p.get_value() * 0, name=f"d{p.name}") for p in params]
    X, Y = T.matrix("X"), T.ivector("Y")
    h, _ = sf.scan(lambda x_t, h_prev: T.nnet.sigmoid(x_t.dot(Wx) + h_prev.dot(Wh)), sequences=X, outputs_info=h0)
    p_y = T.nnet.softmax(h.dot(Wo))
    cost = -T.mean(T.log(p_y[T.arange(Y.shape[0]), Y]))
    steps = [0.9 * v - 0.1 * g for v, g in zip(velocities, T.grad(cost, params), strict=True)]
    updates = [(p, p + s) for p, s in zip(params, steps, strict=True)] + list(zip(velocities, steps, strict=True))
    train = sf.function([X, sf.In(Y, name="Y", value=np.zeros(6, "int32"))], [cost, T.argmax(p_y, axis=1)],
                        updates=updates, mode=mode, name="train")
    return params + velocities, train


def test_a_pickled_function_trains_as_the_original_on_its_own_shared_variables(mode: str) -> None:
    """Pickled with its parameters, a train function loads compiled again, with its name, defaults
    and input checks; the loaded copy updates the loaded parameters, the original its own."""
    shared, train = _parity_step(mode)
    train.trust_input = True
    loaded_shared, loaded = pickle.loads(pickle.dumps((shared, train)))
    assert loaded.name == "train" and loaded.trust_input and loaded.mode == mode
    assert loaded.source == train.source  # the same code: a process that compiled it loads it from the cache
    assert len(loaded.fgraph_before_rewrites.nodes()) == len(train.fgraph_before_rewrites.nodes()) != \
        len(loaded.fgraph.nodes())  # the graph as built, for pictures
    X, Y = PARITY_X, PARITY_Y
    for _ in range(3):
        expected, got = train(X, Y=Y), loaded(X, Y=Y)
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(g, e)
    for original, copy in zip(shared, loaded_shared, strict=True):
        assert copy is not original and copy.name == original.name
        np.testing.assert_array_equal(copy.get_value(), original.get_value())
    loaded(X)  # the default Y
    assert not np.array_equal(loaded_shared[0].get_value(), shared[0].get_value())
    loaded.trust_input = False
    with pytest.raises(InputError, match="argument 0 'X'"):
        loaded(np.ones(6), Y)


def test_a_pickled_function_loads_its_compiled_code_in_a_new_process(tmp_path: Path) -> None:
    """Loading a pickled function in another process compiles nothing the cache holds."""
    script = """
import pickle, sys
with open(sys.argv[1], "rb") as fh:
    shared, train, (X, Y) = pickle.load(fh)
cost, _ = train(X, Y)
print(train._run.loaded_from_cache, repr(float(cost)))
"""
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(tmp_path / "cache"))
    path = tmp_path / "train.pkl"
    outputs = []
    for _ in range(2):  # the first process compiles the function, the second loads it
        shared, train = _parity_step("numba")
        path.write_bytes(pickle.dumps((shared, train, (PARITY_X, PARITY_Y))))
        expected = float(train(PARITY_X, PARITY_Y)[0])
        done = subprocess.run([sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        loaded_from_cache, cost = done.stdout.split()
        assert float(cost) == expected
        outputs.append(loaded_from_cache)
    assert outputs == ["False", "True"]


def test_scalar_ops_pickle_by_name() -> None:
    """A registered scalar op loads as the same object; one that was never registered, or whose name
    the loading process does not know, fails with an error that says what to do."""
    from symflow.ops import elemwise

    assert pickle.loads(pickle.dumps(elemwise.SCALAR_OPS["sigmoid"])) is elemwise.SCALAR_OPS["sigmoid"]
    stray = elemwise.ScalarOp("stray", 1, lambda x: x, "{0}")
    with pytest.raises(pickle.PicklingError, match="'stray' cannot be pickled: it was not defined with scalar_op"):
        pickle.dumps(stray)
    with pytest.raises(pickle.UnpicklingError, match="scalar op 'stray', which is not defined in this process"):
        elemwise.registered_scalar_op("stray")


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_array_subclasses_and_ragged_lists_as_inputs(mode: str) -> None:
    """An ndarray subclass is read as a plain array (np.matrix's rows were 2-d and broke indexing in
    mode='py'); a masked array, whose mask would be ignored, and ragged nested lists are refused,
    naming the input."""
    x = T.matrix("x")
    f = sf.function([x], [x.sum(), x[0]], mode=mode)
    data = np.array([[1.0, 2.0], [3.0, 4.0]])
    total, row = f(np.matrix(data))
    assert total == 10.0 and type(row) is np.ndarray and row.shape == (2,)
    with pytest.raises(InputError, match=r"'x' \(float64 matrix\): got a masked array, whose mask symflow would "
                                         r"ignore.*\n.*the input was created at"):
        f(np.ma.masked_array(data, mask=[[True, False], [False, False]]))
    with pytest.raises(InputError, match=r"'x' \(float64 matrix\): cannot make an array of list \[\[1, 2\], \[3\]\]"):
        f([[1, 2], [3]])
