"""Every registered rewrite preserves results: a corpus of graphs built to trigger each pass is
compiled with ``rewrite=False``, with the default pipeline and with each pass alone, and all
outputs and updates must agree. New passes are picked up from the registry automatically; the
corpus must trigger each of them (add a case when that test fails)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.compile.rewrites import PIPELINE, REWRITES
from symflow.ops.nnet import LogSumExp

NAMES = [getattr(r, "name", r) for r in REWRITES]
RNG = np.random.default_rng(0)
VALUES = [RNG.normal(size=(4, 3)), RNG.normal(size=3), np.array([0, 2, 1, 2], "int32"), 0.5]
W0 = RNG.normal(size=(3, 3)) * 0.5
G0 = RNG.normal(size=(64, 64))  # a shared matrix large enough for the gemm rewrite


def corpus() -> tuple[list[Any], dict[str, Any], list[Any], list[Any]]:
    """Fresh graphs (and shared variables) exercising each pass; returns inputs, named outputs,
    updates and the shared variables."""
    x, v, y, s = T.matrix("x"), T.vector("v"), T.ivector("y"), T.scalar("s")
    W = sf.shared(W0.copy(), name="W")
    counter = sf.shared(np.zeros(3), name="counter")
    x3 = x * 3
    out: dict[str, Any] = {
        "merge: repeated subgraphs": T.tanh(x).sum() + T.tanh(x).sum(),
        "constant folding": x * (T.constant(2.0) * 3 + T.exp(T.constant(1.0))),
        "neutral operands": (x * 1 + 0) / 1 - T.neg(-x) + x ** 1,
        "powers": v ** 2 + v * -1,
        "constant switch": T.switch(T.constant(True), v, -v),
        "nested dimshuffles": x.dimshuffle(1, 0).dimshuffle(1, 0) + x.T.T,
        "full slices": x[:, :] + x[::1],
        "shape entries": T.cast(x.shape[0] * x.shape[1], "float64"),
        "summed outer products": (x.dimshuffle(0, 1, "x") * x.dimshuffle(0, "x", 1)).sum(axis=0),
        "summed outer products of sliced rows": (x.dimshuffle(0, 1, "x")[::-1][:3]
                                                 * x[1:].dimshuffle(0, "x", 1)).sum(axis=0),
        "softmax of a view": T.nnet.softmax(x.T),
        "index of an inserted axis": x.dimshuffle(0, "x", 1)[:, 0] * 2,
        "shape of a dimshuffle": T.cast(x.dimshuffle(1, "x", 0).shape[2], "float64"),
        "slices of a dimshuffle": x.dimshuffle(0, "x", 1)[::-1][1:3] * 2,
        "log of softmax": T.log(T.nnet.softmax(x)),
        "log of sigmoid": T.log(T.nnet.sigmoid(v * 50)) + T.log(1 - T.nnet.sigmoid(v * 50)),
        "cross-entropy gradient": sf.grad(T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).sum(), x),
        "the book's cost gradient": sf.grad(-T.mean(T.log(T.nnet.softmax(x * 2)[T.arange(y.shape[0]), y])), x),
        "fusion": T.exp(T.tanh(x * 2 + 1) - x) * 3,
        "softmax and log-softmax of the same rows": T.nnet.softmax(x3) + T.nnet.log_softmax(x3),
        "a log-softmax read at one entry per row": T.nnet.log_softmax(x * 2)[T.arange(y.shape[0]), y],
        "a picked log-softmax and the softmax": (T.nnet.log_softmax(x - 1)[y[:1], y].sum()
                                                 + T.nnet.softmax(x - 1)[::-1]),
    }
    lsm = T.nnet.log_softmax(x + 1)  # a cost counting its rows from the log-softmax, and its accuracy
    hits = T.eq(T.argmax(lsm, axis=1), y).sum()
    out["a log-softmax cost and its accuracy"] = sf.grad(-lsm[T.arange(lsm.shape[0]), y].mean(), x) * hits
    with_bias = x * 2 + v  # logits and their bias row
    sm, lse = LogSumExp(True)(with_bias)
    out["a log-sum-exp of rows with a bias"] = with_bias[T.arange(y.shape[0]), y] - lse[:, 0]
    out["a softmax scaled by a column"] = -(sm * x.sum(axis=1, keepdims=True))
    scattered = T.inc_subtensor(T.zeros_like(x)[y], T.tanh(x))  # rows added into zeros (an embedding's gradient)
    out["a scaled row increment subtracted"] = x * 0.9 - 0.1 * scattered
    out["a negated row increment plus a row"] = -scattered + v
    out["a row increment minus"] = scattered - x
    out["a scaled row increment plus"] = 2 * scattered + x
    row = T.inc_subtensor(T.zeros((1, 3))[y * 0], x)  # one row, broadcast: x + row must not add into it
    out["a row increment broadcast by a sum"] = x + row
    def recurrence(x_t: Any, h: Any, W: Any) -> Any:
        z = x_t + h.dot(W)
        return T.tanh(z) * T.nnet.sigmoid(z)  # the backward step reads forward intermediates

    h, _ = sf.scan(recurrence, sequences=x, outputs_info=T.zeros_like(x[0]), non_sequences=W)
    out["scan"] = h
    out["gradient of a scan"] = sf.grad((h ** 2).sum(), W)
    out["the book's per-step softmax rows"] = sf.grad(_per_step_softmax_cost(x, y, W, W * 1), W)

    def step(x_t: Any, h: Any) -> Any:
        invariant = T.exp(W).sum()  # loop-invariant work
        per_step = T.tanh(x_t) * 2  # reads only the sequence
        unused = h * 3  # an output nobody uses
        return T.tanh(h * 0.5 + x_t * invariant * 0.1), per_step, unused

    (hs, per_step, _), _ = sf.scan(step, sequences=x, outputs_info=[T.zeros_like(x[0]), None, None])
    out["scan with invariants, per-step and dead outputs"] = hs
    out["per-step output"] = per_step
    out["sum over steps"] = sf.grad(hs.sum(), x)
    out["a scan's n_steps bounded by its sequence"] = sf.scan(lambda x_t: T.tanh(x_t) * 2, sequences=x[1:],
                                                              n_steps=T.minimum(x[1:].shape[0], 2))[0]
    E = sf.shared(W0.copy(), name="E")  # an embedding: its gradient adds rows into zeros
    G = sf.shared(G0.copy(), name="G")
    rows = T.tanh(T.alloc(x.sum(), 64, 4) + x[:, 0])  # (64, 4)
    updates = [(counter, counter + s * v), (W, W - 0.1 * out["gradient of a scan"]),
               (E, E - 0.1 * sf.grad((E[y] ** 2).sum(), E)), (G, 0.9 * G - 0.1 * rows.dot(rows.T))]
    return [x, v, y, s], out, updates, [W, counter, E, G]


def _per_step_softmax_cost(x: Any, y: Any, W: Any, V: Any) -> Any:
    """The book's cost over a scan whose steps each make a (1, k) softmax row of ``h . V`` (``W``
    is the recurrent weight): ``y[:, 0, :]``."""
    def step(x_t: Any, h: Any) -> Any:
        h_new = T.tanh(x_t + h.dot(W))
        return h_new, T.nnet.softmax(h_new.dot(V))

    (_, rows), _ = sf.scan(step, sequences=x, outputs_info=[T.zeros_like(x[0]), None])
    p = rows[:, 0, :]
    return -T.mean(T.log(p[T.arange(y.shape[0]), y]))


def _run(mode: str, rewrite: Any) -> tuple[list[np.ndarray], list[np.ndarray], Any]:
    inputs, out, updates, shared = corpus()
    f = sf.function(inputs, list(out.values()), updates=updates, mode=mode, rewrite=rewrite)
    results = f(*VALUES)
    return results, [sv.get_value() for sv in shared], f


_REFERENCE: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}


def _reference(mode: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if mode not in _REFERENCE:
        _REFERENCE[mode] = _run(mode, False)[:2]
    return _REFERENCE[mode]


def test_registry() -> None:
    assert {"merge", "constant_fold"} <= set(NAMES)
    x = T.vector("x")
    with pytest.raises(ValueError, match="unknown rewrites"):
        sf.function([x], x * 1, rewrite=["no_such_pass"])


def test_rewire_copies_a_node_whose_inputs_keep_their_types(monkeypatch: pytest.MonkeyPatch) -> None:
    from symflow.compile.rewrites.basic import rewire

    x, y, z, row = T.matrix("x"), T.matrix("y"), T.matrix("z"), T.row("r")
    node = (x * y).owner
    make_node = type(node.op).make_node
    monkeypatch.setattr(type(node.op), "make_node", lambda *a: pytest.fail("type inference ran again"))
    copy = rewire(node, [z, y])
    assert copy.op is node.op and copy.inputs == [z, y] and copy.trace is node.trace
    assert copy.outputs[0].type == node.outputs[0].type and copy.outputs[0].owner is copy
    monkeypatch.setattr(type(node.op), "make_node", make_node)
    inferred = rewire(node, [row, row])  # new input types: the op infers the output type
    assert inferred.outputs[0].broadcastable == (True, False)


@pytest.mark.parametrize("rewrite", [True, *[[name] for name in NAMES]], ids=["default", *NAMES])
def test_rewrites_preserve_results(mode: str, rewrite: Any) -> None:
    reference, ref_shared = _reference(mode)
    results, shared, _ = _run(mode, rewrite)
    labels = list(corpus()[1]) + ["update of W", "update of counter", "update of E", "update of G"]
    for label, want, got in zip(labels, reference + ref_shared, results + shared, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype, label
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=label)


@pytest.mark.parametrize("name", NAMES)
def test_corpus_exercises_every_rewrite(name: str) -> None:
    """Each pass changes the corpus graph (otherwise the test above would not test it)."""
    _, _, plain = _run("py", False)
    _, _, rewritten = _run("py", [name])
    before = sf.printing.debugprint(plain, file="str", print_type=False)
    after = sf.printing.debugprint(rewritten, file="str", print_type=False)
    assert before != after, f"the corpus does not trigger the rewrite {name!r}; add a graph that does"


@pytest.mark.parametrize("rows, cols", [
    ([0, 1, 2, 3], [0, 2, 1, 2]),  # one target per row (the book's cost)
    ([2, 2, -1, 0], [1, 1, -3, 2]),  # repeated pairs and negative indices
    ([1], [0, 2, 1]),  # one row for every column
])
def test_row_share_of_scattered_values(mode: str, rows: list[int], cols: list[int]) -> None:
    """``G - y * G.sum(-1, keepdims=True)`` with ``G`` scattered into zeros shaped like ``y`` is
    computed without a dense ``G`` (no row sum left), with the same values."""
    x, vals = T.matrix("x"), T.vector("vals")
    r, c = T.ivector("r"), T.ivector("c")
    y = T.nnet.softmax(x)
    g = T.inc_subtensor(T.zeros_like(y)[r, c], vals)
    out = g - y * g.sum(axis=-1, keepdims=True)
    args = (VALUES[0], RNG.normal(size=max(len(rows), len(cols))), np.array(rows, "int32"), np.array(cols, "int32"))
    rewritten = sf.function([x, vals, r, c], out, mode=mode)
    assert not any(type(n.op).__name__ == "Reduce" for n in rewritten.fgraph.nodes())
    want = sf.function([x, vals, r, c], out, mode=mode, rewrite=False)(*args)
    np.testing.assert_allclose(rewritten(*args), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("rows, cols", [
    ([0, 1, 2, 3], [0, 2, 1, 2]),  # one target per row (the book's cost)
    ([2, 2, -1, 0], [1, 1, -3, 2]),  # repeated pairs and negative indices
    ([1], [0, 2, 1]),  # one row for every column
    ([3, 0], [2]),  # one column for every row
])
@pytest.mark.parametrize("with_softmax", [False, True])
def test_a_picked_log_softmax_is_read_only_at_its_entries(mode: str, rows: list[int], cols: list[int],
                                                          with_softmax: bool) -> None:
    """``log_softmax(x)[r, c]`` (alone, or with the softmax of the same rows, as a cost and its
    gradient need them) becomes ``x[r, c]`` minus the rows' log-sum-exp: no (rows, columns)
    log-softmax is computed, and the values are those of the graph without rewrites, also for
    repeated and negative indices, one index broadcast to the other's length, and logits far apart."""
    x, r, c = T.matrix("x"), T.ivector("r"), T.ivector("c")
    picked = T.nnet.log_softmax(x)[r, c]
    outputs = [picked, T.nnet.softmax(x) * 2] if with_softmax else [picked]
    f = sf.function([x, r, c], outputs, mode=mode)
    ops = [type(n.op).__name__ for n in f.fgraph.nodes()]
    assert "LogSoftmax" not in ops and "SoftmaxAndLog" not in ops and ops.count("LogSumExp") == 1, ops
    reference = sf.function([x, r, c], outputs, mode=mode, rewrite=False)
    index = (np.array(rows, "int32"), np.array(cols, "int32"))
    apart = VALUES[0] * np.array([1.0, 800.0, -900.0])  # exp of the differences underflows
    for values in (VALUES[0], apart):
        for got, want in zip(f(values, *index), reference(values, *index), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(sf.errors.SymflowError):
        f(VALUES[0], np.array([4], "int32"), np.array([0], "int32"))  # row out of range, as without rewrites


def test_a_log_softmax_read_elsewhere_too_is_kept(mode: str) -> None:
    """A log-softmax the graph also reads whole (here returned) is computed as before."""
    x, y = T.matrix("x"), T.ivector("y")
    lsm = T.nnet.log_softmax(x)
    f = sf.function([x, y], [lsm[T.arange(y.shape[0]), y], lsm], mode=mode)
    assert "LogSumExp" not in [type(n.op).__name__ for n in f.fgraph.nodes()]
    picked, whole = f(VALUES[0], VALUES[2])
    np.testing.assert_allclose(picked, whole[np.arange(4), VALUES[2]], rtol=0, atol=0)


def _logits_cost(h: Any, y: Any, W: Any, b: Any) -> tuple[Any, Any, int]:
    """The language model's cost on logits ``h . W + b``, its softmax, and the line that adds the bias."""
    logits = h.dot(W) + b
    line = inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]
    p = T.nnet.softmax(logits)
    return -T.mean(T.log(p[T.arange(y.shape[0]), y])), p, line


def _logsumexps(f: Any) -> list[tuple[bool, bool, bool]]:
    return [(n.op.with_softmax, n.op.with_bias, n.op.scaled) for n in f.fgraph.nodes() if type(n.op) is LogSumExp]


def _two_steps_agree(f: Any, shared: list[Any], reference: Any, ref_shared: list[Any], rng: Any
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Two train steps give the same outputs and weights in ``f`` and ``reference``, on logits far
    apart and repeated targets; returns those inputs."""
    H = rng.normal(size=(5, 3)) * np.array([1, 1, 300, 1, 1])[:, None]
    Y = np.array([2, 2, 0, 5, 2], "int32")
    for _ in range(2):
        for got, want in zip(f(H, Y) + [v.get_value() for v in shared],
                             reference(H, Y) + [v.get_value() for v in ref_shared], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    return H, Y


def test_a_softmax_cost_with_a_bias_is_one_pass_over_the_logits(mode: str) -> None:
    """The language model's cost ``-mean(log(softmax(h . W + b)[arange(n), y]))`` and its gradients:
    one LogSumExp adds the bias, and gives the softmax already multiplied by the gradient's factor per
    row (the softmax's shape, also returned, is read from the logits); nothing else reads the product
    ``h . W`` whole (neither ``h . W + b`` nor the unscaled softmax is written). Costs, gradients and
    updated weights are those without these two passes, also for repeated targets and logits far
    apart. A bias of the wrong length is the sum's error, and changes nothing."""
    h, y = T.matrix("h"), T.ivector("y")
    rng = np.random.default_rng(7)
    weights = rng.normal(size=(3, 6))

    def build(rewrite: Any) -> tuple[Any, list[Any], int]:
        W, b = sf.shared(weights.copy(), name="W"), sf.shared(np.linspace(-1, 1, 6), name="b")
        cost, p, line = _logits_cost(h, y, W, b)
        gh, gW, gb = sf.grad(cost, [h, W, b])
        f = sf.function([h, y], [cost, gh, p.shape[1]], updates=[(W, W - 0.5 * gW), (b, b - 0.5 * gb)], mode=mode,
                        rewrite=rewrite)
        return f, [W, b], line

    f, shared, line = build(True)
    reference, ref_shared, _ = build([n for n in PIPELINE if n not in ("softmax_bias", "softmax_scale")])
    assert _logsumexps(f) == [(True, True, True)] and _logsumexps(reference) == [(True, False, False)]
    product = next(n.outputs[0] for n in f.fgraph.nodes() if type(n.op).__name__ == "Dot")
    readers = {type(r.op).__name__ for r in f.fgraph.clients()[product]}
    assert readers == {"LogSumExp", "AdvancedSubtensor", "ShapeI"}, readers
    softmax = next(n.outputs[0] for n in f.fgraph.nodes() if type(n.op) is LogSumExp)
    assert [type(r.op).__name__ for r in f.fgraph.clients()[softmax]] == ["AdvancedIncSubtensor"]  # the targets
    H, Y = _two_steps_agree(f, shared, reference, ref_shared, rng)
    W, b = (v.get_value() for v in shared)
    shared[1].set_value(np.zeros(7))
    with pytest.raises(sf.errors.SymflowError, match="the bias must have one entry per column") as error:
        f(H, Y)
    assert f"line {line}" in str(error.value)  # where h . W + b was written
    np.testing.assert_array_equal(shared[0].get_value(), W)


def test_softmax_rewrites_leave_a_softmax_read_whole_or_scaled_by_its_own_values(mode: str) -> None:
    """The softmax keeps an output of its own when the graph also reads it whole (here, a returned
    softmax), and when the factor of its rows depends on the softmax's values (a cost weighting each
    log-probability by the probability): the bias is added in the pass all the same, and the
    values are those without these two passes."""
    x, y = T.matrix("x"), T.ivector("y")
    b = sf.shared(np.linspace(-1, 1, 3), name="b")
    p = T.nnet.softmax(x + b)
    log_p = T.log(p[T.arange(y.shape[0]), y])
    returned = [-log_p.mean(), sf.grad(-log_p.mean(), x), p]
    weighted = -(T.exp(log_p) * log_p).mean()
    for outputs in (returned, [weighted, sf.grad(weighted, x)]):
        f = sf.function([x, y], outputs, mode=mode)
        assert _logsumexps(f) == [(True, True, False)]
        without = [n for n in PIPELINE if n not in ("softmax_bias", "softmax_scale")]
        want = sf.function([x, y], outputs, mode=mode, rewrite=without)(VALUES[0], VALUES[2])
        for got, expected in zip(f(VALUES[0], VALUES[2]), want, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_a_log_softmax_cost_and_its_accuracy_are_one_pass_over_the_logits(mode: str) -> None:
    """A cost written with ``log_softmax`` as ``models/`` writes it (the rows counted from the
    log-softmax, the accuracy from its argmax) takes the same passes as the book's
    ``log(softmax)``: one LogSumExp gives the softmax scaled by the gradient's factor per row,
    which only the targets' increment reads; no (log-)softmax is written whole, and the argmax
    reads the logits (their sum with the bias, so that sum stays). Values and updated weights are
    those without rewrites, also for repeated targets and logits far apart."""
    h, y = T.matrix("h"), T.ivector("y")
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(3, 6))

    def build(rewrite: Any) -> tuple[Any, list[Any]]:
        W, b = sf.shared(weights.copy(), name="W"), sf.shared(np.linspace(-1, 1, 6), name="b")
        lp = T.nnet.log_softmax(h.dot(W) + b)
        cost = -lp[T.arange(lp.shape[0]), y].mean()
        hits = T.eq(T.argmax(lp, axis=1), y).sum()
        gh, gW, gb = sf.grad(cost, [h, W, b])
        f = sf.function([h, y], [cost, hits, gh], updates=[(W, W - 0.5 * gW), (b, b - 0.5 * gb)], mode=mode,
                        rewrite=rewrite)
        return f, [W, b]

    f, shared = build(True)
    reference, ref_shared = build(False)
    ops = [type(n.op).__name__ for n in f.fgraph.nodes()]
    assert not {"LogSoftmax", "SoftmaxAndLog", "Softmax"} & set(ops), ops
    assert not [n for n in f.fgraph.nodes() if type(n.op).__name__ == "Reduce" and n.op.axis == (1,)]  # row totals
    assert _logsumexps(f) == [(True, False, True)]
    lse = next(n for n in f.fgraph.nodes() if type(n.op) is LogSumExp)
    assert [type(r.op).__name__ for r in f.fgraph.clients()[lse.outputs[0]]] == ["AdvancedIncSubtensor"]
    assert {type(r.op).__name__ for r in f.fgraph.clients()[lse.inputs[0]]} >= {"ArgReduce"}
    _two_steps_agree(f, shared, reference, ref_shared, rng)


@pytest.mark.parametrize("make, arg, axis, keepdims, row", [
    (T.nnet.softmax, T.argmax, 1, False, [0.0, 1e-17, -3.0]),
    (T.nnet.log_softmax, T.argmax, -1, False, [0.0, 1e-17, -3.0]),
    (T.nnet.log_softmax, T.argmax, 1, True, [0.0, 1e-17, -3.0]),
    (T.nnet.softmax, T.argmin, 1, False, [0.0, -800.0, -900.0]),  # both underflow to 0 in the softmax
])
def test_argmax_of_a_softmax_is_the_logits_argmax(mode: str, make: Any, arg: Any, axis: int, keepdims: bool,
                                                  row: list[float]) -> None:
    """The argmax (or argmin) of a (log-)softmax along its rows is read from the logits; where
    rounding made two entries of a row equal (the last row), it is the index of the larger
    (smaller) logit."""
    x = T.matrix("x")
    f = sf.function([x], arg(make(x), axis=axis, keepdims=keepdims), mode=mode)
    assert [type(n.op).__name__ for n in f.fgraph.nodes()] == ["ArgReduce"]
    values = np.vstack([VALUES[0], [row]])
    want = (np.argmax if arg is T.argmax else np.argmin)(values, axis=1)
    np.testing.assert_array_equal(f(values), want[:, None] if keepdims else want)
    rounded = sf.function([x], arg(make(x), axis=axis, keepdims=keepdims), mode=mode, rewrite=False)(values)
    assert np.ravel(rounded)[-1] != want[-1]  # the tie that rounding made in the (log-)softmax


def test_argmax_of_a_softmax_down_its_columns_keeps_the_softmax(mode: str) -> None:
    """Along the other axis the softmax does not keep the order, so that argmax reads it."""
    x = T.matrix("x")
    f = sf.function([x], T.argmax(T.nnet.softmax(x), axis=0), mode=mode)
    assert "Softmax" in [type(n.op).__name__ for n in f.fgraph.nodes()]
    values = np.array([[0.0, 5.0, 1.0], [4.0, 0.0, 1.0]])  # column 0's largest softmax entry is in row 0
    e = np.exp(values - values.max(axis=1, keepdims=True))
    want = np.argmax(e / e.sum(axis=1, keepdims=True), axis=0)
    assert not np.array_equal(want, np.argmax(values, axis=0))
    np.testing.assert_array_equal(f(values), want)


def test_shape_of_a_softmax_is_read_from_its_input(mode: str) -> None:
    """Counting a (log-)softmax's rows or columns computes no softmax."""
    x = T.matrix("x")
    f = sf.function([x], [T.nnet.softmax(x).shape[0], T.nnet.log_softmax(x).shape[1]], mode=mode)
    assert not {"Softmax", "LogSoftmax", "SoftmaxAndLog"} & {type(n.op).__name__ for n in f.fgraph.nodes()}
    assert [int(v) for v in f(VALUES[0])] == [4, 3]


def test_summed_outer_product_of_sliced_rows(mode: str) -> None:
    """The outer products summed over rows are one matrix product also when the rows are sliced
    after the dimshuffle (reversed and cut, as a backward loop's pushed-out sequence reads them)."""
    x = T.matrix("x")
    out = (x.dimshuffle(0, 1, "x")[::-1][:3] * x[1:].dimshuffle(0, "x", 1)).sum(axis=0)
    rewritten = sf.function([x], out, mode=mode)
    assert not any(type(n.op).__name__ == "Reduce" for n in rewritten.fgraph.nodes())
    want = sf.function([x], out, mode=mode, rewrite=False)(VALUES[0])
    np.testing.assert_allclose(rewritten(VALUES[0]), want, rtol=1e-12, atol=1e-15)


def test_scan_weight_gradient_is_one_matrix_product(mode: str) -> None:
    """A weight gradient of a loop over steps (the per-step ``x_t . W`` of the book's units) has no
    (steps, rows, columns) temporary: it is one product after the backward loop, not added to the
    zeros the loop would have summed it into."""
    x = T.matrix("x")
    W = sf.shared(W0.copy(), name="W")
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t.dot(W) + h), sequences=x, outputs_info=T.zeros_like(x[0]))
    g = sf.grad((h ** 2).sum(), W)
    f = sf.function([x], g, mode=mode)
    assert not [n for n in f.fgraph.nodes() if any(y.ndim == 3 for y in n.outputs)]
    assert not [n for n in f.fgraph.nodes() if type(n.op).__name__ == "Alloc" and n.outputs[0].ndim == 2
                and getattr(n.inputs[0], "data", None) == 0]  # zeros shaped like W
    want = sf.function([x], g, mode=mode, rewrite=False)(VALUES[0])
    np.testing.assert_allclose(f(VALUES[0]), want, rtol=1e-12, atol=1e-15)


def test_per_step_softmax_rows_need_no_3d_temporaries(mode: str) -> None:
    """The book's ``y[:, 0, :]`` of per-step (1, k) softmax rows: after the rewrites, the cost and its
    gradients are computed on (steps, k) matrices; no (steps, 1, k) value is left."""
    x, y = T.matrix("x"), T.ivector("y")
    W, V = sf.shared(W0.copy(), name="W"), sf.shared(W0.T.copy(), name="V")
    cost = _per_step_softmax_cost(x, y, W, V)
    outputs = [cost, *sf.grad(cost, [W, V, x])]
    f = sf.function([x, y], outputs, mode=mode)
    assert not [n for n in f.fgraph.nodes() if any(v.ndim == 3 for v in n.outputs)]
    want = sf.function([x, y], outputs, mode=mode, rewrite=False)(VALUES[0], VALUES[2])
    for got, expected in zip(f(VALUES[0], VALUES[2]), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_gradient_of_per_step_softmax_rows_stays_finite(mode: str) -> None:
    """The book's cost over per-step softmax rows, with logits so far apart that the target's
    probability underflows to 0: the cost is finite, so the gradient must be too (the division
    by the probability is cancelled also when the rows were made in a loop and sliced)."""
    x, y = T.matrix("x"), T.ivector("y")
    V = sf.shared(np.array([[1.0, -1.0, 0.0], [0.5, 0.0, -0.5]]) * 400, name="V")
    rows, _ = sf.scan(lambda x_t: T.nnet.softmax(x_t.dot(V)), sequences=x)
    p = rows[:, 0, :]
    cost = -T.mean(T.log(p[T.arange(y.shape[0]), y]))
    X = np.array([[3.0, 1.0], [-2.0, 0.5], [0.1, 0.2]])
    Y = np.array([1, 0, 2], "int32")
    got_cost, got_grad = sf.function([x, y], [cost, sf.grad(cost, V)], mode=mode)(X, Y)
    logits = X @ V.get_value()
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    assert np.isfinite(got_cost) and np.exp(log_p[0, 1]) == 0.0  # the probability underflows
    np.testing.assert_allclose(got_cost, -log_p[np.arange(3), Y].mean(), rtol=1e-12)
    np.testing.assert_allclose(got_grad, X.T @ (np.exp(log_p) - np.eye(3)[Y]) / 3, rtol=1e-12, atol=1e-12)


def test_cross_entropy_gradient_through_a_recurrence_stays_finite(mode: str) -> None:
    """The same with the softmax rows made from the loop's state (the book's SimpleRNN): where a
    probability underflows, the gradients equal those of the same model written with
    ``log_softmax`` (stable by construction), computed without rewrites."""
    x, y = T.matrix("x"), T.ivector("y")
    W = sf.shared(W0.copy(), name="W")
    V = sf.shared(np.array([[3.0, -2.0, 0.0], [-1.0, 2.0, 1.0], [0.0, 1.0, -3.0]]) * 300, name="V")

    def cost_of(rows_of: Any, take_log: bool) -> Any:
        def step(x_t: Any, h: Any) -> Any:
            h_new = T.tanh(x_t + h.dot(W))
            return h_new, rows_of(h_new.dot(V))

        (_, rows), _ = sf.scan(step, sequences=x, outputs_info=[T.zeros_like(x[0]), None])
        picked = rows[:, 0, :][T.arange(y.shape[0]), y]
        return -T.mean(T.log(picked) if take_log else picked)

    cost = cost_of(T.nnet.softmax, True)
    got = sf.function([x, y], [cost, *sf.grad(cost, [W, V])], mode=mode)(VALUES[0], VALUES[2])
    stable = cost_of(T.nnet.log_softmax, False)
    want = sf.function([x, y], [stable, *sf.grad(stable, [W, V])], mode="py", rewrite=False)(VALUES[0], VALUES[2])
    assert want[0] > 100 and all(np.isfinite(w).all() for w in want)  # some target probability underflows
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_per_step_outputs_that_pass_values_through_leave_the_loop(mode: str, go_backwards: bool) -> None:
    """A loop whose per-step outputs are a sequence's row or a non-sequence once its work moved out
    (``softmax(x_t . W)`` becomes one softmax before the loop) is no loop at all: no Scan is left,
    and the values are those of the loop."""
    x = T.matrix("x")
    W = sf.shared(W0.copy(), name="W")
    (rows, same), _ = sf.scan(lambda x_t, W: (T.nnet.softmax(x_t.dot(W)), W), sequences=x, non_sequences=W,
                              go_backwards=go_backwards)
    outputs = [rows, same, T.log(rows[:, 0, :])]
    f = sf.function([x], outputs, mode=mode)
    assert not any(type(n.op).__name__ == "Scan" for n in f.fgraph.nodes())
    ops = {type(n.op).__name__ for n in f.fgraph.nodes()}
    assert ops & {"LogSoftmax", "SoftmaxAndLog"}  # the log found its softmax
    want = sf.function([x], outputs, mode=mode, rewrite=False)(VALUES[0])
    for got, expected in zip(f(VALUES[0]), want, strict=True):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_errors_from_what_rewrites_built_point_at_the_users_line(mode: str) -> None:
    """A node a rewrite puts in place of another keeps its source line: a scan whose body was
    rewritten, a step's product taken out of the loop and a fused sum fail at run time naming the
    lines that built them, not ``function()``'s."""
    X, W, h0, n = T.matrix("X"), T.matrix("W"), T.vector("h0"), T.iscalar("n")
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + h), sequences=X, outputs_info=h0, n_steps=n)  # the scan's line
    h2, _ = sf.scan(lambda x_t, h: T.tanh(x_t.dot(W) + h),  # the product's line
                    sequences=X, outputs_info=h0)
    def step(x_t, h):
        h_t = T.tanh(x_t + h)
        return h_t, h_t.dot(W) * 2  # the mapped product's line (computed after the loop)

    [_, mapped], _ = sf.scan(step, sequences=X, outputs_info=[h0, None])
    a, b = T.vector("a"), T.vector("b")
    y = T.exp(a + b) * 2  # the sum's line
    f = sf.function([X, h0, n], h, mode=mode)
    f2 = sf.function([X, W, h0], h2, mode=mode)
    f3 = sf.function([X, W, h0], mapped, mode=mode)
    g = sf.function([a, b], y, mode=mode)
    with pytest.raises(sf.errors.ShapeError, match="the scan's line"):
        f(np.zeros((3, 2)), np.zeros(2), 5)
    with pytest.raises(sf.errors.ShapeError, match="the product's line"):
        f2(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(sf.errors.ShapeError, match="the mapped product's line"):
        f3(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(sf.errors.ShapeError, match="the sum's line"):
        g(np.zeros(2), np.zeros(3))


def test_scan_steps_are_checked_where_the_sequences_do_not_bound_them(mode: str) -> None:
    """A scan given ``n_steps`` checks it before anything slices the sequences by it, unless it can be
    neither negative nor more than they hold (``n_steps=X.shape[0]``, as the book writes it):
    then the check goes and the sequences are read whole."""
    x, ids, n = T.matrix("x"), T.ivector("ids"), T.iscalar("n")
    E = sf.shared(W0.copy(), name="E")
    def doubled(**kwargs: Any) -> Any:
        return sf.scan(lambda *taps: taps[0] * 2, **kwargs)[0]

    checked = {
        "the sequence's length": (False, doubled(sequences=x, n_steps=x.shape[0])),
        "an embedding's rows, by its indices' length": (False, doubled(sequences=E[ids], n_steps=ids.shape[0])),
        "a minimum with the length": (False, doubled(sequences=x, n_steps=T.maximum(T.minimum(x.shape[0], n), 0))),
        "one less than the length, tap -1": (True, doubled(sequences={"input": x, "taps": [-1]},
                                                          n_steps=x.shape[0] - 1)),  # -1 when x is empty
        "an input": (True, doubled(sequences=x, n_steps=n)),
        "a minimum that may be negative": (True, doubled(sequences=x, n_steps=T.minimum(x.shape[0], n))),
        "the length, tap -1": (True, doubled(sequences={"input": x, "taps": [-1]}, n_steps=x.shape[0])),
        "the length less one, no sequence": (True, sf.scan(lambda: E * 2, n_steps=x.shape[0] - 1)[0]),
    }
    for label, (kept, out) in checked.items():
        f = sf.function([x, ids, n], out, mode=mode, on_unused_input="ignore")
        found = [node for node in f.fgraph.nodes() if type(node.op).__name__ == "StepsCheck"]
        assert bool(found) == kept, label


def test_a_bad_pick_of_logits_with_a_bias_names_the_pick(mode: str) -> None:
    """``softmax_bias`` picks ``x[r, c] + b[0, c]`` instead of ``(x + b)[r, c]``; an index out of range
    is still reported at the line that picks, not at the line that added the bias."""
    x, y = T.matrix("x"), T.ivector("y")
    b = sf.shared(np.zeros(3), name="b")
    logits = x * 2 + b  # the sum's line
    cost = -T.mean(T.nnet.log_softmax(logits)[T.arange(y.shape[0]), y])  # the pick's line
    f = sf.function([x, y], cost, mode=mode)
    assert any(type(n.op) is LogSumExp and n.op.with_bias for n in f.fgraph.nodes())  # the rewrite ran
    with pytest.raises(IndexError) as raised:
        f(VALUES[0], np.array([0, 3, 1, 2], "int32"))
    assert "# the pick's line" in str(raised.value)


def test_neutral_operands_with_a_length_of_their_own_keep_their_shape_check(mode: str) -> None:
    """``ones((5,)) * v`` and ``zeros((5,)) + v`` check that v has 5 entries, as without rewrites; a
    neutral operand of one element, or zeros shaped like the other operand, is still dropped."""
    v = T.vector("v")
    for out in (T.ones((5,)) * v, T.zeros((5,)) + v, v - T.zeros((5,)),
                sf.grad(None, v, known_grads={v ** 2: T.ones((5,))})):
        with pytest.raises(sf.errors.ShapeError, match=r"\(5,\).*\(3,\)|\(3,\).*\(5,\)"):
            sf.function([v], out, mode=mode)(np.ones(3))
    M = T.matrix("M")  # zeros of a length set partly by a variable stay zeros (an Alloc)
    with pytest.raises(sf.errors.ShapeError, match=r"\(2, 4\).*\(3, 4\)"):
        sf.function([M], T.zeros((2, M.shape[1])) + M, mode=mode)(np.ones((3, 4)))
    k, y = T.lscalar("k"), T.vector("y")  # zeros of a length only known when the function runs
    W = sf.shared(np.ones(3), name="W")
    for inputs, out, values in (([k, v], (T.zeros((k,)) + v).sum(), (5, np.ones(3))),
                                ([v, y], T.zeros_like(y) + v, (np.ones(3), np.ones(4))),
                                ([v, y], v - T.zeros(y.shape), (np.ones(3), np.ones(4)))):
        f = sf.function(inputs, out, updates=[(W, W + v)], mode=mode)
        with pytest.raises(sf.errors.ShapeError, match=r"\((5|4),\).*\(3,\)|\(3,\).*\((5|4),\)"):
            f(*values)
        np.testing.assert_array_equal(W.get_value(), np.ones(3))
    for out in (T.ones((1,)) * v, T.zeros_like(v) + v, v - T.zeros(v.shape)):
        f = sf.function([v], out, mode=mode)
        assert not [n for n in f.fgraph.nodes() if n.outputs[0].ndim], out  # v itself, copied
        np.testing.assert_array_equal(f(np.arange(3.0)), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log_sigmoid_costs_have_finite_gradients_where_the_math_is(mode: str, dtype: str) -> None:
    """The gradients of ``log(sigmoid(x))``, ``log(1 - sigmoid(x))`` and the binary cross-entropy of a
    sigmoid are finite at any x (they divided by a sigmoid that underflows to 0 or rounds to 1)."""
    x, t = T.vector("x", dtype=dtype), T.vector("t", dtype=dtype)
    s = T.nnet.sigmoid(x)
    costs = {"log": T.log(s).sum(), "log1m": T.log(1 - s).sum(),
             "bce": T.nnet.binary_crossentropy(s, t).sum()}
    xs = np.array([-1000.0, -100.0, -50.0, 0.0, 50.0, 1000.0], dtype)
    ts = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0], dtype)
    with np.errstate(over="ignore"):
        sig, sig_neg = 1 / (1 + np.exp(-xs.astype("float64"))), 1 / (1 + np.exp(xs.astype("float64")))
    want = {"log": sig_neg, "log1m": -sig, "bce": sig - ts}  # d/dx: sigmoid(-x), -sigmoid(x), sigmoid(x) - t
    for name, cost in costs.items():
        g = sf.function([x, t], sf.grad(cost, x), mode=mode, on_unused_input="ignore")(xs, ts)
        assert np.isfinite(g).all(), (name, g)
        np.testing.assert_allclose(g, want[name], rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-30)


def test_log_softmax_costs_read_through_transposes_have_finite_gradients(mode: str) -> None:
    """The cross-entropy gradient stays finite where a probability underflows, also when the
    softmax is read through a transpose, or is a vector's softmax read at a symbolic index."""
    X, y, v, k = T.matrix("X"), T.ivector("y"), T.vector("v"), T.iscalar("k")
    xs = np.array([[1000.0, 0.0, -1000.0], [5.0, -3.0, 2.0]])
    p = T.nnet.softmax(X)
    costs = [(-T.log(p.T[y, T.arange(y.shape[0])]).sum(), X), (-T.log(p.dimshuffle(1, 0)[2, 0]), X),
             (-T.log(T.nnet.softmax(v)[0, k]), v),
             (T.nnet.categorical_crossentropy(T.nnet.softmax(v), T.constant([2])).sum(), v)]
    grads = sf.function([X, y, v, k], [sf.grad(c, wrt) for c, wrt in costs], mode=mode)
    got = grads(xs, np.array([2, 1], "int32"), xs[0], 2)
    e = np.exp(xs[1] - xs[1].max())
    row1 = e / e.sum() - np.eye(3)[1]  # the second example's softmax minus its one-hot target
    np.testing.assert_allclose(got[0], [[1.0, 0.0, -1.0], row1], atol=1e-12)
    np.testing.assert_allclose(got[1], [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]], atol=1e-12)
    for g in got[2:]:
        np.testing.assert_allclose(g, [1.0, 0.0, -1.0], atol=1e-12)


def test_gradients_through_dimshuffles_that_add_or_drop_axes_compile(mode: str) -> None:
    """The stability rewrite looks through transposes only; dimshuffles that insert or drop a
    broadcastable axis (a softmax row of a vector, ``softmax(h)[0]``) are left as they are."""
    Wh = sf.shared(np.eye(3) * 0.5, name="Wh")
    X = T.matrix("X")

    def step(x_t: Any, h: Any) -> Any:
        return T.tanh(x_t + h.dot(Wh)), T.log(T.nnet.softmax(h)[0])

    (_, ys), _ = sf.scan(step, sequences=X, outputs_info=[T.ones((3,)), None])
    g = sf.grad(ys[:, 1].sum(), Wh)
    xs = RNG.normal(size=(4, 3))
    want = sf.function([X], g, mode=mode, rewrite=False)(xs)
    np.testing.assert_allclose(sf.function([X], g, mode=mode)(xs), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int32"])
def test_stability_rewrites_of_integer_and_bool_inputs(mode: str, dtype: str) -> None:
    """``log(sigmoid(x))``, ``log(1 - sigmoid(x))`` and ``x * -1`` of bool and integer inputs give what
    the graph says: the rewrites used to negate the input itself, which failed for bool and wrapped
    around for unsigned ints (``log(sigmoid(uint8 1))`` gave -255)."""
    x = T.tensor(dtype, broadcastable=(False,), name="x")
    value = np.array([1, 0, 1], dtype) if dtype == "bool" else np.array([1, 0, 100, 5], dtype)
    if dtype == "int8":
        value = np.array([1, 0, -128, 100], dtype)
    outputs = [T.log(T.nnet.sigmoid(x)), T.log(1 - T.nnet.sigmoid(x)), x * -1]
    got = sf.function([x], outputs, mode=mode)(value)
    wide = value.astype("float64")
    log_sigmoid = -np.logaddexp(0, -wide)
    for label, out, result, want in zip(("log sigmoid", "log 1 - sigmoid", "times -1"), outputs, got,
                                        [log_sigmoid, log_sigmoid - wide, value * np.int8(-1)], strict=True):
        assert result.dtype == out.dtype, label
        np.testing.assert_allclose(result, want, rtol=1e-6, atol=1e-12, err_msg=label)


def test_a_failing_rewrite_is_skipped_with_a_warning_or_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rewrite that raises on a valid graph is a symflow bug: by default the function is built
    without it, with a warning naming the node's line; ``config.rewrite_errors = "raise"`` raises.
    A whole pass that fails is skipped the same way."""
    from symflow.compile.rewrites import canonical
    from symflow.ops.elemwise import Elemwise

    x = T.vector("x")
    y = T.exp(x) * 2

    def broken_rule(node: Any) -> None:  # fails on the exp node only
        if node.op == y.owner.inputs[0].owner.op:
            raise ZeroDivisionError("a bug in a rule")

    def broken_pass(fgraph: Any) -> None:
        raise ZeroDivisionError("a bug in a pass")

    monkeypatch.setitem(canonical.RULES, Elemwise, [broken_rule, *canonical.RULES[Elemwise]])
    monkeypatch.setattr(sf.config, "rewrite_errors", "warn")
    with pytest.warns(UserWarning, match=r"a rewrite of exp \(built at File .*test_rewrites.py.* line \d+.*\n.*"
                                         r"y = T.exp\(x\) \* 2\) failed and was skipped \(ZeroDivisionError: a bug"):
        f = sf.function([x], y, mode="py")
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), 2 * np.exp([0.0, 1.0]))
    monkeypatch.setattr(sf.config, "rewrite_errors", "raise")
    with pytest.raises(ZeroDivisionError, match="a bug in a rule"):
        sf.function([x], y, mode="py")

    monkeypatch.setitem(canonical.RULES, Elemwise, canonical.RULES[Elemwise][1:])
    fusion = REWRITES["fusion"]
    monkeypatch.setattr(fusion, "run", broken_pass)
    with pytest.raises(ZeroDivisionError, match="a bug in a pass"):
        sf.function([x], y, mode="py")
    monkeypatch.setattr(sf.config, "rewrite_errors", "warn")
    with pytest.warns(UserWarning, match="the rewrite pass 'fusion' failed and was skipped"):
        f = sf.function([x], y, mode="py")
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), 2 * np.exp([0.0, 1.0]))
