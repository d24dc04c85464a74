"""Shared pieces of the benchmarks: the one-thread environment, data, initial weights, timing and tables.

Import this module before numpy, numba, jax or torch: it pins every math library to one thread
and turns on float64 in JAX, so that all frameworks are measured under the same conditions.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# One thread for every math library, float64 and CPU for JAX; read when those libraries load.
BENCH_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAX_PLATFORMS": "cpu",
    "JAX_ENABLE_X64": "1",
}
os.environ.update(BENCH_ENV)
_EARLY = [m for m in ("numpy", "numba", "jax", "torch") if m in sys.modules]
if _EARLY:
    print(f"warning: {', '.join(_EARLY)} imported before benchmarks/common.py; thread settings may not apply",
          file=sys.stderr)

import numpy as np  # noqa: E402

# Environment variables that make OpenBLAS use another kernel than the one it picks for this CPU. Some
# machines set them (older OpenBLAS builds misdetect their CPUs); they change the speed of every
# product that goes through OpenBLAS (symflow's and PyTensor's), so results.md records them.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in BLAS_OVERRIDES):
    print("warning: " + ", ".join(f"{k}={os.environ[k]}" for k in BLAS_OVERRIDES if k in os.environ)
          + " is set: OpenBLAS runs the kernel it names, not the one it detects for this CPU "
          "(to measure the detected one, unset them in the benchmark's command)", file=sys.stderr)


def blas_info() -> str:
    """The BLAS libraries loaded by NumPy and SciPy (Numba's products call SciPy's), each with its
    version and the kernel it runs, as threadpoolctl reports them; and any kernel override set."""
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS)

    overrides = [f"{k}={os.environ[k]}" for k in BLAS_OVERRIDES if k in os.environ]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        libraries = "threadpoolctl not installed, kernel unknown"
    else:
        libraries = "; ".join(f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture', '?')} "
                              f"kernel, {info.get('num_threads')} thread(s)) in {Path(info['filepath']).name}"
                              for info in threadpool_info() if info.get("user_api") == "blas") or "none found"
    return libraries + "; " + ("set: " + ", ".join(overrides) if overrides else "no kernel override set")

SEED = 1234

# -- the models' sizes and training settings (the book's values) ------------------------------------
PARITY_BITS = 12  # T: 12-bit sequences, D = 1 input per step
PARITY_M = 4  # hidden units
PARITY_K = 2  # output classes
PARITY_LR = 1e-4  # the book's 10e-5
PARITY_MU = 0.99

LM_V = 2000  # vocabulary
LM_D = 30  # embedding size
LM_M = 30  # hidden units
LM_LR = 1e-5  # the book's 10e-6
LM_MU = 0.99
LM_MIN_LEN, LM_MAX_LEN = 10, 30  # sentence lengths, inclusive
START = 0  # the book's START token; END = 1, words are 2 .. V-1
BATCH = 32  # minibatch size

GRU_NAMES = ("Wxr", "Whr", "br", "Wxz", "Whz", "bz", "Wxh", "Whh", "bh", "h0")
LSTM_NAMES = ("Wxi", "Whi", "Wci", "bi", "Wxf", "Whf", "Wcf", "bf", "Wxc", "Whc", "bc",
              "Wxo", "Who", "Wco", "bo", "c0", "h0")
# The language model's output layer is named Wout/bout because the LSTM already has a "bo".
LM_NAMES = {"gru": ("We", *GRU_NAMES, "Wout", "bout"), "lstm": ("We", *LSTM_NAMES, "Wout", "bout")}
PARITY_NAMES = ("Wx", "Wh", "bh", "h0", "Wo", "bo")


class Trainer(Protocol):
    """One model in one framework: a train call (one SGD step) and read access to parameters and momenta."""

    def train(self, *inputs: Any) -> Any: ...

    def get_params(self) -> dict[str, np.ndarray]: ...

    def get_momenta(self) -> dict[str, np.ndarray]: ...


# -- data and initial weights ----------------------------------------------------------------------
def parity_data(nbit: int = PARITY_BITS) -> tuple[np.ndarray, np.ndarray]:
    """All 2**nbit bit sequences as (N, nbit, 1) float64 inputs and their running parity as (N, nbit) int32."""
    n = 2**nbit
    bits = (np.arange(n)[:, None] >> np.arange(nbit)[None, ::-1]) & 1
    x = bits.astype(np.float64).reshape(n, nbit, 1)
    y = (np.cumsum(bits, axis=1) % 2).astype(np.int32)
    return x, y


def sentences(n: int, seed: int = SEED, vocab: int = LM_V) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` random sentences of 10-30 words as (input, target) int32 pairs: input = [START] + words[:-1]."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = rng.integers(2, vocab, size=int(rng.integers(LM_MIN_LEN, LM_MAX_LEN + 1))).astype(np.int32)
        pairs.append((np.concatenate([[START], words[:-1]]).astype(np.int32), words))
    return pairs


def one_per_length(seed: int = SEED + 1, vocab: int = LM_V) -> list[tuple[np.ndarray, np.ndarray]]:
    """One random sentence of each length 10-30: warms up (and compiles) every shape a JIT will see."""
    rng = np.random.default_rng(seed)
    pairs = []
    for n in range(LM_MIN_LEN, LM_MAX_LEN + 1):
        words = rng.integers(2, vocab, size=n).astype(np.int32)
        pairs.append((np.concatenate([[START], words[:-1]]).astype(np.int32), words))
    return pairs


def minibatches(pairs: Sequence[tuple[np.ndarray, np.ndarray]], size: int = BATCH
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Group sentences into (X, Y, mask) batches of shape (T, size), padded at the end to the longest one."""
    batches = []
    for start in range(0, len(pairs) - size + 1, size):
        group = pairs[start:start + size]
        steps = max(len(x) for x, _ in group)
        xs = np.zeros((steps, size), np.int32)
        ys = np.zeros((steps, size), np.int32)
        mask = np.zeros((steps, size), np.float64)
        for b, (x, y) in enumerate(group):
            xs[: len(x), b], ys[: len(y), b], mask[: len(y), b] = x, y, 1.0
        batches.append((xs, ys, mask))
    return batches


def init_weight(rng: np.random.Generator, mi: int, mo: int) -> np.ndarray:
    """The book's initialisation: standard normal scaled by 1/sqrt(fan_in + fan_out)."""
    return rng.standard_normal((mi, mo)) / np.sqrt(mi + mo)


def parity_init(seed: int = SEED) -> dict[str, np.ndarray]:
    """Initial weights of the book's SimpleRNN for parity (D=1, M=4, K=2)."""
    rng = np.random.default_rng(seed)
    m, k = PARITY_M, PARITY_K
    return {"Wx": init_weight(rng, 1, m), "Wh": init_weight(rng, m, m), "bh": np.zeros(m), "h0": np.zeros(m),
            "Wo": init_weight(rng, m, k), "bo": np.zeros(k)}


def lm_init(unit: str, seed: int = SEED) -> dict[str, np.ndarray]:
    """Initial weights of the language model (embeddings, one GRU or LSTM layer, softmax output)."""
    rng = np.random.default_rng(seed)
    d, m, v = LM_D, LM_M, LM_V
    params = {"We": init_weight(rng, v, d)}
    for name in GRU_NAMES if unit == "gru" else LSTM_NAMES:
        if name.startswith("Wx"):
            params[name] = init_weight(rng, d, m)
        elif name.startswith("W"):
            params[name] = init_weight(rng, m, m)
        else:  # biases and the learned initial states start at zero, as in the book
            params[name] = np.zeros(m)
    params["Wout"] = init_weight(rng, m, v)
    params["bout"] = np.zeros(v)
    return params


# -- which frameworks take part ----------------------------------------------------------------------
NOT_INSTALLED = "not installed (pip install -e .[bench])"


def installed(module: str) -> bool:
    """Whether a top-level module can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


@dataclass
class Variant:
    """One row of a table: a framework's model module and the options it is built with."""

    label: str
    module: str  # benchmarks/models_<framework>.py
    requires: str  # the top-level package that must be installed
    options: dict[str, Any] = field(default_factory=dict)
    kinds: tuple[str, ...] = ("parity", "language_model", "minibatch")
    reference_only: bool = False  # a different model (nn.GRU / nn.LSTM), timed for reference


def variants(symflow_mode: str, kind: str, unit: str = "lstm") -> list[Variant]:
    """Every implementation of a benchmark ``kind``, symflow first (the reference of the ratio column)."""
    rows = [Variant(f"symflow ({symflow_mode})", "models_symflow", "symflow", {"mode": symflow_mode})]
    if installed("pytensor"):
        for label, mode in importlib.import_module("models_pytensor").modes():
            rows.append(Variant(label, "models_pytensor", "pytensor", {"mode": mode}))
    else:
        rows.append(Variant("pytensor", "models_pytensor", "pytensor"))
    rows.append(Variant("jax (jit + lax.scan)", "models_jax", "jax"))
    rows.append(Variant("torch eager, book cells in a loop", "models_torch", "torch", {"cell": "book"}))
    rows.append(Variant(f"torch nn.{unit.upper()} (different cell)", "models_torch", "torch", {"cell": "nn"},
                        kinds=("language_model", "minibatch"), reference_only=True))
    return [v for v in rows if kind in v.kinds]


def build(variant: Variant, kind: str, *args: Any) -> Trainer:
    """Build ``variant``'s model of ``kind`` (``models_x.kind(*args, **options)``)."""
    return getattr(importlib.import_module(variant.module), kind)(*args, **variant.options)  # type: ignore[no-any-return]


def failure(exc: BaseException) -> str:
    """A one-line note for a table row whose implementation raised."""
    if os.environ.get("BENCH_TRACEBACK"):
        traceback.print_exception(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"failed: {type(exc).__name__}: {first[:100]}"


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the tables."""
    print(message, file=sys.stderr, flush=True)


# -- timing ----------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Repeated measurements of one quantity, in the unit of the table that shows them."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)


def time_runs(run_once: Callable[[], object], repeats: int, warm_up: Callable[[], object] | None = None
              ) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``run_once``, after one untimed ``warm_up()``
    (by default one ``run_once()``). The garbage collector is off during each timed call, as in ``timeit``.
    In a child measured in turns, each call first waits for the parent's word (``_measure_in_turns``).
    """
    (warm_up or run_once)()
    seconds = []
    for _ in range(repeats):
        if os.environ.get(TURNS_ENV):
            _wait_for_turn()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            run_once()
            seconds.append(time.perf_counter() - t0)
        finally:
            gc.enable()
    return seconds


def per_item(seconds: Sequence[float], items: int, scale: float = 1e6) -> Timing:
    """Time per item (microseconds by default) from whole-run times."""
    return Timing([s * scale / items for s in seconds])


def rate(seconds: Sequence[float], items: int) -> Timing:
    """Items per second from whole-run times."""
    return Timing([items / s for s in seconds])


# -- tables ---------------------------------------------------------------------------------------
@dataclass
class Row:
    """A table row: a measurement, or only a note (not installed, failed, not applicable)."""

    name: str
    timing: Timing | None = None
    note: str = ""


@dataclass
class Table:
    """Results of one benchmark; the ratio column compares each row's time with the first symflow row's."""

    title: str
    unit: str
    rows: list[Row] = field(default_factory=list)
    higher_is_better: bool = False  # True for rates such as tokens/s
    notes: list[str] = field(default_factory=list)

    def reference(self) -> Timing | None:
        for row in self.rows:
            if row.name.startswith("symflow") and row.timing is not None:
                return row.timing
        return None

    def ratio(self, row: Row) -> float | None:
        """Row time / symflow time (> 1: slower than symflow); for rates, symflow rate / row rate."""
        ref = self.reference()
        if ref is None or row.timing is None:
            return None
        a, b = row.timing.median, ref.median
        return b / a if self.higher_is_better else a / b

    def add_target(self, what: str, limit: float) -> None:
        """Note whether symflow's median meets a target (<= limit, or >= for rates)."""
        ref = self.reference()
        sign = ">=" if self.higher_is_better else "<="
        if ref is None:
            self.notes.append(f"target {what} {sign} {limit:g} {self.unit}: symflow not measured")
            return
        met = ref.median >= limit if self.higher_is_better else ref.median <= limit
        self.notes.append(f"target {what} {sign} {limit:g} {self.unit}: symflow median {_num(ref.median)} "
                          f"-> {'met' if met else 'NOT met'}")

    def _cells(self) -> list[list[str]]:
        lines = []
        for row in self.rows:
            if row.timing is None:
                lines.append([row.name, "-", "-", "-", row.note])
                continue
            t = row.timing
            ratio = self.ratio(row)
            lines.append([row.name, _num(t.median), f"{_num(t.low)} - {_num(t.high)} (n={len(t.samples)})",
                          "-" if ratio is None else f"{ratio:.2f}x", row.note])
        return lines

    def header(self) -> list[str]:
        return ["implementation", f"median {self.unit}", "min - max", "time / symflow's", "note"]

    def render(self) -> str:
        """A plain-text table for the terminal."""
        cells = [self.header(), *self._cells()]
        widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
        fmt = lambda r: "  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w) for i, (c, w) in  # noqa: E731
                                  enumerate(zip(r, widths, strict=True))).rstrip()
        out = [self.title, "=" * len(self.title), fmt(cells[0]), fmt(["-" * w for w in widths])]
        out += [fmt(r) for r in cells[1:]]
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """The same table in Markdown, for results.md."""
        out = [f"### {self.title}", "", "| " + " | ".join(self.header()) + " |",
               "|" + "---|" * len(self.header())]
        out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in self._cells()]
        if self.notes:
            out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out)


def _num(x: float) -> str:
    """Three significant digits, without scientific notation for everyday magnitudes."""
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:.3g}"


def script_command(script: str, mode: str, quick: bool, repeats: int | None, *extra: str) -> list[str]:
    """The command line that reruns a benchmark script with these options (for its child processes)."""
    cmd = [sys.executable, os.path.abspath(script), "--mode", mode, *extra]
    if quick:
        cmd.append("--quick")
    if repeats:
        cmd += ["--repeats", str(repeats)]
    return cmd


# Each implementation is measured in its own process, so that one framework's imports, threads and
# memory cannot slow another (measured: symflow's language model ran 17-21% slower after the other
# frameworks had run in the same process). A child runs the same script with BENCH_ONLY naming the
# one implementation to measure and prints that row as a JSON line. BENCH_IN_PROCESS=1 measures
# everything in the calling process instead.
#
# The children take their timed runs in turns, one run each per round: this machine's speed drifts
# within minutes (one process ran language-model passes at 20.5 to 37.6 us/token over two minutes),
# so timing one implementation after another would compare different stretches of time. A child
# says BENCH_READY when it is idle, before each timed run, and waits for a line on stdin.
ONLY_ENV = "BENCH_ONLY"
TURNS_ENV = "BENCH_TURNS"
ROW_PREFIX = "BENCH_ROW "
READY = "BENCH_READY"
CHILD_TIMEOUT_S = 3600


def run_variants(kind: str, symflow_mode: str, measure: Callable[[Trainer], Timing],
                 make: Callable[[Variant], Trainer], unit: str = "lstm", command: Sequence[str] | None = None
                 ) -> list[Row]:
    """Build and measure each implementation of ``kind``; missing or failing ones become note rows.

    With ``command`` (the script's own command line) each implementation runs in a fresh process,
    and those processes take their timed runs in turns.
    """
    only = os.environ.get(ONLY_ENV)
    isolate = command is not None and only is None and os.environ.get("BENCH_IN_PROCESS") != "1"
    rows: list[Row] = []
    in_children: list[tuple[int, Variant, str]] = []  # (row index, variant, BENCH_ONLY key)
    for v in variants(symflow_mode, kind, unit):
        key = f"{kind}|{unit}|{v.label}"
        if only is not None and only != key:
            continue
        if not installed(v.requires):
            rows.append(Row(v.label, note=NOT_INSTALLED))
            continue
        if isolate:
            in_children.append((len(rows), v, key))
            rows.append(Row(v.label, note="not measured"))
            continue
        progress(f"  {kind}: {v.label} ...")
        try:
            row = Row(v.label, measure(make(v)), "different model, for reference" if v.reference_only else "")
        except Exception as exc:  # one framework failing must not stop the others
            row = Row(v.label, note=failure(exc))
        if only is not None:
            samples = row.timing.samples if row.timing is not None else None
            print(ROW_PREFIX + json.dumps({"samples": samples, "note": row.note}), flush=True)
        rows.append(row)
    if in_children:
        measured = _measure_in_turns([(v, key) for _, v, key in in_children], list(command or []))
        for (index, _, _), row in zip(in_children, measured, strict=True):
            rows[index] = row
    return rows


def _wait_for_turn() -> None:
    """In a child measured in turns: say that this process is idle, then wait for the parent's word."""
    print(READY, flush=True)
    if not sys.stdin.readline():
        raise SystemExit("the benchmark's parent process has gone")


def _measure_in_turns(jobs: Sequence[tuple[Variant, str]], command: list[str]) -> list[Row]:
    """One child process per implementation; each builds and warms up while the others wait, then
    the children take their timed runs in turns (the order reversed every round), one at a time."""
    children = []
    for v, key in jobs:
        progress(f"  {key.split('|')[0]}: {v.label} (own process; building and warming up) ...")
        children.append(_Child(v, key, command))
    order = [c for c in children if c.ready]
    rounds = 0
    while order:
        rounds += 1
        for child in order:
            child.take_turn()
        order = [c for c in reversed(order) if c.ready]
    progress(f"  timed runs taken in turns: {rounds} rounds")
    return [c.row() for c in children]


class _Child:
    """One implementation measured in its own process, driven through its stdin and stdout."""

    def __init__(self, variant: Variant, key: str, command: list[str]) -> None:
        self.variant = variant
        self.deadline = time.monotonic() + CHILD_TIMEOUT_S
        self.stderr = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, **{ONLY_ENV: key, TURNS_ENV: "1"})
        self.proc = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.found: list[str] = []  # its JSON rows
        self.ready = False
        self.timed_out = False
        self._advance()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _advance(self) -> None:
        """Read the child's output until it is idle again (ready) or has exited."""
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                self.timed_out = True
                line = None
            if line is None:
                self.ready = False
                self.proc.wait()
                return
            if line == READY:
                self.ready = True
                return
            if line.startswith(ROW_PREFIX):
                self.found.append(line[len(ROW_PREFIX):])

    def take_turn(self) -> None:
        """Let the child take one timed run; return when it waits again or has finished."""
        assert self.proc.stdin is not None
        self.ready = False
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # it exited after saying it was ready; _advance reads its end
            pass
        self._advance()

    def row(self) -> Row:
        """The child's table row, or a note saying how it failed."""
        label = self.variant.label
        if self.timed_out:
            return Row(label, note=f"failed: no result within {CHILD_TIMEOUT_S} s")
        if self.proc.returncode != 0 or not self.found:
            self.stderr.seek(0)
            tail = [line for line in self.stderr.read().strip().splitlines() if line.strip()][-1:] or ["(no stderr)"]
            return Row(label, note=f"failed: child exited with {self.proc.returncode}: {tail[0][:120]}")
        result = json.loads(self.found[-1])
        samples = result["samples"]
        return Row(label, Timing(samples) if samples is not None else None, result["note"])


def print_tables(tables: Sequence[Table]) -> None:
    """Print tables to stdout, separated by blank lines."""
    for t in tables:
        print(t.render())
        print()


def add_common_arguments(parser: Any) -> None:
    """The options every benchmark script takes."""
    parser.add_argument("--mode", choices=("numba", "py"), default="numba", help="symflow compile mode")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per implementation")
