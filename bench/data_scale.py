"""Datasets larger than memory: in-memory vs streamed image folders at 224x224.

For 2,000 and 20,000 generated shapes images (written once under runs/bench/data_scale/) it
prints, each measured in a fresh process: peak RSS and the time to the first training batch,
in memory (every image decoded first) and streamed (tf.data); then, on 2,000 images, the
streamed decode stage's rate with 1 and 2 parallel calls, and small_cnn's epochs after the first (which
fills the cache), averaged, in memory, streamed without a cache and streamed from the cache of decoded pixels.

Exits 1 on a miss: streamed peak RSS growing more than 1.3x from 2k to 20k images, 2 parallel
decoders under 1.6x the rate of one, or the cached epoch over 1.2x the in-memory epoch.

    .venv/bin/python bench/data_scale.py [--sizes 2000,20000]
    .venv/bin/python bench/data_scale.py --smoke   # 60 images, the first batch only (make test)

A full run (every measurement, two sizes) writes bench/records/data_scale.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time

from _artifacts import CACHE

RSS_TARGET, DECODE_TARGET, CACHE_TARGET = 1.3, 1.6, 1.2
EPOCHS = 3  # the first fills the cache; the rest are averaged (single epochs vary by up to 20% on a shared host)
SIZE = 224
WORK = CACHE / "data_scale"


def images(count: int):
    """`count` shapes images at 224x224, written once."""
    import edgekit

    root = WORK / f"shapes_{count}"
    done = root / ".complete"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        edgekit.datasets.make_shapes(root, n_per_class=count // 3, image_size=SIZE, seed=0)
        done.write_text("ok")
    return root


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_batch(count: int, stream: bool) -> dict:
    """Seconds from nothing to the first normalized training batch, and the process's peak RSS."""
    import edgekit
    from edgekit.training.architectures import ARCHITECTURES
    from edgekit.training.classification import _batches

    root = images(count)
    started = time.perf_counter()
    dataset = edgekit.ImageFolder(root, image_size=SIZE, stream=stream)
    spec = ARCHITECTURES.get("small_cnn").preprocessing(dataset.geometry)
    batches = _batches(dataset, spec, 32, train=True, seed=0)
    x, _ = next(iter(batches))  # in memory and streamed alike: a tf.data pipeline
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": _peak_mb(), "batch": list(x.shape)}


def decode_rate(count: int, calls: int) -> dict:
    """Images per second through the pipeline's decode stage (read, decode, colour, resize) with `calls` parallel
    decoders, one full pass. The stage alone: batching and scaling run on the same two cores otherwise."""
    import edgekit
    from edgekit.data.image_streaming import decoded_images

    dataset = edgekit.ImageFolder(images(count), image_size=SIZE, stream=True)
    stage = decoded_images(dataset.read, len(dataset), dataset.geometry, shuffle=False, seed=0, parallel_calls=calls)
    batches = iter(stage.batch(64).prefetch(1))
    next(batches)  # the pipeline is built and running: time the steady state
    started = time.perf_counter()
    seen = sum(int(pixels.shape[0]) for pixels, _ in batches)
    return {"images_per_s": seen / (time.perf_counter() - started), "images": seen}


def epoch_seconds(count: int, mode: str, epochs: int = EPOCHS) -> dict:
    """small_cnn's epoch times: in memory, streamed, or streamed from the cache filled by epoch 1."""
    import edgekit
    from edgekit._tf import keras

    k = keras()
    cache = WORK / "pixel-cache"
    shutil.rmtree(cache, ignore_errors=True)
    dataset = edgekit.ImageFolder(
        images(count), image_size=SIZE, stream=mode != "memory", cache_dir=cache if mode == "cached" else None
    )
    train, val, _ = dataset.split(val=0.1, test=0.1, seed=0)
    times: list[float] = []

    class Timer(k.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            times.append(time.perf_counter() - self.started)

    edgekit.train(
        train,
        val,
        "small_cnn",
        epochs=epochs,
        patience=epochs,
        out_dir=WORK / f"train-{mode}",
        verbose=0,
        callbacks=[Timer()],
    )
    shutil.rmtree(cache, ignore_errors=True)
    return {"epochs": times}


def measure(what: str, *args: object) -> dict:
    """Run one measurement in a fresh process (peak RSS is per process)."""
    done = subprocess.run(
        [sys.executable, __file__, "--measure", what, *map(str, args)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--only", default="rss,decode,epochs", help="which measurements: rss, decode, epochs")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="60 images, the first-batch stage only: the harness works")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.only = "60", "rss"
    if args.measure:
        what, *rest = args.measure
        function = {"first_batch": first_batch, "decode_rate": decode_rate, "epoch_seconds": epoch_seconds}[what]
        values = [int(v) if v.isdigit() else {"True": True, "False": False}.get(v, v) for v in rest]
        print(json.dumps(function(*values)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    for count in sizes:
        images(count)
    from records import Figure

    misses: list[str] = []
    figures: list = []
    streamed_rss = {}
    only = set(args.only.split(","))
    for count in sizes if "rss" in only else []:
        for stream in (False, True):
            result = measure("first_batch", count, stream)
            label = "streamed " if stream else "in memory"
            print(
                f"{count:6d} images at {SIZE}x{SIZE}  {label}: first batch after {result['seconds']:6.1f} s, "
                f"peak RSS {result['peak_mb']:7.0f} MB"
            )
            if stream:
                streamed_rss[count] = result["peak_mb"]
    if len(sizes) > 1 and "rss" in only:
        growth = streamed_rss[sizes[-1]] / streamed_rss[sizes[0]]
        print(f"streamed peak RSS {sizes[-1]} / {sizes[0]} images: {growth:.2f}x (target <= {RSS_TARGET})")
        figures.append(
            Figure(f"streamed peak RSS, {sizes[-1]} / {sizes[0]} images", round(growth, 2), "", f"<= {RSS_TARGET}")
        )
        if growth > RSS_TARGET:
            misses.append(f"streamed RSS grows {growth:.2f}x")
    if "decode" in only:
        rates = {calls: measure("decode_rate", sizes[0], calls)["images_per_s"] for calls in (1, 2)}
        speedup = rates[2] / rates[1]
        print(
            f"decode stage, {sizes[0]} images: 1 call {rates[1]:.0f}/s, 2 calls {rates[2]:.0f}/s: {speedup:.2f}x "
            f"(target >= {DECODE_TARGET})"
        )
        figures.append(Figure("parallel decode, 2 calls / 1", round(speedup, 2), "", f">= {DECODE_TARGET}"))
        if speedup < DECODE_TARGET:
            misses.append(f"parallel decode {speedup:.2f}x")
    if "epochs" in only:
        misses += epochs(sizes[0], figures)
    print("misses: " + "; ".join(misses) if misses else "every target met")
    if args.smoke:
        return 0
    if only == {"rss", "decode", "epochs"} and len(sizes) > 1:  # a record holds every figure
        from records import write_record

        write_record("data_scale", figures, command=f"bench/data_scale.py --sizes {args.sizes}")
    return 1 if misses else 0


def epochs(count: int, figures: list) -> list[str]:
    """small_cnn's epoch times in memory, streamed and streamed with a cache; the cached/in-memory miss, if any."""
    from records import Figure

    steady = {}
    for mode in ("memory", "streamed", "cached"):
        times = measure("epoch_seconds", count, mode)["epochs"]
        steady[mode] = sum(times[1:]) / len(times[1:])
        print(
            f"small_cnn epochs on {count} images, {mode:8}: {', '.join(f'{t:.1f}' for t in times)} s "
            f"(after the first: mean {steady[mode]:.1f} s)"
        )
    ratio = steady["cached"] / steady["memory"]
    print(f"cached / in-memory epoch after the first: {ratio:.2f} (target <= {CACHE_TARGET})")
    figures.append(Figure("cached / in-memory epoch time", round(ratio, 2), "", f"<= {CACHE_TARGET}"))
    return [f"cached epoch {ratio:.2f}x in-memory"] if ratio > CACHE_TARGET else []


if __name__ == "__main__":
    sys.exit(main())
