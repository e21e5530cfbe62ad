"""`edgekit qat`: fine-tune a trained .keras model quantization-aware, for int8 files that keep its accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "fine-tune a trained .keras model quantization-aware (int8 that keeps its accuracy)"
DESCRIPTION = (
    "Quantization-aware training on Keras 3: int8 simulated as TFLite computes it (BatchNorm folded, per-channel "
    "weights, activation ranges from the data, then frozen). Export the result to tflite:int8 without --calibration."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the trained .keras model (its contract gives size and task)")
    parser.add_argument(
        "data", type=Path, help="the data it was trained on (its own splits are used where it has them)"
    )
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default: 3)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and training (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/qat"),
        help="output folder (default: runs/qat; one holding an earlier run is kept: runs/qat2, ...)",
    )
    parser.add_argument("--exist-ok", action="store_true", help="write into --out even if it holds an earlier run")


def run(args: argparse.Namespace) -> int:
    from edgekit.errors import TrainingError
    from edgekit.host_tasks import host_task
    from edgekit.keras_io import read_keras_contract

    contract = read_keras_contract(args.model)
    if contract is None:
        raise TrainingError(f"{args.model} carries no edgekit contract; fine-tune a model trained with edgekit train")
    splits = host_task(contract.task).load(args.data, contract.preprocessing).split(seed=args.seed)
    result = fine_tune(args.model, splits, args)
    print_result(result)
    return 0


def fine_tune(model: Path, splits: tuple[Any, Any, Any], args: argparse.Namespace) -> Any:
    """`quantize_aware` on (train, val, test) with the command line's options (also `edgekit train --qat`)."""
    from edgekit.optimize.qat import quantize_aware

    train, val, test = splits
    return quantize_aware(
        model,
        train,
        val,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        test=test if len(test) else None,
        out_dir=args.out,
        exist_ok=args.exist_ok,
        seed=args.seed,
    )


def print_result(result: Any) -> None:
    """The fine-tuned model's metrics per split and where it went."""
    metric = "map" if "map" in result.metrics else "accuracy"
    for split, value in result.metrics[metric].items():
        print(f"{split:>5} {'mAP@[.5:.95]' if metric == 'map' else 'accuracy'} (int8 simulated): {value * 100:.1f}%")
    print(
        f"wrote {result.model_path} (quantization-aware: export tflite:int8 without --calibration) to {result.out_dir}"
    )
