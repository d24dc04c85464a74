"""Chapter 6: a word-level language model of a large text file with GRU or LSTM units ("plug and
play"), then word analogies from the learned word vectors (king - man = ? - woman).

The book trains on Wikipedia dumps; any large plain-text file works, e.g. tiny Shakespeare. The file
is read in chunks and split into sentences; only the most frequent words are kept.

    python examples/language_model.py --data path/to/tinyshakespeare.txt --unit lstm
"""

from __future__ import annotations

import _common  # first: it limits BLAS threads before NumPy loads

from models import LanguageModel, load_corpus

DATA = "tinyshakespeare.txt"
ANALOGIES = ["king,man,woman", "father,man,woman", "lord,man,woman", "he,him,her"]


def main(argv: list[str] | None = None) -> dict[str, dict[str, str]]:
    p = _common.parser("language_model", __doc__.split("\n\n")[0])
    _common.add_data_argument(p, DATA)
    p.add_argument("--unit", choices=["gru", "lstm"], default="gru", help="recurrent unit")
    p.add_argument("--activation", default="tanh", help="activation of the recurrent unit")
    p.add_argument("--vocab-size", type=int, default=2000, help="most frequent words kept (others: UNKNOWN)")
    p.add_argument("--max-sentences", type=int, default=8000, help="sentences read from the start of the file")
    p.add_argument("--embed", type=int, default=30, help="word vector size")
    p.add_argument("--hidden", type=int, nargs="+", default=[30], help="hidden sizes, one per stacked layer")
    p.add_argument("--epochs", type=_common.positive_int, default=3, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per update (1: the book's way)")
    p.add_argument("--optimizer", default="adam", help="momentum (the book), nesterov, sgd, rmsprop or adam")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--mu", type=float, default=0.99, help="momentum (momentum and nesterov only)")
    p.add_argument("--clip-norm", type=float, default=5.0, help="gradient-norm clipping threshold (0: none)")
    p.add_argument("--bptt-truncate", type=int, default=-1, help="backpropagate through the last K steps only")
    p.add_argument("--analogy", action="append", default=None, metavar="A,B,C",
                   help=f"an analogy A - B = ? - C to solve (repeatable; default: {' '.join(ANALOGIES)})")
    args = p.parse_args(argv)
    out = _common.setup(args)

    sentences, vocab = load_corpus(_common.data_file(args, DATA), args.vocab_size, args.max_sentences)
    print(f"{len(sentences)} sentences, vocabulary of {len(vocab)} tokens")
    model = LanguageModel(vocab, embed_dim=args.embed, hidden=args.hidden, unit=args.unit,
                          activation=args.activation, seed=args.seed)
    model.fit(sentences, epochs=args.epochs, learning_rate=args.lr, mu=args.mu, optimizer=args.optimizer,
              batch_size=args.batch_size, clip_norm=args.clip_norm or None, bptt_truncate=args.bptt_truncate,
              seed=args.seed, progress=not args.quiet)
    print(f"perplexity on the first 1000 sentences: {model.perplexity(sentences[:1000]):.1f}")

    results: dict[str, dict[str, str]] = {}
    report = []
    for spec in args.analogy or ANALOGIES:
        words = [w.strip().lower() for w in spec.split(",")]
        if len(words) != 3:
            p.error(f"--analogy takes three comma-separated words, got {spec!r}")
        missing = [w for w in words if w not in vocab]
        if missing:
            line = f"{spec}: skipped, not in the vocabulary: {', '.join(missing)}"
        else:
            best = model.analogy(*words)
            results[spec] = best
            a, b, c = words
            line = f"{a} - {b} = ? - {c}:  euclidean: {best['euclidean']}  cosine: {best['cosine']}"
        print(line)
        report.append(line)
    (out / "analogies.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
    (out / "generated.txt").write_text("\n".join(model.generate(4, seed=args.seed)) + "\n", encoding="utf-8")
    _common.save_outputs(model, out, f"{args.unit}_language_model", f"{args.unit.upper()} language model")
    return results


if __name__ == "__main__":
    main()
