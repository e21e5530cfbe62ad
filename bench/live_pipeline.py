"""Live pipeline throughput: capture on its own thread keeps the model busy with fresh frames.

A fake camera delivers frames at a fixed rate; a runtime of known latency (it sleeps) stands
in for the model. Pipelined throughput should reach min(camera fps, model fps) and frames
should be young when inference starts. Prints one line per scenario, the worst ratio last;
exits 1 when it is below the 0.9 target.

    .venv/bin/python bench/live_pipeline.py [--seconds 4]
    .venv/bin/python bench/live_pipeline.py --smoke    # half a second per scenario: the harness works (make test)

A full run writes bench/records/live_pipeline.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtimes.backends.base import RuntimeBase, TensorSpec  # noqa: E402
from runtimes.contract import ModelContract, Preprocessing  # noqa: E402
from runtimes.model import Model  # noqa: E402
from runtimes.sources import LiveSource  # noqa: E402

TARGET = 0.9


class FixedRateCamera:
    """Delivers a 640x480 frame every 1/fps seconds on a fixed schedule (no drift)."""

    name = "fixed-rate camera"

    def __init__(self, fps: float) -> None:
        self.interval, self.next_at = 1.0 / fps, 0.0
        self.image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    def open(self) -> None:
        self.next_at = time.monotonic()

    def read(self) -> np.ndarray:
        self.next_at += self.interval
        time.sleep(max(0.0, self.next_at - time.monotonic()))
        return self.image

    def close(self) -> None:
        pass


class KnownLatencyRuntime(RuntimeBase):
    """A 'model' that takes exactly `latency` seconds per call."""

    backend_name = "sleep"

    def __init__(self, latency: float) -> None:
        self.path, self.latency = Path("known-latency.model"), latency

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("image", (1, 64, 64, 3), np.dtype(np.float32))]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [TensorSpec("scores", (1, 2), np.dtype(np.float32))]

    def run(self, inputs):  # noqa: ANN001, ANN201
        time.sleep(self.latency)
        return [np.array([[0.25, 0.75]], np.float32)]

    def embedded_contract(self) -> None:
        return None


def scenario(camera_fps: float, model_ms: float, seconds: float) -> tuple[float, float, float, int]:
    model = Model(KnownLatencyRuntime(model_ms / 1000), ModelContract(Preprocessing(64), ("a", "b")))
    source = LiveSource("bench", FixedRateCamera(camera_fps))
    ages, count, started = [], 0, time.monotonic()
    with model.stream(source) as stream:
        for result in stream:
            ages.append(result.age_ms)
            count += 1
            if time.monotonic() - started >= seconds:
                break
    elapsed = time.monotonic() - started
    expected = min(camera_fps, 1000.0 / model_ms)
    return (count / elapsed) / expected, statistics.median(ages), count / elapsed, source.stats.dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--smoke", action="store_true", help="half a second per scenario; no record, no target")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.smoke else args.seconds
    worst = float("inf")
    ratios = []
    for camera_fps, model_ms in ((30.0, 50.0), (20.0, 20.0), (15.0, 10.0)):
        ratio, age, fps, dropped = scenario(camera_fps, model_ms, seconds)
        ratios.append(round(ratio, 3))
        worst = min(worst, ratio)
        print(
            f"camera {camera_fps:4.0f} fps, model {model_ms:4.0f} ms: {fps:5.1f} results/s = {ratio:.3f} of "
            f"min(camera, model); median frame age {age:5.1f} ms; {dropped} stale frames dropped"
        )
    print(f"worst pipelined throughput ratio: {worst:.3f} (target >= {TARGET})")
    if args.smoke:
        return 0
    from records import Figure, write_record

    scenarios = ("camera 30 fps, model 50 ms", "camera 20 fps, model 20 ms", "camera 15 fps, model 10 ms")
    write_record(
        "live_pipeline",
        [
            Figure(f"throughput / min(camera, model): {name}", ratio, "", f">= {TARGET}")
            for name, ratio in zip(scenarios, ratios)
        ],
        command=f"bench/live_pipeline.py --seconds {seconds:g}",
    )
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
