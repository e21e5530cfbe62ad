"""`edgekit predict`: classify or detect in images, folders, videos, cameras or streams."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO

from runtimes.arguments import (
    add_backend_arguments,
    add_output_arguments,
    add_predict_arguments,
    add_tracking_arguments,
    backend_options,
    predict_options,
)

HELP = "classify or detect in images, folders, videos, cameras or streams"
DESCRIPTION = (
    "Runs MODEL with the preprocessing embedded in it on image files, or on "
    "--source (an image, folder, glob, video, webcam index, rtsp:// URL or picamera2)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help=".tflite, .onnx or .mlpackage model file")
    parser.add_argument("images", type=Path, nargs="*", help="image files (or use --source)")
    parser.add_argument(
        "--source", "-s", help="frames to predict on: path, folder, glob, video, 0 (webcam), rtsp://..., picamera2"
    )
    parser.add_argument("--every", type=int, default=1, help="predict on every Nth frame of --source (default: 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many results")
    add_predict_arguments(parser)
    add_backend_arguments(parser)
    add_tracking_arguments(parser)
    add_output_arguments(parser, json_default=False)
    parser.add_argument(
        "--show", action="store_true", help="show frames with the overlay in a window (needs a display)"
    )
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        help="write annotated results: one image (.jpg, .png) for one input, a folder of images (no suffix), "
        "or a video of --source frames (.mp4, .avi)",
    )


STREAM_ONLY = {  # flag: (its value when unset, why it needs --source)
    "every": (1, "skips frames of a stream"),
    "max_frames": (None, "stops a stream"),
    "track": (False, "follows objects across a stream's frames"),
    "count_line": (None, "counts tracked objects across a stream's frames"),
    "show": (False, "shows a stream in a window"),
}


def run(args: argparse.Namespace) -> int:
    from runtimes.display import annotated_output, frames_in
    from runtimes.errors import InputError
    from runtimes.loading import open_model

    if not args.images and not args.source:
        raise InputError("nothing to predict on: give image files or --source SPEC")
    if args.images and args.source:
        raise InputError("give image files or --source, not both")
    if args.images:
        for name, (unset, job) in STREAM_ONLY.items():
            if getattr(args, name) != unset:
                flag = "--" + name.replace("_", "-")
                raise InputError(f"{flag} {job}: use it with --source (a video, camera, folder or stream), not files")
    sink = None
    if args.save:
        frames = len(args.images) if args.images else frames_in(args.source)
        sink = annotated_output(args.save, frames, video_ok=not args.images)
    with open_model(args.model, **backend_options(args)) as model:
        options = predict_options(args, model.task, args.model.name)
        if args.source is not None:
            return _predict_stream(model, args, options, sink)
        if args.output is None:
            return _predict_files(model, args, options, sink, sys.stdout)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("a", encoding="utf-8") as out:
            return _predict_files(model, args, options, sink, out)


def _predict_files(model, args: argparse.Namespace, options: dict, sink, out: IO[str]) -> int:  # noqa: ANN001
    from runtimes.apps.runner import result_line, result_record
    from runtimes.errors import InferenceError, InputError

    failures = 0
    for image in args.images:
        try:
            result = model.predict(image, **options)
        except (InputError, InferenceError) as exc:  # one bad file is reported, not fatal
            failures += 1
            print(f"{image}: skipped: {exc}", file=sys.stderr)
            continue
        record = result_record({"source": str(image)}, result, args.threshold, model.task, latency_ms=result.latency_ms)
        print(json.dumps(record) if args.json else result_line(record, model.task), file=out, flush=True)
        if sink is not None:
            _save_annotated(sink, image, result, model, args.threshold)
    if failures:
        print(f"{failures} image(s) skipped", file=sys.stderr)
    if sink is not None and sink.frames:
        print(f"annotated images: {sink.path} ({sink.frames} written)", file=sys.stderr)
    return 1 if failures == len(args.images) else 0


def _save_annotated(sink, image: Path, result, model, threshold: float | None) -> None:  # noqa: ANN001
    """`image` as read from its file, with the result's overlay, at its own size."""
    import cv2
    import numpy as np

    from runtimes.display import draw_overlay

    pixels = cv2.imdecode(np.fromfile(str(image), np.uint8), cv2.IMREAD_COLOR)
    annotated = draw_overlay(pixels, result, None, threshold, model.task, model.labels)
    sink.write(annotated, position=str(image), beside=model.task.side_images(result))


def _predict_stream(model, args: argparse.Namespace, predict: dict, sink) -> int:  # noqa: ANN001
    from runtimes.apps.runner import StreamOptions, run_to_output

    options = StreamOptions(
        every=args.every,
        max_frames=args.max_frames,
        predict=predict,
        json_lines=args.json,
        show=args.show,
        save=args.save,
        track=args.track,
        count_line=args.count_line,
    )
    return run_to_output(model, args.source, options, args.output, sink)
