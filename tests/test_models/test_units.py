"""Recurrent units and layers: gradients of every parameter, masking, statefulness, the wrappers."""

from __future__ import annotations

import numpy as np
import pytest

import symflow as sf
import symflow.tensor as T
from models import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, RatedRNN, SimpleRNN, get_activation, unit_class
from symflow.graph import clone_replace
from symflow.testing import verify_grad

UNITS = [SimpleRNN, RatedRNN, GRU, LSTM]


def _jitter(layer, rng: np.random.Generator) -> None:
    """Make biases and initial states nonzero so their gradients are exercised."""
    for p in layer.params:
        p.set_value(p.get_value() + 0.2 * rng.standard_normal(p.get_value().shape))


def _check_grads(layer, x: np.ndarray, mask: np.ndarray | None = None) -> None:
    """verify_grad of ``layer.output`` with respect to the input and every parameter."""
    params = layer.params

    def fn(x_var, *param_vars):
        m = None if mask is None else T.constant(mask)
        return clone_replace([layer.output(x_var, m)], dict(zip(params, param_vars, strict=True)))[0]

    verify_grad(fn, [x] + [p.get_value() for p in params], rng=0)


@pytest.mark.parametrize("cls", UNITS)
def test_unit_gradients_one_sequence(cls, rng: np.random.Generator) -> None:
    unit = cls(3, 4, seed=1)
    _jitter(unit, rng)
    _check_grads(unit, rng.standard_normal((5, 3)))


@pytest.mark.parametrize("cls", UNITS)
def test_unit_gradients_masked_batch(cls, rng: np.random.Generator) -> None:
    unit = cls(2, 3, activation="sigmoid", seed=2)
    _jitter(unit, rng)
    mask = np.ones((4, 2))
    mask[2:, 1] = 0.0
    _check_grads(unit, rng.standard_normal((4, 2, 2)), mask)


def test_bidirectional_gradients(rng: np.random.Generator) -> None:
    layer = Bidirectional(GRU(2, 3, seed=0), LSTM(2, 2, seed=1))
    _jitter(layer, rng)
    assert len(layer.params) == len(GRU.param_names) + len(LSTM.param_names)
    _check_grads(layer, rng.standard_normal((4, 2)))


@pytest.mark.parametrize("cls", UNITS)
def test_masked_batch_matches_single_sequences(cls, rng: np.random.Generator) -> None:
    """Padding steps keep the state, so each batch column equals that sequence run alone."""
    unit = cls(3, 4, seed=3)
    _jitter(unit, rng)
    X, M = T.tensor3("X"), T.matrix("M")
    x = T.matrix("x")
    batch = sf.function([X, M], unit.output(X, M))
    single = sf.function([x], unit.output(x))
    seqs = [rng.standard_normal((n, 3)) for n in (5, 2, 4)]
    padded = np.zeros((5, 3, 3))
    mask = np.zeros((5, 3))
    for j, s in enumerate(seqs):
        padded[: len(s), j] = s
        mask[: len(s), j] = 1
    H = batch(padded, mask)
    for j, s in enumerate(seqs):
        h = single(s)
        np.testing.assert_allclose(H[: len(s), j], h, rtol=1e-12)
        np.testing.assert_allclose(H[len(s):, j], np.broadcast_to(h[-1], H[len(s):, j].shape), rtol=1e-12)


def test_h0_is_learned_and_used(rng: np.random.Generator) -> None:
    unit = SimpleRNN(2, 3, seed=0)
    x = T.matrix("x")
    f = sf.function([x], unit.output(x))
    before = f(np.zeros((1, 2)))
    unit.h0.set_value(np.ones(3))
    assert not np.allclose(before, f(np.zeros((1, 2))))
    assert unit.h0 in unit.params


def test_lstm_output_gate_sees_new_cell() -> None:
    """Only Wco reads c(t): with every other weight zero, changing Wco changes h even when c(t-1) = 0."""
    unit = LSTM(1, 2, seed=0)
    for p in unit.params:
        p.set_value(np.zeros_like(p.get_value()))
    unit.bi.set_value(np.full(2, 5.0))
    unit.bc.set_value(np.full(2, 1.0))
    x = T.matrix("x")
    f = sf.function([x], unit.output(x))
    h_plain = f(np.zeros((1, 1)))
    unit.Wco.set_value(np.eye(2) * 3.0)
    assert np.all(f(np.zeros((1, 1))) > h_plain)


@pytest.mark.parametrize("cls", UNITS)
def test_stateful_unit_continues_where_it_stopped(cls, rng: np.random.Generator) -> None:
    unit = cls(2, 3, stateful=True, seed=4)
    _jitter(unit, rng)
    x = T.matrix("x")
    H = unit.output(x)
    f = sf.function([x], H, updates=unit.state_updates)
    whole = cls.from_config(unit.get_config() | {"stateful": False})
    for name, p in whole.named_params().items():
        p.set_value(unit.named_params()[name].get_value())
    g = sf.function([x], whole.output(x))
    seq = rng.standard_normal((6, 2))
    np.testing.assert_allclose(np.concatenate([f(seq[:4]), f(seq[4:])]), g(seq), rtol=1e-12)
    unit.reset_states()
    np.testing.assert_allclose(f(seq[:4]), g(seq[:4]), rtol=1e-12)


def test_stateful_batch_size_change_needs_reset(rng: np.random.Generator) -> None:
    unit = GRU(2, 3, stateful=True, seed=0)
    X = T.tensor3("X")
    f = sf.function([X], unit.output(X), updates=unit.state_updates)
    unit.prepare_batch(2)
    f(rng.standard_normal((3, 2, 2)))
    with pytest.raises(ValueError, match="reset_states"):
        unit.prepare_batch(5)
    unit.reset_states()
    unit.prepare_batch(5)
    assert f(rng.standard_normal((3, 5, 2))).shape == (3, 5, 3)


def test_bidirectional_reads_both_ways(rng: np.random.Generator) -> None:
    fwd, bwd = SimpleRNN(2, 3, seed=0), SimpleRNN(2, 3, seed=1)
    layer = Bidirectional(fwd, bwd)
    x = T.matrix("x")
    H = sf.function([x], layer.output(x))
    run_f, run_b = sf.function([x], fwd.output(x)), sf.function([x], bwd.output(x))
    seq = rng.standard_normal((5, 2))
    out = H(seq)
    np.testing.assert_allclose(out[:, :3], run_f(seq), rtol=1e-12)
    np.testing.assert_allclose(out[:, 3:], run_b(seq[::-1])[::-1], rtol=1e-12)
    summary = sf.function([x], layer.last_step(layer.output(x)))(seq)
    np.testing.assert_allclose(summary, np.concatenate([run_f(seq)[-1], run_b(seq[::-1])[-1]]), rtol=1e-12)


def test_bidirectional_masked_summary_ignores_padding(rng: np.random.Generator) -> None:
    layer = Bidirectional(GRU(2, 3, seed=0))
    X, M, x = T.tensor3("X"), T.matrix("M"), T.matrix("x")
    batch = sf.function([X, M], layer.last_step(layer.output(X, M)))
    single = sf.function([x], layer.last_step(layer.output(x)))
    a, b = rng.standard_normal((4, 2)), rng.standard_normal((2, 2))
    padded = np.zeros((4, 2, 2))
    padded[:, 0], padded[:2, 1] = a, b
    mask = np.array([[1, 1], [1, 1], [1, 0], [1, 0]], dtype=float)
    out = batch(padded, mask)
    np.testing.assert_allclose(out[0], single(a), rtol=1e-12)
    np.testing.assert_allclose(out[1], single(b), rtol=1e-12)


def test_bidirectional_refuses_stateful_units() -> None:
    with pytest.raises(ValueError, match="stateful"):
        Bidirectional(GRU(2, 3, stateful=True))


def test_dropout_only_while_training(rng: np.random.Generator) -> None:
    layer = Dropout(0.5, seed=0)
    x = T.matrix("x")
    train = sf.function([x], layer.output(x, train=True))
    predict = sf.function([x], layer.output(x, train=False))
    ones = np.ones((200, 50))
    np.testing.assert_array_equal(predict(ones), ones)
    a, b = train(ones), train(ones)
    assert set(np.unique(a)) == {0.0, 2.0}
    assert not np.array_equal(a, b)  # a fresh mask every call
    assert abs(a.mean() - 1.0) < 0.05
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)


def test_embedding_and_dense() -> None:
    emb = Embedding(5, 3, seed=0)
    idx = T.imatrix("idx")
    out = sf.function([idx], emb.output(idx))(np.array([[0, 4], [2, 2]], dtype="int32"))
    We = emb.We.get_value()
    np.testing.assert_array_equal(out, We[[[0, 4], [2, 2]]])
    with pytest.raises(TypeError, match="integer"):
        emb.output(T.matrix("floats"))
    dense = Dense(3, 2, activation="softmax", seed=0)
    h = T.tensor3("h")
    probs = sf.function([h], dense.output(h))(np.ones((2, 4, 3)))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)


def test_activation_names_and_functions() -> None:
    assert get_activation("relu")[0] == "relu"
    assert get_activation(T.nnet.sigmoid)[0] == "sigmoid"
    assert get_activation(T.tanh)[0] == "tanh"
    name, fn = get_activation(lambda v: v * 2)
    assert name is None and callable(fn)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        SimpleRNN(2, 3, activation="swish")


def test_unit_names_and_bad_input() -> None:
    assert unit_class("GRU") is GRU and unit_class("lstm") is LSTM and unit_class("simple") is SimpleRNN
    assert unit_class(RatedRNN) is RatedRNN
    with pytest.raises(ValueError, match="unknown recurrent unit 'transformer'"):
        unit_class("transformer")
    with pytest.raises(ValueError, match=r"\(T, D\) sequence or a \(T, N, D\) batch"):
        GRU(2, 3).output(T.vector("v"))
    with pytest.raises(ValueError, match="n_out must be a positive int"):
        LSTM(2, 0)
    unit = GRU(2, 3)
    with pytest.raises(ValueError, match="one dimension less"):
        unit.output(T.tensor3("X"), T.tensor3("bad_mask"))


def test_unit_config_round_trip() -> None:
    unit = LSTM(3, 5, activation="relu", stateful=True, seed=0)
    copy = LSTM.from_config(unit.get_config(), seed=1)
    assert copy.get_config() == unit.get_config()
    assert [p.get_value().shape for p in copy.params] == [p.get_value().shape for p in unit.params]
