"""`edgekit prune`: fine-tune a .keras model while pruning its weights to a sparsity."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "fine-tune a .keras model while pruning its weights to a sparsity"
DESCRIPTION = "Magnitude pruning of Conv2D/Dense (and optionally depthwise) kernels on Keras 3."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .keras model to prune (its contract gives the image size)")
    parser.add_argument("data", type=Path, help="labelled image folder (one subfolder per class)")
    parser.add_argument(
        "--sparsity", type=float, default=0.8, help="fraction of each kernel set to zero (default: 0.8)"
    )
    parser.add_argument(
        "--schedule", choices=["polynomial", "constant"], default="polynomial", help="how sparsity rises"
    )
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (default: 4)")
    parser.add_argument("--depthwise", action="store_true", help="prune DepthwiseConv2D kernels too")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default: 3e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and training (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/prune"),
        help="output folder (default: runs/prune; one holding an earlier run is kept: runs/prune2, ...)",
    )
    parser.add_argument("--exist-ok", action="store_true", help="write into --out even if it holds an earlier run")


def run(args: argparse.Namespace) -> int:
    from edgekit.data.folders import folder_for
    from edgekit.errors import TrainingError
    from edgekit.keras_io import read_keras_contract
    from edgekit.optimize.pruning import prune

    contract = read_keras_contract(args.model)
    if contract is None:
        raise TrainingError(f"{args.model} carries no edgekit contract; prune a model trained with edgekit train")
    dataset = folder_for(args.data, contract.preprocessing)
    train_split, val_split, test_split = dataset.split(val=0.15, test=0.15, seed=args.seed)
    result = prune(
        args.model,
        train_split,
        val_split,
        sparsity=args.sparsity,
        schedule=args.schedule,
        epochs=args.epochs,
        depthwise=args.depthwise,
        learning_rate=args.lr,
        test=test_split,
        out_dir=args.out,
        exist_ok=args.exist_ok,
        seed=args.seed,
    )
    print(result.table())
    print(
        (
            f"accuracy after pruning: {result.metrics['pruning']['accuracy_after_pruning'] * 100:.1f}%; wrote "
            f"{result.model_path}"
        )
    )
    return 0
