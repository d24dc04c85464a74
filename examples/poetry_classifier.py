"""Chapter 4: who wrote this line, Robert Frost or Edgar Allan Poe? A recurrent classifier reads the
words of a verse line and answers from its state after the last word.

The book classifies sequences of part-of-speech tags and aims above 90% validation accuracy; here the
model reads the words themselves through learned word vectors. Both classes get the same number of
lines, and a fifth of them is held out for validation.

    python examples/poetry_classifier.py --data path/to/poems_dir   # holds both .txt files
"""

from __future__ import annotations

from pathlib import Path

import _common  # first: it limits BLAS threads before NumPy loads
import numpy as np

from models import SequenceClassifier, Vocabulary, read_poems

FILES = ("edgar_allan_poe.txt", "robert_frost.txt")  # labels 0 and 1, as in the book


def main(argv: list[str] | None = None) -> float:
    p = _common.parser("poetry_classifier", __doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="directory holding edgar_allan_poe.txt and robert_frost.txt "
                                                "(default: $SYMFLOW_DATA)")
    p.add_argument("--samples-per-class", type=int, default=None, help="lines per poet (default: as many as the "
                                                                       "smaller file has)")
    p.add_argument("--vocab-size", type=int, default=2000, help="most frequent words kept (others: UNKNOWN)")
    p.add_argument("--unit", default="gru", help="recurrent unit: simple, rated, gru or lstm")
    p.add_argument("--activation", default="tanh", help="activation of the recurrent unit")
    p.add_argument("--embed", type=int, default=30, help="word vector size")
    p.add_argument("--hidden", type=int, default=30, help="hidden units")
    p.add_argument("--bidirectional", action="store_true", help="read each line both ways")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout after the recurrent layer")
    p.add_argument("--epochs", type=_common.positive_int, default=10, help="training epochs")
    p.add_argument("--batch-size", type=int, default=16, help="lines per update (1: the book's way)")
    p.add_argument("--optimizer", default="adam", help="momentum (the book), nesterov, sgd, rmsprop or adam")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--mu", type=float, default=0.99, help="momentum (momentum and nesterov only)")
    p.add_argument("--lr-decay", type=float, default=0.9999, help="learning-rate factor per epoch (the book's)")
    args = p.parse_args(argv)
    if args.data is not None and not Path(args.data).is_dir():
        p.error(f"--data must be a directory holding {' and '.join(FILES)}")
    out = _common.setup(args)

    rng = np.random.default_rng(args.seed)
    by_poet = [[line for line in read_poems(_common.data_file(args, name)) if len(line) > 1] for name in FILES]
    n = min(args.samples_per_class or 10**9, *(len(lines) for lines in by_poet))
    by_poet = [[lines[i] for i in rng.permutation(len(lines))[:n]] for lines in by_poet]
    vocab = Vocabulary.build((line for lines in by_poet for line in lines), args.vocab_size)
    X = [vocab.encode(line) for lines in by_poet for line in lines]
    Y = np.repeat(np.arange(len(FILES)), n)
    order = rng.permutation(len(X))
    n_valid = len(X) // 5
    valid, train = order[:n_valid], order[n_valid:]
    print(f"{n} lines per poet, vocabulary of {len(vocab)} tokens, {len(train)} training and {n_valid} "
          "validation lines")

    model = SequenceClassifier(n_in=args.embed, n_classes=2, hidden=args.hidden, unit=args.unit,
                               activation=args.activation, vocab_size=len(vocab), dropout=args.dropout,
                               bidirectional=args.bidirectional, seed=args.seed)
    model.fit([X[i] for i in train], Y[train], epochs=args.epochs, learning_rate=args.lr, mu=args.mu,
              optimizer=args.optimizer, lr_decay=args.lr_decay, batch_size=args.batch_size, seed=args.seed,
              validation_data=([X[i] for i in valid], Y[valid]), progress=not args.quiet)
    accuracy = model.evaluate([X[i] for i in valid], Y[valid])["accuracy"]
    print(f"validation accuracy: {accuracy:.4f}")
    _common.save_outputs(model, out, "poetry_classifier", "Frost vs Poe")
    return accuracy


if __name__ == "__main__":
    main()
