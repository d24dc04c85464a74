"""The Numba backend agrees with the NumPy backend on recurrent models, with their gradients and
updates; and its errors leave shared variables untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.compile.numba import runtime
from symflow.compile.numba.backend import pair_in_place, plan_in_place
from symflow.compile.numba.cache import source_key as _source_key
from symflow.compile.numba.codegen import CodeGen, NoNumbaImplementation
from symflow.compile.rewrites import PIPELINE
from symflow.errors import SymflowError


def _rnn(kind: str, rng: np.random.Generator) -> tuple[list, list, list, list]:
    """A small recurrent model: inputs, cost, parameters, and test values."""
    D, M, K = 3, 4, 5
    X = T.matrix("X")
    Y = T.ivector("Y")
    w = lambda *s: sf.shared(rng.normal(scale=0.5, size=s))  # noqa: E731
    Wo, bo = w(M, K), sf.shared(np.zeros(K))
    if kind == "simple":
        Wx, Wh, bh, h0 = w(D, M), w(M, M), sf.shared(np.zeros(M)), sf.shared(np.zeros(M))
        params = [Wx, Wh, bh, h0, Wo, bo]

        def step(x, h):
            return T.nnet.sigmoid(x.dot(Wx) + h.dot(Wh) + bh)

        h, _ = sf.scan(step, sequences=X, outputs_info=h0)
    elif kind == "gru":
        Wxr, Whr, Wxz, Whz, Wxh, Whh = (w(*shape) for shape in [(D, M), (M, M)] * 3)
        h0 = sf.shared(np.zeros(M))
        params = [Wxr, Whr, Wxz, Whz, Wxh, Whh, h0, Wo, bo]

        def step(x, h):
            r = T.nnet.sigmoid(x.dot(Wxr) + h.dot(Whr))
            z = T.nnet.sigmoid(x.dot(Wxz) + h.dot(Whz))
            hh = T.tanh(x.dot(Wxh) + (r * h).dot(Whh))
            return (1 - z) * h + z * hh

        h, _ = sf.scan(step, sequences=X, outputs_info=h0)
    else:  # the book's LSTM with peephole matrices
        names = ["Wxi", "Whi", "Wci", "Wxf", "Whf", "Wcf", "Wxc", "Whc", "Wxo", "Who", "Wco"]
        P = {n: w(D if n.startswith("Wx") else M, M) for n in names}
        h0, c0 = sf.shared(np.zeros(M)), sf.shared(np.zeros(M))
        params = list(P.values()) + [h0, c0, Wo, bo]

        def step(x, h, c):
            i = T.nnet.sigmoid(x.dot(P["Wxi"]) + h.dot(P["Whi"]) + c.dot(P["Wci"]))
            f = T.nnet.sigmoid(x.dot(P["Wxf"]) + h.dot(P["Whf"]) + c.dot(P["Wcf"]))
            c_new = f * c + i * T.tanh(x.dot(P["Wxc"]) + h.dot(P["Whc"]))
            o = T.nnet.sigmoid(x.dot(P["Wxo"]) + h.dot(P["Who"]) + c_new.dot(P["Wco"]))
            return o * T.tanh(c_new), c_new

        [h, _c], _ = sf.scan(step, sequences=X, outputs_info=[h0, c0])
    p = T.nnet.softmax(h.dot(Wo) + bo)
    cost = -T.mean(T.log(p[T.arange(Y.shape[0]), Y]))
    n = 7
    values = [rng.normal(size=(n, D)), rng.integers(0, K, size=n).astype("int32")]
    return [X, Y], [cost], params, values


def _momentum(cost, params, lr=0.1, mu=0.9):
    grads = sf.grad(cost, params)
    velocity = [sf.shared(p.get_value() * 0) for p in params]
    return [(p, p + mu * v - lr * g) for p, v, g in zip(params, velocity, grads)] + \
        [(v, mu * v - lr * g) for v, g in zip(velocity, grads)]


@pytest.mark.parametrize("kind", ["simple", "gru", "lstm"])
def test_training_step_agrees_across_backends(kind: str) -> None:
    rng = np.random.default_rng(0)
    inputs, outputs, params, values = _rnn(kind, rng)
    updates = _momentum(outputs[0], params)
    shared = [p for p, _ in updates]
    start = [p.get_value() for p in shared]
    results = {}
    for mode in ("py", "numba"):
        for p, v in zip(shared, start):
            p.set_value(v)
        f = sf.function(inputs, outputs, updates=updates, mode=mode)
        costs = [float(f(*values)[0]) for _ in range(3)]
        results[mode] = (costs, [p.get_value() for p in shared])
    np.testing.assert_allclose(results["numba"][0], results["py"][0], rtol=1e-10)
    for a, b in zip(results["numba"][1], results["py"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", list(dict.fromkeys(PIPELINE)))
def test_each_rewrite_preserves_gradients(name: str) -> None:
    rng = np.random.default_rng(1)
    inputs, outputs, params, values = _rnn("gru", rng)
    grads = sf.grad(outputs[0], params)
    reference = sf.function(inputs, outputs + grads, mode="py", rewrite=False)(*values)
    for mode in ("py", "numba"):
        got = sf.function(inputs, outputs + grads, mode=mode, rewrite=[name])(*values)
        for a, b in zip(got, reference):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_reversed_view_of_a_dimshuffle() -> None:
    """A regression: a constant slice step on a dimshuffled view was dropped."""
    X = T.matrix("X")
    f = sf.function([X], X.dimshuffle(0, 1, "x")[::-1], mode="numba")
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(f(x)[:, :, 0], x[::-1])


def test_error_leaves_shared_values_unchanged() -> None:
    W = sf.shared(np.ones((3, 2)), name="W")
    V = sf.shared(np.zeros((3, 2)), name="V")
    X = T.matrix("X")
    cost = (X.dot(W) ** 2).sum()
    g = sf.grad(cost, W)
    f = sf.function([X], cost, updates=[(W, W - 0.1 * g), (V, 0.9 * V + g)], mode="numba")
    assert f._run.cg.in_place  # the updates are written in place, so this is the case to check
    f(np.ones((4, 3)))
    before = (W.get_value(), V.get_value())
    with pytest.raises(SymflowError) as info:
        f(np.ones((4, 5)))  # 5 columns against W's 3 rows
    assert "dot" in str(info.value).lower() or "Dot" in str(info.value)
    assert "test_numba_backend.py" in str(info.value)  # names the line that built the product
    np.testing.assert_array_equal(W.get_value(), before[0])
    np.testing.assert_array_equal(V.get_value(), before[1])


def test_updates_in_place_read_old_values_and_new_steps() -> None:
    """In-place updates are ordered: one that reads another's old value is written first, and
    momentum's step (the velocity's new value) is written before the parameter update reads it."""
    a, b = sf.shared(np.ones(3), name="a"), sf.shared(np.full(3, 2.0), name="b")
    f = sf.function([], [], updates=[(a, a + b), (b, b * 2)], mode="numba")
    assert set(f._run.cg.in_place) == {a, b}
    f()
    np.testing.assert_array_equal(a.get_value(), np.full(3, 3.0))  # 1 + old b, not 1 + new b
    np.testing.assert_array_equal(b.get_value(), np.full(3, 4.0))

    X = T.matrix("X")
    W = sf.shared(np.ones((3, 2)), name="W")
    V = sf.shared(np.full((3, 2), 0.5), name="V")
    step = 0.9 * V - 0.1 * sf.grad((X.dot(W) ** 2).sum(), W)
    x = np.arange(12.0).reshape(4, 3)
    results = {}
    for mode in ("py", "numba"):
        W.set_value(np.ones((3, 2)))
        V.set_value(np.full((3, 2), 0.5))
        g = sf.function([X], [], updates=[(W, W + step), (V, step)], mode=mode)
        g(x)
        g(x)
        results[mode] = (W.get_value(), V.get_value())
    assert set(g._run.cg.in_place) == {W, V}  # nothing returned to Python
    assert [len(group) for group in pair_in_place(plan_in_place(g.fgraph))] == [2]  # one loop writes both
    for got, want in zip(results["numba"], results["py"]):
        np.testing.assert_allclose(got, want, rtol=1e-12)

    A, B = sf.shared(np.eye(2), name="A"), sf.shared(np.array([[1.0, 2.0], [3.0, 4.0]]), name="B")
    h = sf.function([], [], updates=[(B, B * 2), (A, A + B.T)], mode="numba")  # A reads B through a view
    assert set(h._run.cg.in_place) == {A, B}
    assert [len(group) for group in pair_in_place(plan_in_place(h.fgraph))] == [1, 1]
    h()
    np.testing.assert_array_equal(A.get_value(), np.eye(2) + [[1.0, 3.0], [2.0, 4.0]])
    np.testing.assert_array_equal(B.get_value(), [[2.0, 4.0], [6.0, 8.0]])


def test_an_update_written_in_place_passes_its_array_once() -> None:
    """A kernel writing an update into its shared variable's array, and reading the old value
    there, takes that array as one parameter: as two, LLVM must allow for a partial overlap and
    runs its scalar loop."""
    X = T.matrix("X")
    W = sf.shared(np.ones((30, 20)), name="W")
    V = sf.shared(np.full((30, 20), 0.5), name="V")
    step = 0.9 * V - 0.1 * sf.grad((X.dot(W) ** 2).sum(), W)
    f = sf.function([X], [], updates=[(W, W + step), (V, step)], mode="numba")
    names = {sv: f._run.cg.value(sv) for sv in (W, V)}  # the arrays' names in the generated code
    writes = f.source.split("if err == 0:")[1]
    (call,) = [line for line in writes.splitlines() if "err = g_" in line]
    args = [a.strip() for a in call.split("(", 1)[1].rstrip(")").split(",")]
    assert args.count(names[W]) == args.count(names[V]) == 1 and not [a for a in args if a.startswith("dst_")]


@pytest.mark.parametrize("update", [
    lambda v: v - 0.5 * v[::-1],  # reads elements the loop has already written
    lambda v: v + v[0],  # the first element, broadcast
    lambda v: v * T.sqrt(abs(v[::-1])) + 1,  # fused with other elementwise work
])
def test_an_update_reading_its_own_variable_through_a_view_is_not_written_in_place(update: Any) -> None:
    """``v - v[::-1]`` written into v's own array would read new values for the later elements."""
    v = sf.shared(np.arange(1.0, 5.0), name="v")
    f = sf.function([], [], updates=[(v, update(v))], mode="numba")
    assert v not in f._run.cg.in_place
    f()
    v_py = sf.shared(np.arange(1.0, 5.0), name="v")
    sf.function([], [], updates=[(v_py, update(v_py))], mode="py")()
    np.testing.assert_allclose(v.get_value(), v_py.get_value(), rtol=1e-15)

    W = sf.shared(np.array([[1.0, 2.0], [3.0, 4.0]]), name="W")
    g = sf.function([], [], updates=[(W, W + W.T)], mode="numba")
    assert W not in g._run.cg.in_place
    g()
    np.testing.assert_array_equal(W.get_value(), [[2.0, 5.0], [5.0, 8.0]])


def _embedding_steps(optimizer: str, mode: str, rewrite: Any,
                     batches: list[list[int]]) -> tuple[Any, list[Any], list[Any]]:
    """An embedding trained with ``optimizer`` on index batches: the function, its costs and the
    final values of the updated shared variables."""
    E = sf.shared(np.random.default_rng(0).normal(size=(50, 4)), name="E")
    x = T.ivector("x")
    cost = (E[x] ** 2).sum()
    updates = sf.updates.BUILDERS[optimizer](cost, [E], 0.1)
    f = sf.function([x], cost, updates=updates, mode=mode, rewrite=rewrite)
    costs = [f(np.array(b, np.int32)) for b in batches]
    return f, costs, [sv.get_value() for sv, _ in updates]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_a_scattered_step_adds_its_rows_in_place(optimizer: str) -> None:
    """An embedding's gradient adds rows into zeros. Its step builds no dense gradient: SGD adds
    the scaled rows into the weights, momentum's loop scales the velocity and adds it to the
    weights, then the rows are added into both. Repeated and negative indices add up."""
    batches = [[1, 3, 3, 49, -1], [0], [], [2, 2, 2]]
    _, want_costs, want = _embedding_steps(optimizer, "py", False, batches)
    f, costs, got = _embedding_steps(optimizer, "numba", True, batches)
    np.testing.assert_allclose(costs, want_costs, rtol=1e-12)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert set(f._run.cg.in_place) == set(f.fgraph.shared_inputs)  # nothing returned to Python
    assert "incrows" not in f.source  # no array of the scattered gradient
    writes = f.source.split("if err == 0:", 1)[1]
    assert writes.count("k_scatter_rows") == len(f.fgraph.updates)  # Nesterov's two increments are one
    if optimizer == "sgd":
        assert "err = g_" not in writes  # no loop over the weights at all


@pytest.mark.parametrize("update", [
    lambda E, idx, rows: T.set_subtensor(E[idx], rows * 2),  # later repeats win
    lambda E, idx, rows: T.inc_subtensor(E[idx], rows * 2),
    lambda E, idx, rows: T.inc_subtensor(T.set_subtensor(E[idx], rows)[idx[::-1]], rows * 3),  # two, in order
], ids=["set", "inc", "set-then-inc"])
def test_rows_written_into_a_shared_variable_go_in_place(update: Any) -> None:
    """``set_subtensor(E[idx], rows)`` as an update writes the rows into E's array, not into a
    copy of E."""
    idx, rows = T.ivector("idx"), T.matrix("rows")
    values = {}
    for mode in ("py", "numba"):
        E = sf.shared(np.arange(8.0).reshape(4, 2), name="E")
        f = sf.function([idx, rows], [], updates=[(E, update(E, idx, rows))], mode=mode)
        f(np.array([3, 1, 3], np.int32), np.arange(6.0).reshape(3, 2))
        values[mode] = E.get_value()
    assert f._run.cg.in_place == [E] and "incrows" not in f.source
    np.testing.assert_array_equal(values["numba"], values["py"])


def test_a_view_returned_and_read_by_an_in_place_loop() -> None:
    """An in-place loop reads its inputs element by element (a transpose is never built), unless
    the function also returns that input."""
    W = sf.shared(np.arange(6.0).reshape(2, 3), name="W")
    V = sf.shared(np.ones((3, 2)), name="V")
    f = sf.function([], W.T, updates=[(V, V + W.T)], mode="numba")
    np.testing.assert_array_equal(f(), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(V.get_value(), 1 + np.arange(6.0).reshape(2, 3).T)
    assert f._run.cg.in_place == [V]


def test_shared_arrays_come_as_a_table_built_again_when_one_is_replaced() -> None:
    """A function that replaces no shared array passes them as one table of addresses and lengths.
    The table follows ``set_value`` (a new array, of another shape) and a replacement by another
    function's update; an array replaced is not written again."""
    X = T.matrix("X")
    values = {}
    for mode in ("py", "numba"):
        W = sf.shared(np.ones((3, 2)), name="W")
        V = sf.shared(np.zeros((3, 2)), name="V")
        cost = (X.dot(W) ** 2).sum()
        train = sf.function([X], cost, updates=[(W, W - 0.01 * sf.grad(cost, W)), (V, V + W)], mode=mode)
        flip = sf.function([], [], updates=[(W, W[::-1])], mode=mode)  # a view: W gets a new array
        x = np.arange(12.0).reshape(4, 3)
        seen = [train(x)]
        old = W.get_value(borrow=True)
        kept = old.copy()
        W.set_value(np.full((3, 2), 0.5))
        seen.append(train(x))
        np.testing.assert_array_equal(old, kept)  # the replaced array is not written
        flip()
        seen.append(train(x))
        W.set_value(np.ones((3, 5)))  # another shape
        V.set_value(np.zeros((3, 5)))
        seen.append(train(x))
        values[mode] = (seen, W.get_value(), V.get_value())
    assert train._run.cg.shared_table and "array_at(table" in train.source
    assert not flip._run.cg.shared_table  # it replaces W's array: the arrays come as themselves
    for got, want in zip(values["numba"], values["py"]):
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-12)


def test_a_scattered_step_with_a_bad_index_changes_nothing() -> None:
    f, _, before = _embedding_steps("momentum", "numba", True, [[1, 2]])
    with pytest.raises(SymflowError, match="out of range"):
        f(np.array([3, 50], np.int32))
    for sv, value in zip([sv for sv, _ in f.fgraph.updates], before):
        np.testing.assert_array_equal(sv.get_value(), value)


@pytest.mark.parametrize("rows", [
    lambda A, B: A[0:2],  # another variable updated in place: read before its loop writes it
    lambda A, B: B[1:3],  # the variable itself
])
def test_rows_that_view_an_updated_variable_are_not_added_in_place(rows: Any) -> None:
    idx = T.ivector("idx")
    values = {}
    for mode in ("py", "numba"):
        A = sf.shared(np.arange(6.0).reshape(3, 2), name="A")
        B = sf.shared(np.ones((3, 2)), name="B")
        f = sf.function([idx], [], updates=[(A, A * 2), (B, T.inc_subtensor(B[idx], rows(A, B)))], mode=mode)
        f(np.array([2, 0], np.int32))
        values[mode] = (A.get_value(), B.get_value())
    assert A in f._run.cg.in_place and B not in f._run.cg.in_place
    for got, want in zip(values["numba"], values["py"]):
        np.testing.assert_array_equal(got, want)


def test_a_zero_fill_read_by_elements_is_never_built() -> None:
    """``inc_subtensor`` into zeros (the gradient of indexing) fills its result directly, and a
    fill that is never built still rejects a negative length."""
    y, n = T.vector("y"), T.iscalar("n")
    rows = T.ivector("rows")
    zeros = T.zeros((n, 3))
    out = T.inc_subtensor(zeros[rows], T.outer(y, T.ones(3)))
    values = [np.array([1.0, 2.0]), np.int32(4), np.array([0, 2], dtype="int32")]
    want = sf.function([y, n, rows], out, mode="py")(*values)
    f = sf.function([y, n, rows], out, mode="numba")
    np.testing.assert_array_equal(f(*values), want)
    assert all(v not in f._run.cg.names for v in f._run.cg.lazy if v.owner and "Alloc" in str(v.owner.op))
    assert any(v.owner is not None and type(v.owner.op).__name__ == "Alloc" for v in f._run.cg.lazy)
    with pytest.raises(SymflowError, match="negative"):
        f(values[0], np.int32(-1), values[2])


def test_outputs_do_not_alias_updated_shared_values() -> None:
    W = sf.shared(np.ones(3), name="W")
    f = sf.function([], [W, W * 1], updates=[(W, W + 1)], mode="numba")
    first, _ = f()
    f()
    np.testing.assert_array_equal(first, np.ones(3))
    np.testing.assert_array_equal(W.get_value(), np.full(3, 3.0))


def test_zero_step_scan_with_per_step_outputs() -> None:
    X = T.matrix("X")
    w = sf.shared(np.ones((3, 2)))
    out, _ = sf.scan(lambda x: T.nnet.softmax(x.dot(w)), sequences=X)
    f = sf.function([X], out, mode="numba")
    assert f(np.zeros((0, 3))).shape == (0, 1, 2)
    assert f(np.zeros((2, 3))).shape == (2, 1, 2)


def test_random_streams_agree_across_backends() -> None:
    srng = sf.RandomStreams(3)
    n = T.lscalar("n")
    draws, _ = sf.scan(lambda: srng.normal((2,)) + srng.uniform((2,)), n_steps=n)
    values = {}
    for mode in ("py", "numba"):
        srng.seed(3)
        f = sf.function([n], draws, mode=mode)
        values[mode] = (f(4), f(4))
    np.testing.assert_allclose(values["numba"][0], values["py"][0], rtol=1e-12)
    np.testing.assert_allclose(values["numba"][1], values["py"][1], rtol=1e-12)
    assert not np.allclose(values["numba"][0], values["numba"][1])


def test_generated_source_is_available() -> None:
    x = T.vector("x")
    f = sf.function([x], T.exp(x) + 1, mode="numba")
    assert "def symflow_main" in f.source


def test_same_step_value_as_two_outputs() -> None:
    X = T.matrix("X")
    w = sf.shared(np.ones((3, 2)))

    def step(x):
        y = T.tanh(x.dot(w))
        return [y, y]

    (a, b), _ = sf.scan(step, sequences=X)
    x = np.random.default_rng(0).normal(size=(4, 3))
    got = sf.function([X], [a, b], mode="numba")(x)
    np.testing.assert_allclose(got[0], np.tanh(x @ np.ones((3, 2))))
    np.testing.assert_allclose(got[1], got[0])


class HalfSquare(sf.Op):
    """A user's op with no Numba code: ``x**2 / 2``, run by the compiled code in object mode."""

    def make_node(self, x):  # type: ignore[no-untyped-def]
        x = sf.graph.as_variable(x)
        return sf.Apply(self, [x], [x.type])

    def perform(self, node, inputs):  # type: ignore[no-untyped-def]
        if np.isnan(inputs[0]).any():
            raise ValueError("HalfSquare got a NaN")
        return [np.asarray(inputs[0] ** 2 / 2)]

    def grad(self, node, output_grads):  # type: ignore[no-untyped-def]
        return [output_grads[0] * node.inputs[0]]


class Identity(sf.Op):
    """A user's op whose ``perform`` returns its input itself, not a copy."""

    __props__ = ()

    def make_node(self, x):  # type: ignore[no-untyped-def]
        x = sf.graph.as_variable(x)
        return sf.Apply(self, [x], [x.type])

    def perform(self, node, inputs):  # type: ignore[no-untyped-def]
        return [inputs[0]]


def test_an_object_mode_result_that_is_its_input_is_copied(mode: str) -> None:
    """The compiled code took an object-mode result for a new array: one that was a shared variable
    came back holding the variable's updated value, as the variable's own storage, and one that
    was an input was the caller's array."""
    x = T.vector("x")
    W = sf.shared(np.arange(3.0), name="W")
    f = sf.function([x], [Identity()(W), Identity()(x)], updates=[(W, W * 2 + x)], mode=mode)
    given = np.ones(3)
    old_w, same_x = f(given)
    np.testing.assert_array_equal(old_w, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(W.get_value(), [1.0, 3.0, 5.0])
    assert not np.shares_memory(old_w, W.get_value(borrow=True)) and not np.shares_memory(same_x, given)


def test_an_importable_op_without_numba_code_runs_in_object_mode() -> None:
    x = T.vector("x")
    f = sf.function([x], [HalfSquare()(x).sum(), sf.grad(HalfSquare()(x).sum(), x)], mode="numba")
    assert "objmode" in f.source
    cost, g = f(np.array([1.0, -2.0, 3.0]))
    assert cost == 7.0 and np.array_equal(g, [1.0, -2.0, 3.0])
    with pytest.raises(SymflowError, match="HalfSquare"):  # its perform raises: explained, fast call or not
        f(np.array([1.0, np.nan, 3.0]))


def test_object_mode_blocks_get_no_scratch_memory() -> None:
    """NumPy code run in object mode could keep an array it is given, so a function with such a block
    allocates every temporary and passes each shared array as itself (the same function without it
    uses scratch memory and a table of the shared arrays)."""
    x = T.matrix("x")
    W = sf.shared(np.eye(3), name="W")
    product = x.dot(W).dot(W)
    plain = sf.function([x], (product * 2).sum(), mode="numba").source
    assert "scratch" in plain and "array_at(table" in plain
    f = sf.function([x], HalfSquare()(product).sum(), mode="numba")
    assert "objmode" in f.source and "scratch" not in f.source and "table" not in f.source  # W comes as itself
    assert f(np.ones((2, 3))) == 3.0


def test_an_op_that_cannot_be_imported_falls_back_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    class LocalHalfSquare(HalfSquare):  # defined in a function: compiled code cannot import it
        pass

    x = T.vector("x")
    y = LocalHalfSquare()(x)
    with pytest.raises(NoNumbaImplementation, match=r"cannot be imported as .*LocalHalfSquare.*numba_emit"):
        sf.function([x], y, mode="numba")
    monkeypatch.setattr(sf.config, "numba_fallback", "warn")
    with pytest.warns(UserWarning, match="runs on the NumPy backend instead"):
        f = sf.function([x], y, mode="numba")
    assert np.array_equal(f(np.array([2.0, 4.0])), [2.0, 8.0])


class ScaleShift(sf.Op):
    """``a * x + b``, with ``__props__`` in another order than ``__init__`` takes them."""

    __props__ = ("b", "a")

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = a, b

    def make_node(self, x):  # type: ignore[no-untyped-def]
        x = sf.graph.as_variable(x)
        return sf.Apply(self, [x], [x.type])

    def perform(self, node, inputs):  # type: ignore[no-untyped-def]
        return [np.asarray(self.a * inputs[0] + self.b)]


class Power(ScaleShift):
    """``x ** p`` with no ``__props__`` of its own (it inherits ScaleShift's; p is not among them)."""

    def __init__(self, p: float = 2.0) -> None:
        self.a, self.b, self.p = 1.0, 0.0, p

    def perform(self, node, inputs):  # type: ignore[no-untyped-def]
        return [np.asarray(inputs[0] ** self.p)]


class SinCos(HalfSquare):
    """Two outputs; the second one unused below."""

    def make_node(self, x):  # type: ignore[no-untyped-def]
        x = sf.graph.as_variable(x)
        return sf.Apply(self, [x], [x.type, x.type])

    def perform(self, node, inputs):  # type: ignore[no-untyped-def]
        return [np.sin(inputs[0]), np.cos(inputs[0])]


class WrongNdim(HalfSquare):
    def perform(self, node, inputs):  # type: ignore[no-untyped-def]
        return [np.asarray(inputs[0])[None]]  # one dimension too many


def test_ops_without_numba_code_run_as_they_are_or_not_in_object_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Object mode rebuilds an op as ``type(op)(*props)``: an op that this does not reproduce runs on
    the NumPy backend (with the reason); several outputs with some unused, and results of the wrong
    type, are handled."""
    x = T.vector("x")
    v = np.array([1.0, 2.0, 3.0])
    monkeypatch.setattr(sf.config, "numba_fallback", "raise")
    for op in (ScaleShift(2.0, 10.0), Power(3.0)):
        with pytest.raises(NoNumbaImplementation, match=r"cannot rebuild it .* makes another op.*__props__"):
            sf.function([x], op(x), mode="numba")
    monkeypatch.setattr(sf.config, "numba_fallback", "warn")
    with pytest.warns(UserWarning, match="cannot rebuild it"):
        f = sf.function([x], ScaleShift(2.0, 10.0)(x), mode="numba")
    np.testing.assert_array_equal(f(v), [12.0, 14.0, 16.0])
    f = sf.function([x], SinCos()(x)[0], mode="numba")
    assert f.source is not None and "objmode" in f.source
    np.testing.assert_array_equal(f(v), np.sin(v))
    f = sf.function([x], WrongNdim()(x), mode="numba")
    with pytest.raises(RuntimeError, match=r"internal error: WrongNdim produced float64 array of ndim 2"):
        f(v)


def test_an_op_that_generated_code_cannot_rebuild_falls_back_and_keeps_the_cache(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An error in rebuilding a user's op when the generated module is imported is the op's, not a
    damaged cache: the function falls back to the NumPy backend and the cache keeps its entries."""
    from symflow.compile.numba import runtime

    monkeypatch.setattr(sf.config, "cache_dir", tmp_path)
    x = T.vector("x")
    sf.function([x], T.exp(x).sum() * 3.5, mode="numba")(np.ones(2))  # an unrelated cache entry
    entries = sorted(tmp_path.rglob("*.nbi"))
    assert entries

    import_module = runtime.importlib.import_module

    def broken(name: str) -> Any:  # the op's module cannot be imported
        if name == HalfSquare.__module__:
            raise ImportError(f"no module named {name!r} here")
        return import_module(name)

    monkeypatch.setattr(runtime.importlib, "import_module", broken)
    monkeypatch.setattr(sf.config, "numba_fallback", "warn")
    with pytest.warns(UserWarning, match=r"HalfSquare\(\) could not be rebuilt .*ImportError.*NumPy backend"):
        f = sf.function([x], HalfSquare()(x) * 1.25, mode="numba")
    np.testing.assert_array_equal(f(np.array([2.0])), [2.5])
    assert sorted(tmp_path.rglob("*.nbi")) == entries


def test_ops_declaring_no_props_are_equal_only_to_themselves() -> None:
    """As in Theano: two ops whose class declares no ``__props__`` are never merged, since nothing
    says which of their attributes matter (``HalfSquare`` has none; ``Power`` declares some)."""
    x = T.vector("x")
    assert HalfSquare() != HalfSquare() and Power(2.0) == Power(3.0)  # the latter by its (a, b) props
    f = sf.function([x], HalfSquare()(x) + HalfSquare()(x) * 2, mode="py")
    assert sum(isinstance(n.op, HalfSquare) for n in f.fgraph.nodes()) == 2
    np.testing.assert_array_equal(f(np.array([2.0])), [6.0])


def test_the_default_mode_is_numba() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SYMFLOW_MODE"}
    code = "import symflow; print(symflow.config.mode)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numba"


KERNEL_COMPILES = """
import json, sys
import numpy as np
import symflow as sf, symflow.tensor as T
a, b, c, d = (T.vector(n) for n in 'abcd')
# the same elementwise kernel at two call sites (each with its own error code), and arange from 0
f = sf.function([a, b, c, d], [T.exp(a) * 1.5 + b, T.exp(c) * 1.5 + d, T.arange(a.shape[0]), T.arange(b.shape[0])],
                mode='numba')
f(*[np.ones(3)] * 4)
kernels = {name: len(module.kernel.signatures) for name, module in sys.modules.items()
           if name.startswith('_symflow_generated.g_')}
print(json.dumps(kernels))
"""


def test_a_kernel_compiles_once_for_all_its_call_sites(tmp_path) -> None:
    """Integer literals (error codes, constant lengths) reach kernels as int64: Numba would compile a
    kernel once per literal value otherwise, which made cold compiles of large functions slow."""
    env = dict(os.environ, SYMFLOW_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", KERNEL_COMPILES], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    signatures = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert signatures and all(n == 1 for n in signatures.values()), signatures


def test_exact_arrays_take_the_fast_call_and_anything_else_the_general_one() -> None:
    """Arrays of exactly the inputs' dtypes, ndims and layout go straight to the compiled code;
    conversions, keywords, wrong arity and errors take the general path with its messages."""
    X, b = T.matrix("X"), T.row("b")
    a, s = sf.shared(np.ones(3), name="a"), sf.shared(np.zeros(3), name="s")
    f = sf.function([X, b], (X + b).sum(), updates=[(a, s), (s, a)], mode="numba")  # a swap: one update returned
    g = sf.function([X, b], [X * 2, (X + b).sum()], mode="numba")
    assert f._fast is not None and g._fast is not None
    x = np.arange(6.0).reshape(2, 3)
    row = np.array([[1.0, 2.0, 3.0]])
    assert float(f(x, row)) == 27.0 and isinstance(f(x, row), np.ndarray)  # a 0-d array, as Theano gives
    np.testing.assert_array_equal(a.get_value(), np.ones(3))  # swapped twice
    f(x, row)
    np.testing.assert_array_equal(s.get_value(), np.ones(3))
    np.testing.assert_array_equal(a.get_value(), np.zeros(3))
    doubled, total = g(x, row)
    np.testing.assert_array_equal(doubled, x * 2)
    assert float(g(np.asfortranarray(x), row)[1]) == 27.0  # not C-contiguous: converted
    assert float(g(x.tolist(), row.tolist())[1]) == 27.0  # lists: converted
    assert float(g(X=x, b=row)[1]) == 27.0
    with pytest.raises(TypeError, match="takes 2 arguments"):
        g(x, row, row)
    with pytest.raises(SymflowError, match="broadcastable"):
        g(x, np.ones((2, 3)))
    with pytest.raises(SymflowError, match="argument 0 'X'"):
        g(x.astype("complex128"), row)
    with pytest.raises(SymflowError):
        g(np.ones((2, 4)), row)  # shapes do not match: the compiled code's error, explained
    g.trust_input = True
    assert float(g(x, row)[1]) == 27.0


def test_a_call_with_exact_arrays_runs_no_python_function_but_the_fast_call() -> None:
    """The function's class has the fast call as ``__call__``: no ``Function.__call__`` frame in
    between. The compiled code returns its array without calling Python either (Numba's boxing would
    unpickle the ndarray class: ``jit.box_returned_array``). Other calls still take the general path."""
    x = T.vector("x")
    f = sf.function([x], x * 2, mode="numba")
    value = np.ones(3)
    f(value)
    frames: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            frames.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        doubled = f(value)
    finally:
        sys.setprofile(None)
    assert frames == ["call"], frames
    np.testing.assert_array_equal(doubled, [2.0, 2.0, 2.0])
    assert isinstance(f, sf.compile.function.Function) and type(f).__name__ == "Function"
    np.testing.assert_array_equal(f(x=[1.0, 2.0]), [2.0, 4.0])
    np.testing.assert_array_equal(sf.function([x], x * 3, mode="py")(value), [3.0, 3.0, 3.0])


def test_the_fast_call_takes_exact_arrays_and_python_floats_for_float64_scalars() -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the general path was taken")

    x, lr = T.vector("x"), T.scalar("lr")
    w = sf.shared(np.ones(3), name="w")
    f = sf.function([x, lr], (x * w).sum(), updates=[(w, w - lr * x)], mode="numba")
    fast = f._run.fast_call(f.specs, False, refuse)
    value = np.array([1.0, 2.0, 3.0])
    assert float(fast(value, 0.5)) == 6.0  # a Python float
    np.testing.assert_array_equal(w.get_value(), [0.5, 0.0, -0.5])
    assert float(fast(value, np.float64(0.0))) == -1.0 and float(fast(value, np.array(0.0))) == -1.0
    with pytest.raises(AssertionError, match="general path"):
        fast(value, 1)  # a Python int: converted (and checked) by the general path
    with pytest.raises(AssertionError, match="general path"):
        fast(value.astype("float32"), 0.5)
    with pytest.raises(AssertionError, match="general path"):
        fast(value[::2], 0.5)  # wrong length is fine here, but not C-contiguous
    assert float(f(value, 1)) == -1.0  # w is then [-0.5, -2.0, -3.5]
    assert float(f(value.astype("float32"), 0.0)) == -15.0
    nothing = sf.function([], w.sum(), mode="numba")
    assert float(nothing._run.fast_call([], False, refuse)()) == float(w.get_value().sum())


def test_array_arguments_take_no_memory_records_and_their_layout_is_checked_natively() -> None:
    """Array arguments (inputs, the table of shared arrays, scratch memory) are unboxed without a
    Numba MemInfo (``jit.unbox_borrowed_array``): a call whose updates are written in place and whose
    output is a number allocates nothing. The compiled code checks C order itself: an array goes
    straight to it exactly when NumPy calls it C-contiguous; any other goes to the general path."""
    from numba.core.runtime import _nrt_python as nrt

    x, lr = T.matrix("x"), T.scalar("lr")
    w = sf.shared(np.ones((2, 3)), name="w")
    f = sf.function([x, lr], (x * w).sum(), updates=[(w, w - lr * x)], mode="numba")
    value = np.arange(6.0).reshape(2, 3)
    f(value, 0.0)
    f(value, 0.0)  # scratch memory and the table exist now
    enabled = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        before = nrt.memsys_get_stats_mi_alloc()
        assert float(f(value, 0.0)) == 15.0
        assert nrt.memsys_get_stats_mi_alloc() == before
    finally:
        if not enabled:
            nrt.memsys_disable_stats()

    general: list[tuple[Any, ...]] = []

    def record(*args: Any) -> Any:
        general.append(args)
        return f(*args)

    fast = f._run.fast_call(f.specs, False, record)
    wide = np.arange(24.0).reshape(4, 6)
    arrays = [value, wide[:2, :3], wide[::2, :3], wide[:1, ::2], wide[:1, :3], wide[:, :1].T[:, :3],
              np.asfortranarray(value), np.zeros((0, 3)), np.zeros((2, 0))[:, ::-1], wide[1:3, 3:]]
    for a in arrays:
        general.clear()
        w.set_value(np.ones(a.shape))
        got = fast(a, 0.0)
        assert len(general) == (0 if a.flags.c_contiguous else 1), (a.shape, a.strides)
        assert float(got) == a.sum()


def test_the_fast_call_takes_numbers_that_convert_exactly_for_other_scalar_dtypes() -> None:
    """int32, float32 and bool scalar inputs: a NumPy scalar of that dtype, a Python int that fits,
    a Python float (weak, as in the general path) and a Python bool go straight to the compiled
    code; anything the general path would check or refuse goes there."""
    def refuse(*args: object) -> None:
        raise AssertionError("the general path was taken")

    x, k, r, on = T.vector("x"), T.iscalar("k"), T.fscalar("r"), T.scalar("on", dtype="bool")
    f = sf.function([x, k, r, on], (x * k).sum() + r * on, mode="numba")
    fast = f._run.fast_call(f.specs, False, refuse)
    value = np.array([1.0, 2.0])
    assert float(fast(value, 2, 0.5, True)) == 6.5
    assert float(fast(value, np.int32(-1), np.float32(0.25), np.bool_(False))) == -3.0
    assert float(fast(value, 2**31 - 1, 0.0, False)) == 3.0 * (2**31 - 1)
    for k_value in (2**31, np.int64(2), 2.0):  # too big, another NumPy dtype, a float: checked
        with pytest.raises(AssertionError, match="general path"):
            fast(value, k_value, 0.5, True)
    with pytest.raises(AssertionError, match="general path"):
        fast(value, 2, np.float64(0.5), True)  # float64 to float32 would round: checked
    with pytest.raises(AssertionError, match="general path"):
        fast(value, 2, 0.5, 1)  # an int for a bool: converted by the general path
    assert float(f(value, np.int64(2), 0.5, 1)) == 6.5
    with pytest.raises(SymflowError, match="'k'"):
        f(value, 2**31, 0.5, True)
    with pytest.raises(SymflowError, match="'r'"):
        f(value, 2, np.float64(0.1), True)


def test_no_shape_check_compares_a_value_with_itself() -> None:
    """Checks like ``arg2.shape[0] != arg2.shape[0]``, or ``dst.shape[0] != arg2.shape[0]`` right
    after ``dst = arg2``, are not emitted: they cannot fail and only lengthen the compile."""
    import re

    X = T.matrix("X")
    W = sf.shared(np.ones((3, 2)), name="W")
    V = sf.shared(np.zeros((3, 2)), name="V")
    g = sf.grad((X.dot(W) ** 2).sum(), W)
    f = sf.function([X], [], updates=[(W, W - 0.1 * g), (V, 0.9 * V + g)], mode="numba")
    aliases = dict(re.findall(r"^\s+(dst_\d+) = (\w+)$", f.source, re.M))
    checks = re.findall(r"first_error\(err, \((\S+) != (\S+)\), ", f.source)
    assert checks  # the real ones are still there

    def resolve(side: str) -> str:
        side = re.sub(r"^dim_(\w+)_(\d+)$", r"\1.shape[\2]", side)  # a variable of name_dimensions
        return re.sub(r"^(\w+)\.", lambda m: aliases.get(m.group(1), m.group(1)) + ".", side)

    for lhs, rhs in checks:
        assert resolve(lhs) != resolve(rhs), (lhs, rhs)


def test_main_function_is_lowered_at_the_glue_level() -> None:
    """A generated main function goes through ``GlueLowering`` (LLVM level 1); the kernels it calls
    were compiled before, at Numba's level; and Numba's global level is left as it was."""
    from numba.core import config as numba_config

    x = T.vector("x")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    f = sf.function([x], T.exp(x) * 0.5 + offset, mode="numba")
    assert "MAIN_OPTIONS" in f.source
    main = sys.modules[next(m for m in sys.modules if m.endswith(_source_key(f.source)))].symflow_main
    [compiled] = main.overloads.values()
    passes = compiled.metadata["pipeline_times"]["nopython"]
    assert any(name.endswith("symflow_glue_lowering") for name in passes)
    assert not any(name.endswith("_native_lowering") for name in passes)
    assert int(numba_config.OPT) == 3 or "NUMBA_OPT" in os.environ
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), np.exp([0.0, 1.0]) * 0.5 + offset)


@pytest.mark.parametrize("numba_level, expected, release_gil", [(3, 1, True), (0, 0, False)])
def test_glue_lowering_sets_and_restores_the_level(monkeypatch: pytest.MonkeyPatch, numba_level: int,
                                                   expected: int, release_gil: bool) -> None:
    """Lowering runs at the lower of MAIN_OPT_LEVEL and the user's NUMBA_OPT, boxing returned arrays
    with ``box_returned_array`` and, in a function that releases the GIL (no object mode), unboxing
    array arguments with ``unbox_borrowed_array``; Numba's level and its (un)boxing come back even
    when lowering fails."""
    from types import SimpleNamespace

    from numba.core import boxing, pythonapi, types
    from numba.core import config as numba_config
    from numba.core.typed_passes import NativeLowering

    from symflow.compile.numba.jit import GlueLowering, box_returned_array, unbox_borrowed_array

    seen = []

    def failing_lowering(self: object, state: object) -> bool:
        seen.append((int(numba_config.OPT), pythonapi._boxers.functions[types.Array],
                     pythonapi._unboxers.functions[types.Array]))
        raise RuntimeError("lowering failed")

    monkeypatch.setattr(numba_config, "OPT", type(numba_config.OPT)(numba_level))
    monkeypatch.setattr(NativeLowering, "run_pass", failing_lowering)
    with pytest.raises(RuntimeError, match="lowering failed"):
        GlueLowering().run_pass(SimpleNamespace(flags=SimpleNamespace(release_gil=release_gil), library=object()))
    unbox = unbox_borrowed_array if release_gil else boxing.unbox_array
    assert seen == [(expected, box_returned_array, unbox)]
    assert int(numba_config.OPT) == numba_level
    assert pythonapi._boxers.functions[types.Array] is boxing.box_array
    assert pythonapi._unboxers.functions[types.Array] is boxing.unbox_array


def _new_scan_training() -> tuple[Any, Any, Any, Any]:
    """A train function of a tanh scan with a shared weight, from a source new to the cache (so it is
    compiled, not loaded): the function, its input, its cost and the weight."""
    x = T.matrix("x")
    w = sf.shared(np.random.default_rng(0).normal(size=(3, 3)), name="w")
    offset = float(np.random.default_rng().uniform(1, 2))
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + h.dot(w)), sequences=x, outputs_info=T.zeros((3,)))
    cost = (h ** 2).sum() + offset
    return sf.function([x], cost, updates=[(w, w - 0.1 * sf.grad(cost, w))], mode="numba"), x, cost, w


def test_glue_lowering_finds_the_same_singly_assigned_variables_as_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GlueLower``'s linear search gives exactly the set Numba's own (quadratic) search gives, on
    a main function with a loop, reassigned variables and views."""
    from numba.core import lowering

    from symflow.compile.numba.jit import GlueLower

    ours = GlueLower._find_singly_assigned_variable
    compared = []

    def both(self: lowering.Lower) -> None:
        ours(self)
        found = self._singly_assigned_vars
        lowering.Lower._find_singly_assigned_variable(self)
        compared.append((found, self._singly_assigned_vars))

    monkeypatch.setattr(GlueLower, "_find_singly_assigned_variable", both)
    f, *_ = _new_scan_training()
    assert compared, "the main function was not lowered by GlueLower"
    for found, numba_found in compared:
        assert found == numba_found
        assert found  # the comparison is not between two empty sets
    value = np.random.default_rng(1).normal(size=(4, 3))
    assert np.isfinite(f(value))


def _zero_filled_slots() -> tuple[Any, Any, dict[str, Any]]:
    """An LLVM function whose entry block allocates and zero-fills stack slots the way Numba does,
    and blocks using them: (function, entry block, slots by name)."""
    from llvmlite import ir as llvm_ir

    i64 = llvm_ir.IntType(64)
    pair = llvm_ir.LiteralStructType([i64, i64])
    function = llvm_ir.Function(llvm_ir.Module(), llvm_ir.FunctionType(i64, [i64]), "f")
    entry, loop, done = (function.append_basic_block(name) for name in ("entry", "loop", "done"))
    builder = llvm_ir.IRBuilder(entry)
    slots = {}
    for name in ("stored_first", "read_first", "field_first", "two_blocks", "in_entry", "phi"):
        slots[name] = builder.alloca(pair, name=name)
        builder.store(pair(None), slots[name])
    builder.store(pair([i64(1), i64(2)]), slots["in_entry"])
    builder.branch(loop)
    builder.position_at_end(loop)
    whole = builder.insert_value(pair([i64(0), i64(0)]), function.args[0], 0)
    builder.store(whole, slots["stored_first"])  # then read: its fill is dead
    total = builder.extract_value(builder.load(slots["stored_first"]), 0)
    total = builder.add(total, builder.extract_value(builder.load(slots["read_first"]), 0))  # reads the fill
    builder.store(pair([i64(3), i64(4)]), slots["read_first"])
    builder.store(i64(5), builder.gep(slots["field_first"], [llvm_ir.Constant(llvm_ir.IntType(32), 0)] * 2,
                                      inbounds=True))  # a field only: the other keeps the fill
    builder.store(pair([i64(6), i64(7)]), slots["two_blocks"])
    builder.store(pair([i64(8), i64(9)]), slots["phi"])
    builder.cbranch(builder.icmp_signed("<", total, i64(10)), loop, done)
    builder.position_at_end(done)
    pointer = builder.phi(slots["phi"].type)
    pointer.add_incoming(slots["phi"], loop)  # a use in this block too
    total = builder.add(total, builder.extract_value(builder.load(slots["two_blocks"]), 1))
    builder.ret(builder.add(total, builder.extract_value(builder.load(pointer), 1)))
    return function, entry, slots


def test_dead_zero_fills_are_dropped_only_where_never_read() -> None:
    """``jit.drop_dead_zero_fills`` removes the entry block's zero fill of a slot only when the slot
    is used in one other block that first stores all of it; every other fill stays."""
    from llvmlite import binding as llvm_binding
    from llvmlite import ir as llvm_ir

    from symflow.compile.numba.jit import drop_dead_zero_fills

    function, entry, slots = _zero_filled_slots()
    assert drop_dead_zero_fills(function) == 1

    def filled(slot: Any) -> bool:
        return any(isinstance(i, llvm_ir.StoreInstr) and i.operands[1] is slot and i.operands[0].constant is None
                   for i in entry.instructions)

    assert {name for name, slot in slots.items() if not filled(slot)} == {"stored_first"}
    llvm_binding.parse_assembly(str(function.module)).verify()  # still valid IR
    assert drop_dead_zero_fills(function) == 0  # nothing more to drop


def test_main_functions_drop_dead_zero_fills_and_try_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GlueLower`` drops dead zero fills from a main function (most of its temporaries'), and its
    calls return a failure without reading the counter of open ``try`` blocks (``StatusWithoutTry``)."""
    from symflow.compile.numba import jit

    dropped, modules = [], []

    def counted(function: Any) -> int:
        dropped.append(real(function))
        return dropped[-1]

    def kept(library: Any, module: Any) -> None:
        modules.append(str(module))
        real_add(library, module)

    real, real_add = jit.drop_dead_zero_fills, jit.MainLibrary.add_ir_module
    monkeypatch.setattr(jit, "drop_dead_zero_fills", counted)
    monkeypatch.setattr(jit.MainLibrary, "add_ir_module", kept)
    f, x, cost, w = _new_scan_training()
    assert len(dropped) == 1 and dropped[0] > 0
    calls = len(re.findall(r"= call i32 @", modules[0]))  # calls of compiled functions: a status each
    counter_reads = len(re.findall(r"= load i64, [^,]*%\"?try_state", modules[0]))
    assert calls > 10 and counter_reads < calls / 4, (calls, counter_reads)
    value = np.random.default_rng(1).normal(size=(4, 3))
    w_before = w.get_value()
    reference = sf.function([x], cost, mode="py")(value)
    np.testing.assert_allclose(f(value), reference)
    assert not np.allclose(w.get_value(), w_before)


def test_only_functions_without_try_blocks_return_failures_without_the_try_test() -> None:
    """``StatusWithoutTry`` marks the builder of a function with no ``try`` block, and only such a
    function returns a failed call's status without testing for an enclosing ``try`` block."""
    from types import SimpleNamespace

    from numba.core.compiler import run_frontend

    from symflow.compile.numba.jit import StatusWithoutTry

    def plain(a: int) -> int:
        return a + 1

    def guarded(a: int) -> int:
        try:
            return a + 1
        except Exception:
            return 0

    for function, marked in ((plain, True), (guarded, False)):
        builder = SimpleNamespace()
        StatusWithoutTry.mark_without_try(builder, run_frontend(function))
        assert getattr(builder, StatusWithoutTry.MARK, False) is marked


def test_registries_are_refreshed_in_a_compile_only_when_one_grew(monkeypatch: pytest.MonkeyPatch) -> None:
    """While symflow compiles (``jit.RefreshOnlyWhenRegistered``), a refresh of a target context runs
    Numba's only if a registry it reads has grown since its last one, and then finds what was added."""
    from numba.core import imputils, types
    from numba.core.registry import cpu_target

    from symflow.compile.numba.jit import COMPILE_PATCHES, RefreshOnlyWhenRegistered

    (patch,) = [patch for patch in COMPILE_PATCHES if isinstance(patch, RefreshOnlyWhenRegistered)]
    context, refreshes = cpu_target.target_context, []
    context.refresh()  # the first in a process compiles Numba's runtime, which refreshes too
    numba_refresh = patch.original
    monkeypatch.setattr(patch, "original", lambda c: (refreshes.append(c), numba_refresh(c)))
    key = object()  # a function nothing has implemented
    with patch.active():
        context.refresh()
        context.refresh()
        assert refreshes == [context]  # the second found every registry as the first left it
        imputils.builtin_registry.lower(key, types.int64)(lambda context, builder, sig, args: args[0])
        assert context.get_function(key, types.int64(types.int64))  # a failed lookup refreshes
        assert refreshes == [context, context]
    assert not patch.sizes and type(context).refresh is not patch.installed


def test_compiles_start_the_garbage_collector_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compile raises Python's threshold for collecting garbage (``jit.fewer_collections``) and
    puts the thresholds back after it; a higher threshold of the user's is kept."""
    import gc

    from symflow.compile.numba import jit

    before = gc.get_threshold()
    seen = []

    def lowered(function: Any) -> int:
        seen.append(gc.get_threshold())
        return real(function)

    real = jit.drop_dead_zero_fills
    monkeypatch.setattr(jit, "drop_dead_zero_fills", lowered)
    x = T.vector("x")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    f = sf.function([x], (T.tanh(x) ** 2).sum() + offset, mode="numba")
    assert seen == [(max(before[0], jit.COMPILE_COLLECTION_THRESHOLD), *before[1:])]
    assert gc.get_threshold() == before
    assert np.isclose(f(np.zeros(3)), offset)
    try:
        gc.set_threshold(10**6, *before[1:])
        with jit.fewer_collections():
            assert gc.get_threshold()[0] == 10**6
    finally:
        gc.set_threshold(*before)


def test_phis_stripped_without_a_second_lifetime_analysis_free_what_they_allocate() -> None:
    """``jit.StripPhisOnly`` takes the place of Numba's pass and skips its analysis of variable
    lifetimes, which lowering's references rest on: a function whose arrays are reassigned in loops
    and branches gives NumPy's result and frees every array it made; a generator keeps Numba's pass."""
    import numba
    from numba.core.runtime import _nrt_python, rtsys

    from symflow.compile.numba.jit import JIT_OPTIONS, StripPhisOnly, SymflowCompiler

    assert SymflowCompiler.replaced[StripPhisOnly.__mro__[1]] is StripPhisOnly

    def accumulate(x: np.ndarray, steps: int) -> float:
        total, a = 0.0, x * 2.0
        for i in range(steps):
            if i % 3 == 0:
                a = a + x  # a new array, the old one's last use
            else:
                b = np.sqrt(a * a)
                a = b - 1.0
            total += a.sum()
        return total

    def countdown(n: int) -> Iterator[int]:
        while n > 0:
            yield n
            n -= 1

    compiled = numba.njit(pipeline_class=SymflowCompiler, **JIT_OPTIONS)(accumulate)
    x = np.arange(5.0)
    compiled(x, 2)  # compile before counting
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        got = compiled(x, 7)
        after = rtsys.get_allocation_stats()
    finally:
        _nrt_python.memsys_disable_stats()
    assert np.isclose(got, accumulate(x, 7))
    assert after.alloc - before.alloc > 7 and after.alloc - before.alloc == after.free - before.free
    assert list(numba.njit(pipeline_class=SymflowCompiler, **JIT_OPTIONS)(countdown)(3)) == [3, 2, 1]


def test_calls_typed_once_per_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """While symflow compiles (``jit.CallTypeMemo``), a call with argument types typed before is not
    typed again: it gets the same signature and implementation. Failures still raise each time,
    and Numba's own typing is back in place, the memo empty, when the compile ends."""
    import numba
    from numba.core import errors, types

    from symflow.compile.numba.jit import COMPILE_PATCHES, KERNEL_OPTIONS, CallTypeMemo

    (memo,) = [patch for patch in COMPILE_PATCHES if isinstance(patch, CallTypeMemo)]
    numba_typing = memo.original
    typed, asked = [], []

    def counting(function: Any, context: Any, args: Any, kws: Any) -> Any:
        typed.append((function, tuple(args)))
        return numba_typing(function, context, args, kws)

    memo_typing = memo.replace

    def asking(function: Any, context: Any, args: Any, kws: Any) -> Any:
        asked.append((function, tuple(args)))
        return memo_typing(function, context, args, kws)

    monkeypatch.setattr(memo, "original", counting)
    monkeypatch.setattr(memo, "replace", asking)
    scale = float(np.random.default_rng().uniform(1, 2))  # a new function each run: compiled, not loaded

    def dims(a, b):  # type: ignore[no-untyped-def]
        n, m = a.shape[0], b.shape[0]
        return (n != m) + (n != 1) + (m != n) + (m != 1) + (n + m) * scale + (m + n) * scale

    compiled = numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(dims)
    assert compiled(np.zeros(3), np.zeros(4)) == dims(np.zeros(3), np.zeros(4))
    repeated = [call for call in typed if typed.count(call) > 1]
    assert typed and not repeated, repeated
    assert len(asked) > len(typed)  # (n != m) and (m != n), (n + m) and (m + n): typed once each
    assert types.Function.get_call_type is numba_typing and not memo.types and memo.depth == 0

    def bad(a):  # type: ignore[no-untyped-def]
        return a.shape[0] + "text" + a.shape[0] + "text"

    failing = numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(bad)
    for _ in range(2):
        with pytest.raises(errors.TypingError):
            failing(np.zeros(2))
    assert types.Function.get_call_type is numba_typing and not memo.types


def test_attributes_typed_once_per_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """While symflow compiles (``jit.AttributeTypeMemo``), an attribute of a type resolved before is
    not resolved again; failures still raise, and Numba's own resolution is back, the memo empty,
    when the compile ends."""
    import numba
    from numba.core import errors
    from numba.core.typing import context as typing_context

    from symflow.compile.numba.jit import COMPILE_PATCHES, KERNEL_OPTIONS, AttributeTypeMemo

    (memo,) = [patch for patch in COMPILE_PATCHES if isinstance(patch, AttributeTypeMemo)]
    numba_resolve = memo.original
    resolved = []

    def counting(context: Any, typ: Any, attr: str) -> Any:
        resolved.append((typ, attr))
        return numba_resolve(context, typ, attr)

    monkeypatch.setattr(memo, "original", counting)
    scale = float(np.random.default_rng().uniform(1, 2))  # a new function each run: compiled, not loaded

    def sizes(a, b):  # type: ignore[no-untyped-def]
        return (a.shape[0] + b.shape[0] + a.shape[0] * b.shape[0] + a.size + b.size + a.size) * scale

    compiled = numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(sizes)
    assert compiled(np.zeros(3), np.zeros(4)) == sizes(np.zeros(3), np.zeros(4))
    repeated = [key for key in resolved if resolved.count(key) > 1]
    assert resolved and not repeated, repeated
    assert typing_context.BaseContext.resolve_getattr is numba_resolve and not memo.types and memo.depth == 0

    def bad(a):  # type: ignore[no-untyped-def]
        return a.no_such_attribute + a.no_such_attribute

    failing = numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(bad)
    for _ in range(2):
        with pytest.raises(errors.TypingError, match="no_such_attribute"):
            failing(np.zeros(2))
    assert typing_context.BaseContext.resolve_getattr is numba_resolve and not memo.types


class _Opaque:
    """A global Numba cannot type."""


_OPAQUE = _Opaque()


def test_values_typed_once_per_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """While symflow compiles (``jit.ValueTypeMemo``), a Python value typed before is not typed again;
    equal values of different types (1, 1.0, True) keep their own types, failures still raise, and
    Numba's own typing is back, the memo empty, when the compile ends."""
    import numba
    from numba.core import errors
    from numba.core.typing import context as typing_context

    from symflow.compile.numba.jit import COMPILE_PATCHES, KERNEL_OPTIONS, ValueTypeMemo

    (memo,) = [patch for patch in COMPILE_PATCHES if isinstance(patch, ValueTypeMemo)]
    numba_typing = memo.original
    typed: list[tuple[Any, Any]] = []  # (typing context, value): Numba makes contexts of its own too

    def counting(context: Any, value: Any) -> Any:
        typed.append((context, value))
        return numba_typing(context, value)

    monkeypatch.setattr(memo, "original", counting)
    scale = float(np.random.default_rng().uniform(1, 2))  # a new function each run: compiled, not loaded

    def mixed(n):  # type: ignore[no-untyped-def]
        whole = np.int64(n) + 1 + np.int64(n) * 1
        real = np.float64(n) * 1.0 + np.float64(n) * scale
        return whole, real, (n > 0) == True, np.int64(n) - 1  # noqa: E712  (the constant True)

    compiled = numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(mixed)
    whole, real, flag, less = compiled(3)
    assert (whole, real, flag, less) == mixed(3)
    assert isinstance(whole, int) and isinstance(real, float) and isinstance(flag, bool)
    repeated = [value for i, (context, value) in enumerate(typed)
                if any(value is other and context is same for same, other in typed[:i])]
    assert typed and not repeated, repeated
    assert typing_context.BaseContext.resolve_value_type is numba_typing and not memo.types and memo.depth == 0

    def bad(n):  # type: ignore[no-untyped-def]
        return _OPAQUE

    with pytest.raises(errors.TypingError, match="_Opaque"):
        numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(bad)(1)
    context = typing_context.Context()
    with memo.active():  # as in a compile: a failure raises again when asked again
        for _ in range(2):
            with pytest.raises(ValueError, match="_Opaque"):
                context.resolve_value_type(_OPAQUE)
    assert sum(value is _OPAQUE and same is context for same, value in typed) == 2
    assert typing_context.BaseContext.resolve_value_type is numba_typing and not memo.types


def test_llvm_type_sizes_computed_once_per_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """While symflow compiles (``jit.AbiSizeMemo``), the byte size of an LLVM type is computed once
    and is the size llvmlite gives; Numba's own method is back, the memo empty, when it ends."""
    import numba
    from numba.core import base

    from symflow.compile.numba.jit import COMPILE_PATCHES, KERNEL_OPTIONS, AbiSizeMemo

    (memo,) = [patch for patch in COMPILE_PATCHES if isinstance(patch, AbiSizeMemo)]
    numba_size = memo.original
    asked: list[tuple[Any, str]] = []

    def counting(context: Any, ty: Any) -> int:
        asked.append((context.target_data, str(ty)))
        return numba_size(context, ty)

    monkeypatch.setattr(memo, "original", counting)
    seen: dict[str, tuple[Any, int]] = {}  # type's IR -> (the type, the size the memo gave)
    memo_size = memo.replace

    def recording(context: Any, ty: Any) -> int:
        size = memo_size(context, ty)
        seen[str(ty)] = (ty, size)
        return size

    monkeypatch.setattr(memo, "replace", recording)
    scale = float(np.random.default_rng().uniform(1, 2))  # a new function each run: compiled, not loaded

    def locals_of_many_types(a, n):  # type: ignore[no-untyped-def]
        total, count, flag = 0.0, 0, False
        rows = a.shape[0]
        for i in range(min(n, rows)):
            total += a[i] * scale
            count += 1
            flag = flag or a[i] > 0
        pair = (total, count)
        return pair[0] + pair[1] + rows + flag

    compiled = numba.njit(**{**KERNEL_OPTIONS, "no_cpython_wrapper": False})(locals_of_many_types)
    a = np.arange(5.0)
    assert compiled(a, 4) == locals_of_many_types(a, 4)
    assert asked and len(asked) == len(set(asked)), asked
    from numba.core.registry import cpu_target

    context = cpu_target.target_context
    assert len(seen) == len(asked) >= 3
    assert base.BaseContext.get_abi_sizeof is numba_size and not memo.sizes and memo.depth == 0
    for text, (ty, size) in seen.items():  # the size llvmlite computes, outside a compile
        assert context.get_abi_sizeof(ty) == size > 0, text


def test_meminfo_search_finds_what_numba_finds() -> None:
    """``jit.MemInfoSearch`` finds the same MemInfos as Numba's search, in the same order and read
    from the same members, in arrays, scalars and nested tuples; it reads no other member."""
    from llvmlite import ir as llvm_ir
    from numba.core import types
    from numba.core.registry import cpu_target
    from numba.core.runtime.context import NRTContext

    from symflow.compile.numba.jit import MemInfoSearch

    context = cpu_target.target_context  # (its own ``nrt`` is left alone: subtargets copy it)
    nrt = NRTContext(context, True)
    search = MemInfoSearch()
    matrix, ints = types.Array(types.float64, 2, "C"), types.Array(types.int32, 1, "A")
    cases = [(matrix, 1), (types.int64, 0), (types.UniTuple(matrix, 3), 3),
             (types.Tuple((types.int64, matrix, types.float64)), 1),
             (types.Tuple((types.Tuple((matrix, types.intp)), ints)), 2), (types.UniTuple(types.int64, 4), 0)]

    def path(value: Any) -> list[Any]:  # the members read, outermost first
        read = []
        while isinstance(value, llvm_ir.instructions.ExtractValue):
            read.insert(0, tuple(value.indices))
            value = value.aggregate
        return read

    for typ, count in cases:
        found, instructions = [], []
        for find in (search.original, search.replace):
            module = llvm_ir.Module()
            function = llvm_ir.Function(module, llvm_ir.FunctionType(llvm_ir.VoidType(),
                                                                     [context.get_value_type(typ)]), "f")
            block = function.append_basic_block()
            meminfos = find(nrt, llvm_ir.IRBuilder(block), typ, function.args[0])
            found.append([(t, path(v)) for t, v in meminfos])
            instructions.append(len(block.instructions))
        assert found[0] == found[1] and len(found[1]) == count, typ
        assert instructions[1] == sum(len(p) for _, p in found[1]) <= instructions[0]
    assert search.holds and not search.depth


def test_compiled_functions_free_the_memory_they_allocate() -> None:
    """Calls of a compiled function with a scan, its gradient and updates give back every block of
    memory Numba's runtime allocates (the MemInfos ``jit.MemInfoSearch`` finds are counted right)."""
    from numba.core.runtime import _nrt_python, rtsys

    x = T.matrix("x")
    w = sf.shared(np.random.default_rng(0).normal(size=(3, 3)), name="w")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + h.dot(w)), sequences=x, outputs_info=T.zeros((3,)))
    cost = (h ** 2).sum() + offset
    f = sf.function([x], [cost, h], updates=[(w, w - 0.1 * sf.grad(cost, w))], mode="numba")
    value = np.random.default_rng(1).normal(size=(40, 3))
    f(value)  # the first call allocates the scratch memory calls keep
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        for steps in (40, 7, 40):
            results = f(value[:steps])
        del results
        after = rtsys.get_allocation_stats()
    finally:
        _nrt_python.memsys_disable_stats()
    allocated, freed = after.alloc - before.alloc, after.free - before.free
    assert allocated > 0 and allocated == freed
    assert after.mi_alloc - before.mi_alloc == after.mi_free - before.mi_free


def test_main_function_borrows_its_array_arguments() -> None:
    """The main function takes no references to its arguments (the wrapper holds them): its code
    has no increments of their counts; and calls keep every argument's count where it was, also
    when an argument is returned, stored by an update, or read through views in a loop."""
    import re

    x, y = T.matrix("x"), T.vector("y")
    w = sf.shared(np.random.default_rng(0).normal(size=(3, 3)), name="w")
    b = sf.shared(np.zeros(3), name="b")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + h.dot(w)), sequences=x, outputs_info=y)
    cost = (h ** 2).sum() + offset
    f = sf.function([x, y], [cost, x, x[::-1], y], mode="numba",
                    updates=[(w, w - 0.1 * sf.grad(cost, w)), (b, y)])
    main = sys.modules[next(m for m in sys.modules if m.endswith(_source_key(f.source)))].symflow_main
    [signature] = main.overloads
    ir = main.inspect_llvm(signature)
    body = ir[ir.index("define"):ir.index("\n}\n")]  # the main function itself, not its wrapper
    entry = re.split(r"\n[\w.]+:", body)[1]  # its first block (labels end in a colon)
    assert "@NRT_incref" not in entry, entry
    assert "@NRT_incref" not in entry
    xv, yv = np.random.default_rng(1).normal(size=(4, 3)), np.array([0.1, 0.2, 0.3])
    counts = [sys.getrefcount(v) for v in (xv, yv, w._value)]
    for _ in range(50):
        result = f(xv, yv)
    del result
    assert [sys.getrefcount(v) for v in (xv, yv, w._value)] == counts
    cost_value, x_back, x_reversed, y_back = f(xv, yv)
    np.testing.assert_array_equal(x_reversed, xv[::-1])
    np.testing.assert_array_equal(y_back, yv)
    np.testing.assert_array_equal(b.get_value(), yv)


def _compiled_main(f: Any) -> Any:
    """The compiled main function (Numba's compile result) behind ``f``."""
    main = sys.modules[next(m for m in sys.modules if m.endswith(_source_key(f.source)))].symflow_main
    [compiled] = main.overloads.values()
    return compiled


def _kernel_calls(compiled: Any) -> set[str]:
    """Names of the functions that the optimised main function itself calls."""
    ir = compiled.library.get_llvm_str()
    start = next(m.start() for m in re.finditer(r"^define .*$", ir, re.M)
                 if "symflow_main" in m.group() and "cpython" not in m.group())
    body = ir[start:ir.index("\n}\n", start)]
    return set(re.findall(r"call [^@\n]*@(\"?[\w.$]+)", body))


def _scan_step_function(offset: float, mode: str) -> tuple[Any, Any]:
    x = T.matrix("x")
    w = sf.shared(np.random.default_rng(0).normal(size=(3, 3)), name="w")
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + h.dot(w)), sequences=x, outputs_info=T.zeros((3,)))
    cost = (h ** 2).sum() + offset
    return sf.function([x], cost, updates=[(w, w - 0.1 * sf.grad(cost, w))], mode=mode), w


@pytest.mark.parametrize("limit", [None, 0])
def test_main_function_inlines_its_small_kernels(monkeypatch: pytest.MonkeyPatch, limit: int | None) -> None:
    """Calls of kernels up to ``INLINE_MAX_INSTRUCTIONS`` instructions are inlined into the main
    function, larger ones stay calls (marked ``noinline``: LLVM would inline some, and with them the
    NRT calls inside them); with the limit at 0 every kernel call stays a call. Results are the NumPy
    backend's."""
    from symflow.compile.numba import jit

    if limit is not None:
        monkeypatch.setattr(jit, "INLINE_MAX_INSTRUCTIONS", limit)
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    f, w = _scan_step_function(offset, "numba")
    compiled = _compiled_main(f)
    sizes = {name: size for library in compiled.library._linking_libraries
             for name, (size, *_) in jit.kernel_functions(library).items()}
    small = {name for name, size in sizes.items() if size <= jit.INLINE_MAX_INSTRUCTIONS}
    called = _kernel_calls(compiled)
    if limit is None:
        assert small and set(sizes) - small, sizes  # kernels on both sides of the limit
        assert not called & small, called & small
        assert called & (set(sizes) - small)
    else:
        assert len(called & set(sizes)) >= 5, called  # kernel calls are left as calls
        defined = set(re.findall(r'^define [^@]*@"?([\w.$]+)', compiled.library.get_llvm_str(), re.M))
        kernels = {name for name in sizes if "symflow" in name}  # not Numba's helpers, which may go unused
        assert kernels <= called | defined, kernels - called - defined  # none was inlined away
    reference, w_reference = _scan_step_function(offset, "py")
    value = np.random.default_rng(1).normal(size=(4, 3))
    np.testing.assert_allclose(f(value), reference(value), rtol=1e-12)
    np.testing.assert_allclose(w.get_value(), w_reference.get_value(), rtol=1e-12)


def test_large_kernels_are_linked_after_the_module_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """While LLVM's module passes optimise a main function, the kernels too large to inline are only
    declared (``MainLibrary.finalize``), with the attributes their own optimisation found (what they
    touch, the statuses they return); they are linked in after, so the main function's machine code
    has them, and its results are the NumPy backend's."""
    from symflow.compile.numba import jit

    during: dict[str, str | None] = {}  # function -> its declaration's IR during the module passes (None: defined)
    numba_passes = jit.MainLibrary._optimize_final_module

    def recording(library: Any) -> None:
        during.update({fn.name: str(fn) if fn.is_declaration else None for fn in library._final_module.functions})
        numba_passes(library)

    monkeypatch.setattr(jit.MainLibrary, "_optimize_final_module", recording)
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    f, w = _scan_step_function(offset, "numba")
    compiled = _compiled_main(f)
    kernels = {name: function for library in compiled.library._linking_libraries
               for name, function in jit.kernel_functions(library).items()}
    large = {name for name, function in kernels.items() if function.size > jit.INLINE_MAX_INSTRUCTIONS}
    called = _kernel_calls(compiled)
    assert called & large and during, (called, large)
    declared = {name: during[name] for name in large if name in during}
    assert declared and all(declared.values()), [name for name, ir in declared.items() if ir is None]
    for name, ir in declared.items():  # (``dot_mm`` calls BLAS: LLVM found nothing to say about it)
        attributes, returned = kernels[name].attributes, kernels[name].return_attributes
        assert all(word in ir for word in attributes.split()) and returned in ir, (attributes, returned, ir)
    assert any("nounwind" in kernels[name].attributes for name in declared)
    assert any("range(i32 0, 1)" in kernels[name].return_attributes for name in declared)  # always succeeds
    assert any(during.get(name, "") is None for name in kernels)  # small kernels had their bodies
    defined = set(re.findall(r'^define [^@]*@"?([\w.$]+)', compiled.library.get_llvm_str(), re.M))
    assert called & large <= defined
    reference, w_reference = _scan_step_function(offset, "py")
    value = np.random.default_rng(1).normal(size=(4, 3))
    np.testing.assert_allclose(f(value), reference(value), rtol=1e-12)
    np.testing.assert_allclose(w.get_value(), w_reference.get_value(), rtol=1e-12)


def test_a_kernel_module_declares_only_the_functions_asked_for() -> None:
    """``jit.without_bodies`` declares the named functions of a kernel library's module, keeps the
    others, and leaves alone a module that defines none of them, a local one, or one in a form it does
    not know. ``kernel_functions``
    reads each function's size and attributes, and the range of statuses it returns when it returns
    only constants."""
    from llvmlite import binding

    from symflow.compile.numba import jit

    text = """
define linkonce_odr range(i32 0, 2) i32 @"big.one"(ptr noalias %out, i64 %n) local_unnamed_addr #0 {
entry:
  %r = call i32 @small(i64 %n)
  ret i32 %r
}

define linkonce_odr noundef i32 @small(i64 %n) #0 {
entry:
  %c = icmp eq i64 %n, 0
  br i1 %c, label %zero, label %other
zero:
  ret i32 -3
other:
  ret i32 1
}

define internal i32 @local(i64 %n) {
entry:
  %r = trunc i64 %n to i32
  ret i32 %r
}

attributes #0 = { nounwind memory(argmem: readwrite) }
"""

    class Library:  # what ``without_bodies`` and ``kernel_functions`` read of a kernel library
        def __init__(self) -> None:
            self.module = binding.parse_assembly(text)

        def _get_module_for_linking(self) -> Any:
            return self.module

    library = Library()
    for names, expected in [({"big.one", "absent"}, {"big.one": True, "small": False, "local": False}),
                            ({"small"}, {"big.one": False, "small": True, "local": False}),  # same library
                            ({"big.one", "small"}, {"big.one": True, "small": True, "local": False})]:
        declared = jit.without_bodies(library, names)
        assert {fn.name: fn.is_declaration for fn in declared.functions} == expected, names
    assert jit.without_bodies(Library(), {"absent"}) is None
    assert jit.without_bodies(Library(), {"big.one", "local"}) is None  # a local function needs its body
    assert jit.kernel_functions(Library()) == {
        "big.one": jit.KernelFunction(2, "nounwind memory(argmem: readwrite)", "range(i32 0, 2)"),  # its own
        "small": jit.KernelFunction(4, "nounwind memory(argmem: readwrite)", "noundef range(i32 -3, 2)"),
        "local": jit.KernelFunction(2, "", "")}  # returns a variable: no range
    text = text.replace("@small(i64 %n) #0 {", "@small(i64 %n) #0 personality ptr @big.one {")
    assert jit.without_bodies(Library(), {"small"}) is None  # a form the rewrite does not know: linked whole


def test_generated_kernels_are_kept_as_ir_and_fixed_kernels_as_numba_compiles_them() -> None:
    """The generated kernels a main function links (elementwise loops, the wide-vector softmax) are
    ``KernelLibrary``s, which make no machine code of their own: the main function compiles the
    copies it runs. symflow's fixed kernels (here ``dot_mm``) keep Numba's own library, machine code
    included (``jit.KERNEL_OPTIONS``), whether compiled now or loaded from the cache. Results are the
    NumPy backend's."""
    from symflow.compile.numba import jit

    x = T.matrix("x")
    offset = float(np.random.default_rng().uniform(1, 2))  # a new source: compiled, not loaded
    functions = {}
    for mode in ("numba", "py"):
        w = sf.shared(np.random.default_rng(0).normal(size=(3, 4)), name="w")
        p = T.nnet.softmax(x.dot(w) + offset)
        cost = -T.log(p[:, 0]).mean()
        functions[mode] = (sf.function([x], cost, updates=[(w, w - 0.1 * sf.grad(cost, w))], mode=mode), w)
    compiled = _compiled_main(functions["numba"][0])
    linked = {}

    def walk(library: Any, depth: int) -> None:
        for child in library._linking_libraries:
            if child not in linked:
                linked[child] = depth
                walk(child, depth + 1)

    walk(compiled.library, 0)
    generated = [library for library, depth in linked.items() if depth == 0 and library.name == "kernel"]
    assert len(generated) >= 5 and all(isinstance(library, jit.KernelLibrary) for library in generated)
    assert any('"prefer-vector-width"="512"' in library.get_llvm_str() for library in generated)  # the softmax's
    fixed = [library for library, depth in linked.items() if depth == 0 and library.name == "dot_mm"]
    assert fixed and not any(isinstance(library, jit.KernelLibrary) for library in fixed)  # loaded or compiled
    assert getattr(compiled.library, "_compiled_object", None) is not None  # the main function's machine code
    value = np.random.default_rng(1).normal(size=(5, 3))
    for _ in range(2):
        np.testing.assert_allclose(functions["numba"][0](value), functions["py"][0](value), rtol=1e-12)
    np.testing.assert_allclose(functions["numba"][1].get_value(), functions["py"][1].get_value(), rtol=1e-12)


def _reassigned(x):  # type: ignore[no-untyped-def]
    a = x + 1
    a = a * 2  # assigned twice in one block: not singly assigned
    b = a - 1
    return b


def _branches_and_loop(x, n):  # type: ignore[no-untyped-def]
    total = 0.0
    for i in range(n):
        y = x * i
        if y > 1:
            total += y
        else:
            z = y - 1
            total -= z
    return total


@pytest.mark.parametrize("fn", [_reassigned, _branches_and_loop])
def test_the_linear_search_matches_numba_on_untransformed_ir(fn: object) -> None:
    """The same comparison on Numba's IR before SSA, where a variable can be assigned twice in a block."""
    from types import SimpleNamespace

    from numba.core import ir, lowering
    from numba.core.compiler import run_frontend

    from symflow.compile.numba.jit import GlueLower

    func_ir = run_frontend(fn)
    for block in func_ir.blocks.values():  # undo Numba's renaming: a.1 = ... becomes a second a = ...
        for stmt in block.find_insts(ir.Assign):
            base = stmt.target.name.split(".")[0]
            if base != stmt.target.name and not base.startswith("$"):
                stmt.target = ir.Var(stmt.target.scope, base, stmt.target.loc)
    ours = SimpleNamespace(func_ir=func_ir, blocks=func_ir.blocks)
    numbas = SimpleNamespace(func_ir=func_ir, blocks=func_ir.blocks)
    GlueLower._find_singly_assigned_variable(ours)  # type: ignore[arg-type]
    lowering.Lower._find_singly_assigned_variable(numbas)  # type: ignore[arg-type]
    assert ours._singly_assigned_vars == numbas._singly_assigned_vars
    assert ours._singly_assigned_vars


def _loop_body(source: str) -> list[str]:
    """The lines of the first ``for`` loop of the main function."""
    lines = source[source.index("def symflow_main"):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("for "))
    indent = len(lines[start]) - len(lines[start].lstrip())
    body = []
    for line in lines[start + 1:]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    return body


def test_values_shaped_like_a_new_state_are_made_once_in_front_of_the_loop() -> None:
    """A step value computed from a new state (here ``exp(c)``, fed to a product) takes its shape
    from the state's buffer, so its array is allocated once before the loop, not at each step."""
    X, h0, c0 = T.matrix("X"), T.vector("h0"), T.vector("c0")
    W = sf.shared(np.eye(3) * 0.5, name="W")

    def step(x, h, c):
        c_new = T.tanh(x + h.dot(W))
        return T.exp(c_new).dot(W), c_new

    (h, c), _ = sf.scan(step, sequences=X, outputs_info=[h0, c0])
    f = sf.function([X, h0, c0], [h, c], mode="numba")
    allocators = {name for name, src in f._run.cg.generated.items()
                  if "np.empty(" in src or "np.full(" in src or "scratch_array(" in src}
    body = _loop_body(f.source)
    assert body and not [line for line in body if any(f"= {a}(" in line for a in allocators)], body
    x, start = np.linspace(-1, 1, 12).reshape(4, 3), np.array([0.1, 0.2, 0.3])
    expected = sf.function([X, h0, c0], [h, c], mode="py")(x, start, -start)
    for got, want in zip(f(x, start, -start), expected):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_loop_rows_are_views_without_reference_counts() -> None:
    """Inside a loop, the rows of sequences, state buffers and per-step outputs are ``step_row``
    views (no atomic reference counting per step); scalar rows stay plain element accesses."""
    X, h0 = T.matrix("X"), T.vector("h0")
    W = sf.shared(np.eye(3) * 0.5, name="W")

    def step(x, h, total):
        h_new = T.tanh(x + h.dot(W))
        return h_new, T.exp(h_new) * 2.0, total + h_new.sum()

    (h, e, s), _ = sf.scan(step, sequences=X, outputs_info=[h0, None, np.float64(0.0)])
    cost = s[-1] + e.sum()
    outputs = [h, e, s, sf.grad(cost, W)]
    f = sf.function([X, h0], outputs, mode="numba")
    forward, backward = ([line.split(" = ")[0].strip() for line in loop.splitlines() if "step_row(" in line]
                         for loop in f.source.split("for t_")[1:])
    # sequence row, previous state, new state; then two reversed sequences, the state, the
    # per-step weight-gradient row and the new state. The scalar running total is indexed.
    assert [name.split("_")[0] for name in forward] == ["x", "prev", "dst"], forward
    assert [name.split("_")[0] for name in backward] == ["x", "x", "prev", "row", "dst"], backward
    assert re.search(r"\n\s+prev_\d+ = buf_\d+\[1 \+ t_\d+ - 1\]\n", f.source), f.source
    x, start = np.linspace(-1, 1, 12).reshape(4, 3), np.array([0.1, 0.2, 0.3])
    expected = sf.function([X, h0], outputs, mode="py")(x, start)
    for got, want in zip(f(x, start), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _increments() -> tuple[list[Any], dict[str, Any], Any]:
    """Every kind of increment, each of a temporary (``x * 2``) that nothing else reads."""
    x, v, rows, cols = T.matrix("x"), T.vector("v"), T.ivector("rows"), T.ivector("cols")
    outputs = {
        "incsubtensor": T.inc_subtensor((x * 2)[1:, 0], v[:2]),
        "incrows": T.inc_subtensor((x * 3)[rows], T.outer(v, v[:3])),
        "incpairs": T.inc_subtensor((x * 4)[rows, cols], v),
        "incadv": T.inc_subtensor((x * 5)[rows[:3], 1:], v[:2]),
        "set_pairs": T.set_subtensor((x * 6)[rows, cols], v),
    }
    values = (np.arange(9.0).reshape(3, 3), np.array([0.5, -1.0, 2.0, 4.0]), np.array([0, 2, 2, 1], "int32"),
              np.array([1, 0, 0, 2], "int32"))
    return [x, v, rows, cols], outputs, values


@pytest.mark.parametrize("kind", ["incsubtensor", "incrows", "incpairs", "incadv", "set_pairs"])
def test_increment_of_a_temporary_writes_into_its_array(kind: str) -> None:
    """An increment of a temporary that nothing else reads writes into that temporary's array:
    no new array, no copy. The values are the NumPy backend's."""
    inputs, outputs, values = _increments()
    f = sf.function(inputs, outputs[kind], mode="numba", on_unused_input="ignore")
    assert not re.search(r"\n\s+inc\w*_\d+ = ", f.source), f.source
    want = sf.function(inputs, outputs[kind], mode="py", on_unused_input="ignore")(*values)
    np.testing.assert_array_equal(f(*values), want)


@pytest.mark.parametrize("kind", ["incsubtensor", "incrows", "incpairs", "incadv", "set_pairs"])
def test_increment_keeps_a_value_read_elsewhere(kind: str) -> None:
    """An increment copies its base when anything else reads it (here the function returns the
    base too), or when the base is an argument: neither changes."""
    inputs, outputs, values = _increments()
    base = outputs[kind].owner.inputs[0]
    f = sf.function(inputs, [outputs[kind], base], mode="numba", on_unused_input="ignore")
    assert re.search(r"\n\s+inc\w*_\d+ = ", f.source), f.source
    want = sf.function(inputs, [outputs[kind], base], mode="py", on_unused_input="ignore")(*values)
    for got, expected in zip(f(*values), want, strict=True):
        np.testing.assert_array_equal(got, expected)
    x, v = inputs[0], inputs[1]
    x_value = values[0].copy()
    g = sf.function([x, v], T.inc_subtensor(x[1:, 0], v[:2]), mode="numba")
    np.testing.assert_array_equal(g(x_value, values[1]), values[0] + [[0, 0, 0], [0.5, 0, 0], [-1, 0, 0]])
    np.testing.assert_array_equal(x_value, values[0])


def test_increment_of_a_temporary_inside_a_loop() -> None:
    """The same in a loop body: the temporary's array is allocated once in front of the loop and
    taken over by the increment at every step; the state and the per-step output are right. (An
    increment that is itself the new state or a per-step output is computed into its row.)"""
    X, h0 = T.matrix("X"), T.vector("h0")

    def step(x, h):
        z = T.inc_subtensor((h * 0.5 + x)[::2], 1.0)
        return T.tanh(z), T.set_subtensor(T.exp(h)[0], -1.0) * 2

    (h, e), _ = sf.scan(step, sequences=X, outputs_info=[h0, None])
    f = sf.function([X, h0], [h, e], mode="numba")
    assert not re.search(r"\n\s+inc\w*_\d+ = ", f.source), f.source
    x, start = np.linspace(-1, 1, 12).reshape(4, 3), np.array([0.1, 0.2, 0.3])
    want = sf.function([X, h0], [h, e], mode="py")(x, start)
    for got, expected in zip(f(x, start), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-14)


def _products(n_out: int = 3) -> tuple[list[Any], list[Any], Any]:
    """A function with temporaries (matrix products) and outputs that are fresh arrays, a view of
    a temporary, and a reduction."""
    x = T.matrix("x")
    W = sf.shared(np.linspace(-1, 1, 12).reshape(3, 4), name="W")
    d = x.dot(W)
    outputs = [T.nnet.softmax(d.dot(W.T)), d.T[::-1], T.tanh(d).sum()][:n_out]
    return [x], outputs, W


@pytest.mark.parametrize("poison", [True, False])
def test_temporaries_live_in_scratch_memory_that_outputs_never_share(poison: bool,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The products' arrays come from the call's scratch memory; the outputs, also the view of a
    temporary, are arrays of their own: the next call, which reuses the scratch memory, leaves them.
    Outputs are allocated by the scratch kernel too, as fresh arrays (poisoned or not)."""
    monkeypatch.setattr(sf.config, "poison_memory", poison)
    inputs, outputs, _ = _products()
    f = sf.function(inputs, outputs, mode="numba")
    assert re.search(r"= g_\w+\(scratch, fresh, ", f.source), f.source
    reference = sf.function(inputs, outputs, mode="py")
    assert re.search(r"\n\s+dot_\d+ = g_\w+\(scratch, temporary, ", f.source), f.source
    first_x, second_x = np.arange(6.0).reshape(2, 3), -np.ones((2, 3))
    first = f(first_x)
    second = f(second_x)
    for got, want in zip(first + second, reference(first_x) + reference(second_x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    (scratch,) = f._run.scratch
    assert scratch.shape[0] and not any(np.shares_memory(o, scratch) for o in first + second)


@pytest.mark.parametrize("poison", [True, False])
def test_scan_buffers_live_in_scratch_memory_unless_returned(poison: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan whose outputs the function neither returns nor stores keeps its buffers (states and
    per-step outputs, forward and backward) in the call's scratch memory; views of them that are
    returned are copies, which the next call leaves. Returned outputs get buffers of their own."""
    monkeypatch.setattr(sf.config, "poison_memory", poison)
    x = T.matrix("x")
    W = sf.shared(np.linspace(-1, 1, 9).reshape(3, 3), name="W")
    h0 = sf.shared(np.zeros(3), name="h0")
    [h, y], _ = sf.scan(lambda x_t, h_tm1: [T.tanh(x_t + h_tm1.dot(W)), (x_t * h_tm1).sum()],
                        sequences=x, outputs_info=[h0, None])
    cost = (h ** 2).sum() + y.sum()
    outputs = [cost, h[-1], h[::2], y[1:], *sf.grad(cost, [W, x])]
    f = sf.function([x], outputs, mode="numba")
    reference = sf.function([x], outputs, mode="py")
    assert len(re.findall(r"\n\s+buf_\d+ = g_\w+\(scratch, temporary, ", f.source)) == 2, f.source
    assert re.search(r"\n\s+per_step_\d+ = g_\w+\(scratch, temporary, ", f.source), f.source
    assert not re.search(r"\n\s+(buf|per_step)_\d+ = g_\w+\(scratch, fresh, ", f.source), f.source
    first_x, second_x = np.linspace(-1, 1, 15).reshape(5, 3), np.ones((5, 3))
    f(second_x)  # the first call finds no scratch memory; the next ones do
    first = f(first_x)
    second = f(second_x)
    for got, want in zip(first + second, reference(first_x) + reference(second_x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    (scratch,) = f._run.scratch
    assert not any(np.shares_memory(o, scratch) for o in first + second)
    returned = sf.function([x], [h, y], mode="numba")
    assert not re.search(r"\n\s+(buf|per_step)_\d+ = g_\w+\(scratch, temporary, ", returned.source)
    kept = returned(first_x)
    returned(second_x)
    for got, want in zip(kept, sf.function([x], [h, y], mode="py")(first_x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_scratch_memory_grows_to_the_largest_call() -> None:
    """A first call (no scratch memory yet) and calls needing more than the last one's allocate their
    temporaries; the next call gets enough scratch memory. Every result is right."""
    inputs, outputs, _ = _products()
    f = sf.function(inputs, outputs, mode="numba")
    reference = sf.function(inputs, outputs, mode="py")
    sizes = []
    for rows in (2, 2, 50, 3, 50):
        x = np.linspace(-2, 2, rows * 3).reshape(rows, 3)
        for got, want in zip(f(x), reference(x), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        (scratch,) = f._run.scratch
        sizes.append(scratch.shape[0])
    assert sizes[0] == sizes[1] < sizes[2] == sizes[3] == sizes[4], sizes


def test_large_temporaries_are_allocated_at_each_call() -> None:
    """Only temporaries up to ``SCRATCH_ARRAY_LIMIT_BYTES`` live in scratch memory: a (700000, 4)
    product (22 MB) is allocated and freed at each call, so the memory kept stays small."""
    from symflow.compile.numba.runtime import SCRATCH_ARRAY_LIMIT_BYTES

    inputs, outputs, _ = _products(1)
    f = sf.function(inputs, outputs[0].sum(), mode="numba")  # softmax rows: each sums to 1
    for rows in (700_000, 5, 700_000, 5):
        np.testing.assert_allclose(f(np.ones((rows, 3))), rows, rtol=1e-9)
    (scratch,) = f._run.scratch
    assert 0 < scratch.shape[0] <= 3 * SCRATCH_ARRAY_LIMIT_BYTES  # the three small products of 5 rows


def test_calls_from_several_threads_use_their_own_scratch_memory() -> None:
    """The compiled code releases the GIL, so calls of one function from several threads run at the
    same time; each takes scratch memory no other call is using."""
    from concurrent.futures import ThreadPoolExecutor

    inputs, outputs, _ = _products()
    f = sf.function(inputs, outputs, mode="numba")
    reference = sf.function(inputs, outputs, mode="py")
    values = [np.random.default_rng(i).normal(size=(1 + i % 40, 3)) for i in range(400)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(f, values))
        slow = list(pool.map(lambda x: f(x=x), values[:100]))  # keywords: the general call path
    for x, got in zip(values, slow):
        for g, w in zip(got, reference(x), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    for x, got in zip(values, results, strict=True):
        for g, w in zip(got, reference(x), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    assert 1 <= len(f._run.scratch) <= 4


def test_updates_are_never_stored_in_scratch_memory() -> None:
    """A new value of a shared variable made from a temporary (here a transposed product, which no
    elementwise loop can write in place) is stored as an array of its own."""
    inputs, outputs, W = _products(1)
    V = sf.shared(np.zeros((4, 3)), name="V")
    f = sf.function(inputs, outputs, updates=[(V, W.T.dot(W).dot(W.T) + inputs[0].sum())], mode="numba")
    assert "scratch" in f.source
    x = np.ones((2, 3))
    f(x)
    kept = V.get_value(borrow=True)
    f(x * 2)
    expected = W.get_value().T @ W.get_value() @ W.get_value().T
    np.testing.assert_allclose(kept, expected + 6, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(V.get_value(), expected + 12, rtol=1e-12, atol=1e-15)


def _large_step(mode: str, shape: tuple[int, int] = (64, 80), sgd: bool = False,
                coefficient: float = 0.9) -> tuple[Any, Any, Any]:
    """A momentum (or SGD) step on ``W`` of ``shape`` for the cost ``sum(tanh(X . W) ** 2)``: the
    function and the shared W and V."""
    rng = np.random.default_rng(5)
    W = sf.shared(rng.normal(size=shape) * 0.1, name="W")
    V = sf.shared(rng.normal(size=shape) * 0.01, name="V")
    X = T.matrix("X")
    cost = (T.tanh(X.dot(W)) ** 2).sum()
    g = sf.grad(cost, W)
    updates = [(W, W - 0.1 * g)] if sgd else [(V, coefficient * V - 0.1 * g), (W, W + (coefficient * V - 0.1 * g))]
    return sf.function([X], cost, updates=updates, mode=mode), W, V


@pytest.mark.parametrize("sgd", [False, True])
def test_a_large_update_adds_its_product_in_place_by_blas(sgd: bool) -> None:
    """Momentum's step ``mu * V - lr * X.T . d`` (and SGD's ``W - lr * X.T . d``) on a large matrix
    is one Gemm, which BLAS adds into V's (W's) own array: no array holds the gradient. Values
    agree with the NumPy backend over several calls, and an error leaves both variables as they were."""
    x = np.random.default_rng(6).normal(size=(20, 64))
    results = {}
    for mode in ("py", "numba"):
        f, W, V = _large_step(mode, sgd=sgd)
        costs = [f(x) for _ in range(3)]
        results[mode] = costs, W.get_value(), V.get_value()
    target = W if sgd else V
    assert [type(n.op).__name__ for n in f.fgraph.nodes()].count("Gemm") == 1
    assert set(f._run.cg.in_place) == {W} | ({W} if sgd else {V})
    writes = f.source.split("if err == 0:", 1)[1]
    (call,) = [line.strip() for line in writes.splitlines() if "k_gemm" in line]
    assert call.endswith(f"{'1.0' if sgd else '0.9'}, dst_{call.rsplit('dst_', 1)[1]}")
    assert f"dst_{call.rsplit('dst_', 1)[1][:-1]} = {f._run.cg.value(target)}" in writes  # its own array
    for got, want in zip(results["numba"], results["py"], strict=True):  # BLAS sums in its own order
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    before = W.get_value(), V.get_value()
    with pytest.raises(SymflowError):
        f(np.ones((20, 63)))
    np.testing.assert_array_equal(W.get_value(), before[0])
    np.testing.assert_array_equal(V.get_value(), before[1])


@pytest.mark.parametrize("rate", ["shared", "negated shared", "argument", "float32 argument"])
def test_a_learning_rate_given_at_run_time_scales_the_gemm(rate: str) -> None:
    """A momentum step whose learning rate is a shared scalar or an argument (the book's
    ``T.scalar('learning_rate')``; a float32 one is cast, as the product casts it), also written
    ``0.9 * V + -(lr * g)``, is one Gemm that reads the rate at each call, in V's own array. Values
    agree with the NumPy backend as the rate changes, also at 0 with a nan in the gradient, which
    stays nan (reference BLAS would drop it)."""
    X = T.matrix("X")
    x = np.random.default_rng(6).normal(size=(20, 64))
    dtype = "float32" if rate.startswith("float32") else "float64"
    results = {}
    for mode in ("py", "numba"):
        rng = np.random.default_rng(5)
        W = sf.shared(rng.normal(size=(64, 80)) * 0.1, name="W")
        V = sf.shared(np.zeros((64, 80)), name="V")
        held = "shared" in rate
        lr = sf.shared(np.array(0.1), name="lr") if held else T.scalar("lr", dtype=dtype)
        g = sf.grad((T.tanh(X.dot(W)) ** 2).sum(), W)
        step = 0.9 * V + -(lr * g) if rate == "negated shared" else 0.9 * V - lr * g
        f = sf.function([X] if held else [X, lr], [], updates=[(V, step), (W, W + step)], mode=mode)
        values = []
        for k, value in enumerate([0.1, 0.05, 0.0]):
            if held:
                lr.set_value(np.array(value))
            data = np.where(np.arange(64) == 3, np.nan, x) if value == 0 else x
            f(data) if held else f(data, np.array(value, dtype))
            values.append(V.get_value())
            if k < 2:
                assert np.isfinite(values[-1]).all()
        assert np.isnan(values[-1]).any()
        results[mode] = values
    (gemm,) = [n for n in f.fgraph.nodes() if type(n.op).__name__ == "Gemm"]
    assert len(gemm.inputs) == 4 and (gemm.op.alpha, gemm.op.beta) == (-1.0, 0.9)
    scale = gemm.inputs[3]
    assert (scale.owner.inputs[0] if dtype == "float32" else scale) is (lr if held else f.fgraph.inputs[1])
    assert V in f._run.cg.in_place
    for got, want in zip(results["numba"], results["py"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_a_run_time_factor_on_the_variable_keeps_its_update_elementwise() -> None:
    """Gemm's ``beta`` is a constant: with a momentum held in a shared scalar, the step stays an
    element loop (and agrees with the NumPy backend)."""
    X = T.matrix("X")
    x = np.random.default_rng(6).normal(size=(20, 64))
    values = {}
    for mode in ("py", "numba"):
        W = sf.shared(np.random.default_rng(5).normal(size=(64, 80)) * 0.1, name="W")
        V = sf.shared(np.ones((64, 80)), name="V")
        mu = sf.shared(np.array(0.9), name="mu")
        g = sf.grad((T.tanh(X.dot(W)) ** 2).sum(), W)
        f = sf.function([X], [], updates=[(V, mu * V - 0.1 * g)], mode=mode)
        f(x)
        values[mode] = V.get_value()
    assert "Gemm" not in [type(n.op).__name__ for n in f.fgraph.nodes()]
    np.testing.assert_allclose(values["numba"], values["py"], rtol=1e-9)


def test_updates_that_stay_elementwise() -> None:
    """No Gemm for a matrix below ``MIN_ELEMENTS``, or with a zero coefficient on the variable
    (``0 * nan`` is nan, which BLAS would drop); a Gemm whose product reads the variable itself
    through a view is computed into a new array. Values agree with the NumPy backend."""
    from symflow.compile.rewrites.gemm import MIN_ELEMENTS

    x = np.random.default_rng(6).normal(size=(20, 30))
    small, _, _ = _large_step("numba", shape=(30, 20))
    assert 30 * 20 < MIN_ELEMENTS <= 64 * 80
    assert "Gemm" not in [type(n.op).__name__ for n in small.fgraph.nodes()]
    for mode in ("py", "numba"):
        f, W, V = _large_step(mode, shape=(30, 140), coefficient=0.0)
        V.set_value(np.full((30, 140), np.nan))
        f(x)
        assert np.isnan(W.get_value()).all() and np.isnan(V.get_value()).all()
    assert "Gemm" not in [type(n.op).__name__ for n in f.fgraph.nodes()]

    M = T.matrix("M")
    values = {}
    for mode in ("py", "numba"):
        V = sf.shared(np.arange(64.0 * 64).reshape(64, 64) / 4096, name="V")
        g = sf.function([M], [], updates=[(V, 0.5 * V - 0.1 * V.T.dot(M))], mode=mode)
        g(np.eye(64) + 1)
        values[mode] = V.get_value()
    assert [type(n.op).__name__ for n in g.fgraph.nodes()].count("Gemm") == 1
    assert V not in g._run.cg.in_place
    np.testing.assert_allclose(values["numba"], values["py"], rtol=1e-12)


def test_a_product_that_does_not_fit_its_variable_is_an_error() -> None:
    """The shapes of an in-place Gemm's product are checked before anything is written: the error
    names the product and leaves the variable as it was."""
    V = sf.shared(np.ones((64, 80)), name="V")
    A, B = T.matrix("A"), T.matrix("B")
    f = sf.function([A, B], [], updates=[(V, 0.9 * V - 0.1 * A.dot(B))], mode="numba")
    assert f._run.cg.in_place == [V] and "k_gemm" in f.source
    f(np.ones((64, 5)), np.ones((5, 80)))
    np.testing.assert_allclose(V.get_value(), 0.9 - 0.5)
    for a, b in [((63, 5), (5, 80)), ((64, 5), (5, 81)), ((64, 5), (4, 80))]:
        with pytest.raises(SymflowError, match="gemm of shapes"):
            f(np.ones(a), np.ones(b))
        np.testing.assert_allclose(V.get_value(), 0.9 - 0.5)


def test_in_place_updates_store_subnormal_results_as_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``config.flush_subnormals`` (the default) the loops writing shared variables' new values
    in place store a subnormal result as a zero of its sign (on x86 a subnormal makes arithmetic ~50
    times slower, and momentum's decay leads to them), in float64 and float32; NaN, infinities,
    other values, outputs and comparisons of subnormals are as before (``x > 0`` holds for 5e-324).
    The NumPy backend keeps subnormal results; with the setting off, compiled code keeps them too."""
    x = T.vector("x")
    tiny = np.array([1e-300, 1.0, -1e-300, 5e-324, np.nan, -np.inf])

    def build(mode: str, dtype: str = "float64") -> tuple[Any, Any, Any]:
        start = tiny if dtype == "float64" else np.array([1e-35, 1.0, -1e-35, 0.0, np.nan, -np.inf], dtype)
        v = sf.shared(start, name="v")
        w = sf.shared(tiny.copy(), name="w")
        scale = np.array(1e-10 if dtype == "float64" else 1e-5, dtype=dtype)  # float32: 1e-35 * 1e-5
        f = sf.function([x], x * 1e-10, updates=[(v, v * scale), (w, T.switch(T.gt(w, 0), 1.0, -1.0))], mode=mode)
        return f, v, w

    f, v, w = build("numba")
    np.testing.assert_array_equal(f(tiny), tiny * 1e-10)  # an output keeps its subnormals
    np.testing.assert_array_equal(v.get_value(), [0.0, 1e-10, 0.0, 0.0, np.nan, -np.inf])
    assert np.signbit(v.get_value()[2]) and not np.signbit(v.get_value()[0])
    np.testing.assert_array_equal(w.get_value(), [1.0, 1.0, -1.0, 1.0, -1.0, -1.0])  # 5e-324 > 0 still holds
    f32, v32, _ = build("numba", "float32")
    f32(tiny)
    np.testing.assert_array_equal(v32.get_value(), np.array([0.0, 1e-5, 0.0, 0.0, np.nan, -np.inf], "float32"))
    assert np.signbit(v32.get_value()[2])
    f_py, v_py, _ = build("py")
    f_py(tiny)
    np.testing.assert_array_equal(v_py.get_value(), tiny * 1e-10)
    monkeypatch.setattr(sf.config, "flush_subnormals", False)
    kept, v_kept, _ = build("numba")
    kept(tiny)
    np.testing.assert_array_equal(v_kept.get_value(), tiny * 1e-10)


def test_a_run_of_dimension_checks_is_one_call_naming_the_first_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The update block's dimension checks (several per parameter with momentum) become one call of
    ``runtime.first_unequal`` (``CodeGen.fold_checks``). A wrong shape at the start, middle or end of
    the run gives the error of the check it replaced, as the unfolded function does, and writes nothing."""
    from symflow.compile.numba import codegen

    def build() -> tuple[Any, list[Any]]:
        x = T.matrix("x")
        params = [sf.shared(np.full((3, 3), 0.1 * (k + 1)), name=f"W{k}") for k in range(4)]
        velocities = [sf.shared(np.zeros((3, 3)), name=f"v{k}") for k in range(4)]
        h = x
        for W in params:
            h = T.tanh(h.dot(W))
        steps = [0.9 * v - 0.1 * g for v, g in zip(velocities, T.grad(h.sum(), params), strict=True)]
        updates = [(p, p + s) for p, s in zip(params, steps, strict=True)] + list(zip(velocities, steps, strict=True))
        return sf.function([x], h.sum(), updates=updates, mode="numba"), params + velocities

    def errors(f: Any, shared: list[Any]) -> list[str]:
        found = []
        cases = [(4, (3, 4), 3), (5, (4, 3), 3), (6, (3, 5), 3), (7, (5, 3), 3), (7, (3, 1), 3), (4, (3, 4), 2)]
        for k, shape, columns in cases:  # a velocity's shape; last, the input's too (its error comes first)
            good = shared[k].get_value()
            shared[k].set_value(np.zeros(shape))
            before = [s.get_value() for s in shared]
            with pytest.raises(sf.errors.ShapeError) as info:
                f(np.ones((2, columns)))
            for s, value in zip(shared, before, strict=True):
                np.testing.assert_array_equal(s.get_value(), value)
            found.append(str(info.value))
            shared[k].set_value(good)
        return found

    folded, shared = build()
    folded_call = re.compile(r"err = first_unequal\(err, \(")
    assert folded_call.search(folded.source)
    with_fold = errors(folded, shared)
    monkeypatch.setattr(codegen, "FOLD_CHECKS_FROM", 10**9)
    unfolded, shared_too = build()
    assert not folded_call.search(unfolded.source)
    assert errors(unfolded, shared_too) == with_fold
    assert len(set(with_fold)) == len(with_fold)  # six different failures
    assert "Dot" in with_fold[-1]
    folded(np.ones((2, 3)))
    unfolded(np.ones((2, 3)))
    for a, b in zip(shared, shared_too, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())


def test_fold_checks_makes_each_long_run_of_dimension_checks_one_call() -> None:
    """Runs of four or more dimension checks with consecutive codes, in one block, become one call;
    shorter runs, a break in the codes or the indentation, and checks of anything other than two
    dimensions stay as they are."""
    cg = CodeGen()
    pairs = [(f"a.shape[{k}]", f"b{k}.shape[{k % 2}]") for k in range(5)]
    for lhs, rhs in pairs:  # codes 1-5: one call
        cg.check(f"{lhs} != {rhs}", None, "x")
    cg.emit("y = 1")
    for lhs, rhs in pairs[:3]:  # 6-8: too short
        cg.check(f"{lhs} != {rhs}", None, "x")
    cg.error_code(None, "unused")  # 9: the codes break between 8 and 10
    for lhs, rhs in pairs[:4]:  # 10-13: one call
        cg.check(f"{lhs} != {rhs}", None, "x")
    cg.check("n_1 < 0", None, "x")  # 14
    cg.check("a.shape[0] != c.shape[0] or a.shape[1] != c.shape[1]", None, "x")  # 15: two in one code
    with cg.block("for t in range(n):"):
        for lhs, rhs in pairs[:4]:  # 16-19: one call in the loop
            cg.check(f"{lhs} != {rhs}", None, "x")
    for lhs, rhs in pairs[:4]:  # 20-23: after the loop, another
        cg.check(f"{lhs} != {rhs}", None, "x")
    cg.fold_checks()
    kernel = "first_unequal"
    lhs5, rhs5 = ", ".join(p[0] for p in pairs), ", ".join(p[1] for p in pairs)
    lhs4, rhs4 = ", ".join(p[0] for p in pairs[:4]), ", ".join(p[1] for p in pairs[:4])
    assert cg.lines == [
        f"    err = {kernel}(err, ({lhs5}), ({rhs5}), np.int64(1))",
        "    y = 1",
        *[f"    err = first_error(err, ({lhs} != {rhs}), {6 + k})" for k, (lhs, rhs) in enumerate(pairs[:3])],
        f"    err = {kernel}(err, ({lhs4}), ({rhs4}), np.int64(10))",
        "    err = first_error(err, (n_1 < 0), 14)",
        "    err = first_error(err, (a.shape[0] != c.shape[0]) | (a.shape[1] != c.shape[1]), 15)",
        "    for t in range(n):",
        f"        err = {kernel}(err, ({lhs4}), ({rhs4}), np.int64(16))",
        f"    err = {kernel}(err, ({lhs4}), ({rhs4}), np.int64(20))",
    ]


def test_name_dimensions_reads_each_repeated_dimension_once_per_block() -> None:
    """A dimension read twice or more gets a variable at its first read in a block; the block and the
    blocks inside it use it, until its array is assigned again (in a loop: anywhere in the loop).
    A read once stays; ``elif``/``else`` lines only use variables; ``with`` blocks stay as they are."""
    cg = CodeGen()
    cg.lines = [
        "    n = a.shape[0] + b.shape[1]",
        "    m = a.shape[0] * c.shape[0] + b.y.shape[0]",  # b.y.shape[0] is not an array name's read
        "    for t in range(a.shape[0]):",
        "        x = step(t)",
        "        k = x.shape[0] + a.shape[1] + d.shape[0]",
        "        k = x.shape[0] + a.shape[1]",
        "        c = other(c.shape[0])",
        "        if k:",
        "            q = e.shape[0]",
        "        elif e.shape[0] > a.shape[1]:",
        "            q = e.shape[0]",
        "        else:",
        "            q = c.shape[0]",
        "    r = a.shape[1] + e.shape[0] + d.shape[0] + b.y.shape[0]",
        "    with numba.objmode(o='float64[:]'):",
        "        o, = run(a.shape[0])",
        "    a = f(a.shape[0])",
        "    s = a.shape[0]",
    ]
    cg.name_dimensions()
    assert cg.lines == [
        "    dim_a_0 = a.shape[0]",
        "    n = dim_a_0 + b.shape[1]",  # b.shape[1] is read once
        "    dim_c_0 = c.shape[0]",
        "    m = dim_a_0 * dim_c_0 + b.y.shape[0]",
        "    for t in range(dim_a_0):",
        "        x = step(t)",
        "        dim_x_0 = x.shape[0]",
        "        dim_a_1 = a.shape[1]",
        "        dim_d_0 = d.shape[0]",
        "        k = dim_x_0 + dim_a_1 + dim_d_0",
        "        k = dim_x_0 + dim_a_1",
        "        dim_c_0 = c.shape[0]",  # the loop assigns c: not the variable from before the loop
        "        c = other(dim_c_0)",
        "        if k:",
        "            dim_e_0 = e.shape[0]",
        "            q = dim_e_0",
        "        elif e.shape[0] > dim_a_1:",
        "            dim_e_0 = e.shape[0]",
        "            q = dim_e_0",
        "        else:",
        "            dim_c_0 = c.shape[0]",  # c was assigned again
        "            q = dim_c_0",
        "    dim_a_1 = a.shape[1]",  # named in the loop's block only
        "    dim_e_0 = e.shape[0]",
        "    dim_d_0 = d.shape[0]",
        "    r = dim_a_1 + dim_e_0 + dim_d_0 + b.y.shape[0]",
        "    with numba.objmode(o='float64[:]'):",
        "        o, = run(a.shape[0])",
        "    a = f(dim_a_0)",
        "    dim_a_0 = a.shape[0]",  # a was assigned again
        "    s = dim_a_0",
    ]


def test_a_main_function_reads_its_repeated_dimensions_into_variables() -> None:
    """``backend.generate`` runs ``name_dimensions``: a recurrent model's main function reads a
    repeated dimension into a variable, and its results and updates agree with the NumPy backend."""
    def build(mode: str) -> tuple[Any, Any]:
        W = sf.shared(np.linspace(-0.5, 0.5, 12).reshape(3, 4), name="W")
        U = sf.shared(np.linspace(0.3, -0.3, 16).reshape(4, 4), name="U")
        X = T.matrix("X")
        h, _ = sf.scan(lambda x_t, h_t1: T.tanh(x_t.dot(W) + h_t1.dot(U)), sequences=X,
                       outputs_info=[T.zeros((4,))])
        cost = (h ** 2).sum()
        gW, gU = sf.grad(cost, [W, U])
        return sf.function([X], [cost, h], updates=[(W, W - 0.1 * gW), (U, U - 0.1 * gU)], mode=mode), (W, U)

    compiled, (W, U) = build("numba")
    reference, (W_py, U_py) = build("py")
    assert re.search(r"\n\s+dim_\w+_\d+ = \w+\.shape\[\d+\]\n", compiled.source), compiled.source
    X = np.linspace(-1, 1, 15).reshape(5, 3)
    for _ in range(2):
        for got, want in zip(compiled(X), reference(X), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(W.get_value(), W_py.get_value(), rtol=1e-12)
    np.testing.assert_allclose(U.get_value(), U_py.get_value(), rtol=1e-12)


def test_first_unequal_reports_the_first_mismatch_after_an_earlier_error() -> None:
    import numba

    @numba.njit
    def first_unequal(err, lhs, rhs, first_code):  # type: ignore[no-untyped-def]
        return runtime.first_unequal(err, lhs, rhs, first_code)

    assert first_unequal(0, (1, 2, 3, 4), (1, 2, 3, 4), 7) == 0
    assert first_unequal(0, (1, 2, 3, 4), (1, 5, 3, 0), 7) == 8  # the first of two mismatches
    assert first_unequal(0, (9, 2, 3, 4), (1, 2, 3, 4), 7) == 7
    assert first_unequal(0, (1, 2, 3, 4), (1, 2, 3, 5), 7) == 10
    assert first_unequal(3, (1, 2, 3, 4), (1, 5, 3, 4), 7) == 3  # an earlier error wins
    assert first_unequal(np.int32(0), (np.int32(1), np.int32(2)), (1, 3), np.int32(4)) == 5  # any integers
    assert first_unequal(0, tuple(range(40)), tuple(range(39)) + (0,), 100) == 139  # any length: straight code


def test_first_error_keeps_the_first_error_and_takes_any_integer_code() -> None:
    """``runtime.first_error``: the code when the check fails and no error is set yet, else ``err``;
    a literal code, an int32 code, and a condition joined with ``|``, as ``CodeGen.check`` writes them."""
    import numba

    @numba.njit
    def checks(err: int, a: int, b: int) -> tuple[int, int, int]:
        first = runtime.first_error(err, (a != b), 7)
        joined = runtime.first_error(err, (a < 0) | (b < 0), np.int32(8))
        chained = runtime.first_error(runtime.first_error(err, (a == b), 9), (a != b), 10)
        return first, joined, chained

    assert checks(0, 1, 1) == (0, 0, 9)
    assert checks(0, 1, 2) == (7, 0, 10)
    assert checks(0, -1, 2) == (7, 8, 10)
    assert checks(0, 3, -3) == (7, 8, 10)
    assert checks(5, 1, 2) == (5, 5, 5)  # an earlier error wins
    assert checks(5, 1, 1) == (5, 5, 5)


#: functions that need Numba's closure inlining (a closure, the reduction and stencil globals it
#: inlines, a list), its typed rewrites (a list, array expressions, string-literal indices) or neither
_NEEDING_PASSES = """
def closure(a):
    def twice(v):
        return 2.0 * v
    return twice(a[0])
def reduction(a):
    return reduce(add, a, 0.0)
def stencil(a):
    return neighbours(a)
def listed(a):
    return np.array([a[0], a[1]])
def operators(a):
    return a * 2.0 + 1.0
def ufunc(a):
    return np.exp(a)
def field(r, name):
    return r[0][literally(name)]
def set_field(r, name):
    r[1][literally(name)] = 5.0
    return r[1]["x"]
def loop(a):
    total = 0.0
    for v in a:
        total += v
    return total
"""


def test_numbas_closure_inlining_and_typed_rewrites_run_only_for_code_that_has_work_for_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """symflow's Numba pipeline (``jit.SymflowCompiler``) runs Numba's closure inlining and its rewrites
    after type inference only on code that has something for them. Generated code has nothing: a new
    main function and a new generated kernel compile without either. Code with a closure, a reduction,
    a stencil, a list, an array expression or a string-literal index gets them and runs as in Python."""
    import functools

    import numba
    from numba.core.typed_passes import NopythonRewrites, NopythonTypeInference
    from numba.core.untyped_passes import InlineClosureLikes

    from symflow.compile.numba import cache, jit

    ran: dict[str, set[str]] = {}
    for cls in (InlineClosureLikes, NopythonRewrites, NopythonTypeInference):  # the last runs for every compile
        def counted(self: Any, state: Any, original: Any = cls.run_pass, name: str = cls.__name__) -> bool:
            ran.setdefault(state.func_id.func_name, set()).add(name)
            return bool(original(self, state))

        monkeypatch.setattr(cls, "run_pass", counted)

    x = T.vector("x")
    offset = float(np.random.default_rng().uniform(1, 2))  # new sources: compiled, not loaded
    f = sf.function([x], T.tanh(x * offset).sum(), mode="numba")
    value = np.linspace(-0.5, 1.0, 5)
    np.testing.assert_allclose(f(value), np.tanh(value * offset).sum(), rtol=1e-12)
    source = f"def kernel(x, out):\n    for i in range(x.shape[0]):\n        out[i] = 2.0 * x[i] + {offset!r}\n"
    name = "g_test_" + cache.source_key(source)
    cache.store_kernel(name, source)
    cache.load_kernel(name).compile((numba.float64[::1], numba.float64[::1]))
    typed = {"NopythonTypeInference"}
    assert ran["symflow_main"] == ran["kernel"] == typed, ran  # compiled, without the two passes
    assert jit.KERNEL_OPTIONS["pipeline_class"] is jit.SymflowCompiler  # symflow's fixed kernels' pipeline

    closing, rewriting = {"InlineClosureLikes"} | typed, {"NopythonRewrites"} | typed
    namespace = {"np": np, "reduce": functools.reduce, "add": numba.njit(lambda s, v: s + v),
                 "neighbours": numba.stencil(lambda a: a[-1] + a[1]), "literally": numba.literally}
    exec(_NEEDING_PASSES, namespace)  # noqa: S102 - the test's own functions
    a, records = np.arange(1.0, 6.0), np.ones(2, dtype=[("x", "f8")])
    cases = {"closure": closing, "reduction": closing, "stencil": closing, "listed": closing | rewriting,
             "operators": rewriting, "ufunc": rewriting, "field": rewriting, "set_field": rewriting, "loop": typed}
    for name, passes in cases.items():
        fn = namespace[name]
        args = (records.copy(), "x") if "field" in name else (a,)
        want = np.array([0.0, 4.0, 6.0, 8.0, 0.0]) if name == "stencil" else fn(*args)
        got = numba.njit(pipeline_class=jit.SymflowCompiler)(fn)(*args)
        np.testing.assert_allclose(got, want, err_msg=name)
        assert ran[name] == passes, name


def _train_in_turns(mode: str, data: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Costs and final parameters (and velocities) of a small recurrent classifier trained by two
    functions in turns (momentum and plain steps), with a prediction function called between them."""
    init = np.random.default_rng(1)
    wx, wh, wo = (sf.shared(init.normal(scale=0.5, size=shape), name=name)
                  for name, shape in (("wx", (2, 4)), ("wh", (4, 4)), ("wo", (4, 2))))
    x, y = T.matrix("x"), T.ivector("y")
    h, _ = sf.scan(lambda x_t, h_t1, wx, wh: T.nnet.sigmoid(x_t.dot(wx) + h_t1.dot(wh)), sequences=x,
                   outputs_info=T.zeros((4,)), non_sequences=[wx, wh])
    p = T.nnet.softmax(h[-1:].dot(wo))
    cost = -T.mean(T.log(p[T.arange(y.shape[0]), y]))
    params = [wx, wh, wo]
    grads = sf.grad(cost, params)
    velocities = [sf.shared(q.get_value() * 0) for q in params]
    steps = [0.9 * v - 0.1 * g for v, g in zip(velocities, grads, strict=True)]
    updates = [(q, q + s) for q, s in zip(params, steps, strict=True)] + list(zip(velocities, steps, strict=True))
    momentum = sf.function([x, y], cost, updates=updates, mode=mode)
    plain = sf.function([x, y], cost, updates=[(q, q - 0.05 * g) for q, g in zip(params, grads, strict=True)],
                        mode=mode)
    predict = sf.function([x], T.argmax(p, axis=1), mode=mode)
    costs = []
    for _ in range(3):
        for xs, ys in data:
            costs += [momentum(xs, ys), plain(xs, ys)]
            predict(xs)
    return np.array(costs), [q.get_value() for q in params + velocities]


def test_functions_updating_the_same_shared_variables_in_turns_agree_with_numpy() -> None:
    """Two training functions over the same shared variables and a prediction function, called in
    turns as a script alternates them, give the NumPy backend's costs and leave its values. A
    lowering that released an array twice (on two blocks of one path) corrupted memory in this use."""
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(int(rng.integers(3, 9)), 2)), rng.integers(0, 2, size=1).astype(np.int32))
            for _ in range(30)]
    (costs, values), (want_costs, want_values) = (_train_in_turns(mode, data) for mode in ("numba", "py"))
    np.testing.assert_allclose(costs, want_costs, rtol=1e-9)
    for got, want in zip(values, want_values, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


HUGE_TEMPORARY = """
import numpy as np
import symflow as sf, symflow.tensor as T
k, x = T.lscalar('k'), T.vector('x')
f = sf.function([k, x], (T.zeros((k, k)) + x).sum(), mode='numba')
for n in (5, 2**31, 2**40):
    try:
        f(n, np.ones(3))
    except sf.errors.ShapeError as exc:
        print(str(exc).splitlines()[0])
"""


def test_a_temporary_too_large_to_exist_is_an_error() -> None:
    """A (2**40, 2**40) temporary's size in bytes wraps around to 0 in int64: it was then taken from
    the call's scratch memory, and reading it crashed the process. It is now refused, as in NumPy
    (run in a process of its own, which a regression would kill)."""
    done = subprocess.run([sys.executable, "-c", HUGE_TEMPORARY], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "add failed: shapes (5, 5) and (1, 3) do not match in dimension 1 (5 vs 3)", done.stdout
    assert len(lines) == 3 and all(line.startswith("Alloc failed: ") for line in lines[1:]), done.stdout
