"""Child process of `edgekit bench`: measures one model and prints one JSON line."""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np


def main(payload: str) -> int:
    from edgekit.benchmarking.runner import BenchResult
    from runtimes.backends.base import artifact_size, reference_backend_for
    from runtimes.loading import open_model

    args = json.loads(payload)
    path = Path(args["model"])
    options = {"num_threads": args["threads"]} if args["threads"] else {}
    started = time.perf_counter()
    model = open_model(path, **options)
    load_ms = (time.perf_counter() - started) * 1000
    result = BenchResult(
        str(path), model.backend, args["threads"], artifact_size(path), "ok", load_ms=round(load_ms, 3)
    )
    if not model.can_run:
        result.status = f"cannot run here: {model.runtime.unavailable_reason.split(';')[0]}"
        reference = reference_backend_for(path)
        if args["data"] and reference is not None:  # no latency, but the quality can still be known
            result.metric, result.quality = _quality(open_model(path, backend=reference.name), args["data"])
            result.status += f"; {result.metric} from the {reference.name} backend"
        print(json.dumps(asdict(result)))
        return 0
    spec = model.require_preprocessing()
    low, high = (np.asarray(v, np.float32) for v in spec.output_range())
    sample = low + np.random.default_rng(0).random((1, *spec.input_size, spec.channels), dtype=np.float32) * (
        high - low
    )
    if spec.layout.value == "nchw":
        sample = np.ascontiguousarray(np.moveaxis(sample, -1, 1))
    for _ in range(args["warmup"]):
        model.run_all(sample)
    latencies = []
    deadline = time.perf_counter() + args["seconds"] if args["seconds"] else None
    while (len(latencies) < args["runs"]) if deadline is None else (time.perf_counter() < deadline):
        tick = time.perf_counter()
        model.run_all(sample)
        latencies.append((time.perf_counter() - tick) * 1000)
    values = np.asarray(latencies)
    result.runs = len(values)
    result.mean_ms, result.p50_ms = float(values.mean()), float(np.percentile(values, 50))
    result.p90_ms, result.p99_ms = float(np.percentile(values, 90)), float(np.percentile(values, 99))
    result.throughput_fps = float(1000.0 / values.mean())
    result.latencies_ms = [round(v, 4) for v in latencies]
    if args["data"]:
        result.metric, result.quality = _quality(model, args["data"])
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB
    if sys.platform == "darwin":
        result.peak_rss_mb /= 1024  # macOS reports bytes
    print(json.dumps(asdict(result)))
    return 0


def _quality(model, path: str) -> tuple[str, float]:
    """The task's headline metric on labelled data (a class folder; YOLO, COCO or VOC), read with the model's
    contract."""
    from edgekit.host_tasks import host_task

    host = host_task(model.contract.task)
    return host.metric, host.headline(host.evaluate(model, host.load(path, model.require_preprocessing())))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
