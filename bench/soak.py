"""Soak: 10,000 camera frames through predict and 200 load/close cycles per artifact, no growth.

A device runs for weeks: memory and file descriptors must stay flat. For each MobileNetV2
artifact (TFLite and ONNX, float32 and int8) this prints the resident memory growth over
10,000 predict() calls on 640x480 frames (after a warm-up that fills the caches) and over
200 open/predict/close cycles, and the file descriptors and threads left behind. Exits 1
when RSS grows by 5 MB or more, or any descriptor leaks.

    .venv/bin/python bench/soak.py [--frames 10000] [--cycles 200] [--size 96]
    .venv/bin/python bench/soak.py --smoke            # a 32 px model, 50 frames, 5 cycles: the harness works

A full run writes bench/records/soak.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time

import numpy as np
from _artifacts import mobilenetv2_artifacts

RSS_TARGET_MB = 5.0


def rss_mb() -> float:
    """Resident set size from /proc (Linux), in MB."""
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak(path, frames: list[np.ndarray], count: int) -> tuple[float, int, float]:
    """RSS growth (MB), fd change and seconds for `count` predictions after a warm-up."""
    import edgekit

    with edgekit.load(path, num_threads=1) as model:
        for frame in frames * 50:  # warm-up: plans, buffers, the interpreter's arenas
            model.predict(frame, color="bgr")
        gc.collect()
        rss, fds, started = rss_mb(), open_fds(), time.perf_counter()
        for i in range(count):
            model.predict(frames[i % len(frames)], color="bgr")
        gc.collect()
        return rss_mb() - rss, open_fds() - fds, time.perf_counter() - started


def cycles(path, frame: np.ndarray, count: int) -> tuple[float, int, int]:
    """RSS growth (MB), fds and threads left after `count` open/predict/close cycles (after 20 warm ones)."""
    import edgekit

    def cycle() -> None:
        with edgekit.load(path, num_threads=1) as model:
            model.predict(frame, color="bgr")

    for _ in range(20):
        cycle()
    gc.collect()
    rss, fds, threads = rss_mb(), open_fds(), threading.active_count()
    for _ in range(count):
        cycle()
    gc.collect()
    return rss_mb() - rss, open_fds() - fds, threading.active_count() - threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--size", type=int, default=96, help="MobileNetV2 input size (default: 96)")
    parser.add_argument("--smoke", action="store_true", help="32 px, 50 frames, 5 cycles; no record, no target")
    args = parser.parse_args(argv)
    if args.smoke:
        args.frames, args.cycles, args.size = 50, 5, 32
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    worst_rss, leaked = 0.0, 0
    for target, path in mobilenetv2_artifacts(args.size).items():
        growth, fds, seconds = soak(path, frames, args.frames)
        cycle_growth, cycle_fds, cycle_threads = cycles(path, frames[0], args.cycles)
        worst_rss = max(worst_rss, growth, cycle_growth)
        leaked += max(fds, 0) + max(cycle_fds, 0)
        print(
            f"{target:12} {args.frames} frames: RSS {growth:+.2f} MB, fds {fds:+d} ({args.frames / seconds:.0f} fps)  "
            "|  "
            f"{args.cycles} load/close: RSS {cycle_growth:+.2f} MB, fds {cycle_fds:+d}, threads {cycle_threads:+d}"
        )
    print(f"worst RSS growth {worst_rss:+.2f} MB (target < {RSS_TARGET_MB:g}), leaked fds {leaked} (target 0)")
    if args.smoke:
        return 0
    from records import Figure, write_record

    write_record(
        "soak",
        [
            Figure(
                f"worst RSS growth over {args.frames} frames or {args.cycles} load/close cycles",
                round(worst_rss, 2),
                "MB",
                f"<= {RSS_TARGET_MB:g}",
            ),
            Figure("leaked file descriptors", leaked, "", "<= 0"),
        ],
        command=f"bench/soak.py --frames {args.frames} --cycles {args.cycles} --size {args.size}",
    )
    return 0 if worst_rss < RSS_TARGET_MB and leaked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
