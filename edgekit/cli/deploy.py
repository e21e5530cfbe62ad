"""`edgekit deploy`: a self-contained bundle for a device without TensorFlow."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtimes.arguments import add_backend_arguments, add_predict_arguments, add_tracking_arguments

HELP = "package a model to run on a device without TensorFlow"
DESCRIPTION = "Write a self-contained bundle folder and its .tar.gz."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["rpi"], help="device family (rpi: Raspberry Pi OS 64-bit)")
    parser.add_argument("model", type=Path, help=".tflite or .onnx model exported by edgekit")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to create (must be new or empty)")
    parser.add_argument("--name", default=None, help="service name (default: edgekit-classifier or edgekit-detector)")
    parser.add_argument(
        "--source", default="picamera2", help="source the bundle reads, in its config.json (default: picamera2)"
    )
    parser.add_argument("--user", default="pi", help="user the service runs as (default: pi)")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="add edgekit serve (REST API, live view) and a systemd unit for it, with a token made on install",
    )
    parser.add_argument("--port", type=int, default=8500, help="port of the --serve unit (default: 8500)")
    add_predict_arguments(parser)
    add_tracking_arguments(parser)
    add_backend_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edgekit.deploy import rpi

    bundle = rpi(
        args.model,
        args.out,
        name=args.name,
        source=args.source,
        user=args.user,
        serve=args.serve,
        port=args.port,
        threshold=args.threshold,
        track=args.track,
        count_line=args.count_line,
        iou=args.iou,
        max_detections=args.max_detections,
        agnostic=bool(args.agnostic),
        top_k=args.top_k,
        threads=args.threads,
        delegate=args.delegate or None,
        provider=args.provider or None,
        contract=args.contract,
    )
    print(f"bundle: {bundle.folder}/ and {bundle.archive}")
    print(
        (
            f"on the Pi: tar xzf {bundle.archive.name} && cd {bundle.folder.name} && ./install.sh && .venv/bin/python "
            "run.py"
        )
    )
    return 0
