"""The benchmark models in PyTorch (CPU, eager, float64), in two forms.

``cell="book"``: the book's cell equations in a Python loop over time, autograd for the gradients.
``cell="nn"``: torch's own nn.GRU / nn.LSTM layers. Their equations differ from the book's (the GRU
applies the reset gate after the matrix product, the LSTM has no peepholes), so they are a different
model, timed for reference. Both take the same momentum-SGD step on all parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set (it can be set once per process)
    pass
torch.manual_seed(1234)


class TorchTrainer:
    """Named parameter tensors, their momenta, and a forward function giving the cost (and outputs)."""

    def __init__(self, params: dict[str, torch.Tensor], forward: Callable[..., Any], lr: float, mu: float,
                 extra_outputs: bool = False) -> None:
        self.params = params
        self.tensors = list(params.values())
        self.dparams = [torch.zeros_like(p) for p in self.tensors]
        self.forward = forward
        self.lr, self.mu = lr, mu
        self.extra_outputs = extra_outputs

    def train(self, *inputs: np.ndarray) -> Any:
        out = self.forward(*(torch.from_numpy(a) for a in inputs))
        cost = out[0] if self.extra_outputs else out
        grads = torch.autograd.grad(cost, self.tensors)
        with torch.no_grad():
            for p, dp, g in zip(self.tensors, self.dparams, grads, strict=True):
                dp.mul_(self.mu).sub_(g, alpha=self.lr)  # dp = mu*dp - lr*g
                p.add_(dp)
        if self.extra_outputs:
            return [cost.detach(), *(o.detach() for o in out[1:])]
        return cost.detach()

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.params.items()}

    def get_momenta(self) -> dict[str, np.ndarray]:
        return {k: dp.numpy().copy() for k, dp in zip(self.params, self.dparams, strict=True)}


def _tensors(init: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}


def parity(init: dict[str, np.ndarray], lr: float, mu: float, cell: str = "book") -> TorchTrainer:
    """The book's SimpleRNN with sigmoid; train(x (T, 1), y (T,)) -> [cost, prediction]."""
    if cell != "book":
        raise ValueError("nn.RNN has no sigmoid nonlinearity; only the book's cell is benchmarked for parity")
    p = _tensors(init)

    def forward(x, y):
        h, hs = p["h0"], []
        for t in range(x.shape[0]):
            h = torch.sigmoid(x[t] @ p["Wx"] + h @ p["Wh"] + p["bh"])
            hs.append(h)
        logits = torch.stack(hs) @ p["Wo"] + p["bo"]
        return F.cross_entropy(logits, y.long()), logits.argmax(dim=1)

    return TorchTrainer(p, forward, lr, mu, extra_outputs=True)


def gru_cell(p: dict[str, torch.Tensor], x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The book's GRU step with tanh for the candidate activation."""
    r = torch.sigmoid(x_t @ p["Wxr"] + h @ p["Whr"] + p["br"])
    z = torch.sigmoid(x_t @ p["Wxz"] + h @ p["Whz"] + p["bz"])
    hhat = torch.tanh(x_t @ p["Wxh"] + (r * h) @ p["Whh"] + p["bh"])
    return (1 - z) * h + z * hhat


def lstm_cell(p: dict[str, torch.Tensor], x_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's LSTM step with full peephole matrices Wci, Wcf, Wco."""
    i = torch.sigmoid(x_t @ p["Wxi"] + h @ p["Whi"] + c @ p["Wci"] + p["bi"])
    f = torch.sigmoid(x_t @ p["Wxf"] + h @ p["Whf"] + c @ p["Wcf"] + p["bf"])
    c = f * c + i * torch.tanh(x_t @ p["Wxc"] + h @ p["Whc"] + p["bc"])
    o = torch.sigmoid(x_t @ p["Wxo"] + h @ p["Who"] + c @ p["Wco"] + p["bo"])
    return o * torch.tanh(c), c


def _book_hidden(unit: str, p: dict[str, torch.Tensor], z: torch.Tensor, h: torch.Tensor,
                 c: torch.Tensor | None) -> torch.Tensor:
    hs = []
    for t in range(z.shape[0]):
        if unit == "gru":
            h = gru_cell(p, z[t], h)
        else:
            h, c = lstm_cell(p, z[t], h, c)
        hs.append(h)
    return torch.stack(hs)


class NNModel(nn.Module):
    """Embeddings, torch's nn.GRU or nn.LSTM, a linear output layer, and learned initial states."""

    def __init__(self, unit: str, init: dict[str, np.ndarray]) -> None:
        super().__init__()
        v, d = init["We"].shape
        m = init["h0"].shape[0]
        self.unit = unit
        self.rnn = (nn.GRU if unit == "gru" else nn.LSTM)(d, m).double()
        self.We = nn.Parameter(torch.tensor(init["We"]))
        self.Wout = nn.Parameter(torch.tensor(init["Wout"]))
        self.bout = nn.Parameter(torch.tensor(init["bout"]))
        self.h0 = nn.Parameter(torch.tensor(init["h0"]))
        if unit == "lstm":
            self.c0 = nn.Parameter(torch.tensor(init["c0"]))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states (T, B, M) for token indices x of shape (T, B)."""
        batch = x.shape[1]
        h0 = self.h0.expand(1, batch, -1).contiguous()
        if self.unit == "gru":
            out, _ = self.rnn(self.We[x], h0)
        else:
            out, _ = self.rnn(self.We[x], (h0, self.c0.expand(1, batch, -1).contiguous()))
        return out


def language_model(unit: str, init: dict[str, np.ndarray], lr: float, mu: float, cell: str = "book") -> TorchTrainer:
    """One GRU or LSTM layer language model; train(x (T,), y (T,)) -> cost."""
    if cell == "nn":
        model = NNModel(unit, init)

        def forward(x, y):
            h = model.hidden(x[:, None])[:, 0]
            return F.cross_entropy(h @ model.Wout + model.bout, y.long())

        return TorchTrainer(dict(model.named_parameters()), forward, lr, mu)

    p = _tensors(init)

    def forward(x, y):
        h = _book_hidden(unit, p, p["We"][x], p["h0"], p.get("c0"))
        return F.cross_entropy(h @ p["Wout"] + p["bout"], y.long())

    return TorchTrainer(p, forward, lr, mu)


def minibatch(init: dict[str, np.ndarray], lr: float, mu: float, cell: str = "book") -> TorchTrainer:
    """The LSTM language model on padded (T, B) batches; train(X, Y, mask) -> masked mean cross-entropy.

    Padding sits at the end of each column, so masking the loss is enough: padded steps cannot
    influence any unmasked output, exactly as with packed sequences.
    """
    def masked_loss(h, y, mask):
        logits = (h @ params["Wout"] + params["bout"]).reshape(-1, params["bout"].shape[0])
        losses = F.cross_entropy(logits, y.reshape(-1).long(), reduction="none")
        return (losses * mask.reshape(-1)).sum() / mask.sum()

    if cell == "nn":
        model = NNModel("lstm", init)
        params = dict(model.named_parameters())
        return TorchTrainer(params, lambda x, y, mask: masked_loss(model.hidden(x), y, mask), lr, mu)

    params = _tensors(init)

    def forward(x, y, mask):
        batch = x.shape[1]
        h0 = params["h0"].expand(batch, -1)
        c0 = params["c0"].expand(batch, -1)
        return masked_loss(_book_hidden("lstm", params, params["We"][x], h0, c0), y, mask)

    return TorchTrainer(params, forward, lr, mu)
