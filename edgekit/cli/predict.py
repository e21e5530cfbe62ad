"""`edgekit predict`: classify or detect in images, folders, videos, cameras or streams."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtimes.apps.runner import add_tracking_arguments, backend_options

HELP = "classify or detect in images, folders, videos, cameras or streams"
DESCRIPTION = (
    "Runs MODEL with the preprocessing embedded in it on image files, or on "
    "--source (an image, folder, glob, video, webcam index, rtsp:// URL or picamera2)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help=".tflite, .onnx or .mlpackage model file")
    parser.add_argument("images", type=Path, nargs="*", help="image files (or use --source)")
    parser.add_argument(
        "--source", "-s", help="frames to classify: path, folder, glob, video, 0 (webcam), rtsp://..., picamera2"
    )
    parser.add_argument("--every", type=int, default=1, help="classify every Nth frame of --source (default: 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many results")
    parser.add_argument("--top-k", type=int, default=3, help="labels to show per image (default: 3)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="classifiers: scores below this are reported as uncertain ('?') (default: 0); "
        "detectors: the minimum detection score (default: the model's)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the runtime")
    parser.add_argument(
        "--delegate",
        action="append",
        default=[],
        help="TFLite delegate: edgetpu, gpu, xnnpack[:num_threads=N] or a library path (repeatable)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        help="ONNX Runtime execution provider: cuda, tensorrt, openvino, coreml, cpu (repeatable, in order)",
    )
    add_tracking_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per image or frame")
    parser.add_argument(
        "--show", action="store_true", help="show frames with the overlay in a window (needs a display)"
    )
    parser.add_argument(
        "--save", type=Path, default=None, help="write the annotated frames to this video (.mp4 or .avi)"
    )


def run(args: argparse.Namespace) -> int:
    from runtimes.loading import open_model

    if not args.images and not args.source:
        from runtimes.errors import InputError

        raise InputError("nothing to classify: give image files or --source SPEC")

    with open_model(args.model, num_threads=args.threads, **backend_options(args.delegate, args.provider)) as model:
        if args.source is not None:
            return _predict_stream(model, args)
        return _predict_files(model, args)


def _predict_files(model, args: argparse.Namespace) -> int:  # noqa: ANN001
    from runtimes.apps.runner import result_line, result_record
    from runtimes.errors import InferenceError, InputError

    failures = 0
    for image in args.images:
        try:
            result = model.predict(image, **model.task.cli_options(args.top_k, args.threshold))
        except (InputError, InferenceError) as exc:  # one bad file is reported, not fatal
            failures += 1
            print(f"{image}: skipped: {exc}", file=sys.stderr)
            continue
        record = result_record(image, result, args.threshold, model.task, latency_ms=result.latency_ms)
        print(json.dumps(record) if args.json else result_line(record, model.task), flush=True)
    if failures:
        print(f"{failures} image(s) skipped", file=sys.stderr)
    return 1 if failures == len(args.images) else 0


def _predict_stream(model, args: argparse.Namespace) -> int:  # noqa: ANN001
    from runtimes.apps.runner import StreamOptions, run_stream

    options = StreamOptions(
        every=args.every,
        max_frames=args.max_frames,
        top_k=args.top_k,
        threshold=args.threshold,
        json_lines=args.json,
        show=args.show,
        save=args.save,
        track=args.track,
        count_line=args.count_line,
    )
    return run_stream(model, args.source, options)
