"""The book's recurrent units (chapters 1 and 5) as interchangeable layers built on ``symflow.scan``.

    unit = GRU(n_in=30, n_out=30, activation="relu")
    H = unit.output(X)          # X: (T, D) one sequence, or (T, N, D) a padded batch with a mask

Each unit keeps the book's parameter names (``Wx``, ``Wh``, ``bh``, ``h0`` ... ``Wci``, ``Wcf``, ``Wco``),
learns its initial state(s), and takes any activation for the candidate state. The input-to-hidden
products of all steps are computed before the loop (one large dot instead of one per step); only the
hidden-to-hidden work happens inside ``scan``. A ``stateful`` unit starts each call from the state the
previous call ended in (until ``reset_states()``), for long texts fed in consecutive pieces.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import symflow as sf
import symflow.tensor as T
from symflow import SharedVariable, Variable

from .layers import Activation, Layer, as_rng, check_size, get_activation, init_weight, layer_from_config


class RecurrentUnit(Layer):
    """Shared machinery: parameters, initial states, masking, statefulness and the scan loop.

    Subclasses list their parameters, say which (weight, bias) pairs project the input, and write
    ``step(projections..., previous states...) -> new states``; the first state is the output ``h``.
    """

    recurrent = True
    #: names of the states carried from step to step; the first is the output h(t)
    state_names: ClassVar[tuple[str, ...]] = ("h",)

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "tanh", stateful: bool = False,
                 seed: int | np.random.Generator | None = None) -> None:
        self.n_in = check_size(n_in, "n_in")
        self.n_out = check_size(n_out, "n_out")
        self.activation_name, self.f = get_activation(activation)
        if not isinstance(stateful, (bool, np.bool_)):  # bool("no") is True: a damaged file must not say so
            raise ValueError(f"stateful must be True or False, got {stateful!r}")
        self.stateful = bool(stateful)
        self._init_params(as_rng(seed))
        #: per input rank (2: one sequence, 3: a batch): the "start fresh" flag and the carried states
        self._carried: dict[int, tuple[SharedVariable, list[SharedVariable]]] = {}
        #: (shared, expression) pairs a function must apply to carry the state (stateful units only)
        self.state_updates: list[tuple[SharedVariable, Variable]] = []

    # -- to define in subclasses -----------------------------------------------------------------------
    def _init_params(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def input_projections(self) -> list[tuple[SharedVariable, SharedVariable]]:
        """The (input weight, bias) pairs whose products ``x(t) W + b`` feed ``step``."""
        raise NotImplementedError

    def step(self, *args: Variable) -> list[Variable]:
        """One step: the input projections at time t, then the previous states; returns the new states."""
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------------------------------
    def _weights(self, rng: np.random.Generator, **shapes: tuple[int, int]) -> None:
        for name, (rows, cols) in shapes.items():
            setattr(self, name, self._shared(name, init_weight(rng, rows, cols)))

    def _zeros(self, *names: str) -> None:
        for name in names:
            setattr(self, name, self._shared(name, np.zeros(self.n_out)))

    # -- the loop ---------------------------------------------------------------------------------------
    def initial_states(self, X: Variable) -> list[Variable]:
        """The learned initial states, repeated over the batch when ``X`` is a batch."""
        inits = [getattr(self, f"{s}0") for s in self.state_names]
        if X.ndim == 3:
            zeros = T.zeros((X.shape[1], self.n_out), dtype=inits[0].dtype)
            inits = [zeros + s0 for s0 in inits]
        return inits

    def scan_states(self, X: Any, initial: list[Any], mask: Any = None, truncate: int = -1) -> list[Variable]:
        """Run the recurrence over time-major ``X`` from the given states; returns every state stacked over
        time (``(T, M)`` or ``(T, N, M)``). Where ``mask`` is 0 (padding) a state keeps its previous value."""
        X = self._check_input(X)
        sequences = [T.dot(X, W) + b for W, b in self.input_projections()]
        n_proj, n_states = len(sequences), len(self.state_names)
        if mask is not None:
            mask = T.as_tensor_variable(mask)
            if mask.ndim != X.ndim - 1:
                raise ValueError(f"the mask must have one dimension less than the input ({X.ndim - 1}), "
                                 f"got {mask.describe()}")
            sequences.append(T.shape_padright(mask.astype(sf.config.floatX)))

        def recurrence(*args: Variable) -> list[Variable]:
            previous = args[len(sequences):len(sequences) + n_states]
            new = self.step(*args[:n_proj], *previous)
            if mask is None:
                return new
            m_t = args[n_proj]
            return [m_t * s + (1 - m_t) * p for s, p in zip(new, previous, strict=True)]

        states, _ = sf.scan(recurrence, sequences=sequences, outputs_info=list(initial),
                            truncate_gradient=truncate, return_list=True, name=type(self).__name__)
        return states

    def output(self, X: Any, mask: Any = None, train: bool = False, truncate: int = -1) -> Variable:
        """h(t) for every step of ``X`` (``(T, D)`` or ``(T, N, D)``), starting from h0 (or the carried state)."""
        X = self._check_input(X)
        initial = self.initial_states(X)
        if self.stateful:
            fresh, carried = self._carried_states(X.ndim)
            initial = [T.switch(fresh, s0, c) for s0, c in zip(initial, carried, strict=True)]
        states = self.scan_states(X, initial, mask, truncate)
        if self.stateful:
            self.state_updates = [(c, s[-1]) for c, s in zip(carried, states, strict=True)]
            self.state_updates.append((fresh, T.constant(np.array(0, dtype="int8"))))
        return states[0]

    def _check_input(self, X: Any) -> Variable:
        X = T.as_tensor_variable(X)
        if X.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__} takes a (T, D) sequence or a (T, N, D) batch, "
                             f"got {X.describe()}")
        return X

    # -- statefulness ---------------------------------------------------------------------------------
    def _carried_states(self, ndim: int) -> tuple[SharedVariable, list[SharedVariable]]:
        if ndim not in self._carried:
            shape = (self.n_out,) if ndim == 2 else (1, self.n_out)
            fresh = sf.shared(np.array(1, dtype="int8"), name=f"{type(self).__name__}.fresh")
            carried = [sf.shared(np.zeros(shape, dtype=sf.config.floatX), name=f"{type(self).__name__}.{s}_carried")
                       for s in self.state_names]
            self._carried[ndim] = (fresh, carried)
        return self._carried[ndim]

    def reset_states(self) -> None:
        """Start the next call from the learned initial states again."""
        for fresh, _ in self._carried.values():
            fresh.set_value(np.array(1, dtype="int8"))

    def prepare_batch(self, batch_size: int) -> None:
        """Size the carried batch state for ``batch_size`` sequences (call before each batched call)."""
        if not self.stateful or 3 not in self._carried:
            return
        fresh, carried = self._carried[3]
        held = carried[0].get_value(borrow=True).shape[0]
        if held == batch_size:
            return
        if not fresh.get_value():
            raise ValueError(f"this stateful {type(self).__name__} carries the state of {held} sequences but was "
                             f"given {batch_size}; call reset_states() before changing the batch size")
        for c in carried:
            c.set_value(np.zeros((batch_size, self.n_out), dtype=c.dtype))

    def initial_state_values(self, batch_size: int) -> list[np.ndarray]:
        """The learned initial states as arrays, repeated for ``batch_size`` sequences."""
        return [np.tile(getattr(self, f"{s}0").get_value(), (batch_size, 1)) for s in self.state_names]

    def get_config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation_name,
                "stateful": self.stateful}


class SimpleRNN(RecurrentUnit):
    """The Elman unit (chapter 1): ``h(t) = f(x(t) Wx + h(t-1) Wh + bh)``."""

    param_names = ("Wx", "Wh", "bh", "h0")

    def _init_params(self, rng: np.random.Generator) -> None:
        M = self.n_out
        self._weights(rng, Wx=(self.n_in, M), Wh=(M, M))
        self._zeros("bh", "h0")

    def input_projections(self) -> list[tuple[SharedVariable, SharedVariable]]:
        return [(self.Wx, self.bh)]

    def step(self, xh: Variable, h: Variable) -> list[Variable]:  # type: ignore[override]
        return [self.f(xh + h.dot(self.Wh))]


class RatedRNN(RecurrentUnit):
    """The book's rated recurrent unit (chapter 5): a rate ``z(t)`` mixes the old state with the Elman one.

    ``hhat = f(x Wx + h Wh + bh)``, ``z = sigmoid(x Wxz + h Whz + bz)``, ``h(t) = (1 - z) h(t-1) + z hhat``.
    """

    param_names = ("Wx", "Wh", "bh", "Wxz", "Whz", "bz", "h0")

    def _init_params(self, rng: np.random.Generator) -> None:
        M = self.n_out
        self._weights(rng, Wx=(self.n_in, M), Wh=(M, M), Wxz=(self.n_in, M), Whz=(M, M))
        self._zeros("bh", "bz", "h0")

    def input_projections(self) -> list[tuple[SharedVariable, SharedVariable]]:
        return [(self.Wx, self.bh), (self.Wxz, self.bz)]

    def step(self, xh: Variable, xz: Variable, h: Variable) -> list[Variable]:  # type: ignore[override]
        hhat = self.f(xh + h.dot(self.Wh))
        z = T.nnet.sigmoid(xz + h.dot(self.Whz))
        return [(1 - z) * h + z * hhat]


class GRU(RecurrentUnit):
    """Gated recurrent unit (chapter 5): reset gate ``r``, update gate ``z``, candidate
    ``hhat = f(x Wxh + (r * h(t-1)) Whh + bh)``, ``h(t) = (1 - z) h(t-1) + z hhat``."""

    param_names = ("Wxr", "Whr", "br", "Wxz", "Whz", "bz", "Wxh", "Whh", "bh", "h0")

    def _init_params(self, rng: np.random.Generator) -> None:
        D, M = self.n_in, self.n_out
        self._weights(rng, Wxr=(D, M), Whr=(M, M), Wxz=(D, M), Whz=(M, M), Wxh=(D, M), Whh=(M, M))
        self._zeros("br", "bz", "bh", "h0")

    def input_projections(self) -> list[tuple[SharedVariable, SharedVariable]]:
        return [(self.Wxr, self.br), (self.Wxz, self.bz), (self.Wxh, self.bh)]

    def step(self, xr: Variable, xz: Variable, xh: Variable, h: Variable) -> list[Variable]:  # type: ignore[override]
        r = T.nnet.sigmoid(xr + h.dot(self.Whr))
        z = T.nnet.sigmoid(xz + h.dot(self.Whz))
        hhat = self.f(xh + (r * h).dot(self.Whh))
        return [(1 - z) * h + z * hhat]


class LSTM(RecurrentUnit):
    """LSTM with the book's full peephole matrices (chapter 5): the input and forget gates see ``c(t-1)``
    through ``Wci``, ``Wcf``; the output gate sees the new ``c(t)`` through ``Wco``.

    ``c(t) = f c(t-1) + i act(x Wxc + h Whc + bc)``, ``h(t) = o act(c(t))``; ``act`` is the activation (tanh).
    """

    param_names = ("Wxi", "Whi", "Wci", "bi", "Wxf", "Whf", "Wcf", "bf", "Wxc", "Whc", "bc",
                   "Wxo", "Who", "Wco", "bo", "h0", "c0")
    state_names = ("h", "c")

    def _init_params(self, rng: np.random.Generator) -> None:
        D, M = self.n_in, self.n_out
        self._weights(rng, Wxi=(D, M), Whi=(M, M), Wci=(M, M), Wxf=(D, M), Whf=(M, M), Wcf=(M, M),
                      Wxc=(D, M), Whc=(M, M), Wxo=(D, M), Who=(M, M), Wco=(M, M))
        self._zeros("bi", "bf", "bc", "bo", "h0", "c0")

    def input_projections(self) -> list[tuple[SharedVariable, SharedVariable]]:
        return [(self.Wxi, self.bi), (self.Wxf, self.bf), (self.Wxc, self.bc), (self.Wxo, self.bo)]

    def step(self, xi: Variable, xf: Variable, xc: Variable, xo: Variable,  # type: ignore[override]
             h: Variable, c: Variable) -> list[Variable]:
        i = T.nnet.sigmoid(xi + h.dot(self.Whi) + c.dot(self.Wci))
        f = T.nnet.sigmoid(xf + h.dot(self.Whf) + c.dot(self.Wcf))
        c_new = f * c + i * self.f(xc + h.dot(self.Whc))
        o = T.nnet.sigmoid(xo + h.dot(self.Who) + c_new.dot(self.Wco))
        return [o * self.f(c_new), c_new]


#: units by the names used on command lines and in configs (lower case)
UNITS: dict[str, type[RecurrentUnit]] = {
    "simple": SimpleRNN, "elman": SimpleRNN, "simplernn": SimpleRNN, "rated": RatedRNN, "ratedrnn": RatedRNN,
    "gru": GRU, "lstm": LSTM,
}


def unit_class(name: str | type[RecurrentUnit]) -> type[RecurrentUnit]:
    """The unit class for a name (``"simple"``, ``"rated"``, ``"gru"``, ``"lstm"``, any case) or a class."""
    if isinstance(name, type) and issubclass(name, RecurrentUnit):
        return name
    if isinstance(name, str) and name.lower() in UNITS:
        return UNITS[name.lower()]
    raise ValueError(f"unknown recurrent unit {name!r}; expected one of {sorted(UNITS)} or a RecurrentUnit class")


def unit_from_config(config: dict[str, Any], seed: int | np.random.Generator | None = None) -> RecurrentUnit:
    layer = layer_from_config(config, seed)
    if not isinstance(layer, RecurrentUnit):
        raise ValueError(f"expected a recurrent unit, got a {type(layer).__name__}")
    return layer
