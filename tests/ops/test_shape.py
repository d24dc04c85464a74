"""Shape manipulation: dimshuffle, transpose, reshape, flatten, squeeze, shape queries,
concatenate, stack, alloc and friends, arange, repeat: values, types, shapes and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.errors import ShapeError
from symflow.graph import graph_inputs
from symflow.ops.shape import Reshape
from symflow.shapes import infer_shapes
from symflow.testing import strategies as sst

X3 = np.arange(24.0).reshape(2, 3, 4)


def test_dimshuffle_transpose_values(run: Any) -> None:
    x = T.tensor3("x")
    outputs = [x.dimshuffle(2, 0, 1), x.dimshuffle((1, "x", 0, 2)), x.T, x.transpose(1, 2, 0), x.transpose((2, 1, 0)),
               T.transpose(x), x.dimshuffle(0, 1, 2)]
    expected = [X3.transpose(2, 0, 1), X3.transpose(1, 0, 2)[:, None], X3.T, X3.transpose(1, 2, 0),
                X3.transpose(2, 1, 0), X3.T, X3]
    for got, want in zip(run([x], outputs, X3), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert outputs[1].broadcastable == (False, True, False, False)
    assert outputs[-1] is x  # the identity pattern builds nothing


def test_dimshuffle_adding_or_dropping_unit_axes_keeps_the_layout() -> None:
    """A view that only adds or drops length-1 axes keeps its input's layout type
    (``runtime.layout_of``): Numba types ``x[None, :]`` as of any layout, which compiled the
    kernels taking it once more. Checked on C, F and strided inputs, compiled and in a function."""
    import numba

    from symflow.compile.numba import runtime
    from symflow.compile.numba.jit import jit_kernel
    from symflow.ops import subtensor

    @numba.njit
    def views(x):  # type: ignore[no-untyped-def]
        return runtime.layout_of(x[None, :, :], x), runtime.layout_of(x[:, :, None][:, :, 0], x)

    for x in (X3[0], X3[0].T, X3[0][:, ::2]):
        for view, want in zip(views(x), (x[None], x), strict=True):
            np.testing.assert_array_equal(view, want)
    layouts = {signature.args[0].layout: [t.layout for t in signature.return_type]
               for signature in views.nopython_signatures}
    assert layouts == {"C": ["C", "C"], "F": ["F", "F"], "A": ["A", "A"]}

    def any_layout_takes() -> set[Any]:  # the kernel is shared by the process: other tests add to it
        return {signature for signature in jit_kernel(subtensor.take_pairs).signatures if signature[0].layout != "C"}

    before = any_layout_takes()
    b, y = T.vector("b"), T.ivector("y")
    picked = b.dimshuffle("x", 0)[T.zeros_like(y), y]
    f = sf.function([b, y], picked, mode="numba")
    np.testing.assert_array_equal(f(np.arange(5.0), np.array([3, 0, 3], np.int32)), [3.0, 0.0, 3.0])
    assert "runtime.layout_of(" in f.source
    assert any_layout_takes() == before
    unit = T.tensor("float64", (True, True), "unit")  # a 1 x 1 matrix: axes dropped to a vector, to a scalar
    g = sf.function([unit], [unit.dimshuffle(0), unit.dimshuffle(), unit.dimshuffle("x", 1, 0)], mode="numba")
    assert [v.tolist() for v in g(np.array([[4.0]]))] == [[4.0], 4.0, [[[4.0]]]]


def test_dimshuffle_errors() -> None:
    m = T.matrix("m")
    with pytest.raises(ValueError, match="not broadcastable"):
        m.dimshuffle(0)
    with pytest.raises(ValueError, match="twice"):
        m.dimshuffle(0, 0)
    with pytest.raises(ValueError, match="not a dimension"):
        m.dimshuffle(0, 2)
    with pytest.raises(ValueError, match="permutation"):
        m.transpose(0, 0)
    assert T.row().dimshuffle(1).type.broadcastable == (False,)  # a broadcastable dim may be dropped


def test_reshape_flatten_squeeze(run: Any) -> None:
    x, n = T.tensor3("x"), T.lscalar("n")
    outputs = [x.reshape((4, 6)), x.reshape((4, -1)), x.reshape((-1,)), T.reshape(x, (2, -1, 2)),
               x.reshape((n, -1)), x.flatten(), x.flatten(2), x.flatten(3), x.reshape(x.shape),
               x.reshape(x.shape[::-1], ndim=3), x[:, :1, :].squeeze(), x.reshape(24)]
    expected = [X3.reshape(4, 6), X3.reshape(4, -1), X3.ravel(), X3.reshape(2, -1, 2), X3.reshape(3, -1),
                X3.ravel(), X3.reshape(2, -1), X3, X3, X3.reshape(4, 3, 2), X3[:, :1, :], X3.ravel()]
    for got, want in zip(run([x, n], outputs, X3, 3), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert x.reshape((1, -1)).broadcastable == (True, False)
    assert x[:, :1, :].squeeze().ndim == 3  # a sliced length-1 dim is not known to be 1
    assert T.addbroadcast(x, 1).squeeze().ndim == 2


def test_reshape_errors(run: Any) -> None:
    x = T.matrix("x")
    with pytest.raises(ShapeError, match=r"cannot reshape an array of shape \(2, 3\)"):
        run([x], x.reshape((4, -1)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="at most one -1"):
        x.reshape((-1, -1))
    with pytest.raises(ValueError, match="ndim="):
        x.reshape(T.lvector("s"))
    with pytest.raises(ValueError, match="flatten"):
        x.flatten(3)


def test_reshape_entries_that_may_be_minus_one(run: Any) -> None:
    """A symbolic entry may be -1 at run time, alone or beside a length; two -1s, or a shape vector
    of the wrong length, are errors."""
    x, n = T.tensor3("x"), T.lscalar("n")
    outputs = [x.reshape((n, 4)), x.reshape((n, x.shape[2], 2)), x.reshape((x.shape[0], n))]
    for got, want in zip(run([x, n], outputs, X3, -1), [(6, 4), (3, 4, 2), (2, 12)], strict=True):
        np.testing.assert_array_equal(got, X3.reshape(want))
    with pytest.raises(ShapeError, match="cannot reshape"):
        run([x, n], x.reshape((n, -1)), X3, -1)
    s = T.lvector("s")
    with pytest.raises(ShapeError, match="wrong length|got a shape of length 1"):
        run([x, s], x.reshape(s, ndim=2), X3, np.array([24]))
    with pytest.raises(TypeError, match="needs 2 integer scalars or one integer vector, got 'n'"):
        Reshape(2, (False, False))(x, n)
    v, k, j = T.vector("v"), T.lscalar("k"), T.lscalar("j")
    for size, shape in [(0, (-1, -1)), (8, (-1, -1)), (0, (0, -1)), (0, (-1, 0)), (8, (-2, 4)), (8, (-2, -4)),
                        (8, (-4, -2)), (8, (3, -1))]:  # NumPy takes -2 for -1: symflow does not
        with pytest.raises(ShapeError, match=f"cannot reshape an array of shape \\({size},\\)"):
            run([v, k, j], v.reshape((k, j)), np.arange(float(size)), *shape)
    np.testing.assert_array_equal(run([v, k, j], v.reshape((k, j)), np.zeros(0), 0, 5), np.zeros((0, 5)))
    # flatten keeps the merged length of an empty array (no -1, which could be any length beside a 0)
    assert [r.shape for r in run([x], [x.flatten(2), x.flatten(1)], np.zeros((0, 3, 4)))] == [(0, 12), (0,)]
    with pytest.raises(ShapeError, match=r"cannot reshape an array of shape \(0, 3, 4\)"):
        run([x], x.reshape((x.shape[0], -1)), np.zeros((0, 3, 4)))


def test_uint64_lengths_from_2_63_up_do_not_wrap(run: Any) -> None:
    """A uint64 length of 2**63 or more is too large, not a negative number: cast to int64 it wrapped,
    and 2**64 - 1 became reshape's -1 (infer this length). Constants beyond int64 are refused by name."""
    x, u = T.tensor3("x"), T.scalar("u", dtype="uint64")
    with pytest.raises(ShapeError, match="cannot reshape"):
        run([x, u], x.reshape((u, 4)), X3, np.uint64(2**64 - 1))
    np.testing.assert_array_equal(run([x, u], x.reshape((u, 4)), X3, np.uint64(6)), X3.reshape(6, 4))
    for build in (lambda: x.reshape((2**64 - 1, 4)), lambda: T.zeros((np.uint64(2**64 - 1),))):
        with pytest.raises(ValueError, match="(reshape entry|alloc dimension) must fit int64, got"):
            build()


def test_reshape_by_lengths_builds_no_shape_vector() -> None:
    """A shape given as a tuple is one scalar per dimension, also in a reshape's gradient: no shape
    vector is built, and lengths, their products and nonnegative constants are not tested for -1."""
    x = T.tensor3("x")
    out = x.reshape((x.shape[0] * x.shape[1], -1))
    assert [i.ndim for i in out.owner.inputs] == [3, 0, 0]
    assert infer_shapes([out], [x])[0][0] is out.owner.inputs[1]  # the length itself, not a test for -1
    cost = (out**2).sum() + (x.flatten(2) * 3).sum() + (x.reshape((x.shape[2], 6)) ** 3).sum()
    f = sf.function([x], [out, sf.grad(cost, x)], mode="numba")
    assert not {"Join", "Shape", "MakeVector"} & {type(n.op).__name__ for n in f.fgraph.nodes()}
    assert "np.full" not in f.source and "missing" not in f.source
    got, g = f(X3)
    np.testing.assert_array_equal(got, X3.reshape(6, 4))
    np.testing.assert_allclose(g, 2 * X3 + 3 + 3 * X3**2)


def test_reshape_of_a_sequence_element_moves_out_of_the_loop(mode: str) -> None:
    """Reshaping each step's element, by lengths or by a vector, becomes one reshape of the whole
    sequence before the loop, and the loop goes."""
    X, s = T.tensor3("X"), T.lvector("s")
    (a, b), _ = sf.scan(lambda x_t: [x_t.reshape((-1,)), x_t.reshape(s, ndim=1) * 2], sequences=X)
    f = sf.function([X, s], [a, b], mode=mode)
    names = [type(n.op).__name__ for n in f.fgraph.nodes()]
    assert "Scan" not in names and names.count("Reshape") == 2
    got_a, got_b = f(X3, np.array([12]))
    np.testing.assert_array_equal(got_a, X3.reshape(2, 12))
    np.testing.assert_array_equal(got_b, 2 * X3.reshape(2, 12))


def test_shape_queries(run: Any) -> None:
    x = T.tensor3("x")
    out = run([x], [x.shape, x.shape[0], x.shape[-1], x.size, T.shape(x), T.shape_i(x, 1)], X3)
    np.testing.assert_array_equal(out[0], [2, 3, 4])
    assert [int(o) for o in out[1:4]] == [2, 4, 24]
    assert out[0].dtype == np.int64 and x.shape.dtype == "int64" and x.shape[0].ndim == 0
    np.testing.assert_array_equal(out[4], [2, 3, 4])
    assert int(out[5]) == 3
    assert x.ndim == 3 and x.dtype == "float64"


def test_concatenate_and_stack(run: Any) -> None:
    a, b, s = T.matrix("a"), T.matrix("b"), T.scalar("s")
    A, B = np.ones((2, 3)), np.arange(6.0).reshape(2, 3)
    outputs = [T.concatenate([a, b]), T.concatenate([a, b], axis=1), T.concatenate([a, b], axis=-1),
               T.stack([a, b]), T.stack([a, b], axis=2), T.stack([s, s * 2]), T.concatenate([a]),
               T.concatenate([T.imatrix("i").astype("float32"), a])]
    i = outputs[-1].owner.inputs[0].owner.inputs[0]
    results = run([a, b, s, i], outputs, A, B, 3.0, np.zeros((1, 3), "int32"))
    expected = [np.concatenate([A, B]), np.concatenate([A, B], 1), np.concatenate([A, B], 1), np.stack([A, B]),
                np.stack([A, B], 2), [3.0, 6.0], A, np.concatenate([np.zeros((1, 3)), A])]
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert outputs[-1].dtype == "float64"
    with pytest.raises(ShapeError, match="differ in dimension 1"):
        run([a, b], T.concatenate([a, b]), A, np.ones((2, 2)))
    with pytest.raises(TypeError, match="scalars"):
        T.concatenate([s, s])
    with pytest.raises(TypeError, match="equal ndim"):
        T.stack([a, s])


def test_alloc_zeros_ones_fill(run: Any) -> None:
    x, n = T.matrix("x"), T.iscalar("n")
    outputs = [T.alloc(2.0, n, 3), T.alloc(T.arange(3.0), 2, 3), T.zeros((n, 2)), T.ones((2,), dtype="int32"),
               T.zeros(x.shape), T.zeros_like(x), T.ones_like(x, dtype="int8"), T.fill(x, 7.0), T.alloc(x[0, 0])]
    X = np.arange(6.0).reshape(2, 3)
    results = run([x, n], outputs, X, 2)
    expected = [np.full((2, 3), 2.0), np.broadcast_to(np.arange(3.0), (2, 3)), np.zeros((2, 2)), np.ones(2, "int32"),
                np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 3), "int8"), np.full((2, 3), 7.0), 0.0]
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.asarray(want).dtype
    assert T.zeros((1, 3)).broadcastable == (True, False)
    with pytest.raises(ValueError, match="only broadcastable"):
        run([x], T.alloc(x, 4, 3), X)


def test_arange(run: Any) -> None:
    n, f = T.lscalar("n"), T.scalar("f")
    outputs = [T.arange(n), T.arange(2, n), T.arange(n, 0, -2), T.arange(0.5, f, 0.5), T.arange(T.iscalar("k"))]
    k = outputs[-1].owner.inputs[1]
    results = run([n, f, k], outputs, 7, 2.0, 3)
    for got, want in zip(results, [np.arange(7), np.arange(2, 7), np.arange(7, 0, -2), np.arange(0.5, 2.0, 0.5),
                                   np.arange(3)], strict=True):
        np.testing.assert_array_equal(got, want)
    assert outputs[0].dtype == "int64" and outputs[3].dtype == "float64"
    with pytest.raises(ValueError, match="zero"):
        run([n], T.arange(0, 5, n), 0)
    with pytest.raises(TypeError, match="scalars"):
        T.arange(T.vector())


def test_repeat_and_copy(run: Any) -> None:
    x = T.matrix("x")
    X = np.arange(6.0).reshape(2, 3)
    outputs = [T.repeat(x, 2, axis=1), x.repeat(2), T.repeat(x, np.array([1, 0, 2]), axis=1), x.copy(),
               T.tensor_copy(x)]
    results = run([x], outputs, X)
    for got, want in zip(results, [np.repeat(X, 2, 1), np.repeat(X, 2), np.repeat(X, [1, 0, 2], 1), X, X], strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ShapeError, match="repeat counts"):
        run([x], T.repeat(x, np.array([1, 2]), axis=1), X)
    counts, count = T.lvector("counts"), T.lscalar("count")
    for bad in ([1, -1, 2], [1, 2]):
        with pytest.raises(ShapeError, match="repeat counts"):
            run([x, counts], T.repeat(x, counts, axis=1), X, np.array(bad))
    with pytest.raises(ShapeError, match="repeat counts"):
        run([x, count], T.repeat(x, count, axis=0), X, -2)
    t3 = T.tensor3("t3")
    value = np.arange(24.0).reshape(2, 3, 4)[:, ::-1]  # not contiguous
    np.testing.assert_array_equal(run([t3, counts], T.repeat(t3, counts, axis=1), value, np.array([0, 3, 1])),
                                  np.repeat(value, [0, 3, 1], axis=1))
    with pytest.raises(TypeError, match="integers"):
        T.repeat(x, 1.5)


def test_shape_padding(run: Any) -> None:
    v = T.vector("v")
    outputs = [T.shape_padleft(v), T.shape_padright(v, 2), T.shape_padaxis(v, 1)]
    results = run([v], outputs, np.arange(3.0))
    assert [r.shape for r in results] == [(1, 3), (3, 1, 1), (3, 1)]
    assert outputs[0].broadcastable == (True, False)


def test_infer_shape(check_infer_shape: Any) -> None:
    x, n = T.tensor3("x"), T.lscalar("n")
    m = T.matrix("m")
    outputs = [x.dimshuffle(2, "x", 0, 1), x.T, x.reshape((4, -1)), x.reshape((-1, 2, 3)), x.reshape((n, -1)),
               x.flatten(), x.flatten(2), T.concatenate([x, x], axis=1), T.stack([m, m], axis=1), T.arange(n),
               T.arange(1, n, 2), T.arange(n, 0, -2), T.alloc(1.0, n, 3), T.zeros(m.shape), x.shape, x.copy(),
               T.addbroadcast(m[:1], 0)]
    check_infer_shape([x, n, m], outputs, X3, 6, np.ones((2, 3)))


def test_repeat_infer_shape_and_gradient(check_infer_shape: Any, verify_grads: Any) -> None:
    m = T.matrix("m")
    check_infer_shape([m], [T.repeat(m, 2, axis=1), T.repeat(m, np.array([1, 0, 2]), axis=1), m.repeat(3)],
                      np.ones((2, 3)))
    value = np.random.default_rng(0).normal(size=(3, 2))
    verify_grads({"repeat": (lambda x: T.repeat(x, 2, axis=1), [value]),
                  "repeat vector": (lambda x: T.repeat(x, np.array([1, 0, 2]), axis=0), [value]),
                  "repeat flat": (lambda x: x.repeat(2), [value])})


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
@given(data=st.data())
def test_gradients(verify_grads: Any, data: st.DataObject) -> None:
    a = data.draw(sst.arrays("float64", sst.shapes(3, 3, min_side=2, max_side=3)))
    m = data.draw(sst.arrays("float64", sst.shapes(2, 2, min_side=2, max_side=3)))
    v = data.draw(sst.arrays("float64", sst.shapes(1, 1, min_side=2, max_side=4)))
    verify_grads({
        "dimshuffle": (lambda x: x.dimshuffle(2, "x", 0, 1), [a]),
        "transpose": (lambda x: x.T * x.T, [a]),
        "reshape": (lambda x: x.reshape((-1, x.shape[2])) ** 2, [a]),
        "flatten": (lambda x: x.flatten(2), [a]),
        "concatenate": (lambda x, y: T.concatenate([x, y * 2, x], axis=1), [m, m]),
        "stack": (lambda x, y: T.stack([x, y], axis=1), [m, m]),
        "alloc": (lambda x: T.alloc(x, 2, 3, x.shape[0]), [v]),
        "fill": (lambda x, y: T.fill(x, y[0]), [m, v]),
        "copy": (lambda x: x.copy() * x, [v]),
        "padleft": (lambda x: T.shape_padleft(x) * T.shape_padright(x), [v]),
    })


def test_gradients_through_broadcastable_dims(verify_grads: Any) -> None:
    rng = np.random.default_rng(0)
    verify_grads({
        "squeeze": (lambda x: T.squeeze(x) * 2, [rng.normal(size=(1, 3, 1))]),
        "alloc row": (lambda x: T.alloc(x, 3, 4), [rng.normal(size=(1, 4))]),
        "addbroadcast": (lambda x, y: T.addbroadcast(x, 0) * y, [rng.normal(size=(1, 3)), rng.normal(size=(2, 3))]),
        "dimshuffle drop": (lambda x: x.dimshuffle(1), [rng.normal(size=(1, 3))]),
    })


# ---------------------------------------------------------------------------------------------
# Theano's join, horizontal/vertical stacks, swapaxes, tile and split (composed from the ops above)
# ---------------------------------------------------------------------------------------------
def test_join_stacks_swapaxes_tile_values(run: Any, check_infer_shape: Any) -> None:
    x, a, b, v = T.tensor3("x"), T.matrix("a"), T.matrix("b"), T.vector("v")
    A, B, V = np.arange(6.0).reshape(2, 3), -np.arange(4.0).reshape(2, 2), np.array([1.0, 2.0])
    cases = [
        (T.join(0, x, x * 2), np.concatenate([X3, 2 * X3], 0)), (T.join(-1, x, x), np.concatenate([X3, X3], -1)),
        (T.join(1, a, b, a), np.concatenate([A, B, A], 1)), (T.join(0, v), V),
        (T.horizontal_stack(a, b), np.hstack([A, B])), (T.vertical_stack(a, a, a), np.vstack([A, A, A])),
        (T.swapaxes(x, 0, 2), np.swapaxes(X3, 0, 2)), (x.swapaxes(-1, 1), np.swapaxes(X3, -1, 1)),
        (a.swapaxes(1, 1), A),
        (T.tile(a, (2, 3)), np.tile(A, (2, 3))), (T.tile(a, 2), np.tile(A, 2)),
        (T.tile(v, (3, 1, 2)), np.tile(V, (3, 1, 2))),
        (T.tile(x, (2, 1)), np.tile(X3, (2, 1))), (T.tile(x, (1, 0, 2)), np.tile(X3, (1, 0, 2))),
        (T.tile(a, (2, 1), ndim=4), np.tile(A, (1, 1, 2, 1))), (T.tile(v, ()), np.tile(V, ())),
        (T.tile(T.addbroadcast(a[:1], 0), (1, 2)), np.tile(A[:1], (1, 2))),
    ]
    outputs = [c[0] for c in cases]
    results = run([x, a, b, v], outputs, X3, A, B, V)
    for i, (got, (_, want)) in enumerate(zip(results, cases, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"case {i}")
    check_infer_shape([x, a, b, v], outputs, X3, A, B, V)
    # what tile knows of length-1 dims: kept where the count is 1, so a (1, n) tile is still a row
    assert outputs[-1].broadcastable == (True, False)
    assert T.tile(a, (1, 1)) is a and T.tile(v, (2, 1)).broadcastable == (False, False)
    assert T.tile(v, (1, 3)).broadcastable == (True, False)


def test_join_stacks_swapaxes_tile_errors(run: Any) -> None:
    x, a, v, n = T.tensor3("x"), T.matrix("a"), T.vector("v"), T.lscalar("n")
    with pytest.raises(TypeError, match=r"separate arguments.*argument 1 is a list"):
        T.join(0, [a, a])
    with pytest.raises(TypeError, match="Python int.*'n'"):
        T.join(n, a, a)
    with pytest.raises(ValueError, match=r"join axis 2 is out of range for 'a' \(float64 matrix\)"):
        T.join(2, a, a)
    with pytest.raises(ValueError, match="at least one"):
        T.join(0)
    with pytest.raises(ShapeError, match="differ in dimension 1"):
        run([a], T.vertical_stack(a, a[:, 1:]), np.ones((2, 3)))
    for stack in (T.horizontal_stack, T.vertical_stack):
        with pytest.raises(ValueError, match="at least two tensors, got 1"):
            stack(a)
        with pytest.raises(ValueError, match=r"refuses vectors\); argument 1 is 'v' \(float64 vector\)"):
            stack(a, v)
    with pytest.raises(ValueError, match=r"swapaxes axis2 3 is out of range for 'x' \(float64 tensor3\)"):
        x.swapaxes(0, 3)
    with pytest.raises(TypeError, match="swapaxes axis1 must be an integer, got float 0.5 for 'x'"):
        T.swapaxes(x, 0.5, 1)
    with pytest.raises(TypeError, match="symbolic reps are not supported.*'n'"):
        T.tile(a, (n, 2))
    with pytest.raises(TypeError, match="tile reps must be an int or a tuple of Python ints, got 'v'"):
        T.tile(a, T.lvector("v"))
    with pytest.raises(TypeError, match="float 1.5"):
        T.tile(a, (1.5, 2))
    with pytest.raises(ValueError, match=r"must not be negative, got \(2, -1\)"):
        T.tile(a, (2, -1))
    with pytest.raises(ValueError, match="ndim=2 is less than"):
        T.tile(x, (2, 2), ndim=2)


def test_split_values(run: Any, check_infer_shape: Any) -> None:
    x, s = T.tensor3("x"), T.ivector("s")
    cases = [(T.split(x, [1, 1], 2), np.split(X3, [1])),
             (T.split(x, (1, 0, 2), 3, axis=1), np.split(X3, [1, 1], axis=1)),
             (T.split(x, np.array([3, 1]), 2, axis=-1), np.split(X3, [3], axis=2)),
             (T.split(x, [4], 1, axis=2), [X3]),
             (T.split(x, s, 3, axis=2), np.split(X3, [2, 2], axis=2)),
             (T.split(x, T.constant([2, 1], dtype="int8"), 2, axis=1), np.split(X3, [2], axis=1))]
    outputs = [p for pieces, _ in cases for p in pieces]
    expected = [p for _, pieces in cases for p in pieces]
    assert all(isinstance(pieces, list) for pieces, _ in cases)
    assert [len(pieces) for pieces, _ in cases] == [2, 3, 2, 1, 3, 2]
    sizes = np.array([2, 0, 2], "int32")
    for i, (got, want) in enumerate(zip(run([x, s], outputs, X3, sizes), expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"piece {i}")
    check_infer_shape([x, s], outputs, X3, sizes)


def test_split_errors_at_build_time() -> None:
    x = T.tensor3("x")
    with pytest.raises(ValueError, match=r"n_splits=3 pieces needs 3 sizes, but splits_size has 2: \[1, 1\]"):
        T.split(x, [1, 1], 3)
    with pytest.raises(ValueError, match=r"must not be negative, got splits_size \[3, -1\]"):
        T.split(x, [3, -1], 2)
    with pytest.raises(ValueError, match=r"sizes \[1, 1\] add up to 2, but axis 0 of x has length 1"):
        T.split(T.addbroadcast(x, 0), [1, 1], 2)
    with pytest.raises(ValueError, match="n_splits must be a positive Python int, got 0"):
        T.split(x, [], 0)
    with pytest.raises(TypeError, match="integer vector, got 'f'"):
        T.split(x, T.vector("f"), 2)
    with pytest.raises(TypeError, match="list of ints"):
        T.split(x, [1.5, 0.5], 2)
    with pytest.raises(ValueError, match="split axis 3 is out of range"):
        T.split(x, [1, 1], 2, axis=3)
    with pytest.raises(TypeError, match="cannot split the scalar"):
        T.split(T.scalar("c"), [1], 1)


def test_split_errors_when_run(run: Any) -> None:
    """Sizes known only when run are checked before any piece is cut: count, sign and sum, with the
    sizes and the axis length in the message (the Numba backend reruns on NumPy for it)."""
    x, s = T.tensor3("x"), T.lvector("s")
    pieces = T.split(x, s, 2, axis=1)
    for sizes, message in [([1, 1], r"sizes \[1, 1\] add up to 2, but axis 1 of x has length 3"),
                           ([1, 1, 1], r"n_splits=2 pieces needs 2 sizes, but splits_size has 3: \[1, 1, 1\]"),
                           ([3], r"needs 2 sizes, but splits_size has 1: \[3\]"),
                           ([4, -1], r"must not be negative, got splits_size \[4, -1\]")]:
        with pytest.raises(ShapeError, match=message):
            run([x, s], pieces, X3, np.array(sizes))
    # a list of sizes whose sum the axis length (not known when built) does not match
    with pytest.raises(ShapeError, match=r"sizes \[2, 3\] add up to 5, but axis 2 of x has length 4"):
        run([x], T.split(x, [2, 3], 2, axis=2), X3)


def test_join_stack_tile_split_gradients(verify_grads: Any) -> None:
    rng = np.random.default_rng(0)
    t, a, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3)), rng.normal(size=(3,))
    verify_grads({
        "join": (lambda x, y: T.join(1, x, y * 2, x), [a, a]),
        "stacks": (lambda x, y: T.concatenate([T.horizontal_stack(x, y).flatten(),
                                               T.vertical_stack(x**2, y).flatten()]), [a, a]),
        "swapaxes": (lambda x: x.swapaxes(0, 2) ** 2, [t]),
        "tile": (lambda x: T.tile(x, (2, 1, 3)) ** 2, [t]),
        "tile new dims": (lambda x: T.tile(x, (2, 3, 2)) * T.arange(36).reshape((2, 3, 6)), [v]),
        "split": (lambda x: T.concatenate([p.flatten() * (i + 1) for i, p in enumerate(T.split(x, [1, 3, 0], 3, 2))]),
                  [t]),
        "split symbolic": (lambda x: sum(p.sum() * (i + 1) for i, p in
                                         enumerate(T.split(x, T.stack([x.shape[1] - 2, 2]), 2, 1))), [a]),
    })


# --- second, stacklists, specify_shape ---------------------------------------------------------
def test_second_broadcasts_b_with_a(run: Any, check_infer_shape: Any) -> None:
    """Theano's second: b's values and dtype, the broadcast shape of both, a's values ignored."""
    a, b, r = T.matrix("a"), T.fvector("b"), T.row("r")
    i, flags = T.imatrix("i"), T.tensor("bool", (False,), "flags")
    A = np.array([[np.nan, np.inf, 1.0], [2.0, 3.0, -np.inf]])
    B = np.array([-0.0, 1.5, np.nan], "float32")
    R, INTS, F = np.array([[7.0, 8.0]]), np.array([[1, 2, 3], [4, 5, 6]], "int32"), np.array([True, False, True])
    outputs = [T.second(a, b), T.second(b, a), T.second(a, 2.5), T.second(i, flags), T.second(r.T, b),
               T.second(a[:0], b), T.second(a, i)]
    expected = [np.broadcast_to(B, (2, 3)), A, np.full((2, 3), 2.5), np.broadcast_to(F, (2, 3)),
                np.broadcast_to(B, (2, 3)), np.zeros((0, 3), "float32"), INTS]
    results = run([a, b, r, i, flags], outputs, A, B, R, INTS, F)
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        assert out.dtype == got.dtype.name == want.dtype.name, k
        np.testing.assert_array_equal(got, want, err_msg=str(k))
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=str(k))  # -0.0 kept
    check_infer_shape([a, b, r, i, flags], outputs, A, B, R, INTS, F)
    with pytest.raises(ShapeError):
        run([a, b], T.second(a, b), A, B[:2])


def test_second_gradient_reaches_b_only(run: Any, verify_grads: Any) -> None:
    a, b = T.matrix("a"), T.vector("b")
    g = T.grad(T.sum(T.second(a, b) * [[1.0, 2.0], [3.0, 4.0]]), b)
    np.testing.assert_array_equal(run([a, b], g, np.ones((2, 2)), np.ones(2)), [4.0, 6.0])
    with pytest.raises(sf.errors.DisconnectedInputError):
        T.grad(T.sum(T.second(a, b)), a)
    verify_grads({"second": (lambda x, y: T.second(x, y) * x, [np.ones((3, 2)) * 0.5, np.array([1.5, -2.0])])})


def test_stacklists(run: Any, check_infer_shape: Any) -> None:
    a, b, c, d = (T.scalar(name) for name in "abcd")
    v, w, f = T.vector("v"), T.vector("w"), T.fscalar("f")
    V, W = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    outputs = [T.stacklists([[a, b], [c, d]]), T.stacklists([v, w]), T.stacklists([[v], [w]]),
               T.stacklists((a, 2, 3.5)), T.stacklists([f, 0.5]), T.stacklists([1, 2]), T.stacklists([[1.5, a]])]
    expected = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([V, W]), np.array([[V], [W]]), np.array([1.0, 2.0, 3.5]),
                np.array([5.0, 0.5], "float32"), np.array([1, 2]), np.array([[1.5, 1.0]])]
    results = run([a, b, c, d, v, w, f], outputs, 1.0, 2.0, 3.0, 4.0, V, W, 5.0)
    for k, (out, got, want) in enumerate(zip(outputs, results, expected, strict=True)):
        assert out.dtype == got.dtype.name == want.dtype.name, k
        np.testing.assert_array_equal(got, want, err_msg=str(k))
    check_infer_shape([a, b, c, d, v, w, f], outputs, 1.0, 2.0, 3.0, 4.0, V, W, 5.0)
    assert T.stacklists(v) is v
    with pytest.raises(ValueError, match="stacklists needs non-empty lists at every level, got an empty list"):
        T.stacklists([[a], []])
    with pytest.raises(TypeError, match="stack needs tensors of equal ndim"):
        T.stacklists([a, v])
    with pytest.raises(ShapeError):
        run([v, w], T.stacklists([v, w[:1]]), V, W)


def test_stacklists_gradient(verify_grads: Any) -> None:
    verify_grads({"stacklists": (lambda a, b, v: T.stacklists([[a, b * a], [b, a]]) * v,
                                 [np.array(0.5), np.array(-1.5), np.array([2.0, 3.0])])})


def test_specify_shape_checks_and_gives_the_shape(run: Any, check_infer_shape: Any) -> None:
    x, n, u = T.matrix("x"), T.iscalar("n"), T.tensor("uint8", (), "u")
    X = np.arange(6.0).reshape(2, 3)
    y = T.specify_shape(x, (n, 3))
    outputs = [y * 2, T.specify_shape(x, (2, u)), T.specify_shape(x, x.shape), T.specify_shape(x[:0], (0, 3))]
    results = run([x, n, u], outputs, X, 2, 3)
    for got, want in zip(results, [X * 2, X, X, X[:0]], strict=True):
        np.testing.assert_array_equal(got, want)
    assert y.type == x.type and T.specify_shape(T.iscalar(), ()).dtype == "int32"
    rows, cols = infer_shapes([y], [x, n])[0]  # the lengths given, not x's
    assert graph_inputs([rows]) == [n] and cols.data == 3
    check_infer_shape([x, n, u], outputs, X, 2, 3)
    for bad, where in [((2, 4), r"\(2, 4\)"), ((3, 3), r"\(3, 3\)")]:
        with pytest.raises(ShapeError, match=rf"specify_shape: 'x' \(float64 matrix\) has shape \(2, 3\), but the "
                                             rf"shape specified is {where}"):
            run([x], T.specify_shape(x, bad) + 1, X)
    with pytest.raises(ShapeError, match=r"has shape \(2, 3\), but the shape specified is \(5, 3\)"):
        run([x, n], T.specify_shape(x, (n, 3)), X, 5)


def test_specify_shape_with_lengths_left_as_none(run: Any, check_infer_shape: Any) -> None:
    """None leaves a length unchecked (PyTensor's form); shape inference keeps ``x``'s own for it,
    and a shape of None only is ``x`` itself."""
    x, n = T.tensor3("x"), T.lscalar("n")
    y = T.specify_shape(x, (None, n, 4))
    outputs = [y * 2, T.specify_shape(x, (2, None, None)), T.specify_shape(x[:, :0], (None, 0, None))]
    results = run([x, n], outputs, X3, 3)
    for got, want in zip(results, [X3 * 2, X3, X3[:, :0]], strict=True):
        np.testing.assert_array_equal(got, want)
    assert T.specify_shape(x, (None, None, None)) is x
    rows, cols, depth = infer_shapes([y], [x, n])[0]
    assert graph_inputs([rows]) == [x] and graph_inputs([cols]) == [n] and depth.data == 4
    check_infer_shape([x, n], outputs, X3, 3)
    with pytest.raises(ShapeError, match=r"has shape \(2, 3, 4\), but the shape specified is \(None, 5, 4\)"):
        run([x, n], y, X3, 5)
    with pytest.raises(ShapeError, match=r"has shape \(2, 3, 4\), but the shape specified is \(3, None, None\)"):
        run([x], T.specify_shape(x, (3, None, None)) + 1, X3)


def test_specify_shape_errors_when_built() -> None:
    x = T.matrix("x")
    with pytest.raises(ValueError, match=r"specify_shape got the shape \(2, 3, 4\) of 3 lengths for 'x' "
                                         r"\(float64 matrix\), which has 2 dimensions"):
        T.specify_shape(x, (2, 3, 4))
    with pytest.raises(TypeError, match="specify_shape length must be an integer scalar, got 'f'"):
        T.specify_shape(x, (2, T.scalar("f")))
    with pytest.raises(TypeError, match="specify_shape length must be an integer, got float 2.0"):
        T.specify_shape(x, (2.0, 3))


def test_specify_shape_gradient_passes_through(verify_grads: Any, run: Any) -> None:
    verify_grads({"specify_shape": (lambda x: T.specify_shape(x, (2, 3)) ** 2, [np.arange(6.0).reshape(2, 3) - 2])})
    i = T.ivector("i")
    with pytest.raises(TypeError, match="'i'"):  # integers have no gradient
        T.grad(T.sum(T.specify_shape(i, (3,))), i)


def test_specify_shape_of_a_sequence_element_moves_out_of_the_loop(mode: str) -> None:
    """Inside scan, the check of each step's element becomes one check of the whole sequence."""
    X, n = T.matrix("X"), T.lscalar("n")
    out, _ = sf.scan(lambda x_t: T.specify_shape(x_t, (n,)) * 2, sequences=X)
    f = sf.function([X, n], out, mode=mode)
    names = [type(node.op).__name__ for node in f.fgraph.nodes()]
    assert "Scan" not in names and names.count("SpecifyShape") == 1
    np.testing.assert_array_equal(f(X3[0], 4), X3[0] * 2)
    with pytest.raises(ShapeError, match=r"specify_shape: .* has shape \(3, 4\), but the shape specified is "
                                         r"\(None, 5\)"):
        f(X3[0], 5)
