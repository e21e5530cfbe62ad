"""`edgekit demo`: the main job end to end on generated data (shapes, or shapes scenes with boxes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtimes.tasks import TASKS

HELP = "shapes data -> train -> TFLite, ONNX, CoreML -> checked table"
DESCRIPTION = "The main job, end to end on the embedded shapes datasets (no download)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "task",
        nargs="?",
        choices=TASKS.names(),
        default="classification",
        help="classification (default): shapes images; detection: shapes scenes with boxes",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: runs/demo, runs/demo-detection)")
    parser.add_argument("--n-per-class", type=int, help="classification: images generated per class (default: 400)")
    parser.add_argument("--images", type=int, help="detection: scenes generated (default: 2000)")
    parser.add_argument("--image-size", type=int, help="image side in pixels (default: 64; detection 128)")
    parser.add_argument("--epochs", type=int, help="maximum training epochs (default: 20; detection 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, split and training (default: 0)")


def run(args: argparse.Namespace) -> int:
    from edgekit.demo import DEMOS

    given = {
        "out_dir": args.out,
        "n_per_class": args.n_per_class,
        "n_images": args.images,
        "image_size": args.image_size,
        "epochs": args.epochs,
    }
    DEMOS.get(args.task)(seed=args.seed, **{key: value for key, value in given.items() if value is not None})
    return 0
