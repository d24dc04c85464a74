"""Run every benchmark, print all tables, and write them with machine information to results.md.

    python benchmarks/run_all.py [--mode numba|py] [--quick] [--check] [--skip-compile] [--repeats N]

--check first runs check_agreement.py (do all frameworks compute the same model?). results.md only
holds what this run measured; a --quick run says so at its top.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

import bench_compile
import bench_language_model
import bench_minibatch
import bench_parity
import check_agreement
import common

RESULTS = Path(__file__).resolve().parent / "results.md"
PACKAGES = ("symflow", "numpy", "numba", "llvmlite", "pytensor", "jax", "jaxlib", "torch")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(args: argparse.Namespace) -> list[str]:
    """Markdown bullet lines describing the machine, the versions and the settings of this run."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = ", ".join(f"{k}={v}" for k, v in common.BENCH_ENV.items() if k.endswith("THREADS"))
    return [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- CPU: {cpu_model()}; {os.cpu_count()} cores ({usable} usable by this process)",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- versions: {', '.join(versions)}",
        f"- symflow mode: {args.mode}; float64 everywhere; threads: {threads}",
        f"- BLAS: {common.blas_info()}",
        f"- load average (1, 5, 15 min) when the run ended: {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- command: python {' '.join(sys.argv)}" + ("  (QUICK run: small sizes, few repeats)" if args.quick else ""),
    ]


def main() -> int:
    """Run the benchmarks in order, printing each table when it is ready; then write results.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--check", action="store_true", help="first check that all frameworks agree")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the (slow) compile benchmark")
    args = parser.parse_args()
    started = time.perf_counter()
    markdown: list[str] = []
    status = 0
    if args.check:
        common.progress("agreement check ...")
        texts, mds, ok = check_agreement.run(args.mode)
        print("\n\n".join(texts), end="\n\n", flush=True)
        markdown += mds
        status = 0 if ok else 1
    steps = [
        ("parity", lambda: bench_parity.run(args.mode, args.quick, args.repeats)),
        ("language model", lambda: bench_language_model.run(args.mode, "both", args.quick, args.repeats)),
        ("compile", lambda: bench_compile.run(args.mode, "lstm", args.quick, args.repeats)),
        ("minibatch", lambda: bench_minibatch.run(args.mode, args.quick, args.repeats)),
    ]
    for name, step in steps:
        if name == "compile" and args.skip_compile:
            continue
        common.progress(f"{name} ...")
        for table in step():
            print(table.render(), end="\n\n", flush=True)
            markdown.append(table.markdown())
    header = ["# symflow benchmark results", "", *machine_info(args),
              f"- wall time of the run: {time.perf_counter() - started:.0f} s", "",
              "Timings on a shared machine can be noisy; each table gives the median and the range of its runs.", ""]
    RESULTS.write_text("\n".join(header) + "\n" + "\n\n".join(markdown) + "\n")
    common.progress(f"wrote {RESULTS}")
    return status


if __name__ == "__main__":
    sys.exit(main())
