"""Layers that recurrent models are stacked from: the shared base class, activations, Embedding,
Dense, Dropout and the Bidirectional wrapper. The recurrent units themselves are in ``units.py``.

Every layer maps a time-major input to a time-major output with ``output(X, mask, train, truncate)``:
``X`` is ``(T, D)`` for one sequence (the book's layout) or ``(T, N, D)`` for a batch of ``N``
padded sequences with a ``(T, N)`` mask of ones and zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

import symflow as sf
import symflow.tensor as T
from symflow import SharedVariable, Variable

Activation = Callable[[Any], Variable]


def _linear(x: Any) -> Variable:
    return T.as_tensor_variable(x)


def _softmax_last_axis(x: Any) -> Variable:
    return T.nnet.softmax(x, axis=-1)


#: activations by name; a layer saves the name, so only these can be saved (a custom function cannot)
ACTIVATIONS: dict[str, Activation] = {
    "tanh": T.tanh,
    "sigmoid": T.nnet.sigmoid,
    "relu": T.nnet.relu,
    "hard_sigmoid": T.nnet.hard_sigmoid,
    "softplus": T.nnet.softplus,
    "linear": _linear,
    "softmax": _softmax_last_axis,
}


def get_activation(spec: str | Activation) -> tuple[str | None, Activation]:
    """``(name, function)`` for an activation given by name or as a function (``T.tanh``, ``T.nnet.relu``).

    A function that is not one of ``ACTIVATIONS`` is accepted with name None: it works but cannot be saved.
    """
    if isinstance(spec, str):
        if spec not in ACTIVATIONS:
            raise ValueError(f"unknown activation {spec!r}; expected one of {sorted(ACTIVATIONS)} or a function")
        return spec, ACTIVATIONS[spec]
    if not callable(spec):
        raise TypeError(f"activation must be a name or a function, got {type(spec).__name__} {spec!r}")
    for name, fn in ACTIVATIONS.items():
        if fn is spec:
            return name, fn
    return None, spec


def init_weight(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """The book's initialisation: standard normal scaled by ``1 / sqrt(n_in + n_out)``."""
    return rng.standard_normal((n_in, n_out)) / np.sqrt(n_in + n_out)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_size(value: Any, what: str, low: int = 1) -> int:
    """``value`` as an int (NumPy integers too, bools not), or a ValueError naming ``what`` when it is
    below ``low`` (1: a positive int; 0: a non-negative one)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{what} must be a {'non-negative' if low == 0 else 'positive'} int, got {value!r}")
    return int(value)


class Layer:
    """Base of every layer: named parameters, ``output``, and a config to rebuild it from a saved file."""

    #: registry of layer classes by name, used to rebuild saved models
    registry: ClassVar[dict[str, type[Layer]]] = {}
    #: attribute names of the trainable parameters, in the order of ``params``
    param_names: ClassVar[tuple[str, ...]] = ()
    #: True for layers that carry state along time (they take the mask and define ``last_step``)
    recurrent: ClassVar[bool] = False

    n_in: int
    n_out: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.__name__] = cls

    @property
    def params(self) -> list[SharedVariable]:
        return list(self.named_params().values())

    def named_params(self) -> dict[str, SharedVariable]:
        """Trainable parameters by a name unique within the layer (the file keys of ``save``)."""
        return {name: getattr(self, name) for name in self.param_names}

    def output(self, X: Any, mask: Any = None, train: bool = False, truncate: int = -1) -> Variable:
        """The layer's output for time-major ``X``; ``train`` turns dropout on, ``truncate`` limits BPTT."""
        raise NotImplementedError

    def last_step(self, H: Variable) -> Variable:
        """The summary of a whole sequence in this layer's output ``H`` (the last step)."""
        return H[-1]

    def output_size(self, n_in: int) -> int:
        """The size of the output for inputs of size ``n_in``, refusing sizes this layer cannot take."""
        if n_in != self.n_in:
            raise ValueError(f"{type(self).__name__} takes inputs of size {self.n_in}, but the layer before it "
                             f"gives {n_in}")
        return self.n_out

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (weights aside)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | np.random.Generator | None = None) -> Layer:
        return cls(**config, seed=seed)

    def _shared(self, name: str, value: np.ndarray) -> SharedVariable:
        return sf.shared(value.astype(sf.config.floatX), name=f"{type(self).__name__}.{name}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def layer_from_config(config: dict[str, Any], seed: int | np.random.Generator | None = None) -> Layer:
    """Rebuild a layer from ``{"type": class name, "config": {...}}``."""
    kind = config.get("type")
    if kind not in Layer.registry:
        raise ValueError(f"unknown layer type {kind!r}; expected one of {sorted(Layer.registry)}")
    return Layer.registry[kind].from_config(dict(config.get("config", {})), seed=seed)


def layer_config(layer: Layer) -> dict[str, Any]:
    return {"type": type(layer).__name__, "config": layer.get_config()}


class Embedding(Layer):
    """Word vectors: row ``i`` of ``We`` (V x D) represents token ``i`` (the book's ``We[thX]``)."""

    param_names = ("We",)

    def __init__(self, vocab_size: int, dim: int, seed: int | np.random.Generator | None = None) -> None:
        self.n_in = check_size(vocab_size, "vocab_size")
        self.n_out = check_size(dim, "embedding dim")
        self.We = self._shared("We", init_weight(as_rng(seed), self.n_in, self.n_out))

    def output(self, X: Any, mask: Any = None, train: bool = False, truncate: int = -1) -> Variable:
        X = T.as_tensor_variable(X)
        if X.dtype not in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"):
            raise TypeError(f"Embedding needs integer token indices, got {X.describe()}")
        if X.ndim <= 1:
            return self.We[X]
        # rows of a flat index, reshaped: the numba backend cannot index by an int matrix yet
        rows = self.We[X.flatten()]
        return rows.reshape((*(X.shape[i] for i in range(X.ndim)), self.n_out))

    def get_config(self) -> dict[str, Any]:
        return {"vocab_size": self.n_in, "dim": self.n_out}


class Dense(Layer):
    """A fully connected layer ``f(x Wo + bo)`` applied at every step (softmax: over the last axis)."""

    param_names = ("Wo", "bo")

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "linear",
                 seed: int | np.random.Generator | None = None) -> None:
        self.n_in = check_size(n_in, "n_in")
        self.n_out = check_size(n_out, "n_out")
        self.activation_name, self.f = get_activation(activation)
        self.Wo = self._shared("Wo", init_weight(as_rng(seed), self.n_in, self.n_out))
        self.bo = self._shared("bo", np.zeros(self.n_out))

    def output(self, X: Any, mask: Any = None, train: bool = False, truncate: int = -1) -> Variable:
        return self.f(T.dot(X, self.Wo) + self.bo)

    def get_config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation_name}


class Dropout(Layer):
    """Inverted dropout: while training, zero each value with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)``; at prediction time the identity."""

    def __init__(self, rate: float, seed: int | np.random.Generator | None = None, stream_seed: int | None = None
                 ) -> None:
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
        if stream_seed is not None and (isinstance(stream_seed, bool) or not isinstance(stream_seed, int)):
            raise ValueError(f"stream_seed must be an int, got {stream_seed!r}")
        self.rate = float(rate)
        self.srng = sf.RandomStreams(int(as_rng(seed).integers(2**31)) if stream_seed is None else stream_seed)

    def output(self, X: Any, mask: Any = None, train: bool = False, truncate: int = -1) -> Variable:
        X = T.as_tensor_variable(X)
        if not train or self.rate == 0.0:
            return X
        keep = 1.0 - self.rate
        return X * self.srng.binomial(X.shape, p=keep, dtype=X.dtype) / keep

    def output_size(self, n_in: int) -> int:
        return n_in

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "stream_seed": self.srng.initial_seed}  # every load draws the same masks


class Bidirectional(Layer):
    """Run one unit forwards and another backwards over the sequence and concatenate their outputs
    step by step (seed 003's Keras ``Bidirectional``); the backward unit is a fresh copy by default."""

    recurrent = True

    def __init__(self, forward: Any, backward: Any = None, seed: int | np.random.Generator | None = None) -> None:
        from .units import RecurrentUnit, unit_from_config

        if isinstance(forward, dict):
            forward = unit_from_config(forward, seed)
        if backward is None:
            backward = type(forward).from_config(forward.get_config(), seed=as_rng(seed))
        elif isinstance(backward, dict):
            backward = unit_from_config(backward, seed)
        for unit in (forward, backward):
            if not isinstance(unit, RecurrentUnit):
                raise TypeError(f"Bidirectional wraps recurrent units, got {type(unit).__name__}")
            if unit.stateful:
                raise ValueError("Bidirectional cannot wrap a stateful unit: the backward pass reads the future")
        if forward.n_in != backward.n_in:
            raise ValueError(f"forward and backward units take different input sizes ({forward.n_in} and "
                             f"{backward.n_in})")
        self.forward, self.backward = forward, backward
        self.n_in = forward.n_in
        self.n_out = forward.n_out + backward.n_out

    def named_params(self) -> dict[str, SharedVariable]:
        named = {f"forward.{k}": v for k, v in self.forward.named_params().items()}
        named.update({f"backward.{k}": v for k, v in self.backward.named_params().items()})
        return named

    def output(self, X: Any, mask: Any = None, train: bool = False, truncate: int = -1) -> Variable:
        X = T.as_tensor_variable(X)
        H_f = self.forward.output(X, mask, train, truncate)
        H_b = self.backward.output(X[::-1], None if mask is None else T.as_tensor_variable(mask)[::-1],
                                   train, truncate)[::-1]
        return T.concatenate([H_f, H_b], axis=H_f.ndim - 1)

    def last_step(self, H: Variable) -> Variable:
        """Forward state after the whole sequence (last step) joined to the backward one (first step)."""
        split = self.forward.n_out
        rest = (slice(None),) * (H.ndim - 2)
        return T.concatenate([H[(-1, *rest, slice(None, split))], H[(0, *rest, slice(split, None))]],
                             axis=H.ndim - 2)

    def get_config(self) -> dict[str, Any]:
        return {"forward": layer_config(self.forward), "backward": layer_config(self.backward)}
