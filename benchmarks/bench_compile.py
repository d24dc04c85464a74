"""Benchmark 3: how long the language model's train function takes to compile, cold and warm.

Each measurement is a fresh Python process. Cold: empty cache directories (symflow's
SYMFLOW_CACHE_DIR and, separately, Numba's NUMBA_CACHE_DIR; PyTensor's compiledir; JAX's persistent
compilation cache). Warm: a second process with the same, now filled, directories. The time runs
from building the model (graph, gradients, compile) until the first train call has returned;
imports are reported apart. JAX compiles once per input shape, so its time covers all 21 sentence
lengths (10-30). torch runs eagerly and has nothing to compile.

    python benchmarks/bench_compile.py [--unit gru|lstm|both] [--mode numba|py] [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

TARGET_COLD_S, TARGET_WARM_S = 5.0, 0.5
CHILD_TIMEOUT_S = 1800


# -- the child process: build one framework's train function and report timings as JSON -----------------
def child(framework: str, unit: str, mode: str) -> dict[str, float]:
    """Build the language model in ``framework`` and time each phase (runs in the fresh process)."""
    t0 = time.perf_counter()
    recording = contextlib.ExitStack()
    numba_events = None
    if framework == "symflow":
        import models_symflow as models  # imports symflow, which does not import Numba

        options: dict[str, Any] = {"mode": mode}
    elif framework.startswith("pytensor:"):
        import models_pytensor as models
        options = {"mode": framework.split(":", 1)[1]}
    else:
        import jax
        import models_jax as models
        jax.config.update("jax_compilation_cache_dir", os.environ["BENCH_JAX_CACHE"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        options = {}
    t1 = time.perf_counter()
    if framework == "symflow":  # importing Numba is part of the build, as for a user: after t1
        from numba.core import event

        numba_events = recording.enter_context(event.install_recorder("numba:compile"))  # nested compiles
    trainer = models.language_model(unit, common.lm_init(unit), common.LM_LR, common.LM_MU, **options)
    t2 = time.perf_counter()
    # JAX compiles per shape, so it must see every sentence length; the others compile once.
    for x, y in common.one_per_length() if framework == "jax" else common.one_per_length()[:1]:
        float(trainer.train(x, y))
    t3 = time.perf_counter()
    timings = {"import": t1 - t0, "build": t2 - t1, "first_calls": t3 - t2, "total": t3 - t1,
               "function": getattr(trainer, "compile_seconds", float("nan"))}
    recording.close()
    if numba_events is not None:
        timings.update(numba_breakdown(numba_events.buffer))
    return timings


def numba_breakdown(buffer: list[tuple[float, Any]]) -> dict[str, float]:
    """Where Numba's compile time went, from its ``numba:compile`` events (each function's start and
    end, nested: kernels compile while the main function's types are inferred): how many functions
    it compiled, the seconds of the outermost compiles, and of the functions nested in them."""
    depth, started, outer, nested, count = 0, [], 0.0, 0.0, 0
    for at, ev in buffer:
        if ev.is_start:
            depth += 1
            started.append(at)
            count += 1
        else:
            depth -= 1
            seconds = at - started.pop()
            if depth == 0:
                outer += seconds
            elif depth == 1:
                nested += seconds
    return {"numba_functions": count, "numba_outer": outer, "numba_nested": nested}


# -- the parent: spawn cold and warm children with their own cache directories ----------------------------
def _environment(cache: Path) -> dict[str, str]:
    """This process's environment with every framework's cache directory under ``cache``."""
    env = dict(os.environ)
    # A user's Python keeps the bytecode of the modules it imports; with PYTHONDONTWRITEBYTECODE set
    # (as in some sandboxes) symflow's modules, unlike installed packages, compile from source in
    # every process: 0.1-0.2 s of a warm build, measured here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["SYMFLOW_CACHE_DIR"] = str(cache / "symflow")
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["BENCH_JAX_CACHE"] = str(cache / "jax")
    return env


def spawn(framework: str, unit: str, mode: str, cache: Path) -> dict[str, float]:
    """Run one child process with the cache directories under ``cache``; raise with its stderr on failure."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", framework, "--unit", unit, "--mode", mode]
    done = subprocess.run(cmd, env=_environment(cache), capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or ["(no stderr)"]
        raise RuntimeError(f"child exited with {done.returncode}: {tail[0][:160]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def frameworks(mode: str) -> list[tuple[str, str, str]]:
    """(row label, child name, required package) for every framework that compiles."""
    rows = [(f"symflow ({mode})", "symflow", "symflow")]
    if common.installed("pytensor"):
        for label, pmode in importlib.import_module("models_pytensor").modes():
            rows.append((label, f"pytensor:{pmode or 'FAST_RUN'}", "pytensor"))
    else:
        rows.append(("pytensor", "pytensor:NUMBA", "pytensor"))
    rows.append(("jax (jit, all 21 lengths)", "jax", "jax"))
    return rows


def run(mode: str, unit: str = "lstm", quick: bool = False, repeats: int | None = None) -> list[common.Table]:
    """Cold and warm compile times for each framework and unit, ``repeats`` cold/warm pairs each."""
    repeats = repeats or (1 if quick else 3)
    tables = []
    for u in ("gru", "lstm") if unit == "both" else (unit,):
        cold = common.Table(f"Compile, {u.upper()} language-model train function, COLD (new process, empty "
                            f"caches); {repeats} runs", "s")
        warm = common.Table(f"Compile, {u.upper()} language-model train function, WARM (new process, caches "
                            f"filled); {repeats} runs", "s")
        details = []
        for label, name, package in frameworks(mode):
            if not common.installed(package):
                cold.rows.append(common.Row(label, note=common.NOT_INSTALLED))
                warm.rows.append(common.Row(label, note=common.NOT_INSTALLED))
                continue
            common.progress(f"  compile {u}: {label} ...")
            runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
            try:
                for _ in range(repeats):
                    with tempfile.TemporaryDirectory(prefix="bench_compile_") as tmp:
                        runs["cold"].append(spawn(name, u, mode, Path(tmp)))
                        runs["warm"].append(spawn(name, u, mode, Path(tmp)))
            except Exception as exc:  # report and go on with the other frameworks
                cold.rows.append(common.Row(label, note=common.failure(exc)))
                warm.rows.append(common.Row(label, note=common.failure(exc)))
                continue
            for phase, table in (("cold", cold), ("warm", warm)):
                table.rows.append(common.Row(label, common.Timing([r["total"] for r in runs[phase]])))
                details.append(f"{label}, {phase}: " + _breakdown(runs[phase]))
        for table in (cold, warm):
            table.rows.append(common.Row("torch (eager)", note="no compile step"))
        cold.add_target("cold compile", TARGET_COLD_S)
        warm.add_target("warm compile", TARGET_WARM_S)
        warm.notes += [f"median of runs: {d}" for d in details]
        tables += [cold, warm]
    return tables


def _breakdown(runs: list[dict[str, float]]) -> str:
    """Median import, model-build (with function() inside it) and first-call times of some runs."""
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    inside = "" if math.isnan(med["function"]) else f" (function() {med['function']:.2f} s)"
    numba = ""
    if med.get("numba_functions"):
        numba = (f"; Numba compiled {med['numba_functions']:.0f} functions in {med['numba_outer']:.2f} s: "
                 f"the kernels {med['numba_nested']:.2f} s, the rest (main function) "
                 f"{med['numba_outer'] - med['numba_nested']:.2f} s")
    return (f"import {med['import']:.2f} s, model build {med['build']:.2f} s{inside}, "
            f"first call(s) {med['first_calls']:.2f} s{numba}")


def main() -> None:
    """Parent: run and print the tables. Child (--child): print one JSON line of timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--unit", choices=("gru", "lstm", "both"), default="lstm")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.unit, args.mode)))
        return
    common.print_tables(run(args.mode, args.unit, args.quick, args.repeats))


if __name__ == "__main__":
    main()
