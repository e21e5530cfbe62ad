"""`edgekit train`: train a classifier (class subfolders) or a detector (YOLO, COCO, VOC)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgekit.cli.arguments import image_size
from runtimes.tasks import TASKS

HELP = "train a classifier (class subfolders) or a detector (YOLO, COCO, VOC)"
DESCRIPTION = (
    "Classification: DATA/<class>/<image>; detection (--task detection): a YOLO, COCO or Pascal VOC dataset, its own "
    "train/val/test splits kept. Writes model.keras (contract inside), metrics.json, history.png, splits.json and "
    "confusion.png (classification) or val_boxes.png (detection) to a new run folder."
)


DATA_HELP = (
    "folder with one subfolder of images per class; for detection a YOLO, COCO (.json) or Pascal VOC dataset; "
    "for keypoints COCO keypoints or YOLO pose; for segmentation images/ and masks/, Pascal VOC or COCO"
)
ARCH_HELP = (
    "architecture name or a .keras file (default: small_cnn; small_detector for detection; "
    "small_keypoint_detector for keypoints, or mobilenetv2_keypoint_detector; small_segmenter for "
    "segmentation, or mobilenetv2_segmenter)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        type=Path,
        help=DATA_HELP,
    )
    parser.add_argument(
        "--task",
        choices=TASKS.names(),
        default="classification",
        help="what the model learns (default: classification)",
    )
    parser.add_argument(
        "--arch",
        default=None,
        help=ARCH_HELP,
    )
    parser.add_argument(
        "--image-size", type=image_size, default=None, help="input size, 96 or HxW (default: 96; 128 for detection)"
    )
    parser.add_argument(
        "--color-order", choices=["rgb", "bgr", "gray"], default="rgb", help="channel order the model takes"
    )
    parser.add_argument(
        "--resize",
        choices=["stretch", "letterbox", "center_crop"],
        default=None,
        help="how images are fitted to the input size (default: stretch; letterbox for detection)",
    )
    parser.add_argument(
        "--interpolation",
        choices=["area", "linear"],
        default=None,
        help="how larger images are shrunk, in training and on the device: area (antialiased) or linear "
        "(one bilinear pass, faster on camera frames) (default: area; linear for detection)",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=None,
        help="train on N local devices with tf.distribute's MirroredStrategy (GPUs, else N logical CPU "
        "devices); with a TF_CONFIG naming several workers, MultiWorkerMirroredStrategy. Batch size is "
        "global; only the chief writes files",
    )
    parser.add_argument(
        "--stream",
        choices=["auto", "yes", "no"],
        default="auto",
        help="read images per epoch through tf.data instead of into memory (auto: when they would pass "
        "2 GiB decoded); image folders and detection datasets",
    )
    parser.add_argument(
        "--cache", default=None, help="folder for a streamed dataset's decoded pixels (epoch 2 on reads them)"
    )
    _add_fit_arguments(parser)


def _add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """How long and how to fit, and distillation."""
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs; early stopping may end sooner (default: 20; 60 for detection)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per training step (default: 32)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 1e-3; 3e-3 for detection)")
    parser.add_argument(
        "--patience",
        type=int,
        default=None,
        help="epochs without improvement (val loss; val mAP for detection) before stopping (default: 5; 10)",
    )
    parser.add_argument("--weights", default=None, help="local weights file for the backbone (never downloaded)")
    parser.add_argument(
        "--val",
        type=float,
        default=0.15,
        help="validation fraction where the data has no val split of its own (default: 0.15)",
    )
    parser.add_argument(
        "--test", type=float, default=0.15, help="test fraction where the data has no splits (default: 0.15)"
    )
    parser.add_argument(
        "--resplit",
        action="store_true",
        help="draw a random split even where the data has its own (data.yaml, COCO files per split, ImageSets)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and training (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/train"),
        help="output folder (default: runs/train); one holding an earlier run is kept and this run goes to "
        "runs/train2, runs/train3, ...",
    )
    parser.add_argument("--exist-ok", action="store_true", help="write into --out even if it holds an earlier run")
    parser.add_argument(
        "--teacher",
        default=None,
        help="distill from this model: a .keras file or any artifact edgekit.load runs (.tflite, .onnx)",
    )
    parser.add_argument(
        "--qat",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="then fine-tune quantization-aware for EPOCHS into OUT/qat (edgekit qat; default: 0, none)",
    )
    parser.add_argument("--temperature", type=float, default=4.0, help="distillation temperature (default: 4)")
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="weight of the hard labels when distilling (default: 0.5)"
    )


def run(args: argparse.Namespace) -> int:
    from edgekit.api import train
    from edgekit.run_folders import write_run_splits
    from edgekit.training.distribution import strategy_for

    strategy = strategy_for(args.devices)  # before any other TensorFlow work: it may split the CPU into devices
    dataset = _read(args)
    train_split, val_split, test_split = dataset.split(
        val=args.val, test=args.test, seed=args.seed, resplit=args.resplit
    )
    result = train(
        train_split,
        val_split,
        args.arch,
        task=args.task,
        test=test_split if len(test_split) else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        patience=args.patience,
        weights=args.weights,
        out_dir=args.out,
        exist_ok=args.exist_ok,
        seed=args.seed,
        teacher=args.teacher,
        temperature=args.temperature,
        alpha=args.alpha,
        **({"strategy": strategy} if strategy is not None else {}),
    )
    write_run_splits(result.out_dir, {"train": train_split, "val": val_split, "test": test_split}, data=args.data)
    print_metrics(result, args.task)
    if args.qat:
        from edgekit.cli import qat

        options = argparse.Namespace(
            epochs=args.qat,
            lr=1e-4,
            batch_size=args.batch_size,
            out=result.out_dir / "qat",
            exist_ok=True,
            seed=args.seed,
        )
        qat.print_result(qat.fine_tune(result.model_path, (train_split, val_split, test_split), options))
    return 0


def print_metrics(result: Any, task: str) -> None:
    """Each split's headline metric and what the run wrote."""
    from edgekit.host_tasks import host_task

    host = host_task(task)
    for line in host.metric_lines(result.metrics):
        print(line)
    print(f"wrote {result.model_path}, {host.written} to {result.out_dir}")


def _read(args: argparse.Namespace) -> Any:
    """The task's dataset at DATA, with the task's default geometry."""
    from edgekit.host_tasks import host_task

    host = host_task(args.task)
    geometry = {
        "image_size": args.image_size or host.defaults.image_size,
        "color_order": args.color_order,
        "resize": args.resize or host.defaults.resize,
        "interpolation": args.interpolation or host.defaults.interpolation,
    }
    return host.read(args.data, geometry, {"yes": True, "no": False}.get(args.stream, "auto"), args.cache)
