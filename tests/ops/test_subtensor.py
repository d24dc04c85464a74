"""Indexing with NumPy semantics (integers, slices with any step, integer-vector gathers, pairs of
index vectors, None, ellipsis), set_subtensor / inc_subtensor, flip, their errors and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.errors import IndexingError
from symflow.testing import strategies as sst

X3 = np.arange(24.0).reshape(2, 3, 4)

# (label, index applied to a 2 x 3 x 4 tensor); each is applied to the symbolic and the NumPy array
BASIC = [
    ("int", lambda a: a[1]),
    ("negative ints", lambda a: a[-1, -2]),
    ("slices with steps", lambda a: a[:, ::2, 1:]),
    ("negative steps", lambda a: a[::-1, ::-2, -1:0:-1]),
    ("negative step from a start", lambda a: a[:, 2::-1]),
    ("out-of-range bounds clip", lambda a: a[-10:10, 5:, :-7]),
    ("newaxis", lambda a: a[:, None, 1]),
    ("leading newaxis", lambda a: a[None]),
    ("ellipsis", lambda a: a[..., 1]),
    ("ellipsis in the middle", lambda a: a[1, ..., ::-1]),
    ("y[-1, 0, :]", lambda a: a[-1, 0, :]),
    ("y[:, 0, :]", lambda a: a[:, 0, :]),
    ("empty slice", lambda a: a[:, 2:1]),
]
ROWS = [
    ("row gather", lambda a: a[[1, 0, 1]]),
    ("gather with negatives", lambda a: a[[-1, 0]]),
    ("row gather, then basic indexing", lambda a: a[[1, 0]][:, 1:]),
]
#: general advanced indexing: index arrays mixed with ints and slices, several arrays, 2-d arrays
ADVANCED = [
    ("2-d index array", lambda a: a[np.array([[0, 1], [1, 1]])]),
    ("pairs", lambda a: a[[0, 1, 1], [2, 0, 2]]),
    ("pairs after a slice", lambda a: a[:, [0, 2], [1, 3]]),
    ("arrays apart (non-contiguous)", lambda a: a[[0, 1], :, [1, 3]]),
    ("int then array", lambda a: a[1, [0, 2]]),
    ("array then slice", lambda a: a[[1, 0], 1:]),
    ("broadcast index arrays", lambda a: a[np.array([[0], [1]]), np.array([0, 2])]),
]


@pytest.mark.parametrize("cases", [BASIC, ROWS, ADVANCED], ids=["basic", "rows", "advanced"])
def test_values_against_numpy(run: Any, check_infer_shape: Any, cases: list[Any]) -> None:
    x = T.tensor3("x")
    outputs = [index(x) for _, index in cases]
    for (label, index), out, got in zip(cases, outputs, run([x], outputs, X3), strict=True):
        expected = index(X3)
        np.testing.assert_array_equal(got, expected, err_msg=label)
        assert out.ndim == expected.ndim, label
    check_infer_shape([x], outputs, X3)


def test_book_pairs_indexing(run: Any) -> None:
    """``py_x[T.arange(n), thY]``: the probability of each row's target class."""
    p, y = T.matrix("p"), T.ivector("y")
    P = np.random.default_rng(0).uniform(size=(4, 3))
    Y = np.array([2, 0, 1, 2], "int32")
    picked = p[T.arange(y.shape[0]), y]
    np.testing.assert_array_equal(run([p, y], picked, P, Y), P[np.arange(4), Y])
    We, words = T.matrix("We"), T.ivector("words")
    np.testing.assert_array_equal(run([We, words], We[words], P, np.array([3, 3, 0], "int32")), P[[3, 3, 0]])


@pytest.mark.parametrize("step", [-3, -2, -1, 1, 2, 3])
def test_symbolic_bounds_and_steps(run: Any, check_infer_shape: Any, step: int) -> None:
    x, i, s = T.tensor3("x"), T.lscalar("i"), T.lscalar("s")
    outputs = [x[i], x[-i], x[:, i:], x[1::s], x[:, -1:-5:s], x[::s, i::s], x[:, :, i - 5:i:s]]
    start = 1
    expected = [X3[start], X3[-start], X3[:, start:], X3[1::step], X3[:, -1:-5:step], X3[::step, start::step],
                X3[:, :, start - 5:start:step]]
    for got, want in zip(run([x, i, s], outputs, X3, start, step), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    check_infer_shape([x, i, s], outputs, X3, start, step)


def test_inferred_length_of_steps_near_int64_limits(run: Any, check_infer_shape: Any) -> None:
    """A slice's inferred length is right for steps up to int64's limits (``(hi - lo) + (step - 1)``
    overflowed: ``v[::2**63 - 1]`` was inferred empty), for constant and run-time steps of either sign."""
    v, s, i = T.vector("v"), T.lscalar("s"), T.lscalar("i")
    big, low = 2**63 - 1, -2**63
    outputs = [v[::big], v[::low], v[1::big], v[-2::low], v[::s], v[i::s], v[:i:s]]
    V = np.arange(5.0)
    for step in (big, low, big - 1, low + 1, 2, -2):
        got = run([v, s, i], outputs, V, step, 3)
        want = [V[::big], V[::low], V[1::big], V[-2::low], V[::step], V[3::step], V[:3:step]]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        check_infer_shape([v, s, i], outputs, V, step, 3)
    empty = np.zeros(0)
    check_infer_shape([v, s, i], outputs, empty, low, 0)


def test_inferred_shape_of_index_arrays_broadcast_at_run_time(run: Any, check_infer_shape: Any) -> None:
    """Index arrays broadcast as NumPy's do, also where a length-1 dimension is known only at run
    time: the shape rule took the first array's length (``x[a, b]`` with ``len(a) == 1``: 1)."""
    x, x3 = T.matrix("x"), T.tensor3("x3")
    a, b, c = T.lvector("a"), T.lvector("b"), T.lmatrix("c")
    outputs = [x[a, b], x[b, a], x[c, a], x3[a, :, b], x3[:, c, b], x3[a, b, a]]
    X, X3_ = np.arange(12.0).reshape(3, 4), np.arange(24.0).reshape(2, 3, 4)
    for A, B, C in ((np.array([1]), np.array([0, 1, 2]), np.array([[0], [1]])),
                    (np.array([0, 1, 0]), np.array([1]), np.array([[0, 1, 1]])),
                    (np.array([1]), np.zeros(0, "int64"), np.zeros((0, 1), "int64"))):
        got = run([x, x3, a, b, c], outputs, X, X3_, A, B, C)
        want = [X[A, B], X[B, A], X[C, A], X3_[A, :, B], X3_[:, C, B], X3_[A, B, A]]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        check_infer_shape([x, x3, a, b, c], outputs, X, X3_, A, B, C)


def test_int32_and_numpy_integer_indices(run: Any) -> None:
    x, i = T.tensor3("x"), T.iscalar("i")
    out = run([x, i], [x[i, np.int64(1)], x[np.int32(0):i]], X3, 1)
    np.testing.assert_array_equal(out[0], X3[1, 1])
    np.testing.assert_array_equal(out[1], X3[0:1])


def test_set_and_inc_subtensor(run: Any) -> None:
    x, v = T.matrix("x"), T.vector("v")
    X = np.arange(12.0).reshape(3, 4)
    cases = [
        ("set slice", T.set_subtensor(x[1:, ::2], 0.0), lambda a: _set(a, (slice(1, None), slice(None, None, 2)), 0)),
        ("inc int", T.inc_subtensor(x[1], v), lambda a: _inc(a, 1, np.arange(4.0))),
        ("set negative step", T.set_subtensor(x[::-1, 0], v[:3]), lambda a: _set(a, (slice(None, None, -1), 0),
                                                                                 np.arange(3.0))),
        ("inc repeated rows", T.inc_subtensor(x[[0, 0, 2]], 1.0), lambda a: _add_at(a, [0, 0, 2], 1.0)),
        ("set repeated rows", T.set_subtensor(x[[0, 0, 2]], 5.0), lambda a: _set(a, [0, 0, 2], 5.0)),
        ("inc repeated pairs", T.inc_subtensor(x[[1, 1, 2], [3, 3, 0]], v[:3]),
         lambda a: _add_at(a, ([1, 1, 2], [3, 3, 0]), np.arange(3.0))),
        ("set pairs", T.set_subtensor(x[[0, 2], [1, 1]], v[:2]), lambda a: _set(a, ([0, 2], [1, 1]), [0.0, 1.0])),
        ("inc broadcast row", T.inc_subtensor(x[:2], v), lambda a: _inc(a, slice(None, 2), np.arange(4.0))),
        ("inc int dtype value", T.inc_subtensor(x[0], T.arange(4)), lambda a: _inc(a, 0, np.arange(4.0))),
    ]
    results = run([x, v], [c[1] for c in cases], X, np.arange(4.0))
    for (label, _, ref), got in zip(cases, results, strict=True):
        np.testing.assert_array_equal(got, ref(X.copy()), err_msg=label)
    np.testing.assert_array_equal(X, np.arange(12.0).reshape(3, 4))  # the input is never modified


def test_writes_through_rows_then_slices_and_through_full_slices(run: Any) -> None:
    """``x[rows, a:b]`` (read as rows, then a slice of them) is written into ``x``, not into the
    gathered rows; ``y[:]`` and ``y[...]`` of an expression ``y`` write into ``y``, not its parent;
    ``x[rows][:, a:b]`` written in two steps writes into the gathered rows, as Theano does."""
    x, v, idx = T.matrix("x"), T.vector("v"), T.ivector("idx")
    X, Idx = np.arange(12.0).reshape(3, 4), np.array([2, 0, 2], "int32")
    y = x[1:]
    cases = [
        ("set rows, then columns", T.set_subtensor(x[[2, 0], 1:], 0.0),
         lambda a: _set(a, ([[2], [0]], slice(1, None)), 0)),
        ("inc repeated rows, then columns", T.inc_subtensor(x[idx, ::-2], v[:2]),
         lambda a: _add_at(a, (Idx[:, None], slice(None, None, -2)), np.arange(2.0))),
        ("set a full slice of an expression", T.set_subtensor(y[:], 0.0), lambda a: a[1:] * 0),
        ("inc all of an expression", T.inc_subtensor(y[...], v), lambda a: a[1:] + np.arange(4.0)),
        ("set a full slice of an input", T.set_subtensor(x[:, :], 7.0), lambda a: a * 0 + 7),
        ("two steps: rows, then a slice of them", T.set_subtensor(x[[2, 0]][:, 1:], 0.0),
         lambda a: _set(a[[2, 0]], (slice(None), slice(1, None)), 0)),
    ]
    results = run([x, v, idx], [c[1] for c in cases], X, np.arange(4.0), Idx)
    for (label, _, ref), got in zip(cases, results, strict=True):
        np.testing.assert_array_equal(got, ref(X.copy()), err_msg=label)
    assert x[:] is not x and x[:, :].ndim == 2 and x[:, None].ndim == 3


def test_pairs_broadcast_an_empty_index_against_one_of_length_one(run: Any) -> None:
    """``x[rows, cols]`` with rows empty and cols of length 1 is empty, as in NumPy (the compiled
    code took the longer length, 1, and refused the pair)."""
    x, r, c = T.matrix("x"), T.lvector("r"), T.lvector("c")
    X, empty, one = np.arange(12.0).reshape(3, 4), np.array([], "int64"), np.array([2])
    for rows, cols in ((empty, one), (one, empty)):
        picked, increased = run([x, r, c], [x[r, c], T.inc_subtensor(x[r, c], 1.0)], X, rows, cols)
        assert picked.shape == (0,)
        np.testing.assert_array_equal(increased, X)
    with pytest.raises(IndexingError):
        run([x, r, c], x[r, c], X, np.array([0, 1]), np.array([0, 1, 2]))


def test_matrix_rows_gather_and_scatter(run: Any) -> None:
    """Row indexing of matrices (embeddings and their gradients) with whole, single and broadcast rows."""
    x, m, row, col, idx = T.matrix("x"), T.matrix("m"), T.row("row"), T.col("col"), T.ivector("idx")
    X, M = np.arange(12.0).reshape(3, 4), np.arange(100.0, 112.0).reshape(3, 4)
    R, C, Idx = np.array([[7.0, 8.0, 9.0, 10.0]]), np.array([[1.0], [2.0], [3.0]]), np.array([2, -3, 2], "int32")
    cases = [
        ("gather", x[idx], lambda a: a[Idx]),
        ("inc rows", T.inc_subtensor(x[idx], m), lambda a: _add_at(a, Idx, M)),
        ("set rows", T.set_subtensor(x[idx], m), lambda a: _set(a, Idx, M)),
        ("inc one row for all", T.inc_subtensor(x[idx], row), lambda a: _add_at(a, Idx, R)),
        ("set a column per row", T.set_subtensor(x[idx], col), lambda a: _set(a, Idx, C)),
    ]
    results = run([x, m, row, col, idx], [c[1] for c in cases], X, M, R, C, Idx)
    for (label, _, ref), got in zip(cases, results, strict=True):
        np.testing.assert_array_equal(got, ref(X.copy()), err_msg=label)


def test_general_advanced_writes(run: Any) -> None:
    """set/inc through index arrays mixed with ints and slices: repeats add up, values broadcast."""
    x, v, idx = T.tensor3("x"), T.vector("v"), T.imatrix("idx")
    Idx = np.array([[0, 2], [2, 2]], "int32")
    cases = [
        ("inc pairs after a slice (repeats)", T.inc_subtensor(x[:, [0, 0, 2], [1, 1, 3]], 1.0),
         lambda a: _add_at(a, (slice(None), [0, 0, 2], [1, 1, 3]), 1.0)),
        ("set arrays apart", T.set_subtensor(x[[0, 1], :, [3, 0]], v[:3]),
         lambda a: _set(a, ([0, 1], slice(None), [3, 0]), np.arange(3.0))),
        ("inc int then 2-d array, negative", T.inc_subtensor(x[-1, idx], v),
         lambda a: _add_at(a, (-1, Idx), np.arange(4.0))),
        ("set after a reversed slice", T.set_subtensor(x[::-1, [1, -1], 2], 7.0),
         lambda a: _set(a, (slice(None, None, -1), [1, -1], 2), 7.0)),
    ]
    results = run([x, v, idx], [c[1] for c in cases], X3, np.arange(4.0), Idx)
    for (label, _, ref), got in zip(cases, results, strict=True):
        np.testing.assert_array_equal(got, ref(X3.copy()), err_msg=label)


def test_general_advanced_indexing_is_compiled() -> None:
    """No object-mode block: the generated kernels read and write through any index."""
    x, idx = T.tensor3("x"), T.imatrix("idx")
    y = x[1:, idx, -1] + T.set_subtensor(x[[0, 1], :, [3, 0]], 0.0)[[1, 0], :2, [0, 2]].sum()
    f = sf.function([x, idx], [y, sf.grad(y.sum(), x)], mode="numba")
    assert "objmode" not in f.source
    Idx = np.array([[0, 2], [1, -1]], "int32")
    want = sf.function([x, idx], [y, sf.grad(y.sum(), x)], mode="py")(X3, Idx)
    for got, expected in zip(f(X3, Idx), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_general_advanced_index_errors(run: Any) -> None:
    x, a, b = T.tensor3("x"), T.ivector("a"), T.ivector("b")
    with pytest.raises(IndexingError):
        run([x, a], x[:, a, 1], X3, np.array([0, 3], "int32"))  # axis 1 has length 3
    with pytest.raises(IndexingError):
        run([x, a, b], x[a, :, b], X3, np.array([0, 1], "int32"), np.array([0, 1, 2], "int32"))  # 2 vs 3
    with pytest.raises(IndexingError):
        run([x, a], T.inc_subtensor(x[a, :, 0], 1.0), X3, np.array([-3], "int32"))


def _set(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    a[index] = value
    return a


def _inc(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    a[index] += value
    return a


def _add_at(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    np.add.at(a, index, value)
    return a


def test_set_subtensor_type_errors() -> None:
    x, i = T.matrix("x"), T.imatrix("i")
    with pytest.raises(TypeError, match="indexing expression"):
        T.set_subtensor(x, 0.0)
    with pytest.raises(TypeError, match="None"):
        T.set_subtensor(x[None, 0], 1.0)
    with pytest.raises(TypeError, match="cannot store"):
        T.set_subtensor(i[0], T.vector())
    with pytest.raises(ValueError, match="more dimensions"):
        T.inc_subtensor(x[0], T.matrix())


def test_index_errors(run: Any) -> None:
    x, i, v = T.tensor3("x"), T.lscalar("i"), T.ivector("v")
    with pytest.raises(IndexingError, match="out of bounds"):
        run([x, i], x[i], X3, 5)
    with pytest.raises(IndexingError, match="out of range"):
        run([x, v], x[v], X3, np.array([0, 3], "int32"))
    with pytest.raises(ValueError, match="put a value of shape"):
        run([x, v], T.set_subtensor(x[0, :2], T.ones((3, 4))), X3, np.zeros(1, "int32"))
    with pytest.raises(IndexError, match="boolean"):
        x[x > 0]
    with pytest.raises(IndexError, match="integers or slices"):
        x[1.5]
    with pytest.raises(IndexError, match="too many"):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(IndexError, match="newaxis"):
        x[None, [0, 1]]
    with pytest.raises(ValueError, match="step"):
        x[::0]
    with pytest.raises(IndexError, match="integers or slices"):
        x[T.scalar()]


def test_take(run: Any) -> None:
    x = T.matrix("x")
    X = np.arange(12.0).reshape(3, 4)
    out = run([x], [T.take(x, np.array([2, 0]), axis=1), T.take(x, np.array([5, 1]))], X)
    np.testing.assert_array_equal(out[0], np.take(X, [2, 0], axis=1))
    np.testing.assert_array_equal(out[1], np.take(X, [5, 1]))


def test_flip(run: Any, check_infer_shape: Any, verify_grads: Any) -> None:
    """NumPy's flip, as ``::-1`` slices: every axis, one, several, negative axes; refused axes."""
    x = T.tensor3("x")
    axes: list[Any] = [None, 0, 1, -1, (0, 2), [2, -2], (), (0, 1, 2)]
    outputs = [T.flip(x, a) for a in axes]
    results = run([x], outputs, X3)
    for a, got in zip(axes, results, strict=True):
        np.testing.assert_array_equal(got, np.flip(X3, a if a is None else tuple(a) if isinstance(a, list) else a))
    check_infer_shape([x], outputs, X3)
    assert T.flip(x, ()) is x and T.flip(T.scalar("s")).ndim == 0
    with pytest.raises(ValueError, match=r"flip axis 3 is out of range for 'x' \(float64 tensor3\)"):
        T.flip(x, 3)
    with pytest.raises(ValueError, match=r"an axis appears twice in \(1, -2\)"):
        T.flip(x, (1, -2))
    with pytest.raises(TypeError, match="flip axis must be an integer, got"):
        T.flip(x, T.lscalar("a"))
    a = np.random.default_rng(0).normal(size=(2, 3, 4))
    verify_grads({f"axis {axis}": (lambda v, axis=axis: T.flip(v, axis) * v, [a]) for axis in (None, 1, (0, -1))})


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
@given(data=st.data())
def test_gradients(verify_grads: Any, data: st.DataObject) -> None:
    shape = data.draw(sst.shapes(3, 3, min_side=3, max_side=4))
    a = data.draw(sst.arrays("float64", shape))
    m = data.draw(sst.arrays("float64", shape[1:]))
    rows = np.array(data.draw(st.lists(st.integers(-shape[1], shape[1] - 1), min_size=1, max_size=5)))
    cols = np.array(data.draw(st.lists(st.integers(0, shape[2] - 1), min_size=len(rows), max_size=len(rows))))
    region = data.draw(sst.arrays("float64", (2, shape[2])))
    verify_grads({
        "ints": (lambda x: x[1, -1], [a]),
        "slices": (lambda x: x[::-1, 1::2, :-1], [a]),
        "newaxis": (lambda x: x[None, :, 1] * x[:, None, 0], [a]),
        "row gather (repeats)": (lambda x: x[rows], [m]),
        "pairs (repeats)": (lambda x: x[rows, cols], [m]),
        "set_subtensor": (lambda x, y: T.set_subtensor(x[1:3, ::-1], y), [m, region]),
        "inc_subtensor": (lambda x, y: T.inc_subtensor(x[:2], y * y), [m, region]),
        "inc repeated rows": (lambda x, y: T.inc_subtensor(x[[0, 0]], y), [m, region]),
        "set rows": (lambda x, y: T.set_subtensor(x[[2, 0]], y), [m, region]),
        "inc rows broadcast": (lambda x, y: T.inc_subtensor(x[[0, 0, 1]], y[0, 0]), [m, region]),
        "set pairs": (lambda x, y: T.set_subtensor(x[[0, 2], [1, 1]], y[0, :2]), [m, region]),
        "inc pairs broadcast": (lambda x, y: T.inc_subtensor(x[[0, 0, 2], [1, 1, 0]], y[0, 0]), [m, region]),
        "index of a length-1 axis": (lambda x: x.dimshuffle(0, "x", 1)[:, 0] * x.dimshuffle("x", 0, 1)[-1], [m]),
        "set rows, then columns": (lambda x, y: T.set_subtensor(x[[2, 0], 1:], y[:, 1:]), [m, region]),
        "inc a full slice of an expression": (lambda x, y: T.inc_subtensor((x * 2)[:], y[0, 0]), [m, region]),
    })


def test_general_advanced_gradients(verify_grads: Any) -> None:
    a = np.random.default_rng(0).normal(size=(3, 4, 2))
    verify_grads({
        "3-d pairs (repeats)": (lambda x: x[[0, 0, 2], [1, 1, 3]], [a]),
        "pairs after a slice": (lambda x: x[:, [0, 2], [1, 1]], [a]),
        "int then array": (lambda x: x[1, [0, 0, 3]], [a]),
        "set 3-d pairs": (lambda x: T.set_subtensor(x[[0, 2], [1, 1]], 0.0), [a]),
    })


def test_gradient_of_an_index_into_a_length_one_axis_fills_no_zeros(mode: str) -> None:
    """``y[:, 0, :]`` of a ``(n, 1, k)`` tensor (the book's per-step softmax rows) reads every entry
    of ``y``: its gradient is the incoming one with the axis put back, no zeros added into. An
    index that is not a constant 0 or -1 keeps the general gradient."""
    x, i = T.matrix("x"), T.lscalar("i")
    rows = x.dimshuffle(0, "x", 1) * 2
    g = sf.grad((rows[:, 0, :] ** 2).sum(), x)
    assert "IncSubtensor" not in {type(n.op).__name__ for n in sf.graph.toposort([g])}
    value = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_allclose(sf.function([x], g, mode=mode)(value), 8 * value)
    general = sf.grad((rows[:, i, :] ** 2).sum(), x)
    assert "IncSubtensor" in {type(n.op).__name__ for n in sf.graph.toposort([general])}
    np.testing.assert_allclose(sf.function([x, i], general, mode=mode)(value, 0), 8 * value)


def test_book_cost_gradient(mode: str) -> None:
    """The gradient of ``-mean(log(p[arange(n), y]))`` is ``-1 / (n p)`` at the targets, 0 elsewhere."""
    p, y = T.matrix("p"), T.ivector("y")
    cost = -T.mean(T.log(p[T.arange(y.shape[0]), y]))
    P = np.full((3, 2), 0.5)
    Y = np.array([0, 1, 1], "int32")
    g = sf.function([p, y], sf.grad(cost, p), mode=mode)(P, Y)
    np.testing.assert_allclose(g, [[-2 / 3, 0.0], [0.0, -2 / 3], [0.0, -2 / 3]])


def test_embedding_gradient_accumulates_repeated_words(mode: str) -> None:
    """``We[words]``: a word used twice gets both gradients."""
    We = sf.shared(np.ones((4, 2)), name="We")
    words = T.ivector("words")
    g = sf.function([words], sf.grad(We[words].sum(), We), mode=mode)(np.array([1, 1, 3], "int32"))
    np.testing.assert_array_equal(g, [[0, 0], [2, 2], [0, 0], [1, 1]])


def test_indices_have_no_gradient() -> None:
    x, i = T.vector("x"), T.ivector("i")
    with pytest.raises(TypeError, match="integer"):
        sf.grad(x[i].sum(), i)


# ---------------------------------------------------------------------------------------------
# uint64 indices and the empty list
# ---------------------------------------------------------------------------------------------
TOP = np.uint64(2**64 - 1)  # -1 once wrapped to int64: it read the last element


def test_uint64_indices_from_2_63_up_are_out_of_range(run: Any) -> None:
    """A uint64 index of 2**63 or more is out of range on every axis (it wrapped to a negative
    index); as a slice bound it clips to the axis length. Smaller uint64 indices work as usual."""
    v, m, u, uv = T.vector("v"), T.matrix("m"), T.scalar("u", dtype="uint64"), T.vector("uv", dtype="uint64")
    V, M = np.arange(5.0), np.arange(12.0).reshape(3, 4)
    big, ok = np.array([0, TOP], "uint64"), np.array([2, 0], "uint64")
    cases = [
        ("int", [v, u], v[u], (V, TOP)),
        ("set int", [v, u], T.set_subtensor(v[u], 9.0), (V, TOP)),
        ("grad of an int", [v, u], sf.grad(v[u], v), (V, np.uint64(2**64 - 5))),
        ("rows", [v, uv], v[uv], (V, big)),
        ("inc rows", [v, uv], T.inc_subtensor(v[uv], 1.0), (V, big)),
        ("grad of rows", [v, uv], sf.grad(v[uv].sum(), v), (V, big)),
        ("pairs", [m, uv], m[uv, uv[::-1]], (M, big)),
        ("set array and int", [m, uv], T.set_subtensor(m[uv, 0], 1.0), (M, big)),
        ("int, then array", [m, uv], m[1, uv], (M, big)),
        ("inc slice, then array", [m, uv], T.inc_subtensor(m[:, uv], 1.0), (M, big)),
    ]
    missed = []
    for label, inputs, out, values in cases:
        try:
            run(inputs, out, *values)
        except IndexingError:
            continue
        missed.append(label)
    assert not missed, f"no IndexingError: {missed}"
    got = run([v, m, u, uv], [v[u:], v[:u], v[uv], m[uv, uv], m[1, uv]], V, M, TOP, ok)
    for g, want in zip(got, [V[5:], V[:5], V[[2, 0]], M[[2, 0], [2, 0]], M[1, [2, 0]]], strict=True):
        np.testing.assert_array_equal(g, want)


def test_constant_indices_beyond_int64() -> None:
    """Refused when the graph is built (they raised OverflowError or wrapped); as slice bounds they clip."""
    v = T.vector("v")
    for index in (TOP, 2**64 - 1, -2**63 - 1, np.array([0, TOP], "uint64"), [2**63]):
        with pytest.raises(IndexError, match="out of range for every axis of 'v'"):
            v[index]
    V = np.arange(5.0)
    got = sf.function([v], [v[TOP:], v[:2**64], v[-2**70:]])(V)
    for g, want in zip(got, [V[5:], V[:5], V[-2**70:]], strict=True):
        np.testing.assert_array_equal(g, want)


def test_empty_list_index(run: Any) -> None:
    """``x[[]]`` is an empty integer index, as in NumPy (the list became a float64 array)."""
    x = T.matrix("x")
    X = np.arange(12.0).reshape(3, 4)
    outputs = [x[[]], x[[], []], x[1, []], x[:, []], x[[[]]], T.take(x, [], axis=1), T.inc_subtensor(x[[]], 1.0),
               sf.grad(x[[]].sum(), x)]
    wanted = [X[[]], X[[], []], X[1, []], X[:, []], X[[[]]], np.take(X, [], axis=1), X, np.zeros_like(X)]
    for g, want in zip(run([x], outputs, X), wanted, strict=True):
        assert g.shape == want.shape and g.dtype == want.dtype
        np.testing.assert_array_equal(g, want)
