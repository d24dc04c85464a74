"""Graph views: pydotprint's dot source and rendering, and debugprint of scan loops."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import symflow as theano
import symflow.tensor as T
from symflow.printing import GraphPicture, GraphvizNotFoundError, debugprint, pydotprint


# ---------------------------------------------------------------------------------------------
# the book's models, as in chapters 2 and 5
# ---------------------------------------------------------------------------------------------
def _weight(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    return rng.normal(size=(m, n)) / np.sqrt(m + n)


def simple_rnn_train(D: int = 1, M: int = 4, K: int = 2) -> theano.Function:
    """The parity SimpleRNN: Elman unit, softmax output, SGD with momentum."""
    rng = np.random.default_rng(0)
    Wx = theano.shared(_weight(rng, D, M), name="Wx")
    Wh = theano.shared(_weight(rng, M, M), name="Wh")
    bh = theano.shared(np.zeros(M), name="bh")
    h0 = theano.shared(np.zeros(M), name="h0")
    Wo = theano.shared(_weight(rng, M, K), name="Wo")
    bo = theano.shared(np.zeros(K), name="bo")
    params = [Wx, Wh, bh, h0, Wo, bo]
    thX = T.fmatrix("X")
    thY = T.ivector("Y")

    def recurrence(x_t, h_t1):
        h_t = T.nnet.sigmoid(x_t.dot(Wx) + h_t1.dot(Wh) + bh)
        y_t = T.nnet.softmax(h_t.dot(Wo) + bo)
        return h_t, y_t

    [h, y], _ = theano.scan(fn=recurrence, outputs_info=[h0, None], sequences=thX, n_steps=thX.shape[0])
    py_x = y[:, 0, :]
    prediction = T.argmax(py_x, axis=1)
    cost = -T.mean(T.log(py_x[T.arange(thY.shape[0]), thY]))
    grads = T.grad(cost, params)
    dparams = [theano.shared(p.get_value() * 0, name=f"d{p.name}") for p in params]
    updates = [(p, p + 0.99 * dp - 1e-4 * g) for p, dp, g in zip(params, dparams, grads, strict=True)] + [
        (dp, 0.99 * dp - 1e-4 * g) for dp, g in zip(dparams, grads, strict=True)
    ]
    return theano.function(inputs=[thX, thY], outputs=[cost, prediction, y], updates=updates,
                           allow_input_downcast=True)


LSTM_PARAMS = "Wxi Whi Wci bi Wxf Whf Wcf bf Wxc Whc bc Wxo Who Wco bo c0 h0".split()


def lstm_train(Mi: int = 3, Mo: int = 4, K: int = 2) -> tuple[theano.Function, dict[str, theano.SharedVariable]]:
    """The chapter 5 LSTM with peephole matrices, a softmax layer on top, and plain SGD."""
    rng = np.random.default_rng(1)
    p: dict[str, theano.SharedVariable] = {}
    for name in LSTM_PARAMS:
        if name.startswith("W"):
            value = _weight(rng, Mi if name[1] == "x" else Mo, Mo)
        else:
            value = np.zeros(Mo)
        p[name] = theano.shared(value, name=name)
    p["Wy"] = theano.shared(_weight(rng, Mo, K), name="Wy")
    p["by"] = theano.shared(np.zeros(K), name="by")

    def recurrence(x_t, h_t1, c_t1):
        i_t = T.nnet.sigmoid(x_t.dot(p["Wxi"]) + h_t1.dot(p["Whi"]) + c_t1.dot(p["Wci"]) + p["bi"])
        f_t = T.nnet.sigmoid(x_t.dot(p["Wxf"]) + h_t1.dot(p["Whf"]) + c_t1.dot(p["Wcf"]) + p["bf"])
        c_t = f_t * c_t1 + i_t * T.tanh(x_t.dot(p["Wxc"]) + h_t1.dot(p["Whc"]) + p["bc"])
        o_t = T.nnet.sigmoid(x_t.dot(p["Wxo"]) + h_t1.dot(p["Who"]) + c_t.dot(p["Wco"]) + p["bo"])
        h_t = o_t * T.tanh(c_t)
        return h_t, c_t

    X = T.matrix("X")
    Y = T.ivector("Y")
    [h, c], _ = theano.scan(fn=recurrence, sequences=X, outputs_info=[p["h0"], p["c0"]], n_steps=X.shape[0],
                            name="lstm")
    py_x = T.nnet.softmax(h.dot(p["Wy"]) + p["by"])
    cost = -T.mean(T.log(py_x[T.arange(Y.shape[0]), Y]))
    params = list(p.values())
    grads = T.grad(cost, params)
    updates = [(q, q - 0.1 * g) for q, g in zip(params, grads, strict=True)]
    return theano.function([X, Y], cost, updates=updates), p


# ---------------------------------------------------------------------------------------------
# reading the dot source back
# ---------------------------------------------------------------------------------------------
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def _attrs(text: str) -> dict[str, str]:
    out = {}
    for key, value in _ATTR.findall(text):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"')
        out[key] = value.replace("\\n", "\n")
    return out


class Dot:
    """Nodes (id -> attributes, with the chain of clusters holding them), edges and clusters of a dot source."""

    def __init__(self, source: str) -> None:
        self.nodes: dict[str, dict[str, str]] = {}
        self.where: dict[str, tuple[str, ...]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.clusters: dict[str, tuple[str, ...]] = {}  # cluster -> enclosing clusters
        self.cluster_labels: dict[str, str] = {}
        stack: list[str] = []
        for line in source.splitlines():
            line = line.strip()
            if m := re.match(r"subgraph (cluster_\w+) \{$", line):
                self.clusters[m.group(1)] = tuple(stack)
                stack.append(m.group(1))
            elif line == "}":
                if stack:
                    stack.pop()
            elif m := re.match(r"(n\d+) -> (n\d+)(?: \[(.*)\])?$", line):
                self.edges.append((m.group(1), m.group(2), _attrs(m.group(3) or "")))
            elif m := re.match(r"(n\d+) \[(.*)\]$", line):
                self.nodes[m.group(1)] = _attrs(m.group(2))
                self.where[m.group(1)] = tuple(stack)
            elif stack and line.startswith(("color=", "label=")) or "labeljust" in line:
                self.cluster_labels[stack[-1]] = _attrs(line).get("label", "")

    def label(self, nid: str) -> str:
        return self.nodes[nid].get("label", "")

    def find(self, first_line: str, **attrs: str) -> list[str]:
        """Nodes whose label has ``first_line`` as one of its lines and which have ``attrs``."""
        return [n for n, a in self.nodes.items()
                if first_line in a.get("label", "").split("\n") and all(a.get(k) == v for k, v in attrs.items())]

    def one(self, first_line: str, **attrs: str) -> str:
        found = self.find(first_line, **attrs)
        assert len(found) == 1, f"{len(found)} nodes labelled {first_line!r} with {attrs}: {found}"
        return found[0]

    def in_cluster(self, first_line: str, cluster_label: str) -> str:
        """The one node labelled ``first_line`` directly inside the cluster whose label contains ``cluster_label``."""
        found = [n for n in self.find(first_line)
                 if self.where[n] and cluster_label in self.cluster_labels[self.where[n][-1]]]
        assert len(found) == 1, f"{len(found)} nodes labelled {first_line!r} in {cluster_label!r}: {found}"
        return found[0]

    def edges_between(self, tail: str, head: str) -> list[dict[str, str]]:
        return [a for t, h, a in self.edges if t == tail and h == head]

    def into(self, head: str) -> list[tuple[str, dict[str, str]]]:
        return [(t, a) for t, h, a in self.edges if h == head]


# ---------------------------------------------------------------------------------------------
# SimpleRNN
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rnn() -> theano.Function:
    return simple_rnn_train()


def test_simple_rnn_inputs_shared_outputs_and_updates(rnn: theano.Function) -> None:
    dot = Dot(pydotprint(rnn).source)
    x = dot.one("X", shape="ellipse")
    assert dot.label(x) == "input 0\nX\nfloat32 matrix"
    assert dot.label(dot.one("Y", shape="ellipse")) == "input 1\nY\nint32 vector"
    for name, shape in [("Wx", "(1, 4)"), ("Wh", "(4, 4)"), ("bh", "(4,)"), ("h0", "(4,)"), ("Wo", "(4, 2)")]:
        node = dot.one(name, shape="cylinder", style="filled")
        assert dot.label(node) == f"{name}\nshared float64 {shape}"
        assert dot.where[node] == ()  # shared variables live outside the loops
    outputs = [n for n, a in dot.nodes.items() if a.get("shape") == "invhouse" and a["style"] == "filled"]
    assert sorted(dot.label(n).split("\n")[0] for n in outputs) == ["output 0", "output 1", "output 2"]
    cost = dot.one("output 0")
    assert dot.label(cost).endswith("float64 scalar")
    updates = dot.find("Wx := new value") + dot.find("dWx := new value")
    assert len(updates) == 2
    all_updates = [n for n, a in dot.nodes.items() if ":= new value" in a.get("label", "")]
    assert len(all_updates) == 12
    for u in all_updates:
        (tail, attrs), = dot.into(u)
        assert attrs["label"] == "update" and attrs["style"] == "dashed"
        assert tail in dot.nodes and dot.nodes[tail].get("shape") != "invhouse"


def test_simple_rnn_scan_clusters(rnn: theano.Function) -> None:
    dot = Dot(pydotprint(rnn, rewritten=False).source)  # the loops as the book writes them
    assert len(dot.clusters) == 2  # the forward loop and its backward (gradient) loop
    assert all(parents == () for parents in dot.clusters.values())
    forward = dot.in_cluster("X[t]", "Scan: forward loop")
    cluster = dot.where[forward][-1]
    backward = dot.in_cluster("X[t]", "Scan{grad_of_scan}: backward loop")
    assert dot.where[backward] != (cluster,)
    x = dot.one("X", shape="ellipse")
    assert [a["label"] for a in dot.edges_between(x, forward)] == ["sequence"]
    assert [a["label"] for _, a in dot.into(backward)] == ["sequence"]  # X, sliced to the steps run
    h_prev = [n for n in dot.find("h0[t-1]") if dot.where[n] == (cluster,)]
    assert len(h_prev) == 1
    h0 = dot.one("h0", shape="cylinder", style="filled")
    assert [a["label"] for a in dot.edges_between(h0, h_prev[0])] == ["initial"]
    # the new state is fed back to the next step
    feedback = [(t, a) for t, a in dot.into(h_prev[0]) if a.get("label") == "next step"]
    assert len(feedback) == 1
    state_out = feedback[0][0]
    assert dot.label(state_out).startswith("state 0 (all steps)") and dot.where[state_out] == (cluster,)
    # the step graph holds the Elman unit: two products, a sigmoid, a softmax
    ops = [dot.label(n).split("\n")[0] for n in dot.nodes if dot.where[n] == (cluster,)]
    assert ops.count("Dot") >= 3 and "sigmoid" in ops and "Softmax" in ops
    # a per-step output leaves the cluster to the rest of the graph
    mapped = [n for n in dot.nodes if dot.where[n] == (cluster,) and dot.label(n).startswith("output 0 (per step)")]
    assert len(mapped) == 1
    assert any(dot.where[h] == () for t, h, _ in dot.edges if t == mapped[0])


def test_rewritten_graph_shows_the_hoisted_projection(rnn: theano.Function) -> None:
    dot = Dot(pydotprint(rnn).source)  # after rewrites: x_t.dot(Wx) is one product before the loop
    forward = dot.in_cluster("Dot(X, Wx)[t]", "Scan: forward loop")
    assert not dot.find("X[t]")
    x = dot.one("X", shape="ellipse")
    assert any(dot.label(h).startswith("Dot\n") and dot.where[h] == () for t, h, _ in dot.edges if t == x)
    cluster = dot.where[forward][-1]
    assert not [n for n in dot.nodes if dot.where[n] == (cluster,) and dot.label(n).startswith("Softmax")]
    assert "step inputs: Dot(X, Wx)[t], h0[t-1], Wh, bh" in debugprint(rnn, file="str")


def test_collapsed_scans_are_single_nodes(rnn: theano.Function) -> None:
    dot = Dot(pydotprint(rnn, expand_scan=False, rewritten=False).source)
    assert dot.clusters == {}
    scans = [n for n, a in dot.nodes.items() if a.get("shape") == "box3d"]
    assert len(scans) == 2
    x = dot.one("X", shape="ellipse")
    labels = {a["label"] for s in scans for a in dot.edges_between(x, s)}
    assert "sequence 0" in labels
    forward = next(s for s in scans if dot.edges_between(x, s) and dot.label(s).startswith("Scan\n"))
    assert "state 0 (all steps): float64 (?, ?)" in dot.label(forward).split("\n")


def test_graph_before_rewrites_is_kept() -> None:
    f, _ = lstm_train()
    assert f.fgraph_before_rewrites is not f.fgraph
    before = Dot(pydotprint(f, rewritten=False).source)
    after = Dot(pydotprint(f).source)
    # grad adds an augmented copy of the forward loop (saving the gates); scan_merge runs only that one
    assert sorted(before.cluster_labels.values()) == [
        "Scan{grad_of_lstm}: backward loop", "Scan{lstm}: forward loop", "Scan{lstm}: forward loop"]
    assert sorted(after.cluster_labels.values()) == ["Scan{grad_of_lstm}: backward loop", "Scan{lstm}: forward loop"]
    collapsed = Dot(pydotprint(f, rewritten=False, expand_scan=False).source)
    assert sum(a.get("shape") == "box3d" for a in collapsed.nodes.values()) == 3


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------
def test_lstm_train_function() -> None:
    f, p = lstm_train()
    dot = Dot(pydotprint(f).source)  # as compiled: the input projections are hoisted out of the loop
    assert len(dot.clusters) == 2
    x_t = dot.in_cluster("Dot(X, Wxi)[t]", "Scan{lstm}: forward loop")
    forward = dot.where[x_t][-1]
    inside = {n for n in dot.nodes if dot.where[n] == (forward,)}
    for state in ("h0[t-1]", "c0[t-1]"):
        (node,) = [n for n in dot.find(state) if n in inside]
        assert any(a.get("label") == "next step" for _, a in dot.into(node))
    # every peephole matrix reaches the step graph as a non-sequence
    for name in ("Wci", "Wcf", "Wco"):
        shared = dot.one(name, shape="cylinder", style="filled")
        assert dot.label(shared) == f"{name}\nshared float64 (4, 4)"
        targets = [h for t, h, a in dot.edges if t == shared and a.get("label") == "non-sequence"]
        assert any(h in inside for h in targets)
    assert sum(dot.label(n).split("\n")[0] == "Dot" for n in inside) == 7  # 4 of h(t-1), 3 peepholes
    assert sum(dot.label(n).split("\n")[0].startswith("Fused{sigmoid") for n in inside) == 3
    for gate in "ifco":
        assert dot.in_cluster(f"Dot(X, Wx{gate})[t]", "Scan{lstm}: forward loop")
    # one update per parameter, each fed by an edge marked "update"
    for name in list(p):
        u = dot.one(f"{name} := new value")
        assert [a["label"] for _, a in dot.into(u)] == ["update"]
    # the backward loop reads the saved forward values
    backward = next(c for c in dot.clusters if c != forward)
    assert "grad_of_lstm" in dot.cluster_labels[backward]
    assert any(dot.label(n).startswith("saved") for n in dot.nodes if dot.where[n] == (backward,))
    # weight gradients are summed as one product after the loop, not per step inside it
    assert not any(dot.label(n).startswith("sum ") for n in dot.nodes if dot.where[n] == (backward,))


def test_nested_scans_are_nested_clusters() -> None:
    X = T.matrix("X")
    w = theano.shared(np.ones(3), name="w")

    def outer_step(row, acc):
        inner, _ = theano.scan(lambda x, s: s + x * w, sequences=row, outputs_info=T.zeros_like(w), name="inner")
        return acc + inner[-1]

    out, _ = theano.scan(outer_step, sequences=X, outputs_info=T.zeros_like(w), name="outer")
    dot = Dot(pydotprint(out).source)
    assert len(dot.clusters) == 2
    (inner,) = [c for c, parents in dot.clusters.items() if parents]
    (outer,) = dot.clusters[inner]
    assert "Scan{inner}" in dot.cluster_labels[inner] and "Scan{outer}" in dot.cluster_labels[outer]
    row = [n for n in dot.find("X[t]") if dot.where[n] == (outer,)]
    elem = [n for n in dot.find("X[t][t]") if dot.where[n] == (outer, inner)]
    assert len(row) == 1 and len(elem) == 1
    assert [a["label"] for a in dot.edges_between(row[0], elem[0])] == ["sequence"]
    text = debugprint(theano.function([X], theano.grad(out[-1].sum(), w)), file="str")
    headings = [line for line in text.splitlines() if line.startswith("Inner graph of")]
    assert any("Scan{inner}" in h for h in headings) and any("Scan{grad_of_inner}" in h for h in headings)
    assert any("Scan{grad_of_outer}" in h for h in headings)


def test_variables_and_rewritten_variables() -> None:
    x = T.vector("x")
    y = (x * 1.0 + 0.0).sum()
    y.name = "total"
    dot = Dot(pydotprint(y).source)
    assert dot.label(dot.one("x", shape="ellipse")) == "input 0\nx\nfloat64 vector"
    assert dot.label(dot.one("output 0")) == "output 0\ntotal\nfloat64 scalar"
    assert any(dot.label(n).startswith("Reduce") and "'total'" in dot.label(n) for n in dot.nodes)
    assert len(Dot(pydotprint(y, rewritten=True).source).nodes) <= len(dot.nodes)
    with pytest.raises(TypeError, match="pydotprint takes"):
        pydotprint("x")


def test_labels_are_escaped() -> None:
    x = T.vector('a\\b "quoted" <x>')
    source = pydotprint(x * 2).source
    assert '"input 0\\na\\\\b \\"quoted\\" <x>\\nfloat64 vector"' in source
    assert "label=<" not in source  # never taken for an HTML label


# ---------------------------------------------------------------------------------------------
# formats and rendering
# ---------------------------------------------------------------------------------------------
def _require_dot() -> None:
    if shutil.which("dot") is None:
        message = "Graphviz's dot program is not installed (apt-get install graphviz)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must render for real")
        pytest.skip(message)


def test_dot_source_needs_no_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program anywhere
    x = T.matrix("x")
    picture = pydotprint(T.tanh(x), tmp_path / "graph.dot")
    assert (tmp_path / "graph.dot").read_text() == picture.source
    assert picture.source.startswith("digraph")
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        picture.save(tmp_path / "graph.svg")
    with pytest.raises(GraphvizNotFoundError, match="brew install graphviz"):
        pydotprint(T.tanh(x), tmp_path / "graph.png")
    bundle = picture._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and "digraph" in bundle["text/plain"]
    assert "apt-get install graphviz" in bundle["text/plain"]


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown picture format"):
        pydotprint(T.vector("x"), format="docx")
    with pytest.raises(ValueError, match="rankdir"):
        pydotprint(T.vector("x"), rankdir="up")


def test_render_svg_png_pdf(tmp_path: Path) -> None:
    _require_dot()
    f, _ = lstm_train()
    picture = pydotprint(f, tmp_path / "lstm.svg")
    assert isinstance(picture, GraphPicture)
    svg = (tmp_path / "lstm.svg").read_text()
    assert "<svg" in svg and "Scan{lstm}: forward loop" in svg and "Wci" in svg
    assert picture._repr_svg_().count("<svg") == 1
    bundle = picture._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and bundle["text/plain"].startswith("<GraphPicture")
    assert pydotprint(f, tmp_path / "lstm.png", expand_scan=False).render("png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "lstm.png").read_bytes()[:4] == b"\x89PNG"
    picture.save(tmp_path / "lstm.out", format="pdf")
    assert (tmp_path / "lstm.out").read_bytes()[:5] == b"%PDF-"


# ---------------------------------------------------------------------------------------------
# debugprint
# ---------------------------------------------------------------------------------------------
def test_debugprint_shows_step_graphs_of_both_loops(rnn: theano.Function) -> None:
    text = debugprint(rnn.fgraph_before_rewrites, file="str")
    headings = [line for line in text.splitlines() if line.startswith("Inner graph of")]
    assert len(headings) == 2
    assert any("grad_of_scan" in h for h in headings)
    assert "  step inputs: X[t], h0[t-1]" in text
    assert "  -> state 0:" in text and "  -> output 0:" in text and "  -> sum 0:" in text
