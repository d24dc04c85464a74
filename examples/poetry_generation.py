"""Chapter 4: a language model of Robert Frost's poems that writes new lines.

Each verse line is a sequence of words; the model reads START and the words and predicts, at every
step, the next word (END after the last). Sampling from it word by word gives new lines.

    python examples/poetry_generation.py --data path/to/robert_frost.txt
    python examples/poetry_generation.py --optimizer momentum --lr 1e-3 --mu 0.99 --batch-size 1
                                                   # the book's training: one line per update
"""

from __future__ import annotations

import _common  # first: it limits BLAS threads before NumPy loads

from models import LanguageModel, Vocabulary, read_poems

DATA = "robert_frost.txt"


def main(argv: list[str] | None = None) -> list[str]:
    p = _common.parser("poetry_generation", __doc__.split("\n\n")[0])
    _common.add_data_argument(p, DATA)
    p.add_argument("--vocab-size", type=int, default=2000, help="most frequent words kept (others: UNKNOWN)")
    p.add_argument("--unit", default="simple", help="recurrent unit: simple, rated, gru or lstm")
    p.add_argument("--activation", default="tanh", help="activation of the recurrent unit")
    p.add_argument("--embed", type=int, default=30, help="word vector size D")
    p.add_argument("--hidden", type=int, nargs="+", default=[30], help="hidden sizes, one per stacked layer")
    p.add_argument("--epochs", type=_common.positive_int, default=20, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="lines per update (1: the book's way)")
    p.add_argument("--optimizer", default="adam", help="momentum (the book), nesterov, sgd, rmsprop or adam")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--mu", type=float, default=0.99, help="momentum (momentum and nesterov only)")
    p.add_argument("--max-lines", type=int, default=None, help="train on the first N lines only")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (<1: safer words)")
    p.add_argument("--lines", type=int, default=4, help="lines to generate")
    args = p.parse_args(argv)
    out = _common.setup(args)

    poems = read_poems(_common.data_file(args, DATA))[: args.max_lines]
    vocab = Vocabulary.build(poems, args.vocab_size)
    sentences = [vocab.encode(line) for line in poems]
    print(f"{len(sentences)} lines, vocabulary of {len(vocab)} tokens")

    model = LanguageModel(vocab, embed_dim=args.embed, hidden=args.hidden, unit=args.unit,
                          activation=args.activation, seed=args.seed)
    model.fit(sentences, epochs=args.epochs, learning_rate=args.lr, mu=args.mu, optimizer=args.optimizer,
              batch_size=args.batch_size, seed=args.seed, progress=not args.quiet)
    print(f"perplexity on the training lines: {model.perplexity(sentences):.1f}")

    lines = model.generate(args.lines, temperature=args.temperature, seed=args.seed)
    print("\n".join(lines))
    (out / "generated.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _common.save_outputs(model, out, "poetry_lm", "Robert Frost language model")
    return lines


if __name__ == "__main__":
    main()
