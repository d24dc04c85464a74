"""The book's three ways of using a recurrent network, as trainable models sharing one machinery:

- ``SequenceTagger``: a label for every step (chapter 2's parity);
- ``SequenceClassifier``: one label per sequence, read at its last step (chapter 4's poetry classifier);
- ``LanguageModel``: next-word prediction over a vocabulary with START/END tokens, sampling new lines
  and word analogies (chapters 4 and 6).

A model is a stack of layers (optionally starting with an Embedding) followed by a Dense output.
``fit`` trains with the book's momentum SGD, one sequence per step by default, or on minibatches of
padded sequences with masks. ``save``/``load`` keep every parameter and the configuration.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import symflow as sf
import symflow.tensor as T
from symflow import Variable, dtypes
from symflow import updates as sf_updates
from symflow.graph import clone_replace

from .data import Vocabulary, pad_batch, tokenize
from .io import ModelFileError, load_model_file, save_model_file
from .layers import (
    Activation,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Layer,
    check_size,
    layer_config,
    layer_from_config,
)
from .training import History, Progress, batch_order, plot_history
from .units import RecurrentUnit, unit_class

_INT_KINDS = "iu"


def _token_ids(value: Any, what: str, n: int, alternative: str = "") -> np.ndarray:
    """``value`` as an int64 vector of token indices in [0, n) (``[]`` is an empty one), or a ValueError
    naming ``what`` (``alternative``: what else it may be, for the message)."""
    a = dtypes.as_plain_array(value, what, ValueError)
    if a.ndim != 1 or (a.size and a.dtype.kind not in _INT_KINDS):
        raise ValueError(f"{what}: expected {alternative}a 1-d list of integer token indices, got an array of shape "
                         f"{a.shape} and dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{what}: token indices must be in [0, {n}), got {a.min()}..{a.max()}")
    return a.astype("int64")


def build_layers(n_in: int, hidden: int | Sequence[int], unit: str | type[RecurrentUnit] = "simple",
                 activation: str | Activation = "tanh", vocab_size: int | None = None, dropout: float = 0.0,
                 bidirectional: bool = False, stateful: bool = False,
                 seed: int | np.random.Generator | None = None) -> list[Layer]:
    """A body of stacked recurrent units: an optional Embedding (when ``vocab_size`` is given, ``n_in``
    is its dimension), one unit per ``hidden`` size, each optionally bidirectional and followed by Dropout."""
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    cls = unit_class(unit)
    sizes = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    if not sizes:
        raise ValueError("hidden must name at least one layer size")
    layers: list[Layer] = []
    if vocab_size is not None:
        layers.append(Embedding(vocab_size, n_in, seed=rng))
    size = n_in
    for m in sizes:
        layer: Layer = cls(size, m, activation=activation, stateful=stateful, seed=rng)
        if bidirectional:
            layer = Bidirectional(layer, seed=rng)
        layers.append(layer)
        if dropout:
            layers.append(Dropout(dropout, seed=rng))
        size = layer.n_out
    return layers


class SequenceModel:
    """Shared machinery of the task models: graphs, training loop, prediction batches, save and load."""

    #: class names of the models, for load()
    kinds: ClassVar[dict[str, type[SequenceModel]]] = {}
    #: compile mode of the model's functions (None: symflow.config.mode)
    mode: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SequenceModel.kinds[cls.__name__] = cls

    # -- construction ----------------------------------------------------------------------------------
    def __init__(self, n_in: int | None = None, n_classes: int | None = None, hidden: int | Sequence[int] = 30,
                 unit: str | type[RecurrentUnit] = "simple", activation: str | Activation = "tanh", *,
                 vocab_size: int | None = None, dropout: float = 0.0, bidirectional: bool = False,
                 stateful: bool = False, seed: int | None = None, layers: Sequence[Layer] | None = None) -> None:
        """Stack ``hidden`` units of the given type (see ``build_layers``) under a Dense output of
        ``n_classes``; or pass your own ``layers`` (the stack without the output)."""
        if n_classes is None:
            raise ValueError("n_classes is required (the number of labels)")
        if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise ValueError(f"n_classes must be an int of at least 2, got {n_classes!r}")
        rng = np.random.default_rng(seed)
        if layers is None:
            if n_in is None:
                raise ValueError("n_in is required (features per step, or the embedding size with vocab_size)")
            layers = build_layers(n_in, hidden, unit, activation, vocab_size, dropout, bidirectional, stateful, rng)
        self._setup(layers, Dense(_check_stack(layers), n_classes, seed=rng))

    def _setup(self, layers: Sequence[Layer], output: Dense) -> None:
        layers = list(layers)
        output.output_size(_check_stack(layers))
        self.token_input = isinstance(layers[0], Embedding)
        self.layers = layers
        self.out = output
        self.n_in = layers[0].n_in
        self.n_classes = output.n_out
        self.history = History()
        self._lr = sf.shared(np.array(0.01, dtype=sf.config.floatX), name="learning_rate")
        self._functions: dict[Any, sf.Function] = {}
        #: optimiser state (velocities, moments) of each compiled train function, by its key
        self._optimizer_state: dict[tuple[Any, ...], list[sf.SharedVariable]] = {}
        #: optimiser state read by load(), set when the train function with that key is compiled
        self._loaded_optimizer_state: dict[tuple[Any, ...], list[np.ndarray]] = {}

    @property
    def params(self) -> list[sf.SharedVariable]:
        return [p for layer in [*self.layers, self.out] for p in layer.params]

    def units(self) -> list[RecurrentUnit]:
        """The recurrent units of the stack (both directions of a Bidirectional)."""
        found: list[RecurrentUnit] = []
        for layer in self.layers:
            if isinstance(layer, Bidirectional):
                found += [layer.forward, layer.backward]
            elif isinstance(layer, RecurrentUnit):
                found.append(layer)
        return found

    def reset_states(self) -> None:
        """Make stateful units start the next call from their learned initial states."""
        for unit in self.units():
            unit.reset_states()

    # -- graphs ----------------------------------------------------------------------------------------
    def _input_variable(self) -> Variable:
        return T.imatrix("X") if self.token_input else T.tensor3("X", dtype=sf.config.floatX)

    def _hidden(self, X: Variable, mask: Variable | None, train: bool, truncate: int) -> Variable:
        H = X
        for layer in self.layers:
            H = layer.output(H, mask, train, truncate)
        return H

    def _target_variable(self) -> Variable:
        raise NotImplementedError

    def _logits(self, H: Variable) -> Variable:
        """Class scores from the stack's output: ``(T, N, K)`` per step or ``(N, K)`` per sequence."""
        raise NotImplementedError

    def _per_step(self) -> bool:
        return True

    def _loss(self, logits: Variable, Y: Variable, mask: Variable | None) -> tuple[Variable, Variable, Variable]:
        """Summed negative log-likelihood, number of correct predictions, number of predictions."""
        lp = T.nnet.log_softmax(logits.reshape((-1, self.n_classes)))
        y = Y.flatten()
        nll = -lp[T.arange(lp.shape[0]), y]
        hit = T.eq(T.argmax(lp, axis=1), y)
        if mask is None or not self._per_step():
            return nll.sum(), hit.sum(), T.cast(nll.shape[0], sf.config.floatX)
        w = mask.flatten()
        return (nll * w).sum(), (hit * w).sum(), w.sum()

    def _state_updates(self) -> list[tuple[sf.SharedVariable, Variable]]:
        return [pair for unit in self.units() if unit.stateful for pair in unit.state_updates]

    def _compile(self, inputs: list[Variable], outputs: list[Variable], updates: list[Any]) -> sf.Function:
        return sf.function(inputs, outputs, updates=updates + self._state_updates(), allow_input_downcast=True,
                           mode=self.mode)

    def _symbols(self, masked: bool) -> tuple[Variable, Variable | None]:
        return self._input_variable(), T.matrix("mask", dtype=sf.config.floatX) if masked else None

    def _train_function(self, masked: bool, optimizer: str, mu: float, clip_norm: float | None,
                        truncate: int) -> sf.Function:
        state_key = ("train", optimizer, mu, clip_norm, truncate)  # batches with and without padding share it
        key = ("train", masked, *state_key[1:])
        if key not in self._functions:
            X, mask = self._symbols(masked)
            Y = self._target_variable()
            total, correct, count = self._loss(self._logits(self._hidden(X, mask, True, truncate)), Y, mask)
            cost = total / count
            builder = sf_updates.BUILDERS[optimizer]
            extra = {"mu": mu} if optimizer in ("momentum", "nesterov") else {}
            updates = builder(cost, self.params, self._lr, clip_norm=clip_norm, **extra)
            params = set(self.params)
            state = [var for var, _ in updates if var not in params]
            if state_key in self._optimizer_state:  # the other train function's velocities (moments) serve this one
                same = dict(zip(state, self._optimizer_state[state_key], strict=True))
                updates = [(same.get(var, var), clone_replace([value], same)[0]) for var, value in updates]
            else:
                for var, value in zip(state, self._loaded_optimizer_state.pop(state_key, []), strict=False):
                    var.set_value(value.astype(var.dtype))
                self._optimizer_state[state_key] = state
            inputs = [X] + ([mask] if mask is not None else []) + [Y]
            self._functions[key] = self._compile(inputs, [cost, correct, count], updates)
        return self._functions[key]

    def _eval_function(self, masked: bool) -> sf.Function:
        key = ("eval", masked)
        if key not in self._functions:
            X, mask = self._symbols(masked)
            Y = self._target_variable()
            outs = self._loss(self._logits(self._hidden(X, mask, False, -1)), Y, mask)
            self._functions[key] = self._compile([X] + ([mask] if mask is not None else []) + [Y], list(outs), [])
        return self._functions[key]

    def _predict_function(self, masked: bool) -> sf.Function:
        key = ("predict", masked)
        if key not in self._functions:
            X, mask = self._symbols(masked)
            logits = self._logits(self._hidden(X, mask, False, -1))
            lp = T.nnet.log_softmax(logits.reshape((-1, self.n_classes))).reshape(logits.shape, ndim=logits.ndim)
            self._functions[key] = self._compile([X] + ([mask] if mask is not None else []), [lp], [])
        return self._functions[key]

    # -- data ------------------------------------------------------------------------------------------
    def _check_inputs(self, X: Any) -> list[np.ndarray]:
        """The input sequences as arrays: token index vectors, or ``(T, n_in)`` float matrices."""
        if isinstance(X, np.ndarray) and X.dtype != object:
            X = list(X)
        if not isinstance(X, (list, tuple)) or not X:
            raise ValueError(f"expected a non-empty list of sequences, got {type(X).__name__}")
        out = []
        for i, seq in enumerate(X):
            if self.token_input:
                a = _token_ids(seq, f"sequence {i}", self.n_in).astype("int32")
            else:
                a = dtypes.as_plain_array(seq, f"sequence {i}", ValueError)
                if a.ndim != 2 or a.shape[1] != self.n_in:
                    raise ValueError(f"sequence {i}: expected an array of shape (T, {self.n_in}) (one row of "
                                     f"{self.n_in} features per step), got shape {a.shape}")
                a = _real_features(a, i)
            if len(a) == 0:
                raise ValueError(f"sequence {i} is empty; every sequence needs at least one step")
            out.append(a)
        return out

    def _check_targets(self, Y: Any, xs: list[np.ndarray]) -> list[Any]:
        raise NotImplementedError

    def _check_labels(self, a: np.ndarray, what: str) -> np.ndarray:
        if a.size and a.dtype.kind not in _INT_KINDS:
            raise ValueError(f"{what}: labels must be integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.n_classes):
            raise ValueError(f"{what}: labels must be in [0, {self.n_classes}), got {a.min()}..{a.max()}")
        return a.astype("int32")

    def _batch(self, xs: list[np.ndarray], ys: list[Any] | None) -> tuple[list[np.ndarray], bool]:
        """Function arguments for a batch: padded time-major inputs, the mask when lengths differ, targets."""
        masked = len({len(x) for x in xs}) > 1
        X, mask = pad_batch(xs, xs[0].dtype)
        args = [X] + ([mask] if masked else [])
        if ys is not None:
            args.append(pad_batch(ys, "int32")[0] if self._per_step() else np.asarray(ys, dtype="int32"))
        return args, masked

    def _run(self, fn: sf.Function, args: list[np.ndarray]) -> Any:
        """Call a compiled function on a batch, sizing the carried state of stateful units first."""
        for unit in self.units():
            unit.prepare_batch(args[0].shape[1])
        return fn(*args)

    # -- training --------------------------------------------------------------------------------------
    def _pairs(self, X: Any, Y: Any) -> tuple[list[np.ndarray], list[Any]]:
        """Checked input sequences and their targets."""
        if Y is None:
            raise ValueError(f"{type(self).__name__} needs targets Y to train or evaluate on")
        xs = self._check_inputs(X)
        return xs, self._check_targets(Y, xs)

    def _validation_pairs(self, data: Any) -> tuple[list[np.ndarray], list[Any]]:
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("validation_data must be a pair (X, Y)")
        return self._pairs(*data)

    def fit(self, X: Any, Y: Any = None, *, epochs: int = 10, learning_rate: float = 1e-2, mu: float = 0.99,
            optimizer: str = "momentum", lr_decay: float = 1.0, clip_norm: float | None = None,
            bptt_truncate: int = -1, batch_size: int = 1, shuffle: bool = True, validation_data: Any = None,
            progress: bool = True, seed: int | None = None, stop_at_accuracy: float | None = None) -> History:
        """Train on sequences ``X`` with targets ``Y`` and return the history (one entry per epoch).

        ``optimizer``: ``"momentum"`` (the book's ``dp = mu*dp - lr*g; p += dp``), ``"nesterov"``, ``"sgd"``,
        ``"rmsprop"`` or ``"adam"``. ``lr_decay`` multiplies the learning rate after every epoch (the book's
        classifier uses 0.9999). ``clip_norm`` rescales the gradients when their joint norm exceeds it;
        ``bptt_truncate=k`` backpropagates through the last k steps of each batch only (padding at the end
        included: a shorter sequence gets fewer of its own steps). ``batch_size=1`` is the book's one
        sequence per update; larger batches pad the sequences and mask the padding. ``validation_data`` is
        ``(X, Y)`` (for a LanguageModel, sentences). ``stop_at_accuracy`` ends training after the first epoch
        whose training accuracy reaches it. ``progress`` shows a tqdm bar with the running cost and accuracy.
        """
        xs, ys = self._pairs(X, Y)
        validation = None if validation_data is None else self._validation_pairs(validation_data)
        if optimizer not in sf_updates.BUILDERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(sf_updates.BUILDERS)}")
        epochs = check_size(epochs, "epochs", 0)
        batch_size = check_size(batch_size, "batch_size", 1)
        lr = _check_number(learning_rate, "learning_rate", 0.0)
        if not np.array(lr, dtype=self._lr.dtype) > 0:  # 1e-46 in float32: training would change nothing
            raise ValueError(f"learning_rate {learning_rate!r} rounds to 0 in {self._lr.dtype}, the model's floatX")
        mu = _check_number(mu, "mu", 0.0, 1.0, low_open=False)
        lr_decay = _check_number(lr_decay, "lr_decay", 0.0)
        if clip_norm is not None:
            clip_norm = _check_number(clip_norm, "clip_norm", 0.0)
        if bptt_truncate != -1 and (isinstance(bptt_truncate, (bool, np.bool_))
                                    or not isinstance(bptt_truncate, (int, np.integer)) or bptt_truncate < 1):
            raise ValueError(f"bptt_truncate must be -1 (full BPTT) or a positive number of steps, got "
                             f"{bptt_truncate!r}")
        bptt_truncate = int(bptt_truncate)
        if stop_at_accuracy is not None:
            stop_at_accuracy = _check_number(stop_at_accuracy, "stop_at_accuracy", 0.0, 1.0, low_open=False,
                                             high_open=False)
        stateful = any(u.stateful for u in self.units())
        if stateful and shuffle:
            raise ValueError("a stateful model carries the state from one batch to the next, so the order of the "
                             "data matters: pass shuffle=False")
        if stateful and len(xs) % batch_size:
            raise ValueError(f"a stateful model continues each batch's {batch_size} sequences in the next batch, so "
                             f"the number of sequences must be a multiple of batch_size; got {len(xs)}")
        if stateful and validation is not None:
            raise ValueError("validation_data would run through the state carried by a stateful model; call "
                             "evaluate() after fit (and reset_states() as needed) instead")
        rng = np.random.default_rng(seed)
        for epoch in range(epochs):
            start = time.perf_counter()
            self._lr.set_value(np.array(lr, dtype=self._lr.dtype))
            self.reset_states()
            bar = Progress(len(xs), f"epoch {epoch + 1}/{epochs}", progress)
            snapshot = self._training_snapshot()
            try:
                total = correct = count = 0.0
                for idx in batch_order(len(xs), batch_size, shuffle, rng):
                    args, masked = self._batch([xs[i] for i in idx], [ys[i] for i in idx])
                    fn = self._train_function(masked, optimizer, mu, clip_norm, bptt_truncate)
                    cost, n_correct, n = self._run(fn, args)
                    if not np.isfinite(cost):
                        self._diverged(bar, epoch, f"cost {cost}")
                    total, correct = total + float(cost) * float(n), correct + float(n_correct)
                    count += float(n)
                    bar.update(len(idx), total / count, correct / count)
                bad = [p.name for p in self.params if not np.isfinite(p.get_value(borrow=True)).all()]
                if bad:
                    self._diverged(bar, epoch, f"non-finite values in {', '.join(map(str, bad[:4]))}")
            except BaseException:
                self._restore(snapshot)
                raise
            h = self.history
            h.cost.append(total / count)
            h.accuracy.append(correct / count)
            h.learning_rate.append(lr)
            if validation is not None:
                v_cost, v_acc = self._evaluate(*validation)
                h.val_cost.append(v_cost)
                h.val_accuracy.append(v_acc)
            h.seconds.append(time.perf_counter() - start)
            bar.close(h.summary())
            lr *= lr_decay
            if stop_at_accuracy is not None and h.accuracy[-1] >= stop_at_accuracy:
                break
        return self.history

    def _training_snapshot(self) -> tuple[dict[sf.SharedVariable, np.ndarray], dict[Any, list[np.ndarray]]]:
        """Copies of the parameters, the optimiser state and the dropout layers' random streams, and the loaded
        state not yet in use, to undo an epoch that fails."""
        variables = [*self.params, *(v for state in self._optimizer_state.values() for v in state),
                     *self._random_states()]
        return {v: v.get_value() for v in variables}, dict(self._loaded_optimizer_state)

    def _random_states(self) -> list[sf.SharedVariable]:
        """The states (``[key, counter]``) of the random streams the dropout layers have drawn from."""
        return [state for layer in self.layers if isinstance(layer, Dropout) for state in layer.srng.state_updates]

    def _restore(self, snapshot: tuple[dict[sf.SharedVariable, np.ndarray], dict[Any, list[np.ndarray]]]) -> None:
        """Put back a snapshot; the state of a train function compiled since goes back to where it started
        (the state read by load, else zeros; a random stream to its first draw)."""
        values, loaded = snapshot
        for v in self._random_states():
            if v not in values:
                v.set_value(np.array([v.get_value()[0], 0], dtype=np.uint64))
        for key, state in self._optimizer_state.items():
            initial = loaded.get(key)
            for j, v in enumerate(state):
                if v not in values:
                    v.set_value(np.zeros_like(v.get_value(borrow=True)) if initial is None
                                else initial[j].astype(v.dtype))
        for v, value in values.items():
            v.set_value(value)

    def _diverged(self, bar: Progress, epoch: int, what: str) -> None:
        bar.close("diverged")
        raise FloatingPointError(
            f"training diverged in epoch {epoch + 1} ({what}); the parameters and optimizer state are restored "
            "to their values before that epoch. The inputs are finite (fit checks them), so the steps are too "
            "large: lower the learning rate, set clip_norm, or scale the inputs down")

    def plot_history(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Write the training curves to a PNG (needs matplotlib)."""
        return plot_history(self.history, path, title or type(self).__name__)

    # -- evaluation and prediction ---------------------------------------------------------------------
    def _chunks(self, n: int, batch_size: int) -> list[np.ndarray]:
        """The batches of ``n`` sequences to predict or evaluate; all in one for a stateful model, whose
        sequences each continue one carried state."""
        batch_size = check_size(batch_size, "batch_size", 1)
        if any(u.stateful for u in self.units()):
            batch_size = max(n, 1)
        return [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]

    def _evaluate(self, xs: list[np.ndarray], ys: list[Any], batch_size: int = 64) -> tuple[float, float]:
        total = correct = count = 0.0
        for idx in self._chunks(len(xs), batch_size):
            args, masked = self._batch([xs[i] for i in idx], [ys[i] for i in idx])
            t, c, n = self._run(self._eval_function(masked), args)
            total, correct, count = total + float(t), correct + float(c), count + float(n)
        return total / count, correct / count

    def evaluate(self, X: Any, Y: Any = None, batch_size: int = 64) -> dict[str, float]:
        """Mean cost (negative log-likelihood) and accuracy on ``X``, ``Y`` (dropout off)."""
        cost, acc = self._evaluate(*self._pairs(X, Y), batch_size)
        return {"cost": cost, "accuracy": acc}

    def _log_proba(self, xs: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
        """Log-probabilities per sequence: ``(T_i, K)`` per step, or ``(K,)`` per sequence."""
        result: list[np.ndarray] = []
        for idx in self._chunks(len(xs), batch_size):
            args, masked = self._batch([xs[i] for i in idx], None)
            (lp,) = self._run(self._predict_function(masked), args)
            for j, i in enumerate(idx):
                result.append(lp[: len(xs[i]), j] if self._per_step() else lp[j])
        return result

    # -- save and load ---------------------------------------------------------------------------------
    def _extra_config(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        pass

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write every parameter and the configuration to ``path`` (replacing it atomically)."""
        config = {"layers": [layer_config(layer) for layer in self.layers], "output": layer_config(self.out),
                  "extra": self._extra_config()}
        _check_savable(config)
        arrays = {f"{i}.{name}": p.get_value() for i, layer in enumerate([*self.layers, self.out])
                  for name, p in layer.named_params().items()}
        states = {**{k: [v.get_value() for v in vs] for k, vs in self._optimizer_state.items()},
                  **self._loaded_optimizer_state}  # loaded state not yet used by a train function stays saved
        # a key's first item was once whether the batches were padded; it is written as False and not read
        config["optimizer_state"] = [{"key": [False, *key[1:]], "size": len(values)} for key, values in states.items()]
        for n, values in enumerate(states.values()):
            arrays.update({f"optimizer.{n}.{j}": value for j, value in enumerate(values)})
        return save_model_file(path, type(self).__name__, config, arrays, version=2 if states else 1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """A model saved by ``save``; ``SequenceTagger.load`` etc. refuse files holding another kind of model."""
        allowed = tuple(name for name, k in SequenceModel.kinds.items() if issubclass(k, cls))
        kind, config, arrays = load_model_file(path, None if cls is SequenceModel else allowed)
        where = str(path)
        if kind not in SequenceModel.kinds:
            raise ModelFileError(f"{where!r} holds an unknown kind of model {kind!r}; expected one of "
                                 f"{sorted(SequenceModel.kinds)}")
        model_cls = SequenceModel.kinds[kind]
        model = model_cls.__new__(model_cls)
        layers, output = _layers_from_config(where, config)
        try:
            model._setup(layers, output)
            model._load_extra(config.get("extra", {}))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise ModelFileError(f"{where!r} has a configuration that does not make a {kind}: {e}") from None
        model._loaded_optimizer_state = model._optimizer_state_from_file(where, config, arrays)
        expected = {f"{i}.{name}": p for i, layer in enumerate([*model.layers, model.out])
                    for name, p in layer.named_params().items()}
        missing = sorted(set(expected) - set(arrays))
        unexpected = sorted(set(arrays) - set(expected))
        if missing or unexpected:
            raise ModelFileError(f"{where!r} does not match its configuration: missing {missing}, "
                                 f"unexpected {unexpected}")
        for key, p in expected.items():
            value = arrays[key]
            if value.shape != p.get_value(borrow=True).shape:
                raise ModelFileError(f"{where!r}: parameter {key} has shape {value.shape}, the configuration "
                                     f"needs {p.get_value(borrow=True).shape}")
            if value.dtype.kind not in "fiu":
                raise ModelFileError(f"{where!r}: parameter {key} has dtype {value.dtype}; expected real numbers "
                                     f"({p.dtype})")
            p.set_value(value.astype(p.dtype))
        return model

    def _optimizer_state_from_file(self, where: str, config: dict[str, Any], arrays: dict[str, np.ndarray]
                                   ) -> dict[tuple[Any, ...], list[np.ndarray]]:
        """The saved optimiser state by train-function key, checked against the shapes the optimiser makes;
        its arrays are taken out of ``arrays``. Files of format version 1 have none."""
        entries = config.get("optimizer_state", [])
        if not isinstance(entries, list):
            raise ModelFileError(f"{where!r} has a damaged configuration: optimizer_state is not a list")
        states: dict[tuple[Any, ...], list[np.ndarray]] = {}
        for n, entry in enumerate(entries):
            try:
                _, optimizer, mu, clip_norm, truncate = entry["key"]  # the first, once the padding, is not read
                expected = self._optimizer_state_shapes(optimizer, mu, clip_norm)
                key = ("train", optimizer, float(mu), clip_norm, int(truncate))
                values = [arrays.pop(f"optimizer.{n}.{j}") for j in range(entry["size"])]
            except (TypeError, ValueError, KeyError) as e:
                raise ModelFileError(f"{where!r} has damaged optimizer state {n} ({json.dumps(entry)[:200]}): "
                                     f"{e!r}") from None
            shapes = [v.shape for v in values]
            if shapes != expected or any(v.dtype.kind not in "fiu" for v in values):
                raise ModelFileError(f"{where!r}: optimizer state {n} ({optimizer}) holds arrays of shapes {shapes} "
                                     f"and dtypes {sorted({str(v.dtype) for v in values})}; the model's "
                                     f"{optimizer} needs real arrays of shapes {expected}")
            states.setdefault(key, values)  # files written before the state was shared may hold two: the first
        return states

    def _optimizer_state_shapes(self, optimizer: str, mu: Any, clip_norm: Any) -> list[tuple[int, ...]]:
        """The shapes of the state ``optimizer`` keeps for this model's parameters (built, not compiled)."""
        if optimizer not in sf_updates.BUILDERS:
            raise ValueError(f"unknown optimizer {optimizer!r}")
        extra = {"mu": _check_number(mu, "mu", 0.0, 1.0, low_open=False)} if optimizer in ("momentum",
                                                                                         "nesterov") else {}
        if clip_norm is not None:
            _check_number(clip_norm, "clip_norm", 0.0)
        updates = sf_updates.BUILDERS[optimizer](list(self.params), self.params, self._lr, **extra)
        params = set(self.params)
        return [var.get_value(borrow=True).shape for var, _ in updates if var not in params]

    def __repr__(self) -> str:
        body = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{body}], output={self.out!r})"


def _real_features(a: np.ndarray, i: int) -> np.ndarray:
    """Sequence ``i`` as floatX, refusing non-real dtypes and NaN or infinite values (which would make
    every parameter NaN in one training step)."""
    if a.dtype.kind not in "biufO":
        raise ValueError(f"sequence {i}: expected real numbers, got dtype {a.dtype}")
    try:
        out = a.astype(sf.config.floatX)
    except (TypeError, ValueError) as e:
        raise ValueError(f"sequence {i}: expected real numbers, got dtype {a.dtype} holding a value that is not "
                         f"one ({e})") from None
    bad = ~np.isfinite(out)
    if bad.any():
        step, feature = (int(k) for k in np.argwhere(bad)[0])
        value = a[step, feature]
        value = value.item() if isinstance(value, np.generic) else value
        raise ValueError(f"sequence {i}: expected finite numbers, got {value!r} at step {step}, "
                         f"feature {feature} (as {sf.config.floatX}: {out[step, feature]})")
    return out


def _check_number(value: Any, name: str, low: float, high: float = math.inf, *, low_open: bool = True,
                  high_open: bool = True) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless it is a real number in the interval."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok:
        v = float(value)
        ok = (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a real number in {interval}, got {value!r}")
    return float(value)


def _check_stack(layers: Sequence[Layer]) -> int:
    """Check the stack's structure and that each layer takes what the one before gives; its output size."""
    if not layers:
        raise ValueError("a model needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layers[{i}] is a {type(layer).__name__}, not a models Layer")
        if i > 0 and isinstance(layer, Embedding):
            raise ValueError("an Embedding can only be the first layer")
    if isinstance(layers[0], Dropout):
        raise ValueError("the first layer cannot be a Dropout: it does not fix the input size")
    if not any(layer.recurrent for layer in layers):
        raise ValueError("the layers include no recurrent unit; add a SimpleRNN, RatedRNN, GRU or LSTM")
    size = layers[0].n_in
    for layer in layers:
        size = layer.output_size(size)
    return size


def _layers_from_config(where: str, config: dict[str, Any]) -> tuple[list[Layer], Dense]:
    """The layers and output described by a saved configuration; ModelFileError naming the damaged part."""
    layers, output = config.get("layers"), config.get("output")
    if not isinstance(layers, list) or not layers or not isinstance(output, dict):
        raise ModelFileError(f"{where!r} has a damaged configuration: expected 'layers' (a non-empty list) and "
                             f"'output' (an object), got keys {sorted(config)}")
    built = []
    for i, c in enumerate([*layers, output]):
        what = "the output layer" if i == len(layers) else f"layer {i}"
        try:
            built.append(layer_from_config(c))
        except (TypeError, ValueError, KeyError, AttributeError, NotImplementedError, MemoryError) as e:
            raise ModelFileError(f"{where!r} has a damaged configuration for {what} ({json.dumps(c)[:200]}): "
                                 f"{type(e).__name__}: {e}") from None
    *body, out = built
    if not isinstance(out, Dense):
        raise ModelFileError(f"{where!r} has a damaged configuration: the output layer is a {type(out).__name__}, "
                             "not a Dense")
    return body, out


def _check_savable(config: Any) -> None:
    """Refuse configurations holding a custom activation function (it has no name to save)."""
    if isinstance(config, dict):
        if "activation" in config and config["activation"] is None:
            raise ValueError("cannot save a model using a custom activation function; only named activations "
                             "can be saved (see models.layers.ACTIVATIONS)")
        for value in config.values():
            _check_savable(value)
    elif isinstance(config, list):
        for value in config:
            _check_savable(value)


class SequenceTagger(SequenceModel):
    """A label at every step (chapter 2's parity: the running parity of the bits so far).

    ``SequenceTagger(n_in=1, n_classes=2, hidden=4, unit="simple", activation="sigmoid")``; inputs are
    ``(T, n_in)`` float arrays, or token index lists when ``vocab_size`` is given (``n_in`` is then the
    embedding dimension). Pass ``layers=[...]`` to use your own stack instead.
    """

    def _target_variable(self) -> Variable:
        return T.imatrix("Y")

    def _logits(self, H: Variable) -> Variable:
        return self.out.output(H)

    def _check_targets(self, Y: Any, xs: list[np.ndarray]) -> list[Any]:
        if isinstance(Y, np.ndarray) and Y.dtype != object:
            Y = list(Y)
        if not isinstance(Y, (list, tuple)):
            raise ValueError(f"expected a list of label sequences, one per input sequence, got {type(Y).__name__}")
        if len(Y) != len(xs):
            raise ValueError(f"got {len(xs)} input sequences but {len(Y)} label sequences")
        out = []
        for i, (y, x) in enumerate(zip(Y, xs, strict=True)):
            a = dtypes.as_plain_array(y, f"label sequence {i}", ValueError)
            if a.shape != (len(x),):
                raise ValueError(f"label sequence {i} has shape {a.shape}; expected one label per step: "
                                 f"({len(x)},)")
            out.append(self._check_labels(a, f"label sequence {i}"))
        return out

    def predict(self, X: Any, batch_size: int = 64) -> list[np.ndarray]:
        """The most probable label at every step of every sequence."""
        return [lp.argmax(axis=-1) for lp in self._log_proba(self._check_inputs(X), batch_size)]

    def predict_proba(self, X: Any, batch_size: int = 64) -> list[np.ndarray]:
        """Label probabilities ``(T_i, n_classes)`` for every sequence."""
        return [np.exp(lp) for lp in self._log_proba(self._check_inputs(X), batch_size)]


class SequenceClassifier(SequenceModel):
    """One label per sequence, read from the last step (chapter 4: which poet wrote this line?).

    Same constructor as SequenceTagger. With a Bidirectional layer the summary joins the forward state
    after the last step and the backward state after the first.
    """

    def _target_variable(self) -> Variable:
        return T.ivector("Y")

    def _per_step(self) -> bool:
        return False

    def _logits(self, H: Variable) -> Variable:
        last = [layer for layer in self.layers if layer.recurrent][-1]
        return self.out.output(last.last_step(H))

    def _check_targets(self, Y: Any, xs: list[np.ndarray]) -> list[Any]:
        a = np.asarray(Y)
        if a.shape != (len(xs),):
            raise ValueError(f"expected one label per sequence, shape ({len(xs)},), got shape {a.shape}")
        return list(self._check_labels(a, "labels"))

    def predict(self, X: Any, batch_size: int = 64) -> np.ndarray:
        """The most probable label of every sequence."""
        return np.array([lp.argmax() for lp in self._log_proba(self._check_inputs(X), batch_size)], dtype=int)

    def predict_proba(self, X: Any, batch_size: int = 64) -> np.ndarray:
        """Label probabilities, ``(N, n_classes)``."""
        return np.exp(np.stack(self._log_proba(self._check_inputs(X), batch_size)))


class LanguageModel(SequenceTagger):
    """Next-token prediction (chapters 4 and 6): the input ``[START, w1, ..., wn]`` predicts
    ``[w1, ..., wn, END]`` at every step.

    ``LanguageModel(vocab, embed_dim=30, hidden=30, unit="gru")``; ``vocab`` is a Vocabulary (then
    ``generate`` returns text and ``analogy`` takes words) or just the vocabulary size.
    """

    def __init__(self, vocab: Vocabulary | int, embed_dim: int = 30, hidden: int | Sequence[int] = 30,
                 unit: str | type[RecurrentUnit] = "gru", activation: str | Activation = "tanh", *,
                 dropout: float = 0.0, stateful: bool = False, seed: int | None = None,
                 layers: Sequence[Layer] | None = None) -> None:
        self.vocab = vocab if isinstance(vocab, Vocabulary) else None
        size = len(vocab) if isinstance(vocab, Vocabulary) else int(vocab)
        super().__init__(embed_dim, size, hidden, unit, activation, vocab_size=size, dropout=dropout,
                         stateful=stateful, seed=seed, layers=layers)

    def _setup(self, layers: Sequence[Layer], output: Dense) -> None:
        super()._setup(layers, output)
        if not self.token_input:
            raise ValueError("a LanguageModel's first layer must be an Embedding")
        if any(isinstance(layer, Bidirectional) for layer in layers):
            raise ValueError("a LanguageModel cannot be bidirectional: predicting the next word must not see it")
        if self.n_in != self.n_classes:
            raise ValueError(f"the Embedding covers {self.n_in} tokens but the output predicts {self.n_classes}")
        self.vocab = getattr(self, "vocab", None)

    def _pairs(self, sentences: Any, Y: Any = None) -> tuple[list[np.ndarray], list[Any]]:
        """Inputs ``[START] + s`` and targets ``s + [END]`` of every sentence (lists of token indices)."""
        if Y is not None:
            raise ValueError("a LanguageModel learns from the sentences alone; do not pass targets")
        ids = self._sentences(sentences)
        ys = [np.concatenate([a, [Vocabulary.END]]).astype("int32") for a in ids]
        return self._with_start(ids), ys

    def _sentences(self, sentences: Any) -> list[np.ndarray]:
        """Every sentence as an int64 vector of token indices, refusing other dtypes (bool, float) and indices
        out of range by the sentence's position."""
        if isinstance(sentences, (str, bytes)) or not isinstance(sentences, (list, tuple)):
            raise ValueError(f"expected a list of sentences (lists of token indices), got {type(sentences).__name__}")
        out = []
        for i, s in enumerate(sentences):
            out.append(_token_ids(s, f"sentence {i}", self.n_classes))
        return out

    def _with_start(self, ids: list[np.ndarray]) -> list[np.ndarray]:
        return self._check_inputs([np.concatenate([[Vocabulary.START], a]).astype("int64") for a in ids])

    def predict(self, X: Any, batch_size: int = 64) -> list[np.ndarray]:
        """The most probable next token at every position of every sentence: ``len(s) + 1`` of them, the
        first after START (the sentence's first token) and the last after the whole sentence (END if it ends)."""
        return [lp.argmax(axis=-1) for lp in self._log_proba(self._with_start(self._sentences(X)), batch_size)]

    def predict_proba(self, X: Any, batch_size: int = 64) -> list[np.ndarray]:
        """Next-token probabilities ``(len(s) + 1, vocabulary size)`` for every sentence ``s`` (token indices
        without START, as ``fit`` and ``perplexity`` take them): row ``t`` is the distribution of the token
        after ``[START] + s[:t]``."""
        return [np.exp(lp) for lp in self._log_proba(self._with_start(self._sentences(X)), batch_size)]

    def _validation_pairs(self, data: Any) -> tuple[list[np.ndarray], list[Any]]:
        return self._pairs(data)

    def evaluate(self, X: Any, Y: Any = None, batch_size: int = 64) -> dict[str, float]:
        """Mean cost per predicted token, next-token accuracy and perplexity on the sentences ``X``."""
        stats = super().evaluate(X, Y, batch_size)
        return stats | {"perplexity": math.exp(stats["cost"])}

    def perplexity(self, sentences: Any, batch_size: int = 64) -> float:
        """``exp`` of the mean negative log-likelihood per predicted token (END included)."""
        return self.evaluate(sentences, batch_size=batch_size)["perplexity"]

    # -- generation --------------------------------------------------------------------------------------
    def _step_function(self) -> sf.Function:
        """(tokens, states...) -> (log-probabilities of the next tokens, new states...), one step for N lines."""
        if "step" not in self._functions:
            tokens = T.ivector("tokens")
            states_in: list[Variable] = []
            states_out: list[Variable] = []
            H = T.shape_padleft(self.layers[0].output(tokens))
            for layer in self.layers[1:]:
                if isinstance(layer, RecurrentUnit):
                    init = [T.matrix(f"{s}_in", dtype=sf.config.floatX) for s in layer.state_names]
                    stacked = layer.scan_states(H, init)
                    states_in += init
                    states_out += [s[-1] for s in stacked]
                    H = stacked[0]
                else:
                    H = layer.output(H)
            lp = T.nnet.log_softmax(self.out.output(H[-1]))
            self._functions["step"] = sf.function([tokens, *states_in], [lp, *states_out],
                                                  allow_input_downcast=True, mode=self.mode)
        return self._functions["step"]

    def generate(self, n_lines: int = 4, temperature: float = 1.0, max_length: int = 30, prefix: Any = None,
                 allow_unknown: bool = False, seed: int | None = None) -> list[Any]:
        """Sample ``n_lines`` lines token by token, each until END or ``max_length`` tokens.

        ``temperature`` < 1 sharpens the distribution (more likely tokens), > 1 flattens it. ``prefix``
        (token indices, or text when the model has a vocabulary) starts every line. Returns strings when
        the model has a vocabulary, else lists of token indices.
        """
        temperature = _check_number(temperature, "temperature", 0.0)
        n_lines = check_size(n_lines, "n_lines", 1)
        max_length = check_size(max_length, "max_length", 1)
        rng = np.random.default_rng(seed)
        start = self._encode_prefix(prefix)
        fn = self._step_function()
        states = [s for unit in self.units() for s in unit.initial_state_values(n_lines)]
        lines: list[list[int]] = [list(start) for _ in range(n_lines)]
        tokens = np.full(n_lines, Vocabulary.START, dtype="int32")
        for t in start:
            _, *states = fn(tokens, *states)
            tokens = np.full(n_lines, t, dtype="int32")
        done = np.zeros(n_lines, dtype=bool)
        banned = [Vocabulary.START] + ([] if allow_unknown or self.vocab is None else [self.vocab.unknown])
        for _ in range(max_length):
            lp, *states = fn(tokens, *states)
            logits = lp / temperature
            logits[:, banned] = -np.inf
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            tokens = (p.cumsum(axis=1) < rng.random((n_lines, 1))).sum(axis=1).clip(0, self.n_classes - 1)
            tokens = tokens.astype("int32")
            for i in np.flatnonzero(~done):
                if tokens[i] == Vocabulary.END:
                    done[i] = True
                else:
                    lines[i].append(int(tokens[i]))
            if done.all():
                break
        return [self.vocab.decode(line) for line in lines] if self.vocab is not None else lines

    def _encode_prefix(self, prefix: Any) -> list[int]:
        if prefix is None:
            return []
        if isinstance(prefix, str):
            if self.vocab is None:
                raise ValueError("a text prefix needs a model with a vocabulary; pass token indices instead")
            return self.vocab.encode(list(prefix) if self.vocab.joiner == "" else tokenize(prefix))
        return [int(i) for i in _token_ids(prefix, "prefix", self.n_classes, "text or ")]

    # -- word vectors ----------------------------------------------------------------------------------
    @property
    def embeddings(self) -> np.ndarray:
        """The word vectors ``We`` (V x D)."""
        return self.layers[0].params[0].get_value()

    def nearest(self, vector: np.ndarray, metric: str = "cosine", exclude: Sequence[int] = (),
                n: int = 1) -> list[tuple[int, float]]:
        """The ``n`` tokens whose vectors are closest to ``vector``: ``(index, distance)``, closest first."""
        We = self.embeddings
        vector = dtypes.as_plain_array(vector, "nearest's vector", ValueError)
        if vector.shape != (We.shape[1],) or vector.dtype.kind not in "iuf":
            raise ValueError(f"nearest's vector must be a real vector of length {We.shape[1]} (an embedding), got "
                             f"an array of shape {vector.shape} and dtype {vector.dtype}")
        n = check_size(n, "n", 1)
        if metric == "euclidean":
            d = np.linalg.norm(We - vector, axis=1)
        elif metric == "cosine":
            d = 1 - We @ vector / (np.linalg.norm(We, axis=1) * np.linalg.norm(vector) + 1e-12)
        else:
            raise ValueError(f"unknown metric {metric!r}; expected 'euclidean' or 'cosine'")
        special = [Vocabulary.START, Vocabulary.END] + ([self.vocab.unknown] if self.vocab is not None else [])
        d[[*special, *exclude]] = np.inf
        order = np.argsort(d, kind="stable")[:n]
        return [(int(i), float(d[i])) for i in order]

    def analogy(self, a: Any, b: Any, c: Any) -> dict[str, Any]:
        """The book's word analogy: the word closest to ``We[a] - We[b] + We[c]`` (a - b = ? - c, as in
        king - man = queen - woman), by Euclidean and by cosine distance, leaving out a, b and c."""
        ids = [self._token_index(w) for w in (a, b, c)]
        We = self.embeddings
        target = We[ids[0]] - We[ids[1]] + We[ids[2]]
        result = {}
        for metric in ("euclidean", "cosine"):
            (best, _), = self.nearest(target, metric, exclude=ids)
            result[metric] = self.vocab.idx2word[best] if self.vocab is not None else best
        return result

    def _token_index(self, token: Any) -> int:
        if isinstance(token, str):
            if self.vocab is None:
                raise ValueError("words need a model with a vocabulary; pass token indices instead")
            return self.vocab.index(token)
        if not 0 <= int(token) < self.n_classes:
            raise ValueError(f"token index {token} is not in [0, {self.n_classes})")
        return int(token)

    # -- save and load ---------------------------------------------------------------------------------
    def _extra_config(self) -> dict[str, Any]:
        return {"vocabulary": None if self.vocab is None else self.vocab.get_config()}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        vocab = extra.get("vocabulary")
        self.vocab = None if vocab is None else Vocabulary.from_config(vocab)
        if self.vocab is not None and len(self.vocab) != self.n_classes:
            raise ValueError(f"the saved vocabulary has {len(self.vocab)} tokens but the model predicts "
                             f"{self.n_classes}")


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load any model saved by ``save`` (a SequenceTagger, SequenceClassifier or LanguageModel)."""
    return SequenceModel.load(path)
