"""Do all frameworks compute the same model? Two train steps from identical weights, compared.

Each implementation starts from the same initial weights and takes two momentum-SGD steps (the
second one uses the momenta of the first) on the same data. Costs must agree to 1e-8 relative;
every momentum (mu*dp - lr*g, which carries both steps' gradients) and every parameter's total
update to 1e-8 relative to the largest entry of that momentum or update.
torch's nn.GRU/nn.LSTM use other cell equations, so they are listed as a different model.

    python benchmarks/check_agreement.py [--mode numba|py]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import common  # before numpy: sets the one-thread environment
import numpy as np

TOLERANCE = 1e-8
CHECK_LR, CHECK_MU = 0.1, 0.9  # larger than the benchmarks' rates, so that the updates are well above rounding


@dataclass
class Outcome:
    """What one implementation produced: the two costs, final parameters and momenta, or why it has none."""

    label: str
    costs: list[float] | None = None
    params: dict[str, np.ndarray] | None = None
    momenta: dict[str, np.ndarray] | None = None
    note: str = ""
    reference_only: bool = False


def _cases() -> dict[str, tuple[str, tuple[Any, ...], dict[str, np.ndarray], list[tuple[np.ndarray, ...]]]]:
    """name -> (model kind, leading build arguments, initial weights, inputs of the two steps)."""
    x, y = common.parity_data()
    pairs = common.sentences(2, seed=7)
    batches = common.minibatches(common.sentences(2 * common.BATCH, seed=8))
    return {
        "parity (SimpleRNN)": ("parity", (), common.parity_init(), [(x[1234], y[1234]), (x[77], y[77])]),
        "language model, GRU": ("language_model", ("gru",), common.lm_init("gru"), pairs),
        "language model, LSTM": ("language_model", ("lstm",), common.lm_init("lstm"), pairs),
        "minibatch LSTM (B=32, masked)": ("minibatch", (), common.lm_init("lstm"), batches),
    }


def run_case(kind: str, lead: tuple[Any, ...], init: dict[str, np.ndarray], steps: list[tuple[np.ndarray, ...]],
             mode: str) -> list[Outcome]:
    """Train every installed implementation for the given steps and collect its results."""
    outcomes = []
    for v in common.variants(mode, kind, *lead):
        if not common.installed(v.requires):
            outcomes.append(Outcome(v.label, note=common.NOT_INSTALLED))
            continue
        common.progress(f"  check {kind}: {v.label} ...")
        try:
            trainer = common.build(v, kind, *lead, {k: a.copy() for k, a in init.items()}, CHECK_LR, CHECK_MU)
            costs = []
            for inputs in steps:
                out = trainer.train(*inputs)
                costs.append(float(np.asarray(out[0] if isinstance(out, list) else out)))
            outcomes.append(Outcome(v.label, costs, trainer.get_params(), trainer.get_momenta(),
                                    reference_only=v.reference_only))
        except Exception as exc:  # report and go on with the other frameworks
            outcomes.append(Outcome(v.label, note=common.failure(exc)))
    return outcomes


def compare(outcomes: list[Outcome], init: dict[str, np.ndarray]) -> tuple[list[list[str]], bool]:
    """Table cells comparing each outcome with the first book-model one; and whether all of them ran and agree
    (an implementation that is not installed does not count against it)."""
    ref = next((o for o in outcomes if o.costs is not None and not o.reference_only), None)
    cells, ok = [], True
    for o in outcomes:
        if o.costs is None:
            cells.append([o.label, "-", "-", "-", "-", o.note])
            ok = ok and o.note == common.NOT_INSTALLED
            continue
        costs = ", ".join(f"{c:.12f}" for c in o.costs)
        if o.reference_only:
            cells.append([o.label, costs, "-", "-", "-", "different model, for reference"])
            continue
        assert ref is not None and ref.costs is not None and ref.params is not None and ref.momenta is not None
        assert o.params is not None and o.momenta is not None
        if o is ref:
            cells.append([o.label, costs, "reference", "reference", "reference", "reference"])
            continue
        cost_err = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(o.costs, ref.costs, strict=True))
        momentum_err = max(_relative_error(o.momenta[k], ref.momenta[k]) for k in init)
        param_err = max(_relative_error(o.params[k] - init[k], ref.params[k] - init[k]) for k in init)
        agree = max(cost_err, momentum_err, param_err) <= TOLERANCE
        ok = ok and agree
        cells.append([o.label, costs, f"{cost_err:.1e}", f"{momentum_err:.1e}", f"{param_err:.1e}",
                      "agrees" if agree else "DISAGREES"])
    return cells, ok


def _relative_error(value: np.ndarray, ref: np.ndarray) -> float:
    """Largest difference between two arrays, relative to the reference array's largest entry."""
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(value - ref))) if value.size else 0.0
    return diff / scale if scale > 0 else diff


def render(title: str, cells: list[list[str]], markdown: bool = False) -> str:
    """A small text or Markdown table of the comparison."""
    header = ["implementation", "costs of steps 1, 2", "cost rel. diff", "momentum rel. diff", "update rel. diff",
              "verdict"]
    if markdown:
        lines = [f"### Agreement: {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    rows = [header, *cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = [f"Agreement: {title}", "=" * (11 + len(title))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def run(mode: str) -> tuple[list[str], list[str], bool]:
    """Run all cases; returns text tables, Markdown tables, and whether every installed book-model
    implementation ran and agreed."""
    texts, mds, all_ok = [], [], True
    for title, (kind, lead, init, steps) in _cases().items():
        cells, ok = compare(run_case(kind, lead, init, steps, mode), init)
        all_ok = all_ok and ok
        texts.append(render(title, cells))
        mds.append(render(title, cells, markdown=True))
    verdict = "all installed book-model implementations ran and agree" if all_ok else \
        "NOT ALL AGREE: see the DISAGREES or failed rows"
    note = (f"two momentum-SGD steps with lr={CHECK_LR}, mu={CHECK_MU}, float64; tolerance {TOLERANCE:g} relative "
            f"-> {verdict}")
    texts.append("  * " + note)
    mds.append("- " + note)
    return texts, mds, all_ok


def main() -> int:
    """Print the agreement tables; exit status 1 when some book-model implementation failed or disagrees."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("numba", "py"), default="numba", help="symflow compile mode")
    args = parser.parse_args()
    texts, _, ok = run(args.mode)
    print("\n\n".join(texts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
