"""Training support: the per-epoch history, its plot, the progress bar, and batch order."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class History:
    """One entry per epoch: mean cost and accuracy on the training data (and validation data, if given),
    the learning rate used and the epoch's duration in seconds."""

    cost: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_cost: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cost)

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    def summary(self, i: int = -1) -> str:
        """One line describing epoch ``i``."""
        text = f"cost {self.cost[i]:.4f}  accuracy {self.accuracy[i]:.4f}"
        if self.val_cost:
            text += f"  val_cost {self.val_cost[i]:.4f}  val_accuracy {self.val_accuracy[i]:.4f}"
        return text + f"  lr {self.learning_rate[i]:.3g}  {self.seconds[i]:.1f}s"


def plot_history(history: History, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write the cost and accuracy curves of ``history`` to a PNG at ``path`` (needs matplotlib)."""
    if not len(history):
        raise ValueError("the history is empty: train the model (fit) before plotting")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_history needs matplotlib, which is not installed: pip install matplotlib "
                          "(or pip install 'symflow[models]')") from None
    epochs = np.arange(1, len(history) + 1)
    fig, (ax_cost, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_cost.plot(epochs, history.cost, label="train")
    ax_acc.plot(epochs, history.accuracy, label="train")
    if history.val_cost:
        ax_cost.plot(epochs, history.val_cost, label="validation")
        ax_acc.plot(epochs, history.val_accuracy, label="validation")
    for ax, name in ((ax_cost, "cost"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


class Progress:
    """A tqdm bar over one epoch's sequences showing the running cost and accuracy (plain prints when
    tqdm is missing, nothing when disabled)."""

    def __init__(self, total: int, description: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self.description = description
        self.bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=description, unit="seq", leave=True, dynamic_ncols=True)

    def update(self, n: int, cost: float, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(cost=f"{cost:.4f}", acc=f"{accuracy:.4f}", refresh=False)
            self.bar.update(n)

    def close(self, line: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(line, refresh=True)
            self.bar.close()
        elif self.enabled:
            print(f"{self.description}: {line}", flush=True)


def batch_order(n: int, batch_size: int, shuffle: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of the batches of one epoch (the last may be smaller)."""
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
