"""The `edgekit` command line: demo, train, export, predict, info."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

from runtimes.apps.runner import add_tracking_arguments
from runtimes.errors import EdgekitError
from runtimes.tasks import TASKS

log = logging.getLogger("edgekit")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def decorator(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return decorator


def _size(text: str) -> tuple[int, int]:
    parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p]
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; use 96 or 96x128 (height x width)")
    return (parts[0], parts[-1])


def _targets(values: list[str]) -> list[str]:
    return [t.strip() for value in values for t in value.split(",") if t.strip()]


def _options(values: list[str]) -> dict[str, dict[str, object]]:
    """['coreml.compute_units=CPU_AND_NE', 'tflite.mixed_precision=false'] -> {'coreml': {...}, 'tflite': {...:
    False}}."""
    options: dict[str, dict[str, object]] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        fmt, dot, field_name = key.partition(".")
        if not (sep and dot and fmt and field_name):
            from edgekit.errors import ExportError

            raise ExportError(f"invalid --option {value!r}; use FORMAT.KEY=VALUE, e.g. coreml.compute_units=CPU_AND_NE")
        flags = {"true": True, "false": False}
        options.setdefault(fmt, {})[field_name] = int(raw) if raw.isdigit() else flags.get(raw.lower(), raw)
    return options


def build_parser() -> argparse.ArgumentParser:
    from converters import all_targets
    from edgekit._version import __version__

    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Train image classifiers with Keras, export them to edge formats with their "
        "preprocessing embedded, check every artifact, and run them anywhere.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="shapes data -> train -> TFLite, ONNX, CoreML -> checked table",
        description="The main job, end to end on the embedded shapes datasets (no download).",
    )
    demo.add_argument(
        "task",
        nargs="?",
        choices=TASKS.names(),
        default="classification",
        help="classification (default): shapes images; detection: shapes scenes with boxes",
    )
    demo.add_argument("--out", type=Path, help="output folder (default: runs/demo, runs/demo-detection)")
    demo.add_argument("--n-per-class", type=int, help="classification: images generated per class (default: 400)")
    demo.add_argument("--images", type=int, help="detection: scenes generated (default: 2000)")
    demo.add_argument("--image-size", type=int, help="image side in pixels (default: 64; detection 128)")
    demo.add_argument("--epochs", type=int, help="maximum training epochs (default: 20; detection 24)")
    demo.add_argument("--seed", type=int, default=0, help="seed for data, split and training (default: 0)")

    train = sub.add_parser(
        "train",
        help="train a classifier (class subfolders) or a detector (YOLO, COCO, VOC)",
        description="Train on DATA/<class>/<image>; writes model.keras (contract inside), "
        "metrics.json, history.png and confusion.png.",
    )
    train.add_argument(
        "data",
        type=Path,
        help="folder with one subfolder of images per class; for detection a YOLO, COCO (.json) or Pascal VOC dataset",
    )
    train.add_argument(
        "--task",
        choices=TASKS.names(),
        default="classification",
        help="what the model learns (default: classification)",
    )
    train.add_argument(
        "--arch",
        default=None,
        help="architecture name or a .keras file (default: small_cnn; small_detector for detection)",
    )
    train.add_argument(
        "--image-size", type=_size, default=None, help="input size, 96 or HxW (default: 96; 128 for detection)"
    )
    train.add_argument(
        "--color-order", choices=["rgb", "bgr", "gray"], default="rgb", help="channel order the model takes"
    )
    train.add_argument(
        "--resize",
        choices=["stretch", "letterbox", "center_crop"],
        default=None,
        help="how images are fitted to the input size (default: stretch; letterbox for detection)",
    )
    train.add_argument(
        "--interpolation",
        choices=["area", "linear"],
        default=None,
        help="how larger images are shrunk, in training and on the device: area (antialiased) or linear "
        "(one bilinear pass, faster on camera frames) (default: area; linear for detection)",
    )
    train.add_argument(
        "--devices",
        type=int,
        default=None,
        help="train on N local devices with tf.distribute's MirroredStrategy (GPUs, else N logical CPU "
        "devices); with a TF_CONFIG naming several workers, MultiWorkerMirroredStrategy. Batch size is "
        "global; only the chief writes files",
    )
    train.add_argument(
        "--stream",
        choices=["auto", "yes", "no"],
        default="auto",
        help="read images per epoch through tf.data instead of into memory (auto: when they would pass "
        "2 GiB decoded); image folders and detection datasets",
    )
    train.add_argument(
        "--cache", default=None, help="folder for a streamed dataset's decoded pixels (epoch 2 on reads them)"
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs; early stopping may end sooner (default: 20; 60 for detection)",
    )
    train.add_argument("--batch-size", type=int, default=32, help="images per training step (default: 32)")
    train.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 1e-3; 3e-3 for detection)")
    train.add_argument(
        "--patience",
        type=int,
        default=None,
        help="epochs without improvement (val loss; val mAP for detection) before stopping (default: 5; 10)",
    )
    train.add_argument("--weights", default=None, help="local weights file for the backbone (never downloaded)")
    train.add_argument("--val", type=float, default=0.15, help="validation fraction (default: 0.15)")
    train.add_argument("--test", type=float, default=0.15, help="test fraction (default: 0.15)")
    train.add_argument("--seed", type=int, default=0, help="seed for the split and training (default: 0)")
    train.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder (default: runs/train)")
    train.add_argument(
        "--teacher",
        default=None,
        help="distill from this model: a .keras file or any artifact edgekit.load runs (.tflite, .onnx)",
    )
    train.add_argument("--temperature", type=float, default=4.0, help="distillation temperature (default: 4)")
    train.add_argument(
        "--alpha", type=float, default=0.5, help="weight of the hard labels when distilling (default: 0.5)"
    )
    prune = sub.add_parser(
        "prune",
        help="fine-tune a .keras model while pruning its weights to a sparsity",
        description="Magnitude pruning of Conv2D/Dense (and optionally depthwise) kernels on Keras 3.",
    )
    prune.add_argument("model", type=Path, help="the .keras model to prune (its contract gives the image size)")
    prune.add_argument("data", type=Path, help="labelled image folder (one subfolder per class)")
    prune.add_argument("--sparsity", type=float, default=0.8, help="fraction of each kernel set to zero (default: 0.8)")
    prune.add_argument(
        "--schedule", choices=["polynomial", "constant"], default="polynomial", help="how sparsity rises"
    )
    prune.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (default: 4)")
    prune.add_argument("--depthwise", action="store_true", help="prune DepthwiseConv2D kernels too")
    prune.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default: 3e-4)")
    prune.add_argument("--seed", type=int, default=0, help="seed for the split and training (default: 0)")
    prune.add_argument("--out", type=Path, default=Path("runs/prune"), help="output folder (default: runs/prune)")

    export = sub.add_parser(
        "export",
        help="convert a .keras model to edge formats and check each",
        description="Convert MODEL to every --target, embed the contract, and compare each "
        "artifact with Keras on --check data.",
    )
    export.add_argument("model", type=Path, help=".keras file written by `edgekit train`")
    export.add_argument(
        "--target",
        "-t",
        action="append",
        required=True,
        help=f"format:mode, repeatable or comma-separated; one of: {', '.join(all_targets())}",
    )
    export.add_argument("--calibration", type=Path, help="image folder for int8 calibration (needed for int8 modes)")
    export.add_argument("--calibration-samples", type=int, default=100, help="images used to calibrate (default: 100)")
    export.add_argument("--check", type=Path, help="labelled image folder to compare every artifact with Keras")
    export.add_argument(
        "--max-drop",
        type=float,
        default=None,
        help="accuracy gate in points: an artifact less accurate than Keras by more fails (needs --check)",
    )
    export.add_argument(
        "--fallback", action="store_true", help="when a mode fails, try the next safer one (int8 -> dynamic -> float16)"
    )
    export.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="FORMAT.KEY=VALUE",
        help="format option, repeatable: coreml.compute_units=CPU_AND_NE, "
        "coreml.minimum_deployment_target=iOS17, tflite.calibration_samples=200, tflite.mixed_precision=false",
    )
    export.add_argument("--out", type=Path, default=Path("runs/export"), help="output folder (default: runs/export)")

    predict = sub.add_parser(
        "predict",
        help="classify or detect in images, folders, videos, cameras or streams",
        description="Runs MODEL with the preprocessing embedded in it on image files, or on "
        "--source (an image, folder, glob, video, webcam index, rtsp:// URL or picamera2).",
    )
    predict.add_argument("model", type=Path, help=".tflite, .onnx or .mlpackage model file")
    predict.add_argument("images", type=Path, nargs="*", help="image files (or use --source)")
    predict.add_argument(
        "--source", "-s", help="frames to classify: path, folder, glob, video, 0 (webcam), rtsp://..., picamera2"
    )
    predict.add_argument("--every", type=int, default=1, help="classify every Nth frame of --source (default: 1)")
    predict.add_argument("--max-frames", type=int, default=None, help="stop after this many results")
    predict.add_argument("--top-k", type=int, default=3, help="labels to show per image (default: 3)")
    predict.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="classifiers: scores below this are reported as uncertain ('?') (default: 0); "
        "detectors: the minimum detection score (default: the model's)",
    )
    predict.add_argument("--threads", type=int, default=None, help="CPU threads for the runtime")
    predict.add_argument(
        "--delegate",
        action="append",
        default=[],
        help="TFLite delegate: edgetpu, gpu, xnnpack[:num_threads=N] or a library path (repeatable)",
    )
    predict.add_argument(
        "--provider",
        action="append",
        default=[],
        help="ONNX Runtime execution provider: cuda, tensorrt, openvino, coreml, cpu (repeatable, in order)",
    )
    add_tracking_arguments(predict)
    predict.add_argument("--json", action="store_true", help="print one JSON object per image or frame")
    predict.add_argument(
        "--show", action="store_true", help="show frames with the overlay in a window (needs a display)"
    )
    predict.add_argument(
        "--save", type=Path, default=None, help="write the annotated frames to this video (.mp4 or .avi)"
    )

    info = sub.add_parser(
        "info",
        help="print a model's embedded contract and labels",
        description="Shows what travels inside MODEL: labels, preprocessing, quantization, tensors.",
    )
    info.add_argument("model", type=Path, help="model file (.tflite, .keras, ...)")
    info.add_argument("--json", action="store_true", help="print the contract as JSON")
    deploy = sub.add_parser(
        "deploy",
        help="package a model to run on a device without TensorFlow",
        description="Write a self-contained bundle folder and its .tar.gz.",
    )
    deploy.add_argument("target", choices=["rpi"], help="device family (rpi: Raspberry Pi OS 64-bit)")
    deploy.add_argument("model", type=Path, help=".tflite or .onnx model exported by edgekit")
    deploy.add_argument("--out", type=Path, required=True, help="bundle folder to create (must be new or empty)")
    deploy.add_argument("--name", default=None, help="service name (default: edgekit-classifier or edgekit-detector)")
    deploy.add_argument("--source", default="picamera2", help="source the service reads (default: picamera2)")
    deploy.add_argument("--user", default="pi", help="user the service runs as (default: pi)")
    deploy.add_argument(
        "--serve",
        action="store_true",
        help="add edgekit serve (REST API, live view) and a systemd unit for it, with a token made on install",
    )
    deploy.add_argument("--port", type=int, default=8500, help="port of the --serve unit (default: 8500)")

    bench = sub.add_parser(
        "bench",
        help="latency, throughput, memory, size (and accuracy) per model",
        description="Measure each MODEL on this machine, each in a fresh process, side by side.",
    )
    bench.add_argument("models", type=Path, nargs="+", help="model files (.tflite, .onnx, .mlpackage)")
    bench.add_argument("--runs", type=int, default=100, help="timed runs per model after warm-up (default: 100)")
    bench.add_argument("--seconds", type=float, default=None, help="time each model for this long instead of --runs")
    bench.add_argument("--warmup", type=int, default=10, help="untimed runs first (default: 10)")
    bench.add_argument("--threads", default=None, help="thread counts to sweep, e.g. 1,2,4 (default: the runtime's)")
    bench.add_argument("--data", type=Path, default=None, help="labelled image folder: adds accuracy per model")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.add_argument("--plot", type=Path, default=None, help="write the latency distributions as a PNG")

    serve = sub.add_parser(
        "serve",
        help="serve a model over TF Serving's REST API, with a live view in the browser",
        description="POST /v1/models/<name>:predict as TensorFlow Serving takes it; with --source, "
        "the annotated stream at / and results at /results. Device side: no TensorFlow.",
    )
    from runtimes.serving.cli import add_arguments

    add_arguments(serve)

    sub.add_parser(
        "doctor",
        help="what this machine can run, and what to install",
        description="Python, CPU, installed runtimes and camera stacks, with install advice.",
    )
    return parser


@command("serve")
def _serve(args: argparse.Namespace) -> int:
    from runtimes.serving.cli import run

    return run(args, process=args.own_process)


@command("deploy")
def _deploy(args: argparse.Namespace) -> int:
    from edgekit.deploy import rpi

    bundle = rpi(
        args.model, args.out, name=args.name, source=args.source, user=args.user, serve=args.serve, port=args.port
    )
    print(f"bundle: {bundle.folder}/ and {bundle.archive}")
    print(
        (
            f"on the Pi: tar xzf {bundle.archive.name} && cd {bundle.folder.name} && ./install.sh && .venv/bin/python "
            "run.py"
        )
    )
    return 0


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from edgekit.benchmarking.runner import bench

    try:
        threads = [int(t) for t in args.threads.split(",")] if args.threads else [None]
    except ValueError:
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"invalid --threads {args.threads!r}; use counts like 1,2,4") from None
    report = bench(
        args.models, runs=args.runs, seconds=args.seconds, warmup=args.warmup, threads=threads, data=args.data
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    if args.plot:
        report.plot(args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0 if all(r.status == "ok" or r.status.startswith("cannot run here") for r in report.results) else 1


@command("doctor")
def _doctor(args: argparse.Namespace) -> int:
    from runtimes.apps.doctor import main as doctor

    return doctor([])


@command("demo")
def _demo(args: argparse.Namespace) -> int:
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


@command("train")
def _train(args: argparse.Namespace) -> int:
    from functools import partial

    from edgekit.api import train
    from edgekit.data.annotations import load_detection
    from edgekit.data.folders import ImageFolder
    from edgekit.training.distribution import strategy_for

    detection = args.task == "detection"
    strategy = strategy_for(args.devices)  # before any other TensorFlow work: it may split the CPU into devices
    read = partial(
        load_detection if detection else ImageFolder,
        stream={"yes": True, "no": False}.get(args.stream, "auto"),
        cache_dir=args.cache,
    )
    dataset = read(
        args.data,
        image_size=args.image_size or ((128, 128) if detection else (96, 96)),
        color_order=args.color_order,
        resize=args.resize or ("letterbox" if detection else "stretch"),
        interpolation=args.interpolation or ("linear" if detection else "area"),
    )
    train_split, val_split, test_split = dataset.split(val=args.val, test=args.test, seed=args.seed)
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
        seed=args.seed,
        teacher=args.teacher,
        temperature=args.temperature,
        alpha=args.alpha,
        **({"strategy": strategy} if strategy is not None else {}),
    )
    if detection:
        for split in result.metrics["map"]:
            print(
                (
                    f"{split:>5} mAP@[.5:.95]: {result.metrics['map'][split] * 100:.1f}%  mAP@.5: "
                    f"{result.metrics['map50'][split] * 100:.1f}%"
                )
            )
        print(f"wrote {result.model_path}, metrics.json, history.png, val_boxes.png to {result.out_dir}")
        return 0
    for split, accuracy in result.metrics["accuracy"].items():
        print(f"{split:>5} accuracy: {accuracy * 100:.1f}%")
    print(f"wrote {result.model_path}, metrics.json, history.png, confusion.png to {result.out_dir}")
    return 0


@command("prune")
def _prune(args: argparse.Namespace) -> int:
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


@command("export")
def _export(args: argparse.Namespace) -> int:
    from edgekit.api import export
    from edgekit.host_tasks import host_task
    from edgekit.keras_io import read_keras_contract

    contract = read_keras_contract(args.model)

    def folder(path: Path | None):  # noqa: ANN202
        return None if path is None or contract is None else host_task(contract.task).load(path, contract.preprocessing)

    report = export(
        args.model,
        _targets(args.target),
        out_dir=args.out,
        calibration=folder(args.calibration),
        check=folder(args.check),
        calibration_samples=args.calibration_samples,
        max_drop=args.max_drop,
        fallback=args.fallback,
        options=_options(args.option),
    )
    print(report.table())
    paths = report.write(args.out)
    print(f"report: {paths['markdown']}, {paths['json']}, {paths['plot']}")
    return 0 if report.ok else 1


@command("predict")
def _predict(args: argparse.Namespace) -> int:
    from runtimes.model import open_model

    if not args.images and not args.source:
        from runtimes.errors import InputError

        raise InputError("nothing to classify: give image files or --source SPEC")
    from runtimes.apps.runner import backend_options

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


@command("info")
def _info(args: argparse.Namespace) -> int:
    if args.model.suffix == ".keras":
        from edgekit.keras_io import read_keras_contract

        contract, tensors, runs, sources = read_keras_contract(args.model), [], "yes (Keras)", {}
    else:
        from runtimes.model import open_model

        with open_model(args.model) as model:
            contract, sources = model.contract, model.contract_sources
            tensors = [("input", spec) for spec in model.runtime.input_specs] + [
                ("output", spec) for spec in model.runtime.output_specs
            ]
            runs = f"yes ({model.backend})" if model.can_run else f"no: {model.runtime.unavailable_reason}"
    if args.json:
        print(json.dumps(contract.to_dict() if contract else None, indent=2))
        return 0
    from runtimes.backends.base import artifact_size
    from runtimes.integrity import sha256_file

    print(f"model:   {args.model} ({artifact_size(args.model) / 1024:.1f} kB)")
    print(f"sha256:  {sha256_file(args.model)}")
    print(f"runs here: {runs}")
    for role, spec in tensors:
        quant = (
            f", quantized scale={spec.quantization.scale:.6g} zero_point={spec.quantization.zero_point}"
            if spec.quantization
            else ""
        )
        print(f"{role + ':':8} {spec.name} {list(spec.shape)} {spec.dtype}{quant}")
    if contract is None:
        print("contract: none embedded (pass preprocessing= and labels= when loading)")
        return 0
    pre = contract.preprocessing
    scaling = f"x * {pre.scale:.6g} + {pre.offset:.6g}"
    if pre.mean is not None:
        scaling += f", then (x - {list(pre.mean)}) / {list(pre.std or ())}"
    print(f"name:    {contract.model_name} ({contract.task}), edgekit {contract.edgekit_version or '?'}")
    print(f"labels:  {', '.join(contract.labels)}")
    print(
        (
            f"input:   {pre.height}x{pre.width} {pre.color_order.value}, resize={pre.resize.value} "
            f"({pre.interpolation.value}), layout={pre.layout.value}"
        )
    )
    print(f"scaling: {scaling}")
    from runtimes.tasks import task_for

    for line in task_for(contract.task).describe(contract.head):
        name, text = line.split(": ", 1)
        print(f"{name + ':':8} {text}")
    if contract.quantization:
        print(f"quantization: {', '.join(f'{k}={v}' for k, v in sorted(contract.quantization.items()))}")
    if sources:
        print("contract derived (no edgekit contract in the file):")
        for name, source in sorted(sources.items()):
            print(f"  {name + ':':14} {source}")
    return 0


class _UserFormatter(logging.Formatter):
    """edgekit's own lines as plain text; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


OWN_LOGGERS = ("edgekit", "converters", "runtimes", "edgekit.native")


@contextlib.contextmanager
def _logging_for_the_cli(verbose: bool) -> Iterator[None]:
    """The CLI sets up logging for its command (the library never does) and puts it back after,
    so `main()` called in-process (tests, a host program) leaves the caller's logging as it was.

    Default: edgekit's progress and results at INFO, everyone else's warnings hidden (they are
    in the debug log). -v: everything at DEBUG with logger names, third-party output included.
    """
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {name: logging.getLogger(name).level for name in OWN_LOGGERS})
    handler = logging.StreamHandler(sys.stderr)
    root.handlers[:] = [handler]
    if verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    else:
        handler.setFormatter(_UserFormatter())
        root.setLevel(logging.ERROR)  # third-party loggers (tf2onnx, coremltools, absl): errors only
        for name in ("edgekit", "converters", "runtimes"):
            logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger("edgekit.native").setLevel(logging.WARNING)  # captured C++ output: -v only
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.own_process = argv is None  # the command line of this process, not a call from Python (`serve` may restart it)
    with _logging_for_the_cli(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except EdgekitError as exc:
        print(f"edgekit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an input edgekit does not yet name: one line, never a traceback
        log.debug("unexpected error", exc_info=True)
        subject = _subject(args)
        print(
            f"edgekit {args.command}: unexpected error{f' with {subject}' if subject else ''}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Please report it with the output "
            f"of the same command run with -v (edgekit -v {args.command} ...)",
            file=sys.stderr,
        )
        return 2


def _subject(args: argparse.Namespace) -> str:
    """The file a command was working on, for an unexpected error's one line."""
    for name in ("model", "data", "models", "images"):
        value = getattr(args, name, None)
        if value:
            return ", ".join(map(str, value[:3])) if isinstance(value, list) else str(value)
    return ""


if __name__ == "__main__":
    sys.exit(main())
