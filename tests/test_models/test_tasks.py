"""Task models: training, prediction with padded batches, the language model's extras, save and load."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import symflow as sf
from models import (
    GRU,
    LSTM,
    Dropout,
    Embedding,
    LanguageModel,
    ModelFileError,
    SequenceClassifier,
    SequenceTagger,
    SimpleRNN,
    Vocabulary,
    load_model,
)
from models.data import pad_batch
from models.io import FORMAT, save_model_file


def parity(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(2**n_bits)[:, None]
    X = ((codes >> np.arange(n_bits)) & 1).astype(float)
    return X[:, :, None], (np.cumsum(X, axis=1) % 2).astype(int)


def toy_sentences(rng: np.random.Generator, n: int = 40) -> list[list[int]]:
    """Sentences over tokens 2..7 that follow a fixed cycle, so the next token is predictable."""
    out = []
    for _ in range(n):
        start = int(rng.integers(2, 8))
        out.append([2 + (start - 2 + k) % 6 for k in range(int(rng.integers(2, 6)))])
    return out


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary(["king", "queen", "man", "woman", "apple", "pear"])


# -- training ----------------------------------------------------------------------------------------
def test_tagger_learns_parity() -> None:
    X, Y = parity(6)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=16, unit="simple", activation="tanh", seed=0)
    history = model.fit(X, Y, epochs=60, learning_rate=0.1, mu=0.9, batch_size=8, seed=0, progress=False,
                        stop_at_accuracy=1.0)
    assert history.accuracy[-1] == 1.0
    assert model.evaluate(X, Y)["accuracy"] == 1.0
    assert history.cost[-1] < history.cost[0]


def test_one_sequence_per_step_as_the_book() -> None:
    X, Y = parity(4)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=4, unit="simple", activation="sigmoid", seed=1)
    history = model.fit(X, Y, epochs=3, learning_rate=0.01, mu=0.99, progress=False, seed=0)
    assert len(history) == 3 and all(np.isfinite(history.cost))
    assert list(model._functions) == [("train", False, "momentum", 0.99, None, -1)]  # no mask when batch_size=1


@pytest.mark.parametrize("unit", ["simple", "rated", "gru", "lstm"])
def test_classifier_with_padded_batches_learns_and_predicts_like_one_by_one(unit: str) -> None:
    """Label 1 when the sequence holds token 3; lengths differ, so batches are padded and masked."""
    rng = np.random.default_rng(0)
    X = [list(rng.integers(0, 3, size=int(rng.integers(1, 6)))) for _ in range(60)]
    for x in X[::2]:
        x[int(rng.integers(len(x)))] = 3
    Y = np.array([int(3 in x) for x in X])
    model = SequenceClassifier(n_in=4, n_classes=2, hidden=8, unit=unit, vocab_size=4, seed=0)
    model.fit(X, Y, epochs=25, learning_rate=0.02, optimizer="adam", batch_size=10, progress=False, seed=0)
    batched = model.predict_proba(X, batch_size=7)
    one_by_one = np.concatenate([model.predict_proba([x]) for x in X])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-9, atol=1e-12)
    assert model.evaluate(X, Y)["accuracy"] > 0.9


def test_fit_options_decay_clip_truncate_validation() -> None:
    X, Y = parity(4)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=3, unit="gru", seed=0)
    h = model.fit(X, Y, epochs=3, learning_rate=0.5, lr_decay=0.5, clip_norm=1.0, bptt_truncate=2,
                  optimizer="nesterov", batch_size=4, validation_data=(X[:5], Y[:5]), progress=False)
    assert h.learning_rate == [0.5, 0.25, 0.125]
    assert len(h.val_cost) == len(h.val_accuracy) == 3 and len(h.seconds) == 3
    assert "val_accuracy" in h.summary()
    for optimizer in ("sgd", "rmsprop", "adam"):
        model.fit(X, Y, epochs=1, optimizer=optimizer, learning_rate=0.01, batch_size=8, progress=False)
    assert len(model.history) == 6


def test_progress_bar_shows_cost_and_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    X, Y = parity(3)
    SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0).fit(X, Y, epochs=1, batch_size=4)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "cost" in err and "accuracy" in err


def test_bad_training_input_gets_clear_errors() -> None:
    X, Y = parity(3)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    with pytest.raises(ValueError, match=r"expected an array of shape \(T, 1\)"):
        model.fit(np.ones((4, 3, 2)), Y[:4], progress=False)
    with pytest.raises(ValueError, match="one label per step"):
        model.fit(X, Y[:, :2], progress=False)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        model.fit(X, Y + 1, progress=False)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        model.fit(X, Y, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="bptt_truncate"):
        model.fit(X, Y, bptt_truncate=0, progress=False)
    model.out.bo.set_value(np.array([np.inf, -np.inf]))  # as after an exploding update
    with pytest.raises(FloatingPointError, match="diverged in epoch 1"):
        model.fit(X, Y, progress=False)
    clf = SequenceClassifier(n_in=3, n_classes=2, hidden=2, vocab_size=5, seed=0)
    with pytest.raises(ValueError, match=r"token indices must be in \[0, 5\)"):
        clf.fit([[1, 7]], [0], progress=False)
    with pytest.raises(ValueError, match=r"one label per sequence, shape \(1,\)"):
        clf.fit([[1, 2]], [0, 1], progress=False)
    with pytest.raises(ValueError, match="unknown recurrent unit"):
        SequenceTagger(n_in=1, n_classes=2, unit="tcn")
    with pytest.raises(ValueError, match="takes inputs of size 4"):
        SequenceTagger(n_classes=2, layers=[GRU(3, 5), LSTM(4, 2)])
    with pytest.raises(ValueError, match="no recurrent unit"):
        SequenceTagger(n_classes=2, layers=[Embedding(5, 3)])


@pytest.mark.parametrize(("sequence", "message"), [
    (np.array([[0.0], [np.nan]]), r"sequence 1: expected finite numbers, got nan at step 1, feature 0"),
    (np.array([[np.inf], [0.0]]), r"sequence 1: expected finite numbers, got inf at step 0, feature 0"),
    (np.array([[1e300], [0.0]]) if sf.config.floatX == "float32" else np.array([[-np.inf], [0.0]]),
     r"sequence 1: expected finite numbers, got (1e\+300|-inf) at step 0"),
    (np.ones((2, 1)) + 1j, r"sequence 1: expected real numbers, got dtype complex128"),
    (np.array([[None], [1]]), r"sequence 1: expected finite numbers, got None at step 0"),
    (np.array([["a"], ["b"]]), r"sequence 1: expected real numbers, got dtype <U1"),
])
def test_non_finite_or_non_real_input_is_refused_before_training(sequence: np.ndarray, message: str) -> None:
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    before = [p.get_value() for p in model.params]
    with pytest.raises(ValueError, match=message):
        model.fit([np.zeros((2, 1)), sequence], [[0, 1], [1, 0]], progress=False)
    with pytest.raises(ValueError, match=message):
        model.predict_proba([np.zeros((2, 1)), sequence])
    for p, value in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p.get_value(), value)


@pytest.mark.parametrize(("options", "message"), [
    ({"learning_rate": math.nan}, r"learning_rate must be a real number in \(0.0, inf\), got nan"),
    ({"learning_rate": math.inf}, r"learning_rate must be a real number in \(0.0, inf\), got inf"),
    ({"learning_rate": 0}, r"learning_rate must be a real number in \(0.0, inf\), got 0"),
    ({"mu": math.nan}, r"mu must be a real number in \[0.0, 1.0\), got nan"),
    ({"mu": 1.5}, r"mu must be a real number in \[0.0, 1.0\), got 1.5"),
    ({"lr_decay": math.nan}, r"lr_decay must be a real number in \(0.0, inf\), got nan"),
    ({"lr_decay": math.inf}, r"lr_decay must be a real number in \(0.0, inf\), got inf"),
    ({"clip_norm": math.nan}, r"clip_norm must be a real number in \(0.0, inf\), got nan"),
    ({"epochs": 1.0}, "epochs must be a non-negative int, got 1.0"),
    ({"batch_size": True}, "batch_size must be a positive int, got True"),
    ({"stop_at_accuracy": "0.9"}, r"stop_at_accuracy must be a real number in \[0.0, 1.0\], got '0.9'"),
    ({"stop_at_accuracy": np.array([0.5, 0.6])}, "stop_at_accuracy must be a real number"),
])
def test_bad_hyperparameters_are_refused_before_training(options: dict, message: str) -> None:
    X, Y = parity(3)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    before = [p.get_value() for p in model.params]
    with pytest.raises(ValueError, match=message):
        model.fit(X, Y, progress=False, **options)
    for p, value in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p.get_value(), value)
    assert len(model.history) == 0


def test_a_learning_rate_that_rounds_to_zero_in_float32_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """1e-46 is positive but 0 in float32: a float32 model would have trained without changing."""
    monkeypatch.setattr(sf.config, "floatX", "float32")
    X, Y = parity(3)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    with pytest.raises(ValueError, match="learning_rate 1e-46 rounds to 0 in float32, the model's floatX"):
        model.fit(X, Y, learning_rate=1e-46, progress=False)
    assert len(model.history) == 0
    model.fit(X, Y, learning_rate=1e-40, epochs=1, progress=False)  # a float32 subnormal is not 0


def test_numpy_integers_are_accepted_as_counts() -> None:
    X, Y = parity(3)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    history = model.fit(X, Y, epochs=np.int64(2), batch_size=np.int32(4), progress=False)
    assert len(history) == 2


def test_a_diverging_epoch_is_undone_with_its_optimizer_state() -> None:
    """Training that diverges restores the parameters and momentum velocities of before the failing
    epoch and keeps the epochs completed before it."""
    X, Y = parity(3)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=3, activation="relu", seed=0)
    twin = pickle.loads(pickle.dumps(model))
    options = {"batch_size": 4, "shuffle": False, "progress": False, "learning_rate": 0.1}
    with pytest.raises(FloatingPointError, match="diverged in epoch 2 .*restored to their values before that epoch"):
        model.fit(X, Y, epochs=3, lr_decay=1e300, **options)  # epoch 2 steps with a rate of 1e299
    assert len(model.history) == 1
    twin.fit(X, Y, epochs=1, **options)
    for a, b in zip(model.params, twin.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())
    for m in (model, twin):  # equal only if the velocities were restored too
        m.fit(X, Y, epochs=1, **options)
    for a, b in zip(model.params, twin.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())


def test_malformed_arguments_of_the_other_methods_are_named(vocab: Vocabulary) -> None:
    """batch_size of predict and evaluate (-1 returned no predictions), ragged sequences and label
    lists, a prefix of floats or bools (truncated to token ids), nearest's vector and n."""
    tagger = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    classifier = SequenceClassifier(n_in=2, n_classes=2, hidden=2, vocab_size=5, seed=0)
    lm = LanguageModel(vocab, embed_dim=2, hidden=2, seed=0)
    X, Y = [np.zeros((2, 1))] * 2, [[0, 1]] * 2
    for call in (lambda b: tagger.predict(X, batch_size=b), lambda b: tagger.predict_proba(X, batch_size=b),
                 lambda b: classifier.predict([[1, 2]], batch_size=b), lambda b: tagger.evaluate(X, Y, batch_size=b),
                 lambda b: lm.perplexity([[2, 3]], batch_size=b)):
        for bad in (-1, 0, 1.5):
            with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {bad}"):
                call(bad)
    cases = [
        (lambda: tagger.predict([[[0.0], [1.0, 2.0]]]), "sequence 0: cannot make an array of list"),
        (lambda: classifier.predict([[1, 2], [1, [2]]]), "sequence 1: cannot make an array of list"),
        (lambda: lm.perplexity([[2, 3], [2, [3]]]), "sentence 1: cannot make an array of list"),
        (lambda: tagger.fit(X, 5, progress=False), "expected a list of label sequences, one per input .* got int"),
        (lambda: tagger.fit(X, [[0, 1], [0, [1]]], progress=False), "label sequence 1: cannot make an array"),
        (lambda: lm.generate(1, prefix=[2.7]), r"prefix: expected text or a 1-d list of integer token indices, got an "
                                               r"array of shape \(1,\) and dtype float64"),
        (lambda: lm.generate(1, prefix=[True]), "prefix: .* dtype bool"),
        (lambda: lm.nearest(np.ones(7)), r"nearest's vector must be a real vector of length 2 \(an embedding\), got "
                                         r"an array of shape \(7,\)"),
        (lambda: lm.nearest(np.ones(2), n=-1), "n must be a positive int, got -1"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_batches_with_and_without_padding_share_the_optimizer_state(optimizer: str, tmp_path: Path) -> None:
    """One velocity (or Adam moment) per parameter, whether or not a batch needed padding: with
    batches of equal and of unequal lengths alternating, momentum had no effect at all. The model
    trains as a twin whose every batch is padded (a mask of ones where nothing is padded)."""
    X = [np.ones((2, 1)), np.zeros((2, 1)), np.ones((3, 1)), np.zeros((1, 1))] * 2
    Y = [np.arange(len(x)) % 2 for x in X]
    model = SequenceTagger(n_in=1, n_classes=2, hidden=3, seed=0)
    twin = pickle.loads(pickle.dumps(model))
    model.fit(X, Y, epochs=2, batch_size=2, shuffle=False, progress=False, learning_rate=0.5, mu=0.9,
              optimizer=optimizer)
    assert len(model._optimizer_state) == 1
    train = twin._train_function(True, optimizer, 0.9, None, -1)
    twin._lr.set_value(np.array(0.5, dtype=twin._lr.dtype))
    for _ in range(2):
        for start in range(0, len(X), 2):
            xs, ys = X[start:start + 2], Y[start:start + 2]
            (inputs, mask), labels = pad_batch(xs, "float64"), pad_batch(ys, "int32")[0]
            twin._run(train, [inputs, mask, labels])
    for a, b in zip(model.params, twin.params, strict=True):
        np.testing.assert_allclose(a.get_value(), b.get_value(), rtol=1e-12, atol=1e-15)
    again = load_model(model.save(tmp_path / "m.npz"))
    assert list(again._loaded_optimizer_state) == list(model._optimizer_state)


def test_an_undone_epoch_rewinds_the_dropout_masks_too() -> None:
    """After a diverged epoch is undone, a model with dropout trains on as one that never tried it:
    the dropout layer's random stream goes back with the parameters (it kept the failed draws)."""
    X, Y = [[1, 2, 3], [4, 5], [1, 1, 2, 3]], [0, 1, 1]
    model = SequenceClassifier(n_in=3, n_classes=2, hidden=4, vocab_size=6, dropout=0.5, seed=0)
    options = {"epochs": 1, "batch_size": 1, "shuffle": False, "progress": False}
    model.fit(X, Y, learning_rate=0.1, **options)  # the stream exists before the failing epoch ...
    twin = pickle.loads(pickle.dumps(model))
    with pytest.raises(FloatingPointError):
        model.fit(X, Y, learning_rate=1e300, **options)
    fresh = SequenceClassifier(n_in=3, n_classes=2, hidden=4, vocab_size=6, dropout=0.5, seed=0)
    fresh_twin = pickle.loads(pickle.dumps(fresh))
    with pytest.raises(FloatingPointError):
        fresh.fit(X, Y, learning_rate=1e300, **options)  # ... or is made by it
    for a, b in ((model, twin), (fresh, fresh_twin)):
        for m in (a, b):
            m.fit(X, Y, learning_rate=0.1, **options)
        for p, q in zip(a.params, b.params, strict=True):
            np.testing.assert_array_equal(p.get_value(), q.get_value())


def test_generate_refuses_a_non_finite_temperature(vocab: Vocabulary) -> None:
    model = LanguageModel(vocab, embed_dim=2, hidden=2, seed=0)
    for bad in (math.nan, math.inf, 0.0):
        with pytest.raises(ValueError, match=f"temperature must be a real number in .*got {bad}"):
            model.generate(1, temperature=bad)


def test_stateful_tagger_continues_across_calls() -> None:
    rng = np.random.default_rng(0)
    stateful = SequenceTagger(n_in=2, n_classes=3, hidden=4, unit="lstm", stateful=True, seed=0)
    plain = SequenceTagger(n_in=2, n_classes=3, hidden=4, unit="lstm", seed=0)
    seq = rng.standard_normal((8, 2))
    whole = plain.predict_proba([seq])[0]
    halves = np.concatenate([stateful.predict_proba([seq[:5]])[0], stateful.predict_proba([seq[5:]])[0]])
    np.testing.assert_allclose(halves, whole, rtol=1e-10)
    stateful.reset_states()
    np.testing.assert_allclose(stateful.predict_proba([seq[:5]])[0], whole[:5], rtol=1e-10)
    with pytest.raises(ValueError, match="shuffle=False"):
        stateful.fit([seq], [np.zeros(8, dtype=int)], progress=False)
    stateful.fit([seq[:4], seq[4:]], [np.zeros(4, dtype=int)] * 2, shuffle=False, epochs=2, progress=False)


def test_stateful_models_refuse_batches_that_change_size_before_training() -> None:
    """A last batch of another size, or validation data, would meet a carried state of another
    size after an epoch had trained (the parameters changed by a failing call); predicting more
    sequences than a batch of 64 failed on the second batch."""
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, unit="gru", stateful=True, seed=0)
    X, Y = [np.zeros((3, 1))] * 5, [np.zeros(3, dtype=int)] * 5
    before = [p.get_value() for p in model.params]
    with pytest.raises(ValueError, match="number of sequences must be a multiple of batch_size; got 5"):
        model.fit(X, Y, batch_size=2, shuffle=False, progress=False)
    with pytest.raises(ValueError, match="validation_data would run through the state carried"):
        model.fit(X, Y, batch_size=5, shuffle=False, validation_data=(X[:2], Y[:2]), progress=False)
    for p, value in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p.get_value(), value)
    assert len(model.history) == 0
    assert len(model.predict_proba([np.zeros((2, 1))] * 70)) == 70  # one batch of 70, not 64 and 6


def test_loads_of_a_model_with_dropout_train_alike(tmp_path: Path) -> None:
    """The dropout layer's seed is saved: two loads of a file draw the same masks (they drew masks
    from fresh random seeds, so the same file trained on two ways)."""
    model = SequenceClassifier(n_in=3, n_classes=2, hidden=4, vocab_size=6, dropout=0.5, seed=0)
    X, Y = [[1, 2, 3], [4, 5], [1, 1]], [0, 1, 1]
    model.fit(X, Y, epochs=1, batch_size=2, shuffle=False, progress=False)
    path = model.save(tmp_path / "m.npz")
    first, second = load_model(path), load_model(path)
    for m in (first, second):
        m.fit(X, Y, epochs=2, batch_size=2, shuffle=False, progress=False)
    for a, b in zip(first.params, second.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())
    dropout = next(layer for layer in first.layers if isinstance(layer, Dropout))
    assert dropout.get_config()["stream_seed"] == next(layer for layer in model.layers
                                                       if isinstance(layer, Dropout)).srng.initial_seed
    with pytest.raises(ValueError, match="stream_seed must be an int, got 'x'"):
        Dropout(0.5, stream_seed="x")
    assert Dropout(0.5, stream_seed=7).srng.initial_seed == 7 and sf.RandomStreams(None).initial_seed >= 0


def test_dropout_is_off_at_prediction_time() -> None:
    model = SequenceClassifier(n_in=3, n_classes=2, hidden=4, vocab_size=6, dropout=0.5, seed=0)
    assert any(isinstance(layer, Dropout) for layer in model.layers)
    X = [[1, 2, 3], [4, 5]]
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))
    model.fit(X, [0, 1], epochs=2, batch_size=2, progress=False)


# -- the language model ------------------------------------------------------------------------------
def test_language_model_learns_a_cycle_and_generates(vocab: Vocabulary) -> None:
    rng = np.random.default_rng(0)
    sentences = toy_sentences(rng)
    model = LanguageModel(vocab, embed_dim=6, hidden=[10], unit="gru", seed=0)
    before = model.perplexity(sentences)
    assert before == pytest.approx(len(vocab), rel=0.2)  # untrained: about uniform
    model.fit(sentences, epochs=30, optimizer="adam", learning_rate=0.03, batch_size=8, progress=False, seed=0)
    assert model.perplexity(sentences) < before / 2
    lines = model.generate(5, temperature=0.5, max_length=6, seed=1)
    assert len(lines) == 5 and all(isinstance(line, str) and len(line.split()) <= 6 for line in lines)
    assert lines == model.generate(5, temperature=0.5, max_length=6, seed=1)
    assert all(line.startswith("king") for line in model.generate(3, prefix="king", max_length=3, seed=0))
    ids = LanguageModel(len(vocab), embed_dim=4, hidden=4).generate(2, max_length=3, seed=0)
    assert all(isinstance(line, list) and len(line) <= 3 for line in ids)
    with pytest.raises(ValueError, match=r"temperature must be a real number in \(0.0, inf\), got 0"):
        model.generate(temperature=0)


def test_language_model_inputs_and_targets(vocab: Vocabulary) -> None:
    model = LanguageModel(vocab, embed_dim=3, hidden=3, seed=0)
    xs, ys = model._pairs([[4, 5, 6]])
    np.testing.assert_array_equal(xs[0], [Vocabulary.START, 4, 5, 6])
    np.testing.assert_array_equal(ys[0], [4, 5, 6, Vocabulary.END])
    stats = model.evaluate([[4, 5, 6]])
    assert stats["perplexity"] == pytest.approx(math.exp(stats["cost"]))
    with pytest.raises(ValueError, match="do not pass targets"):
        model.fit([[4, 5]], [[5, 1]])
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        LanguageModel(vocab, layers=[Embedding(len(vocab), 3), *SequenceTagger(
            n_in=3, n_classes=2, hidden=2, bidirectional=True).layers])


def test_language_model_token_ids_of_any_integer_dtype_and_no_other(vocab: Vocabulary) -> None:
    options = {"epochs": 1, "shuffle": False, "progress": False}
    plain = LanguageModel(vocab, embed_dim=3, hidden=3, seed=0)
    plain.fit([[4, 5, 6], []], **options)
    unsigned = LanguageModel(vocab, embed_dim=3, hidden=3, seed=0)
    unsigned.fit([np.array([4, 5, 6], dtype=np.uint64), np.array([], dtype=np.uint8)], **options)
    for a, b in zip(plain.params, unsigned.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())
    before = [p.get_value() for p in plain.params]
    with pytest.raises(ValueError, match=r"sentence 1: expected a 1-d list of integer token indices, got an array of "
                                         r"shape \(2,\) and dtype bool"):
        plain.fit([[4, 5], [True, False]], **options)
    with pytest.raises(ValueError, match=r"sentence 0: .*dtype float64"):
        plain.perplexity([[4.0, 5.0]])
    with pytest.raises(ValueError, match=r"sentence 0: token indices must be in \[0, 9\), got 4..9"):
        plain.fit([np.array([4, 9], dtype=np.uint64)], **options)
    for p, value in zip(plain.params, before, strict=True):
        np.testing.assert_array_equal(p.get_value(), value)


def test_language_model_predicts_from_start_as_perplexity_does(vocab: Vocabulary) -> None:
    """predict_proba takes sentences as fit and perplexity do and adds START: one distribution per
    position, the last one over what follows the whole sentence."""
    model = LanguageModel(vocab, embed_dim=3, hidden=3, seed=0)
    sentence = [4, 7, 2, 5]
    (p,) = model.predict_proba([sentence])
    assert p.shape == (len(sentence) + 1, len(vocab))
    targets = [*sentence, Vocabulary.END]
    nll = -np.mean(np.log(p[np.arange(len(targets)), targets]))
    assert math.exp(nll) == pytest.approx(model.perplexity([sentence]), rel=1e-9)
    np.testing.assert_array_equal(model.predict([sentence])[0], p.argmax(axis=1))
    (first,) = model.predict_proba([[]])
    np.testing.assert_allclose(first[0], p[0], rtol=1e-12)  # after START alone: the first token's distribution


def test_analogy_by_euclidean_and_cosine_distance(vocab: Vocabulary) -> None:
    model = LanguageModel(vocab, embed_dim=3, hidden=3, seed=0)
    We = np.zeros((len(vocab), 3))
    vectors = {"king": [1, 1, 0], "queen": [1, 0, 1], "man": [0, 1, 0], "woman": [0, 0, 1],
               "apple": [-1, 0, 0], "pear": [0, -1, -1]}
    for word, v in vectors.items():
        We[vocab.index(word)] = v
    model.layers[0].We.set_value(We)
    assert model.analogy("king", "man", "woman") == {"euclidean": "queen", "cosine": "queen"}
    nearest = model.nearest(np.array([1.0, 1.0, 0.0]), "cosine", n=2)
    assert nearest[0] == (vocab.index("king"), pytest.approx(0.0))
    with pytest.raises(KeyError, match="'emperor' is not in the vocabulary"):
        model.analogy("emperor", "man", "woman")
    with pytest.raises(ValueError, match="unknown metric"):
        model.nearest(We[2], "manhattan")


# -- save and load -----------------------------------------------------------------------------------
def _models(vocab: Vocabulary) -> list:
    return [
        SequenceTagger(n_in=2, n_classes=3, hidden=[4, 3], unit="rated", activation="relu", seed=0),
        SequenceTagger(n_in=2, n_classes=2, hidden=3, unit="simple", activation="sigmoid", stateful=True, seed=1),
        SequenceClassifier(n_in=3, n_classes=2, hidden=4, unit="lstm", vocab_size=len(vocab), dropout=0.3,
                           bidirectional=True, seed=2),
        LanguageModel(vocab, embed_dim=4, hidden=[5, 4], unit="gru", seed=3),
    ]


def _inputs(model, rng: np.random.Generator) -> list:
    if model.token_input:
        return [list(rng.integers(2, 8, size=n)) for n in (3, 1, 5)]
    return [rng.standard_normal((n, model.n_in)) for n in (3, 1, 5)]


@pytest.mark.parametrize("index", range(4))
def test_save_load_round_trip_predicts_identically(index: int, tmp_path: Path, vocab: Vocabulary) -> None:
    rng = np.random.default_rng(index)
    model = _models(vocab)[index]
    for p in model.params:  # move away from the initial values so a fresh model cannot pass by chance
        p.set_value(p.get_value() + 0.1 * rng.standard_normal(p.get_value().shape))
    X = _inputs(model, rng)
    if isinstance(model, LanguageModel):
        model.fit(X, epochs=1, batch_size=2, progress=False)
    path = model.save(tmp_path / "model.npz")
    loaded = type(model).load(path)
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    for a, b in zip(model.params, loaded.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())
    model.reset_states()
    expected, got = model.predict_proba(X), loaded.predict_proba(X)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    if isinstance(model, LanguageModel):
        assert loaded.vocab.idx2word == vocab.idx2word
        assert loaded.generate(3, seed=5) == model.generate(3, seed=5)
    assert type(load_model(path)) is type(model)


@pytest.mark.parametrize("index", range(4))
def test_a_pickled_model_predicts_and_trains_on_as_the_original(index: int, vocab: Vocabulary) -> None:
    """A model pickles with its compiled functions; the loaded copy predicts as the original and
    trains its own parameters."""
    rng = np.random.default_rng(index)
    model = _models(vocab)[index]
    X = _inputs(model, rng)
    if isinstance(model, LanguageModel):  # its targets are its inputs, shifted
        Y = None
    elif isinstance(model, SequenceTagger):  # a label per step
        Y = [rng.integers(0, model.n_classes, size=len(x)) for x in X]
    else:  # a label per sequence
        Y = rng.integers(0, model.n_classes, size=len(X))
    model.fit(X, Y, epochs=1, shuffle=False, progress=False)
    loaded = pickle.loads(pickle.dumps(model))
    model.reset_states()
    loaded.reset_states()
    for a, b in zip(model.predict_proba(X), loaded.predict_proba(X), strict=True):
        np.testing.assert_array_equal(a, b)
    before = [p.get_value() for p in model.params]
    loaded.fit(X, Y, epochs=1, shuffle=False, progress=False)
    for p, value in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p.get_value(), value)
    assert any(not np.array_equal(p.get_value(), value) for p, value in zip(loaded.params, before, strict=True))


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "rmsprop", "adam"])
def test_a_loaded_model_trains_on_as_the_original(optimizer: str, tmp_path: Path) -> None:
    """save keeps the optimizer state (velocities, moments), so training continues as without the
    round trip, also after an epoch that diverged and was undone."""
    X, Y = parity(3)
    options = {"batch_size": 4, "shuffle": False, "progress": False, "optimizer": optimizer, "learning_rate": 0.05}
    model = SequenceTagger(n_in=1, n_classes=2, hidden=3, activation="relu", seed=0)
    model.fit(X, Y, epochs=2, **options)
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as z:
        assert int(z["__version__"]) == 2
    loaded = load_model(path)
    with pytest.raises(FloatingPointError, match="diverged"):
        loaded.fit(X, Y, epochs=1, **{**options, "learning_rate": 1e300})
    for m in (model, loaded):
        m.fit(X, Y, epochs=1, **options)
    for a, b in zip(model.params, loaded.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())


def test_files_without_optimizer_state_load_and_restart_it(tmp_path: Path) -> None:
    X, Y = parity(3)
    options = {"batch_size": 4, "shuffle": False, "progress": False}
    untrained = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    with np.load(untrained.save(tmp_path / "fresh.npz")) as z:
        assert int(z["__version__"]) == 1  # nothing a version-1 reader lacks
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    model.fit(X, Y, epochs=1, **options)
    path = model.save(tmp_path / "m.npz")

    def as_version_1(arrays: dict) -> None:  # what the code before format version 2 wrote
        config = json.loads(str(arrays["__config__"]))
        del config["optimizer_state"]
        arrays.update(__version__=np.array(1), __config__=np.array(json.dumps(config)))
        for key in [k for k in arrays if k.startswith("optimizer.")]:
            del arrays[key]

    old = load_model(_rewrite(path, tmp_path / "v1.npz", as_version_1))
    fresh = pickle.loads(pickle.dumps(model))
    for p in fresh._optimizer_state[next(iter(fresh._optimizer_state))]:  # what old files restart from
        p.set_value(np.zeros_like(p.get_value()))
    for m in (old, fresh):
        m.fit(X, Y, epochs=1, **options)
    for a, b in zip(old.params, fresh.params, strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())

    def wrong_shape(arrays: dict) -> None:
        arrays["optimizer.0.0"] = np.zeros((7, 7))

    with pytest.raises(ModelFileError, match=r"optimizer state 0 \(momentum\) holds arrays of shapes \[\(7, 7\)"):
        load_model(_rewrite(path, tmp_path / "bad.npz", wrong_shape))

    def unknown_optimizer(arrays: dict) -> None:
        config = json.loads(str(arrays["__config__"]))
        config["optimizer_state"][0]["key"][1] = "lbfgs"
        arrays["__config__"] = np.array(json.dumps(config))

    with pytest.raises(ModelFileError, match="damaged optimizer state 0 .*unknown optimizer 'lbfgs'"):
        load_model(_rewrite(path, tmp_path / "bad.npz", unknown_optimizer))


def test_saving_replaces_atomically_and_never_corrupts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    path = model.save(tmp_path / "m.npz")
    original = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        SequenceTagger(n_in=1, n_classes=2, hidden=3, seed=1).save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    monkeypatch.undo()
    custom = SequenceTagger(n_in=1, n_classes=2, hidden=2, activation=lambda v: v * 0.5, seed=0)
    with pytest.raises(ValueError, match="custom activation"):
        custom.save(path)
    assert path.read_bytes() == original
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "no" / "such" / "dir.npz")
    diverged = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    diverged.layers[0].Wh.set_value(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match=r"0.Wh holds 4 NaN or infinite value\(s\) of 4.*diverged\?\); nothing was "
                                         "written"):
        diverged.save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.npz"]


def test_loading_files_of_the_wrong_kind(tmp_path: Path, vocab: Vocabulary) -> None:
    tagger = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    good = tagger.save(tmp_path / "tagger.npz")
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        SequenceTagger.load(truncated)

    flipped = bytearray(data)
    flipped[200] ^= 0xFF  # inside the first array's bytes: the zip checksum catches it
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        SequenceTagger.load(corrupt)

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="is empty"):
        load_model(empty)
    npy = tmp_path / "weights.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ModelFileError, match=r"single NumPy array \(.npy\)"):
        load_model(npy)
    plain = tmp_path / "book.npz"
    np.savez(plain, np.ones(3), np.zeros(2))  # the book's own save format
    with pytest.raises(ModelFileError, match="not a symflow model file"):
        load_model(plain)
    with pytest.raises(ModelFileError, match="holds a SequenceTagger, not a SequenceClassifier"):
        SequenceClassifier.load(good)
    lm = LanguageModel(vocab, embed_dim=2, hidden=2).save(tmp_path / "lm.npz")
    assert isinstance(SequenceTagger.load(lm), LanguageModel)  # a language model is a tagger
    newer = tmp_path / "newer.npz"
    save_model_file(newer, "SequenceTagger", {}, {})
    with np.load(newer) as z:
        arrays = dict(z)
    arrays["__version__"] = np.array(99)
    np.savez(newer, **arrays)
    with pytest.raises(ModelFileError, match="newer version"):
        load_model(newer)
    assert str(arrays["__format__"]) == FORMAT
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.npz")


def test_loading_a_file_whose_arrays_do_not_match(tmp_path: Path) -> None:
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = dict(z)
    arrays["0.Wh"] = np.ones((5, 5))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"parameter 0.Wh has shape \(5, 5\)"):
        load_model(path)
    del arrays["0.Wh"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"missing \['0.Wh'\]"):
        load_model(path)


def _rewrite(path: Path, out: Path, change) -> Path:
    """A copy of the model file ``path`` whose members ``change`` edited (a valid zip, damaged content)."""
    with np.load(path) as z:
        arrays = dict(z)
    change(arrays)
    np.savez(out, **arrays)
    return out


def _set_layer_config(key: str, value) -> object:
    def change(arrays: dict) -> None:
        config = json.loads(str(arrays["__config__"]))
        config["layers"][0]["config"][key] = value
        arrays["__config__"] = np.array(json.dumps(config))
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.pop("__version__"), r"lacks the member\(s\) \['__version__'\]"),
    (lambda a: a.pop("__kind__"), r"lacks the member\(s\) \['__kind__'\]"),
    (lambda a: a.pop("__config__"), r"lacks the member\(s\) \['__config__'\]"),
    (lambda a: a.update(__version__=np.array(-5)), "format version -5; versions start at 1"),
    (lambda a: a.update(__version__=np.array("abc")), "__version__ should be an integer scalar, got .* dtype <U3"),
    (lambda a: a.update(__kind__=np.array("Foo")), "unknown kind of model 'Foo'"),
    (lambda a: a.update(__config__=np.array("[1, 2]")), "expected a JSON object, got list"),
    (lambda a: a.update(__config__=np.array("{}")), r"expected 'layers' \(a non-empty list\)"),
    (_set_layer_config("bogus", 1), "for layer 0 .*unexpected keyword argument 'bogus'"),
    (_set_layer_config("activation", None), "for layer 0 .*activation must be a name"),
    (_set_layer_config("stateful", "no"), "for layer 0 .*stateful must be True or False, got 'no'"),
    (_set_layer_config("n_out", 7), "does not make a SequenceTagger: Dense takes inputs of size 2"),
    (lambda a: a.update({"0.Wh": np.array([["a", "b"], ["c", "d"]])}), "parameter 0.Wh has dtype <U1"),
    (lambda a: a.update({"0.Wh": np.ones((2, 2)) + 1j}), "parameter 0.Wh has dtype complex128"),
    (lambda a: a["0.Wh"].__setitem__((1, 0), np.nan), r"0.Wh holds 1 NaN or infinite value\(s\) of 4, the first "
                                                     r"nan at index \(1, 0\)"),
    (lambda a: a["1.bo"].fill(-np.inf), r"damaged: 1.bo holds 2 NaN or infinite value\(s\) of 2, the first -inf"),
])
def test_loading_a_damaged_archive_names_the_file_and_the_problem(change, message: str, tmp_path: Path) -> None:
    good = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0).save(tmp_path / "good.npz")
    bad = _rewrite(good, tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match=f"'{re.escape(str(bad))}'.*{message}"):
        load_model(bad)


def test_more_damage_is_refused_as_model_file_errors(tmp_path: Path) -> None:
    """Damage that escaped as ValueError, NotImplementedError, MemoryError or AttributeError: an
    optimizer key of the wrong type, an abstract layer type, a layer too large to build, zip members
    that are not .npy arrays."""
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    model.fit(np.zeros((2, 3, 1)), np.zeros((2, 3), int), epochs=1, batch_size=2, optimizer="adam", progress=False)
    good = model.save(tmp_path / "good.npz")

    def config(change):
        def edit(arrays: dict) -> None:
            c = json.loads(str(arrays["__config__"]))
            change(c)
            arrays["__config__"] = np.array(json.dumps(c))
        return edit

    def with_members(name: str, members: dict[str, bytes]) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                dst.writestr(info.filename, members.pop(info.filename, src.read(info.filename)))
            for member, data in members.items():
                dst.writestr(member, data)
        return out

    cases = [
        (_rewrite(good, tmp_path / "a.npz", config(lambda c: c["optimizer_state"][0]["key"].__setitem__(4, "abc"))),
         r"damaged optimizer state 0 .*invalid literal for int\(\)"),
        (_rewrite(good, tmp_path / "b.npz", config(lambda c: c["layers"][0].__setitem__("type", "RecurrentUnit"))),
         "damaged configuration for layer 0 .*NotImplementedError"),
        (_rewrite(good, tmp_path / "c.npz", config(lambda c: c["layers"][0]["config"].__setitem__("n_out", 10**7))),
         "damaged configuration for layer 0 .*MemoryError"),
        (with_members("d.npz", {"__version__.npy": b"not an array"}), r"member\(s\) \['__version__'\] are not NumPy"),
        (with_members("e.npz", {"notes.txt": b"hello"}), r"member\(s\) \['notes.txt'\] are not NumPy arrays"),
    ]
    for path, message in cases:
        with pytest.raises(ModelFileError, match=f"'{re.escape(str(path))}'.*{message}"):
            load_model(path)


def test_a_damaged_saved_vocabulary_is_a_model_file_error(tmp_path: Path, vocab: Vocabulary) -> None:
    """Tokens that are not strings, or a joiner that is not one, loaded (generate failed later)."""
    good = LanguageModel(vocab, embed_dim=2, hidden=2, seed=0).save(tmp_path / "good.npz")

    def vocabulary(key: str, value: object):
        def edit(arrays: dict) -> None:
            c = json.loads(str(arrays["__config__"]))
            c["extra"]["vocabulary"][key] = value
            arrays["__config__"] = np.array(json.dumps(c))
        return edit

    tokens = vocab.get_config()["tokens"]
    for name, change, message in [("a", vocabulary("tokens", [7, *tokens[1:]]), "tokens must be strings, got 7"),
                                  ("b", vocabulary("joiner", 3), "string joiner, got list tokens and joiner 3"),
                                  ("c", vocabulary("tokens", "".join(tokens)), "string tokens .*got str tokens")]:
        bad = _rewrite(good, tmp_path / f"{name}.npz", change)
        with pytest.raises(ModelFileError, match=f"'{re.escape(str(bad))}'.*{message}"):
            load_model(bad)


def test_loading_a_directory_says_it_is_one(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a directory, not a model file"):
        load_model(tmp_path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saving_keeps_the_permissions_of_the_file_it_replaces(tmp_path: Path) -> None:
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    existing = tmp_path / "shared.npz"
    existing.write_bytes(b"")
    existing.chmod(0o644)
    model.save(existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644
    umask = os.umask(0o027)
    try:
        fresh = model.save(tmp_path / "fresh.npz")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0666 less the umask, as open() would make it


def test_saving_onto_a_directory_or_under_a_file_says_so(tmp_path: Path) -> None:
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError, match=r"taken'.*it is a directory"):
        model.save(tmp_path / "taken")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"plain' is a file, not a directory"):
        model.save(tmp_path / "plain" / "sub" / "m.npz")
    assert sorted(os.listdir(tmp_path)) == ["plain", "taken"] and not os.listdir(tmp_path / "taken")


def test_plot_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X, Y = parity(3)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=2, seed=0)
    with pytest.raises(ValueError, match="history is empty"):
        model.plot_history(tmp_path / "empty.png")
    model.fit(X, Y, epochs=2, batch_size=4, progress=False, validation_data=(X, Y))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        model.plot_history(tmp_path / "curve.png")
    monkeypatch.undo()
    png = model.plot_history(tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_models_accept_custom_layer_stacks() -> None:
    layers = [Embedding(6, 3, seed=0), GRU(3, 4, seed=0), Dropout(0.2, seed=0), SimpleRNN(4, 2, seed=0)]
    model = SequenceClassifier(n_classes=3, layers=layers)
    assert model.predict([[1, 2], [3]]).shape == (2,)
    assert len(model.params) == 1 + len(GRU.param_names) + len(SimpleRNN.param_names) + 2
