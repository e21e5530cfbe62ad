"""Run a model over a source and report each result: the device-side runner.

`edgekit predict --source` and the Raspberry Pi bundle's `run.py` both use this, so the
Pi runs exactly what was tested on the host, with numpy, OpenCV and one runtime.

    python -m runtimes.apps.runner model.tflite --source 0 --json --output results.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Sequence

from runtimes.arguments import (
    add_backend_arguments,
    add_output_arguments,
    add_predict_arguments,
    add_tracking_arguments,
    apply_bundle_config,
    backend_options,
    predict_options,
)
from runtimes.errors import EdgekitError


@dataclass(frozen=True)
class StreamOptions:
    every: int = 1
    max_frames: int | None = None
    predict: dict[str, Any] = field(default_factory=dict)  # predict()'s options (runtimes.vocabulary's names)
    json_lines: bool = False
    show: bool = False
    save: Path | None = None  # annotated frames: a video (.mp4, .avi), one image (.jpg, .png) or a folder
    track: bool = False  # detectors: ids that persist across frames
    count_line: tuple[float, float, float, float] | None = None  # detectors: count tracked objects crossing it

    @property
    def threshold(self) -> float | None:
        """classifiers: below it a result is uncertain (label None); detectors: the minimum score."""
        return self.predict.get("threshold")


def result_record(
    origin: dict[str, Any], result: Any, threshold: float | None, task: Any = None, **extra: float
) -> dict[str, Any]:
    """One result as a JSON-ready dict after its origin (``{"source": ...}``, and ``"frame"`` for a stream's), in
    its task's terms (a classifier's `label` is None below `threshold`)."""
    return _task(task).record(origin, result, threshold, **extra)


def result_line(record: dict[str, Any], task: Any = None) -> str:
    """The human-readable line for a record."""
    return _task(task).line(record)


def _task(task: Any) -> Any:
    from runtimes.tasks import task_for

    return task if task is not None else task_for("classification")


def run_stream(model: Any, source: Any, options: StreamOptions, out: IO[str] | None = None, sink: Any = None) -> int:
    """Predict on every frame of `source`, writing one line (or JSON object) per result to `out` (stdout), and the
    annotated frames to `sink` (`runtimes.display.annotated_output`; made from ``options.save`` when not given)."""
    from runtimes.display import Window, annotated_output, frames_in, present

    out = out or sys.stdout
    video = sink if sink is not None else annotated_output(options.save, frames_in(source)) if options.save else None
    window = Window("edgekit") if options.show else None
    stream = model.stream(
        source,
        every=options.every,
        max_frames=options.max_frames,
        track=options.track,
        count_line=options.count_line,
        **options.predict,
    )
    count = 0
    with stream:
        for item in present(stream, threshold=options.threshold, window=window, video=video):
            count += 1
            record = result_record(
                item.frame.origin(),
                item.result,
                options.threshold,
                model.task,
                latency_ms=item.latency_ms,
                age_ms=item.age_ms,
            )
            if item.counts is not None:
                record["count"] = item.counts.to_dict()
            print(json.dumps(record) if options.json_lines else result_line(record, model.task), file=out, flush=True)
    stats = stream.source.stats
    print(
        f"{count} result(s); source delivered {stats.delivered}, dropped {stats.dropped} stale, "
        f"skipped "
        f"{stats.skipped}",
        file=sys.stderr,
    )
    if stream.counter is not None:
        print(
            f"{stream.counter.counts} over the line {','.join(f'{v:g}' for v in stream.counter.line)}", file=sys.stderr
        )
    if video:
        print(f"annotated frames: {options.save} ({video.frames} written)", file=sys.stderr)
    return 0 if count else 1


def run_to_output(model: Any, source: Any, options: StreamOptions, output: Path | None, sink: Any = None) -> int:
    """`run_stream` writing to stdout, or appending to the file `output` (its folder made)."""
    if output is None:
        return run_stream(model, source, options, sink=sink)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a", encoding="utf-8") as out:
        return run_stream(model, source, options, out, sink)


def build_parser(default_model: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner", description="Run an edgekit model (classifier or detector) on frames from a source."
    )
    parser.add_argument(
        "--model", default=default_model, required=default_model is None, help="model file (.tflite, .onnx)"
    )
    parser.add_argument(
        "--source", default="0", help="image, folder, glob, video, webcam index, rtsp:// URL or picamera2"
    )
    parser.add_argument("--every", type=int, default=1, help="predict on every Nth frame")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many results")
    add_predict_arguments(parser)
    add_tracking_arguments(parser)
    add_output_arguments(parser, json_default=True)
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        help="write the annotated frames: a video (.mp4, .avi), one image (.jpg, .png) or a folder of images",
    )
    add_backend_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, default_model: str | None = None, bundle: str | Path | None = None) -> int:
    """Entry point of `python -m runtimes.apps.runner` and of the deploy bundle's run.py (JSON lines out).

    A bundle's run.py passes its folder: its MANIFEST.sha256 is checked before anything loads,
    so a damaged model or runtime file is refused with the file named, never run.
    """
    from runtimes.loading import open_model

    parser = build_parser(default_model)
    try:
        if bundle is not None:
            from runtimes.integrity import verify_manifest

            verify_manifest(bundle)
        apply_bundle_config(parser, bundle)  # the bundle's config.json: its settings, a flag still wins
    except EdgekitError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        with open_model(args.model, **backend_options(args)) as model:
            options = StreamOptions(
                every=args.every,
                max_frames=args.max_frames,
                predict=predict_options(args, model.task, Path(args.model).name),
                json_lines=args.json,
                save=args.save,
                track=args.track,
                count_line=args.count_line,
            )
            return run_to_output(model, args.source, options, args.output)
    except EdgekitError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
