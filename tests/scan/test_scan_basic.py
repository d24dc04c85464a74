"""Scan results against plain NumPy loops."""

from __future__ import annotations

import re

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.errors import ShapeError
from symflow.testing import verify_grad


def test_power(mode: str) -> None:
    k = T.iscalar("k")
    a = T.vector("a")
    result, updates = sf.scan(lambda prior, a: prior * a, outputs_info=T.ones_like(a), non_sequences=a, n_steps=k)
    f = sf.function([a, k], result, mode=mode)
    out = f(np.arange(5.0), 3)
    np.testing.assert_allclose(out, [np.arange(5.0) ** p for p in (1, 2, 3)])
    assert not updates


def test_polynomial(mode: str) -> None:
    coefficients = T.vector("c")
    x = T.scalar("x")
    terms, _ = sf.scan(lambda c, p, x: c * x**p, sequences=[coefficients, T.arange(1000)], non_sequences=x)
    f = sf.function([coefficients, x], terms.sum(), mode=mode)
    c = np.array([1.0, 0.0, 2.0, -1.5])
    assert f(c, 3.0) == pytest.approx(np.polyval(c[::-1], 3.0))


def test_fibonacci_with_taps(mode: str) -> None:
    n = T.iscalar("n")
    init = T.constant(np.array([0, 1], dtype="int64"))
    fib, _ = sf.scan(lambda a, b: a + b, outputs_info={"initial": init, "taps": [-2, -1]}, n_steps=n)
    out = sf.function([n], fib, mode=mode)(10)
    ref = [0, 1]
    for _ in range(10):
        ref.append(ref[-1] + ref[-2])
    np.testing.assert_array_equal(out, ref[2:])


def test_running_sum_stops_early(mode: str) -> None:
    x = T.vector("x")
    limit = T.scalar("limit")

    def step(x_t, total, limit):
        new = total + x_t
        return new, sf.until(new > limit)

    totals, _ = sf.scan(step, sequences=x, outputs_info=T.constant(0.0), non_sequences=limit)
    out = sf.function([x, limit], totals, mode=mode)(np.arange(1.0, 11.0), 10.0)
    np.testing.assert_allclose(out, [1.0, 3.0, 6.0, 10.0, 15.0])


def test_generation_without_sequences(mode: str) -> None:
    """Greedy generation: the argmax of each step is fed back as the next input index."""
    rng = np.random.default_rng(0)
    table = sf.shared(rng.normal(size=(6, 6)), name="table")
    start = T.lscalar("start")

    def step(i):
        return T.argmax(table[i])

    seq, _ = sf.scan(step, outputs_info=start, n_steps=5)
    out = sf.function([start], seq, mode=mode)(2)
    ref, i = [], 2
    for _ in range(5):
        i = int(np.argmax(table.get_value()[i]))
        ref.append(i)
    np.testing.assert_array_equal(out, ref)


def test_go_backwards(mode: str) -> None:
    x = T.vector("x")
    out, _ = sf.scan(lambda x_t, acc: acc * 10 + x_t, sequences=x, outputs_info=T.constant(0.0), go_backwards=True)
    np.testing.assert_allclose(sf.function([x], out, mode=mode)(np.array([1.0, 2.0, 3.0])), [3.0, 32.0, 321.0])


def test_zero_steps(mode: str) -> None:
    x = T.matrix("x")
    h0 = T.vector("h0")
    w = sf.shared(np.ones((3, 2)), name="w")
    [h, y], _ = sf.scan(lambda x_t, h: [h + x_t.dot(w), T.nnet.softmax(h)], sequences=x, outputs_info=[h0, None])
    f = sf.function([x, h0], [h, y], mode=mode)
    hv, yv = f(np.zeros((0, 3)), np.zeros(2))
    assert hv.shape == (0, 2)
    assert yv.shape == (0, 1, 2)


def test_sequence_taps(mode: str) -> None:
    x = T.vector("x")
    out, _ = sf.scan(lambda a, b, c: a - 2 * b + c, sequences={"input": x, "taps": [-1, 0, 1]})
    v = np.arange(6.0) ** 2
    np.testing.assert_allclose(sf.function([x], out, mode=mode)(v), v[:-2] - 2 * v[1:-1] + v[2:])


def _tap_windows(x: np.ndarray, taps: list[int], backwards: bool) -> list[list[float]]:
    """Theano's meaning of sequence taps: the steps cover the times at which every tap and tap 0 fall
    inside the sequence; walking backwards visits the same times from the last."""
    lo, hi = min(min(taps), 0), max(max(taps), 0)
    times = range(-lo, len(x) - hi)
    return [[x[t + k] for k in taps] for t in (reversed(times) if backwards else times)]


TAP_CASES = [([-1], False), ([2], False), ([1, -1], False), ([-2, 0, 1], False),
             ([-1], True), ([2], True), ([1, -1], True), ([0, -2], True)]


def test_sequence_taps_as_theano_reads_them(mode: str) -> None:
    """Taps reach the step in the order given, the window always counts tap 0 (taps [-1] start at
    the second entry, [2] at the third), and going backwards tap -1 is still the earlier entry."""
    x = T.vector("x")
    outs = []
    for taps, backwards in TAP_CASES:
        weighted = (lambda *a: sum(v * 10.0**i for i, v in enumerate(a)))  # order-sensitive
        out, _ = sf.scan(weighted, sequences={"input": x, "taps": taps}, go_backwards=backwards)
        outs.append(out)
    v = np.arange(1.0, 8.0)
    results = sf.function([x], outs, mode=mode)(v)
    for (taps, backwards), got in zip(TAP_CASES, results):
        ref = [sum(w * 10.0**i for i, w in enumerate(ws)) for ws in _tap_windows(v, taps, backwards)]
        np.testing.assert_array_equal(got, ref, err_msg=f"taps {taps}, go_backwards={backwards}")


def test_output_taps_in_the_order_given(mode: str) -> None:
    h0, n = T.vector("h0"), T.iscalar("n")
    out, _ = sf.scan(lambda back1, back2: back1 + 10 * back2, outputs_info={"initial": h0, "taps": [-1, -2]},
                     n_steps=n)
    ref = [1.0, 2.0]
    for _ in range(4):
        ref.append(ref[-1] + 10 * ref[-2])
    np.testing.assert_array_equal(sf.function([h0, n], out, mode=mode)(np.array(ref[:2]), 4), ref[2:])


@pytest.mark.parametrize(("taps", "backwards"), [([1, -1], True), ([2], False), ([-1], True)])
def test_gradient_through_sequence_and_output_taps(mode: str, taps: list[int], backwards: bool) -> None:
    """The backward loop reads the sequence where the forward loop did (checked against finite
    differences), including when the per-step product of a one-tap sequence leaves the loop."""
    def cost(X, W, H0):
        def step(*a):
            pre = sum((i + 1.5) * x_t.dot(W) for i, x_t in enumerate(a[:len(taps)]))
            return T.tanh(pre + 0.5 * a[-2] - 0.3 * a[-1])
        h, _ = sf.scan(step, sequences={"input": X, "taps": taps}, outputs_info={"initial": H0, "taps": [-2, -1]},
                       go_backwards=backwards)
        return (h**2).sum() + h[-1].sum()

    rng = np.random.default_rng(3)
    verify_grad(cost, [rng.normal(size=(6, 3)), rng.normal(size=(3, 2)) * 0.5, rng.normal(size=(2, 2))], mode=mode)


def test_strict_takes_expressions_as_non_sequences_and_names_what_is_missing(mode: str) -> None:
    X, W, h0 = T.matrix("X"), T.matrix("W"), T.vector("h0")
    h, _ = sf.scan(lambda x_t, h, V, Vt: T.tanh(x_t + h.dot(V) - h.dot(Vt)), sequences=X, outputs_info=h0,
                   non_sequences=[W * 2, (W * 2).T], strict=True)
    x, w = np.ones((3, 2)), np.array([[0.5, 0.1], [0.0, 0.5]])
    ref, state = [], np.zeros(2)
    for row in x:
        state = np.tanh(row + state @ (2 * w) - state @ (2 * w).T)
        ref.append(state)
    np.testing.assert_allclose(sf.function([X, W, h0], h, mode=mode)(x, w, np.zeros(2)), ref)
    hidden = sf.shared(np.eye(2), name="hidden_W")
    with pytest.raises(ValueError, match=r"uses 'hidden_W' \(float64 matrix\), which is not in non_sequences"):
        sf.scan(lambda x_t, h, V: T.tanh(x_t + h.dot(V) + h.dot(hidden)), sequences=X, outputs_info=h0,
                non_sequences=[W * 2], strict=True)
    with pytest.raises(ValueError, match=r"uses 'W' \(float64 matrix\), 'hidden_W' \(float64 matrix\), which are not"):
        sf.scan(lambda x_t, h: T.tanh(x_t + h.dot(W) + h.dot(hidden)), sequences=X, outputs_info=h0, strict=True)


def test_nested_scan(mode: str) -> None:
    m = T.matrix("m")

    def row_cumsum(row):
        sums, _ = sf.scan(lambda v, acc: acc + v, sequences=row, outputs_info=T.constant(0.0))
        return sums

    out, _ = sf.scan(row_cumsum, sequences=m)
    v = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(sf.function([m], out, mode=mode)(v), np.cumsum(v, axis=1))


def test_step_output_shaped_in_the_step(mode: str) -> None:
    """A per-step output whose length the step itself computes: its buffer is made at the first step."""
    x = T.matrix("x")
    ys, _ = sf.scan(lambda row: T.zeros((T.cast(row[0], "int64"),)) + row[1], sequences=x)
    f = sf.function([x], ys, mode=mode)
    np.testing.assert_allclose(f(np.array([[2.0, 1.0], [2.0, 5.0], [2.0, 7.0]])), [[1, 1], [5, 5], [7, 7]])
    assert f(np.zeros((0, 2))).shape == (0, 0)


def test_run_time_errors_name_the_sequence_and_the_initial_state(mode: str) -> None:
    X, h0, n = T.matrix("X"), T.vector("h0"), T.iscalar("n")
    h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + h), sequences=X, outputs_info=h0, n_steps=n)
    with pytest.raises(ShapeError, match=r"sequence 0, 'X' \(float64 matrix\), has 3 entries; 5 steps"):
        sf.function([X, h0, n], h, mode=mode)(np.zeros((3, 2)), np.zeros(2), 5)
    block = T.matrix("block")
    out, _ = sf.scan(lambda a, b: a + b, outputs_info={"initial": block, "taps": [-3, -1]}, n_steps=n)
    with pytest.raises(ShapeError, match=r"state 0 \('block' \(float64 matrix\)\) with taps \(-3, -1\) needs 3"):
        sf.function([block, n], out, mode=mode)(np.zeros((2, 2)), 4)
    grown, _ = sf.scan(lambda s: T.concatenate([s, s]), outputs_info=h0, n_steps=n)
    with pytest.raises(ShapeError, match=r"state 0 \(from 'h0' \(float64 vector\)\) changed shape from \(2,\) to"):
        sf.function([h0, n], grown, mode=mode)(np.zeros(2), 3)


@pytest.mark.parametrize("rewrite", [True, False])
def test_more_steps_than_a_sequence_holds_is_an_error_also_without_the_loop(mode: str, rewrite: bool) -> None:
    """``n_steps`` beyond a sequence's entries (or negative) is an error named at the scan's line, also
    where the rewrites take the steps' work out of the loop or remove the loop, slicing the sequence
    by ``n_steps``: sliced unchecked, it would give fewer rows without a word."""
    X, n = T.matrix("X"), T.iscalar("n")
    W = sf.shared(np.ones((2, 2)), name="W")
    mapped, _ = sf.scan(lambda x_t: T.tanh(x_t.dot(W)), sequences=X, n_steps=n)
    backwards, _ = sf.scan(lambda x_t, h: T.tanh(x_t.dot(W) + h), sequences=X, outputs_info=T.zeros((2,)),
                           n_steps=n, go_backwards=True)
    lagged, _ = sf.scan(lambda x_tm1: x_tm1 * 2, sequences={"input": X, "taps": [-1]}, n_steps=X.shape[0])
    repeated, _ = sf.scan(lambda: W * 2, n_steps=n)
    values = np.arange(6.0).reshape(3, 2)
    cases = [("mapped, _ = sf.scan", mapped, 5, "has 3 entries; 5 steps with taps [0] need 5"),
             ("backwards, _ = sf.scan", backwards, 4, "has 3 entries; 4 steps with taps [0] need 4"),
             ("lagged, _ = sf.scan", lagged, 0, "has 3 entries; 3 steps with taps [-1] need 4"),
             ("repeated, _ = sf.scan", repeated, -2, "n_steps must not be negative, got -2")]
    for line, out, steps, message in cases:
        f = sf.function([X, n], out, mode=mode, rewrite=rewrite, on_unused_input="ignore")
        with pytest.raises(ShapeError, match=re.escape(message)) as raised:
            f(values, steps)
        assert line in str(raised.value)
    # fewer steps than entries read the first ones (the last ones, backwards)
    f = sf.function([X, n], [mapped, backwards], mode=mode, rewrite=rewrite)
    got_mapped, got_backwards = f(values, 2)
    np.testing.assert_allclose(got_mapped, np.tanh(values[:2] @ np.ones((2, 2))))
    h, want = np.zeros(2), []
    for x_t in values[::-1][:2]:
        h = np.tanh(x_t @ np.ones((2, 2)) + h)
        want.append(h)
    np.testing.assert_allclose(got_backwards, want)


def test_step_output_changing_shape_is_an_error(mode: str) -> None:
    """Per-step outputs keep one shape; a step that changes it is reported, never stacked as garbage."""
    x = T.matrix("x")
    ys, _ = sf.scan(lambda row: T.zeros((T.cast(row[0], "int64"),)) + row[1], sequences=x)
    f = sf.function([x], ys, mode=mode)
    with pytest.raises(ShapeError, match="changed shape from \\(2,\\) to \\(3,\\) at step 1"):
        f(np.array([[2.0, 1.0], [3.0, 5.0]]))


@pytest.mark.parametrize("taps", [(-1,), (-2,), (-3, -1)])
def test_truncated_gradient_is_the_gradient_of_the_last_steps(mode: str, taps: tuple[int, ...]) -> None:
    """With ``truncate_gradient=k`` the gradient is that of a loop whose steps before the last k give
    constants: of the sequence, the weights, and the initial rows that the last k steps still read
    through a long tap (a 3-row initial block is read by the third step from the end)."""
    k = 2
    x, init, w = T.matrix("x"), T.matrix("init"), T.vector("w")

    def step(x_t, *args):  # the previous states (one per tap), then w
        *previous, w_ = args
        return T.tanh(w_ * sum(c * h for c, h in zip((0.7, 0.5), previous)) + x_t)

    lag = -min(taps)
    outputs_info = {"initial": init, "taps": list(taps)} if taps != (-1,) else init[0]
    h, _ = sf.scan(step, sequences=x, outputs_info=outputs_info, non_sequences=w, truncate_gradient=k)
    cost = (h * np.arange(1.0, 3.0)).sum()
    f = sf.function([x, init, w], sf.grad(cost, [x, init, w]), mode=mode)
    rng = np.random.default_rng(5)
    for n in range(1, 7):
        xv, initv, wv = rng.normal(size=(n, 2)), rng.normal(size=(3, 2)), rng.normal(size=2)
        history = [init[r] for r in range(lag)]  # the rows before the first step, oldest first
        outs = []
        for t in range(n):  # the loop unrolled, its early steps cut off from the gradient
            h_t = step(x[t], *[history[tap] for tap in taps], w)
            h_t = sf.stop_gradient(h_t) if t < n - k else h_t
            history.append(h_t)
            outs.append(h_t)
        unrolled = sf.grad((T.stack(outs) * np.arange(1.0, 3.0)).sum(), [x, init, w], disconnected_inputs="ignore")
        expected = sf.function([x, init, w], unrolled, mode="py", on_unused_input="ignore")(xv, initv, wv)
        for name, got, want in zip(("x", "init", "w"), f(xv, initv, wv), expected):
            np.testing.assert_allclose(got, want, atol=1e-12, err_msg=f"d/{name}, taps {taps}, {n} steps, lag {lag}")
