"""Benchmark 1: the book's parity SimpleRNN, one 12-bit sequence per momentum-SGD train call.

Every train call returns the cost and the predictions, and the loop uses both as the book's does
(summing costs, counting correct final predictions). Reports microseconds per sequence.

    python benchmarks/bench_parity.py [--mode numba|py] [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse

import common
import numpy as np

TARGET_US = 5.0


def run(mode: str, quick: bool = False, repeats: int | None = None) -> list[common.Table]:
    """Time one pass over the sequences (all 4096, or 256 with ``quick``) for every implementation."""
    x, y = common.parity_data()
    n = 256 if quick else len(x)
    repeats = repeats or (3 if quick else 5)

    def measure(trainer: common.Trainer) -> common.Timing:
        train = trainer.train

        def one_pass(count: int) -> tuple[float, int]:
            total, correct = 0.0, 0
            for j in range(count):
                cost, prediction = train(x[j], y[j])
                total += float(cost)
                correct += int(np.asarray(prediction)[-1] == y[j, -1])
            return total, correct

        return common.per_item(common.time_runs(lambda: one_pass(n), repeats, warm_up=lambda: one_pass(50)), n)

    def make(v: common.Variant) -> common.Trainer:
        return common.build(v, "parity", common.parity_init(), common.PARITY_LR, common.PARITY_MU)

    table = common.Table(f"Parity SimpleRNN (M=4, T=12, sigmoid), one sequence per train call; {n} sequences "
                         f"x {repeats} runs", "us/sequence")
    table.rows = common.run_variants("parity", mode, measure, make,
                                     command=common.script_command(__file__, mode, quick, repeats))
    table.add_target("parity", TARGET_US)
    table.notes.append("torch nn.RNN is not listed: it has no sigmoid nonlinearity")
    return [table]


def main() -> None:
    """Parse the common options, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    args = parser.parse_args()
    common.print_tables(run(args.mode, args.quick, args.repeats))


if __name__ == "__main__":
    main()
