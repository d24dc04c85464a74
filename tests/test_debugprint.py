"""debugprint: indented trees of a variable, of a compiled function with its updates, and of a
scan with its inner graph."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from symflow.printing import debugprint


def test_variable() -> None:
    x = T.vector("x")
    W = sf.shared(np.ones(3), name="W")
    y = T.tanh(x * W).sum()
    text = debugprint(y, file="str")
    lines = text.splitlines()
    assert lines[0].startswith("Reduce{sum") and "[id A]" in lines[0] and lines[0].endswith("float64()")
    assert lines[1] == " |tanh [id B] float64(?)"
    assert lines[2] == " | |mul [id C] float64(?)"
    assert " | | |x [id D] float64(?)" in lines and " | | |W [shared] [id E] float64(?)" in lines
    no_types = debugprint(y, file="str", print_type=False)
    assert "float64" not in no_types and "tanh [id B]" in no_types
    shallow = debugprint(y, file="str", depth=2)
    assert "mul" in shallow and "|x" not in shallow


def test_repeated_nodes_print_once_and_names_show() -> None:
    x = T.vector("x")
    h = T.exp(x)
    h.name = "h"
    text = debugprint(h * h + h, file="str", print_type=False)
    assert text.count("exp 'h' [id") == 3  # referenced three times, by the same id
    assert text.count(" |x [id") == 1  # its inputs are printed under the first occurrence only


def test_list_of_variables_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    x = T.vector("x")
    text = debugprint([x.sum(), x.max()], file="str")
    assert "Reduce{sum" in text and "Reduce{max" in text
    buffer = io.StringIO()
    assert debugprint(x * 2, file=buffer) == buffer.getvalue()
    for path in (tmp_path / "graph.txt", str(tmp_path / "graph2.txt")):  # a path is written
        assert debugprint(x * 2, file=path) == Path(path).read_text()
    debugprint(x * 2)
    assert "mul" in capsys.readouterr().out
    assert sf.printing.pp is debugprint
    with pytest.raises(TypeError, match="debugprint takes"):
        debugprint(3)


def test_locations() -> None:
    x = T.vector("x")
    y = x * 2  # printed location
    line = next(n for n, t in enumerate(open(__file__), 1) if "y = x * 2  # printed location" in t)
    text = debugprint(y, file="str", print_location=True)
    assert f"<test_debugprint.py:{line}>" in text


def test_function_with_updates(mode: str) -> None:
    x = T.vector("x")
    W = sf.shared(np.ones(3), name="W")
    cost = T.tanh(x * W).sum()
    updates = [(W, W - 0.1 * sf.grad(cost, W))]
    plain = debugprint(sf.function([x], cost, updates=updates, mode=mode, rewrite=False), file="str",
                       print_type=False)
    assert plain.startswith("output 0:\nReduce{sum")
    body = plain.split("update of W:\n")[1]
    assert body.startswith("sub [id")
    assert "W [shared]" in body and "tanh [id B]" in body  # the update reuses the output's tanh
    rewritten = debugprint(sf.function([x], cost, updates=updates, mode=mode), file="str")
    assert rewritten.startswith("output 0:\n") and "\nupdate of W:\n" in rewritten
    assert rewritten.count("W [shared]") >= 2


def test_scan_shows_its_inner_graph(mode: str) -> None:
    x = T.vector("x")
    w = sf.shared(0.5, name="w")
    h, _ = sf.scan(lambda x_t, h_prev: T.tanh(x_t * w + h_prev), sequences=x, outputs_info=T.constant(0.0),
                   name="rnn")
    text = debugprint(h, file="str", print_type=False)
    assert text.splitlines()[0] == "Scan{rnn} [id A]"
    assert "\nInner graph of Scan{rnn} [id A]:\n" in text
    inner = text.split("Inner graph of Scan{rnn} [id A]:\n")[1]
    assert inner.splitlines()[0] == "  step inputs: x[t], state0[t-1], w"
    assert "  -> state" in inner and "tanh" in inner and "x[t]" in inner
    f = sf.function([x], [h, sf.grad(h.sum(), w)], mode=mode)
    compiled = debugprint(f, file="str", print_type=False)
    assert compiled.count("Inner graph of ") >= 2  # the forward loop and the loop of its gradient
    assert "grad_of_rnn" in compiled
