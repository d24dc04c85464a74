"""Benchmark 2: the book's language model (We, one GRU or LSTM layer, softmax over V=2000), one
sentence of 10-30 words per momentum-SGD train call. Reports microseconds per token.

    python benchmarks/bench_language_model.py [--unit gru|lstm|both] [--mode numba|py] [--quick]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import common
import numpy as np

TARGET_US = 20.0


def run(mode: str, unit: str = "both", quick: bool = False, repeats: int | None = None) -> list[common.Table]:
    """Time passes over fixed random sentences (200, or 20 with ``quick``) for each unit and implementation."""
    pairs = common.sentences(20 if quick else 200)
    warm = common.one_per_length()  # every sentence length once, so JITs compile all shapes first
    tokens = sum(len(y) for _, y in pairs)
    repeats = repeats or (3 if quick else 5)
    tables = []
    for u in ("gru", "lstm") if unit == "both" else (unit,):

        def measure(trainer: common.Trainer) -> common.Timing:
            train = trainer.train

            def one_pass(data: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
                total = 0.0
                for x, y in data:
                    total += float(train(x, y))
                return total

            seconds = common.time_runs(lambda: one_pass(pairs), repeats, warm_up=lambda: one_pass(warm))
            return common.per_item(seconds, tokens)

        def make(v: common.Variant, u: str = u) -> common.Trainer:
            return common.build(v, "language_model", u, common.lm_init(u), common.LM_LR, common.LM_MU)

        table = common.Table(f"Language model, {u.upper()} (V=2000, D=30, M=30), one sentence per train call; "
                             f"{len(pairs)} sentences = {tokens} tokens x {repeats} runs", "us/token")
        command = common.script_command(__file__, mode, quick, repeats, "--unit", u)
        table.rows = common.run_variants("language_model", mode, measure, make, unit=u, command=command)
        table.add_target(f"{u.upper()} language model", TARGET_US)
        tables.append(table)
    return tables


def main() -> None:
    """Parse the options, run, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--unit", choices=("gru", "lstm", "both"), default="both")
    args = parser.parse_args()
    common.print_tables(run(args.mode, args.unit, args.quick, args.repeats))


if __name__ == "__main__":
    main()
