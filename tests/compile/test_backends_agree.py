"""The two backends agree on random graphs.

Hypothesis grows a graph from a table of rules (elementwise ops, broadcasting, reductions, views,
indexing, joins, products, scan loops), adds a cost, its gradient and momentum updates of shared
variables, and runs it with ``mode='py'`` and ``mode='numba'`` from the same values. Outputs and
shared values must agree, or both backends must raise the same kind of error. This is how an
in-place update that read its own variable through a view (``b - b[::-1]``) was found.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import symflow as sf
import symflow.tensor as T
from symflow.graph import Variable

Dims = tuple[str, ...]  # symbolic sizes: "N", "M", "K" (index length), or expressions such as "2*N"
Entry = tuple[Variable, Dims]
Draw = Callable[[Any], Any]


class Graph:
    """The inputs, shared variables and the pool of expressions a random graph grows from."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype  # of the float inputs and shared variables
        self.X, self.v, self.s = T.matrix("X", dtype), T.vector("v", dtype), T.scalar("s", dtype)
        self.idx = T.ivector("idx")  # K row indices of X, some negative
        self.jdx = T.ivector("jdx")  # K column indices of X
        self.W = sf.shared(np.zeros((1, 1), dtype), name="W")  # (M, M)
        self.b = sf.shared(np.zeros(1, dtype), name="b")  # (M,)
        self.vW = sf.shared(np.zeros((1, 1), dtype), name="vW")  # momenta
        self.vb = sf.shared(np.zeros(1, dtype), name="vb")
        self.pool: list[Entry] = [(self.X, ("N", "M")), (self.v, ("M",)), (self.s, ()), (self.W, ("M", "M")),
                                  (self.b, ("M",))]
        self.steps: list[str] = []

    def pick(self, draw: Draw, accept: Callable[[Dims], bool] = lambda d: True) -> Entry | None:
        choices = [entry for entry in self.pool if accept(entry[1])]
        return draw(st.sampled_from(choices)) if choices else None


def _unary(g: Graph, draw: Draw) -> Entry | None:
    x, d = g.pick(draw)  # type: ignore[misc]
    fn = draw(st.sampled_from([T.tanh, T.sigmoid, T.neg, T.sqr, T.relu, T.softplus,
                               lambda x: T.sqrt(abs(x)), lambda x: T.log1p(abs(x)), lambda x: T.exp(T.clip(x, -5, 5)),
                               lambda x: T.cast(T.cast(x, "float32") * np.float32(1.5), "float64")]))
    return fn(x), d


def _binary(g: Graph, draw: Draw) -> Entry | None:
    a, da = g.pick(draw)  # type: ignore[misc]
    b, db = g.pick(draw, lambda d: d[len(d) - min(len(d), len(da)):] == da[len(da) - min(len(d), len(da)):])  # type: ignore[misc]
    fn = draw(st.sampled_from([T.add, T.sub, T.mul, T.maximum, lambda x, y: x / (1.5 + abs(y)),
                               lambda x, y: T.switch(x > 0, x, y)]))
    return fn(a, b), (da if len(da) >= len(db) else db)


def _reduce(g: Graph, draw: Draw) -> Entry | None:
    x, d = g.pick(draw, lambda d: len(d) >= 1)  # type: ignore[misc]
    axis = draw(st.sampled_from([None, *range(len(d))]))
    fn = draw(st.sampled_from([T.sum, T.max, T.mean, T.prod, T.var]))
    return fn(T.tanh(x), axis=axis), (() if axis is None else d[:axis] + d[axis + 1:])


def _view(g: Graph, draw: Draw) -> Entry | None:
    x, d = g.pick(draw, lambda d: len(d) >= 1)  # type: ignore[misc]
    kind = draw(st.sampled_from(["tail", "reverse", "first", "last", "transpose", "column"]))
    if kind == "tail":
        return x[1:], (f"{d[0]}-1", *d[1:])
    if kind == "reverse":
        return x[::-1], d
    if kind in ("first", "last"):
        return x[0 if kind == "first" else -1], d[1:]
    if len(d) != 2:
        return None
    return (x.T, (d[1], d[0])) if kind == "transpose" else (x[:, -1], d[:1])


def _reshape(g: Graph, draw: Draw) -> Entry | None:
    found = g.pick(draw, lambda d: len(d) == 2)
    if found is None:
        return None
    x, d = found
    return (x.reshape((-1,)) if draw(st.booleans()) else T.flatten(x)), (f"{d[0]}*{d[1]}",)


def _rows(g: Graph, draw: Draw) -> Entry | None:
    found = g.pick(draw, lambda d: len(d) >= 1 and d[0] == "N")
    if found is None:
        return None
    x, d = found
    return x[g.idx], ("K", *d[1:])


def _write_rows(g: Graph, draw: Draw) -> Entry | None:
    found = g.pick(draw, lambda d: len(d) >= 1 and d[0] == "N")
    if found is None:
        return None
    x, d = found
    y = g.pick(draw, lambda dy: dy in (("K", *d[1:]), d[1:]))
    if y is None:
        return None
    write = T.inc_subtensor if draw(st.booleans()) else T.set_subtensor
    return write(x[g.idx], y[0]), d


def _mixed_index(g: Graph, draw: Draw) -> Entry | None:
    """Index arrays with slices and ints (NumPy's general advanced indexing), read or written."""
    found = g.pick(draw, lambda d: len(d) == 2 and d[1] == "M")
    if found is None:
        return None
    x, d = found
    kind = draw(st.sampled_from(["columns", "pairs", "int then array"]))
    region = {"columns": (x[:, g.jdx], (d[0], "K")), "pairs": (x[g.idx, g.jdx], ("K",)),
              "int then array": (x[-1, g.jdx], ("K",))}[kind] if d[0] == "N" or kind != "pairs" else None
    if region is None:
        return None
    if draw(st.booleans()):
        return region
    y = g.pick(draw, lambda dy: dy == region[1] or dy == region[1][1:] or dy == ())
    if y is None:
        return None
    write = T.inc_subtensor if draw(st.booleans()) else T.set_subtensor
    return write(region[0], y[0]), d


def _write_basic(g: Graph, draw: Draw) -> Entry | None:
    x, d = g.pick(draw, lambda d: len(d) >= 1)  # type: ignore[misc]
    y = g.pick(draw, lambda dy: dy == d[1:])
    if y is None:
        return None
    return (T.set_subtensor(x[0], y[0]) if draw(st.booleans()) else T.inc_subtensor(x[-1], y[0])), d


def _join(g: Graph, draw: Draw) -> Entry | None:
    a, d = g.pick(draw, lambda d: len(d) >= 1)  # type: ignore[misc]
    b, _ = g.pick(draw, lambda other: other == d)  # type: ignore[misc]
    kind = draw(st.sampled_from(["concatenate", "stack", "repeat"]))
    if kind == "concatenate":
        return T.concatenate([a, b], axis=0), (f"2*{d[0]}", *d[1:])
    if kind == "stack":
        return T.stack([a, b]), ("2", *d)
    return T.repeat(a, 2, axis=0), (f"2*{d[0]}", *d[1:])


def _dot(g: Graph, draw: Draw) -> Entry | None:
    a, da = g.pick(draw, lambda d: len(d) in (1, 2))  # type: ignore[misc]
    found = g.pick(draw, lambda d: len(d) in (1, 2) and d[0] == da[-1])
    if found is None:
        return None
    b, db = found
    return T.dot(a, b), da[:-1] + db[1:]


def _rowwise(g: Graph, draw: Draw) -> Entry | None:
    found = g.pick(draw, lambda d: len(d) == 2)
    if found is None:
        return None
    x, d = found
    kind = draw(st.sampled_from(["softmax", "log_softmax", "cumsum", "argmax"]))
    if kind == "softmax":
        return T.nnet.softmax(x), d
    if kind == "log_softmax":
        return T.log(T.nnet.softmax(x)), d
    if kind == "cumsum":
        return T.cumsum(x, axis=0), d
    return T.cast(T.argmax(x, axis=1), "float64") * 0.5, d[:1]


def _scan(g: Graph, draw: Draw) -> Entry | None:
    found = g.pick(draw, lambda d: len(d) == 2 and d[1] == "M")
    h0 = g.pick(draw, lambda d: d == ("M",))
    if found is None or h0 is None:
        return None
    seq, d = found
    W, b = g.W, g.b
    if draw(st.booleans()):  # one state, fed back from the previous step
        h, _ = sf.scan(lambda x_t, h: T.tanh(x_t + T.dot(h, W) + b), sequences=seq, outputs_info=h0[0],
                       go_backwards=draw(st.booleans()))
        return h, d
    # two lags of the state and a running sum
    (h, total), _ = sf.scan(lambda x_t, h2, h1, acc: (T.tanh(x_t + T.dot(h1, W) - 0.5 * h2), acc + h1.sum()),
                            sequences=seq, outputs_info=[dict(initial=T.stack([h0[0], b]), taps=[-2, -1]),
                                                         T.constant(0.0)])
    return (h, d) if draw(st.booleans()) else (total, d[:1])


RULES = [_unary, _binary, _binary, _reduce, _view, _reshape, _rows, _write_rows, _mixed_index, _write_basic,
         _join, _dot, _rowwise, _scan]


def grow(draw: Draw) -> tuple[Graph, list[Variable], list[tuple[Any, Variable]]]:
    """A random graph: outputs (some grown expressions, a cost and its gradient) and updates."""
    g = Graph(draw(st.sampled_from(["float64", "float32"])))
    for _ in range(draw(st.integers(2, 8))):
        rule = draw(st.sampled_from(RULES))
        try:
            grown = rule(g, draw)
        except TypeError:  # a combination the type rules reject (e.g. a float index)
            continue
        if grown is not None:
            assert grown[0].ndim == len(grown[1]), rule.__name__
            g.pool.append(grown)
            g.steps.append(rule.__name__)
    new = [x for x, _ in g.pool[5:]]
    outputs = [new[i] for i in sorted(set(draw(st.lists(st.integers(0, len(new) - 1), max_size=3))))] if new else []
    cost = sum((y.sum() for y in outputs), (g.W ** 2).sum())
    gW, gb, gX = sf.grad(cost, [g.W, g.b, g.X], disconnected_inputs="ignore")
    step_W, step_b = 0.9 * g.vW - 0.05 * gW, 0.9 * g.vb - 0.05 * gb
    vectors = [x for x, d in g.pool[5:] if d == ("M",)]
    b_new = g.b + step_b - 0.01 * (vectors[-1] if vectors else 0)  # an update that may read b through views
    updates = [(g.vW, step_W), (g.W, g.W + step_W), (g.vb, step_b), (g.b, b_new)]
    return g, [*outputs, cost, gX], updates


def _run(g: Graph, outputs: list[Variable], updates: list[Any], mode: str, values: dict[str, np.ndarray]
         ) -> tuple[str, Any]:
    for sv in (g.W, g.b, g.vW, g.vb):
        sv.set_value(values[sv.name].copy())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = sf.function([g.X, g.v, g.s, g.idx, g.jdx], outputs, updates=updates, mode=mode,
                            on_unused_input="ignore")
            args = (values["X"], values["v"], values["s"], values["idx"], values["jdx"])
            results = f(*args) + f(*args)  # twice: the first call's in-place writes must be right
    except Exception as exc:  # noqa: BLE001 - the other backend must raise the same kind of error
        return "error", type(exc).__name__
    return "ok", (results, [sv.get_value() for sv in (g.W, g.b, g.vW, g.vb)])


# each example compiles one function with Numba; SYMFLOW_FUZZ_EXAMPLES=500 searches longer
@settings(max_examples=int(os.environ.get("SYMFLOW_FUZZ_EXAMPLES", settings().max_examples)), deadline=None)
@given(data=st.data())
def test_random_graphs_agree_across_backends(data: st.DataObject) -> None:
    g, outputs, updates = grow(data.draw)
    n, m, k = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    floats = {"X": rng.normal(size=(n, m)), "v": rng.normal(size=m), "s": np.array(rng.normal()),
              "W": rng.normal(size=(m, m)) * 0.5, "b": rng.normal(size=m), "vW": rng.normal(size=(m, m)) * 0.1,
              "vb": rng.normal(size=m) * 0.1}
    values = {name: value.astype(g.dtype) for name, value in floats.items()}
    values["s"] = values["s"][()]  # a NumPy scalar of the input's dtype
    values["idx"] = rng.integers(-n, n, size=k).astype(np.int32)
    values["jdx"] = rng.integers(-m, m, size=k).astype(np.int32)
    note = f"rules {g.steps}, {g.dtype}, sizes N={n} M={m} K={k}"
    tolerance = {"rtol": 1e-7, "atol": 1e-9} if g.dtype == "float64" else {"rtol": 2e-4, "atol": 1e-5}
    py = _run(g, outputs, updates, "py", values)
    compiled = _run(g, outputs, updates, "numba", values)
    assert py[0] == compiled[0], f"{note}: py gave {py[0]} {py[1] if py[0] == 'error' else ''}, numba " \
                                 f"{compiled[0]} {compiled[1] if compiled[0] == 'error' else ''}"
    if py[0] == "error":
        assert py[1] == compiled[1], note
        return
    (want, want_shared), (got, got_shared) = py[1], compiled[1]
    for i, (a, b) in enumerate(zip(want + want_shared, got + got_shared, strict=True)):
        assert (type(b), b.dtype, b.shape) == (type(a), a.dtype, a.shape), f"{note}: result {i}"
        np.testing.assert_allclose(b, a, **tolerance, err_msg=f"{note}: result {i}")
