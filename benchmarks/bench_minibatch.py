"""Benchmark 4: the LSTM language model on minibatches of 32 padded sentences with a mask.

One momentum-SGD train call per batch; the cost is the masked mean cross-entropy. Reports real
(unpadded) tokens per second; the target is to be ahead of torch's nn.LSTM.

    python benchmarks/bench_minibatch.py [--mode numba|py] [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse

import common


def run(mode: str, quick: bool = False, repeats: int | None = None) -> list[common.Table]:
    """Time passes over fixed batches (8 batches = 256 sentences, or 2 with ``quick``)."""
    batches = common.minibatches(common.sentences((2 if quick else 8) * common.BATCH, seed=common.SEED + 2))
    tokens = int(sum(mask.sum() for _, _, mask in batches))
    repeats = repeats or (3 if quick else 5)

    def measure(trainer: common.Trainer) -> common.Timing:
        train = trainer.train

        def one_pass() -> float:
            total = 0.0
            for x, y, mask in batches:
                total += float(train(x, y, mask))
            return total

        return common.rate(common.time_runs(one_pass, repeats), tokens)

    def make(v: common.Variant) -> common.Trainer:
        return common.build(v, "minibatch", common.lm_init("lstm"), common.LM_LR, common.LM_MU)

    table = common.Table(f"Minibatch LSTM language model (B=32, padded + mask); {len(batches)} batches = "
                         f"{tokens} tokens x {repeats} runs", "tokens/s", higher_is_better=True)
    table.rows = common.run_variants("minibatch", mode, measure, make,
                                     command=common.script_command(__file__, mode, quick, repeats))
    ours = table.reference()
    nn_row = next((r for r in table.rows if r.name.startswith("torch nn.") and r.timing is not None), None)
    if ours is None or nn_row is None or nn_row.timing is None:
        table.notes.append("target ahead of torch nn.LSTM: not measured (symflow or torch missing or failed)")
    else:
        met = ours.median > nn_row.timing.median
        table.notes.append(f"target ahead of torch nn.LSTM: symflow {ours.median:,.0f} vs nn.LSTM "
                           f"{nn_row.timing.median:,.0f} tokens/s -> {'met' if met else 'NOT met'}")
    return [table]


def main() -> None:
    """Parse the common options, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    args = parser.parse_args()
    common.print_tables(run(args.mode, args.quick, args.repeats))


if __name__ == "__main__":
    main()
