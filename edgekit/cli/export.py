"""`edgekit export`: convert a .keras model to edge formats and check each artifact against it."""

from __future__ import annotations

import argparse
from pathlib import Path

from converters import all_targets
from edgekit.cli.arguments import format_options, target_list

HELP = "convert a .keras model to edge formats and check each"
DESCRIPTION = (
    "Convert MODEL to every --target, embed the contract, and compare each artifact with Keras on --check data."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help=".keras file written by `edgekit train`")
    parser.add_argument(
        "--target",
        "-t",
        action="append",
        required=True,
        help=f"format:mode, repeatable or comma-separated; one of: {', '.join(all_targets())}",
    )
    parser.add_argument("--calibration", type=Path, help="image folder for int8 calibration (needed for int8 modes)")
    parser.add_argument("--calibration-samples", type=int, default=100, help="images used to calibrate (default: 100)")
    parser.add_argument(
        "--check",
        type=Path,
        help="data to compare every artifact with Keras on: a labelled folder (classes, or a detection dataset), "
        "or the training run's folder (runs/train) for its own test split",
    )
    parser.add_argument(
        "--max-drop",
        type=float,
        default=None,
        help="accuracy gate in points: an artifact less accurate than Keras by more fails (needs --check)",
    )
    parser.add_argument(
        "--fallback", action="store_true", help="when a mode fails, try the next safer one (int8 -> dynamic -> float16)"
    )
    parser.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="FORMAT.KEY=VALUE",
        help="format option, repeatable: coreml.compute_units=CPU_AND_NE, "
        "coreml.minimum_deployment_target=iOS17, tflite.calibration_samples=200, tflite.mixed_precision=false",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/export"), help="output folder (default: runs/export)")


def run(args: argparse.Namespace) -> int:
    from converters import needing_calibration
    from edgekit.api import export
    from edgekit.errors import ExportError
    from edgekit.host_tasks import host_task
    from edgekit.keras_io import read_keras_contract
    from edgekit.optimize.qat import trained_aware
    from edgekit.run_folders import read_run_splits, run_data_root

    targets = target_list(args.target)
    needing = needing_calibration(targets)
    if args.calibration is None and needing and not trained_aware(args.model):
        verb = "needs" if len(needing) == 1 else "need"
        raise ExportError(f"{', '.join(needing)} {verb} calibration images: add --calibration DIR")
    if args.max_drop is not None and args.check is None:
        raise ExportError("--max-drop needs --check DIR to measure accuracy against Keras")
    for flag, path in (("--calibration", args.calibration), ("--check", args.check)):
        if path is not None and not path.exists():
            raise ExportError(f"{flag} {path}: no such folder or file")
    contract = read_keras_contract(args.model)

    def folder(path: Path | None):  # noqa: ANN202
        return None if path is None or contract is None else host_task(contract.task).load(path, contract.preprocessing)

    def check_data(path: Path | None):  # noqa: ANN202
        """--check DIR: a labelled folder, or a training run's folder (its own test split, else its val split)."""
        root = run_data_root(path) if path is not None else None
        if root is None or contract is None:
            return folder(path)
        splits = read_run_splits(path) or {}
        name = "test" if splits.get("test") else "val"
        wanted = set(splits.get(name, ()))
        dataset = folder(root)
        chosen = [i for i, source in enumerate(dataset.sources) if str(Path(source).resolve()) in wanted]
        if not chosen:
            raise ExportError(f"--check {path}: none of the run's {name} images are in {root} any more")
        print(f"check: the {name} split of the run in {path} ({len(chosen)} images of {root})")
        return dataset.subset(chosen)

    report = export(
        args.model,
        targets,
        out_dir=args.out,
        calibration=folder(args.calibration),
        check=check_data(args.check),
        calibration_samples=args.calibration_samples,
        max_drop=args.max_drop,
        fallback=args.fallback,
        options=format_options(args.option),
    )
    print(report.table())
    paths = report.write(args.out)
    print(f"report: {paths['markdown']}, {paths['json']}, {paths['plot']}")
    return 0 if report.ok else 1
