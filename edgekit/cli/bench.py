"""`edgekit bench`: latency, throughput, memory and size (and accuracy) per model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "latency, throughput, memory, size (and accuracy) per model"
DESCRIPTION = "Measure each MODEL on this machine, each in a fresh process, side by side."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", type=Path, nargs="+", help="model files (.tflite, .onnx, .mlpackage)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per model after warm-up (default: 100)")
    parser.add_argument("--seconds", type=float, default=None, help="time each model for this long instead of --runs")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default: 10)")
    parser.add_argument("--threads", default=None, help="thread counts to sweep, e.g. 1,2,4 (default: the runtime's)")
    parser.add_argument("--data", type=Path, default=None, help="labelled image folder: adds accuracy per model")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="write the latency distributions as a PNG")


def run(args: argparse.Namespace) -> int:
    from edgekit.benchmarking.runner import bench

    try:
        threads = [int(t) for t in args.threads.split(",")] if args.threads else [None]
    except ValueError:
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"invalid --threads {args.threads!r}; use counts like 1,2,4") from None
    report = bench(
        args.models, runs=args.runs, seconds=args.seconds, warmup=args.warmup, threads=threads, data=args.data
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    if args.plot:
        report.plot(args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0 if all(r.status == "ok" or r.status.startswith("cannot run here") for r in report.results) else 1
