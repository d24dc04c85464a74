"""Chapter 2: the parity problem. A simple recurrent network reads 12 bits one at a time and says, at
every step, whether it has seen an odd number of ones so far; it reaches 100% on all 4096 sequences.

    python examples/parity.py                      # SimpleRNN(16, tanh), minibatches of 32, momentum
    python examples/parity.py --hidden 4 --activation sigmoid --batch-size 1 --lr 0.01 --mu 0.99
                                                   # the book's exact settings (slower, seed-sensitive)
"""

from __future__ import annotations

import _common  # first: it limits BLAS threads before NumPy loads
import numpy as np

from models import SequenceTagger


def parity_pairs(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``2**n_bits`` bit strings as ``(N, n_bits, 1)`` inputs, and the running parity as ``(N, n_bits)`` labels."""
    codes = np.arange(2**n_bits)[:, None]
    X = ((codes >> np.arange(n_bits)) & 1).astype("float64")
    Y = (np.cumsum(X, axis=1) % 2).astype("int32")
    return X[:, :, None], Y


def main(argv: list[str] | None = None) -> float:
    p = _common.parser("parity", __doc__.split("\n\n")[0])
    p.add_argument("--bits", type=int, default=12, help="length of the bit strings")
    p.add_argument("--unit", default="simple", help="recurrent unit: simple, rated, gru or lstm")
    p.add_argument("--hidden", type=int, default=16, help="hidden units")
    p.add_argument("--activation", default="tanh", help="activation of the recurrent unit")
    p.add_argument("--epochs", type=_common.positive_int, default=30,
                   help="maximum epochs (training stops at 100%% accuracy)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per update (1: the book's way)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--mu", type=float, default=0.9, help="momentum")
    args = p.parse_args(argv)
    out = _common.setup(args)

    X, Y = parity_pairs(args.bits)
    model = SequenceTagger(n_in=1, n_classes=2, hidden=args.hidden, unit=args.unit, activation=args.activation,
                           seed=args.seed)
    history = model.fit(X, Y, epochs=args.epochs, learning_rate=args.lr, mu=args.mu, batch_size=args.batch_size,
                        seed=args.seed, progress=not args.quiet, stop_at_accuracy=1.0)
    final = model.evaluate(X, Y)["accuracy"]
    last_bit = np.mean([p[-1] == y[-1] for p, y in zip(model.predict(X), Y, strict=True)])
    print(f"epochs: {len(history)}  accuracy over all steps: {final:.4f}  parity of the whole string: {last_bit:.4f}")
    _common.save_outputs(model, out, "parity", f"{args.bits}-bit parity")
    return final


if __name__ == "__main__":
    main()
