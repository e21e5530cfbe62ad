"""`edgekit bench`: load time, latency percentiles, throughput, peak memory and size per artifact, and with
labelled data the task's headline metric (a classifier's accuracy, a detector's mAP).

Each (model, threads) pair is measured in a fresh child process, so peak RSS and load time
belong to that model alone and one model's warm caches do not flatter the next.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from edgekit.errors import EdgekitError
from edgekit.reports.progress import ProgressBar
from edgekit.reports.tables import text_table
from runtimes.backends.base import artifact_size


@dataclass
class BenchResult:
    """One model at one thread count: latency percentiles, throughput, memory and, with data, its accuracy."""

    model: str
    backend: str | None
    threads: int | None
    size_bytes: int
    status: str  # "ok", or why it could not run here
    load_ms: float | None = None
    runs: int = 0
    mean_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput_fps: float | None = None
    peak_rss_mb: float | None = None
    metric: str | None = None  # the task's headline metric, with --data: "accuracy" or "mAP@[.5:.95]"
    quality: float | None = None  # its value, as a fraction
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def accuracy(self) -> float | None:
        """A classifier's top-1 accuracy on the --data folder (None for other tasks)."""
        return self.quality if self.metric == "accuracy" else None


@dataclass
class BenchReport:
    """Every `BenchResult` of one `edgekit.bench` call.

    Attributes:
        results: One `BenchResult` per model and thread count.
    """

    results: list[BenchResult]

    HEADER = ("model", "threads", "size", "load", "p50", "p90", "p99", "throughput", "peak RSS", "quality", "status")

    def rows(self) -> list[list[str]]:
        """The table's rows, formatted (one per model and thread count)."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} ms"

        return [
            [
                Path(r.model).name,
                "default" if r.threads is None else str(r.threads),
                f"{r.size_bytes / 1024:.1f} kB",
                ms(r.load_ms),
                ms(r.p50_ms),
                ms(r.p90_ms),
                ms(r.p99_ms),
                "-" if r.throughput_fps is None else f"{r.throughput_fps:.1f}/s",
                "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f} MB",
                "-" if r.quality is None else f"{r.metric} {r.quality * 100:.1f}%",
                r.status,
            ]
            for r in self.results
        ]

    def table(self) -> str:
        """The results as a text table, as `edgekit bench` prints them."""
        return text_table(self.HEADER, self.rows())

    def to_dict(self) -> dict[str, Any]:
        """The results as JSON-ready data."""
        return {"results": [asdict(r) for r in self.results]}

    def plot(self, path: str | Path) -> Path:
        """Latency distribution per artifact (box plot), for the ones that ran."""
        from edgekit.reports.plots import plot_latencies

        ran = [r for r in self.results if r.latencies_ms]
        labels = [f"{Path(r.model).name} ({'default' if r.threads is None else r.threads} threads)" for r in ran]
        return plot_latencies([r.latencies_ms for r in ran], labels, path)


def _measure(
    model: str, threads: int | None, runs: int, seconds: float | None, warmup: int, data: str | None
) -> BenchResult:
    payload = json.dumps(
        {"model": model, "threads": threads, "runs": runs, "seconds": seconds, "warmup": warmup, "data": data}
    )
    done = subprocess.run(
        [sys.executable, "-m", "edgekit.benchmarking.worker", payload], capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["worker failed"])[-1]
        return BenchResult(model, None, threads, artifact_size(Path(model)), f"failed: {reason}")
    return BenchResult(**json.loads(lines[-1]))


def bench(
    models: Sequence[str | Path],
    *,
    runs: int = 100,
    seconds: float | None = None,
    warmup: int = 10,
    threads: Sequence[int | None] = (None,),
    data: str | Path | None = None,
    progress: bool = True,
) -> BenchReport:
    """Measure every model (and every thread count) on this machine, each in its own process.

    Args:
        models: model files (.tflite, .onnx, .mlpackage).
        runs: timed inferences per model and thread count.
        seconds: time each for this long instead of `runs`.
        warmup: untimed inferences first.
        threads: the thread counts to try (None: the runtime's default).
        data: a labelled dataset (class folders, or YOLO/COCO/VOC for detectors) to also measure accuracy or mAP.
        progress: draw a progress bar on a terminal.

    Returns:
        A `BenchReport`: latency percentiles, throughput, peak memory and, with `data`, accuracy per model.

    Raises:
        EdgekitError: a missing model file, or `runs` < 1 or `warmup` < 0.

    Examples:
        >>> report = edgekit.bench(["m_fp32.tflite", "m_int8.tflite", "m_int8.onnx"], threads=[1, 2])
        >>> print(report.table())
    """
    if runs < 1 or warmup < 0:
        raise EdgekitError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    missing = [str(m) for m in models if not Path(m).exists()]
    if missing:
        raise EdgekitError(f"model file(s) not found: {', '.join(missing)}")
    jobs = [(str(m), t) for m in models for t in threads]
    results = []
    bar = ProgressBar("bench", len(jobs), enabled=progress)  # drawn on a terminal only
    for index, (model, thread_count) in enumerate(jobs):
        bar.update(index, Path(model).name)
        results.append(_measure(model, thread_count, runs, seconds, warmup, str(data) if data else None))
    bar.close()
    return BenchReport(results)
