"""Seed 002: character-level text generation with an LSTM. The model reads text one character at a
time and predicts the next; sampling with a temperature writes new text in the style of the original.

Each line of the file is a sequence (START, its characters, END), so generated text comes line by line.
Low temperatures give safe, repetitive text; high ones give more surprising (and more broken) text.

    python examples/char_lstm.py --data path/to/tinyshakespeare.txt --temperature 0.5 1.0
"""

from __future__ import annotations

import _common  # first: it limits BLAS threads before NumPy loads

from models import LanguageModel, char_vocabulary, read_char_lines

DATA = "tinyshakespeare.txt"


def main(argv: list[str] | None = None) -> dict[float, list[str]]:
    p = _common.parser("char_lstm", __doc__.split("\n\n")[0])
    _common.add_data_argument(p, DATA)
    p.add_argument("--max-lines", type=int, default=3000, help="lines read from the start of the file")
    p.add_argument("--unit", default="lstm", help="recurrent unit: lstm (seed 002), gru, rated or simple")
    p.add_argument("--embed", type=int, default=16, help="character vector size")
    p.add_argument("--hidden", type=int, nargs="+", default=[64], help="hidden sizes, one per stacked layer")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout after each recurrent layer (seed 002: 0.2)")
    p.add_argument("--epochs", type=_common.positive_int, default=5, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="lines per update")
    p.add_argument("--optimizer", default="adam", help="momentum (the book), nesterov, sgd, rmsprop or adam")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--mu", type=float, default=0.99, help="momentum (momentum and nesterov only)")
    p.add_argument("--clip-norm", type=float, default=5.0, help="gradient-norm clipping threshold (0: none)")
    p.add_argument("--temperature", type=float, nargs="+", default=[0.5, 1.0], help="sampling temperatures")
    p.add_argument("--lines", type=int, default=4, help="lines to generate per temperature")
    p.add_argument("--prefix", default="", help="text every generated line starts with")
    args = p.parse_args(argv)
    out = _common.setup(args)

    lines = read_char_lines(_common.data_file(args, DATA), args.max_lines)
    vocab = char_vocabulary(lines)
    sequences = [vocab.encode(list(line)) for line in lines]
    print(f"{len(lines)} lines, {len(vocab) - 3} distinct characters")
    model = LanguageModel(vocab, embed_dim=args.embed, hidden=args.hidden, unit=args.unit, dropout=args.dropout,
                          seed=args.seed)
    model.fit(sequences, epochs=args.epochs, learning_rate=args.lr, mu=args.mu, optimizer=args.optimizer,
              batch_size=args.batch_size, clip_norm=args.clip_norm or None, seed=args.seed,
              progress=not args.quiet)
    print(f"perplexity per character on the first 500 lines: {model.perplexity(sequences[:500]):.2f}")

    samples: dict[float, list[str]] = {}
    text = []
    for temperature in args.temperature:
        samples[temperature] = model.generate(args.lines, temperature=temperature, max_length=80,
                                              prefix=args.prefix or None, seed=args.seed)
        text += [f"--- temperature {temperature}", *samples[temperature]]
    print("\n".join(text))
    (out / "generated.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    _common.save_outputs(model, out, "char_lstm", f"character-level {args.unit.upper()}")
    return samples


if __name__ == "__main__":
    main()
