"""edgekit's public entry points: `train`, `export`, `evaluate` and `load`.

Each asks the contract's (or the data's) task for what differs per task (`edgekit.host_tasks`) instead of
branching on it. The heavy work is imported on first call: ``import edgekit`` stays cheap on a device.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from edgekit.errors import ContractError, DatasetError, ExportError, TrainingError
from edgekit.reports.progress import shown_progress
from edgekit.reports.summary import dataset_summary
from edgekit.run_folders import new_run_folder, read_run_splits, seen_in_training, write_run_splits
from runtimes.contract import ModelContract, Preprocessing
from runtimes.loading import open_model
from runtimes.model import Model

log = logging.getLogger("edgekit.training")

if TYPE_CHECKING:
    from edgekit.exporter import CalibrationInput, CheckData, ExportReport
    from edgekit.training.options import TrainOptions, TrainResult


def _task_of(train: Any) -> str:
    """The task a training split implies: keypoints, detection or classification."""
    from edgekit.data.detection import DetectionData
    from edgekit.data.keypoint_datasets import is_keypoint_data
    from edgekit.data.segmentation import SegmentationDataset
    from edgekit.data.segmentation_streaming import StreamingSegmentationDataset

    if is_keypoint_data(train):
        return "keypoints"
    if isinstance(train, (SegmentationDataset, StreamingSegmentationDataset)):
        return "segmentation"
    return "detection" if isinstance(train, DetectionData) else "classification"


def train(train: Any, val: Any, arch: Any = None, options: TrainOptions | None = None, **keywords: Any) -> TrainResult:
    """Train `arch` (a registered name, a keras.Model or a .keras path) and write its files.

    Classification writes ``model.keras`` (best epoch by validation loss, with the contract inside),
    ``metrics.json``, ``history.png`` and ``confusion.png`` to `out_dir`; detection (implied by
    DetectionDataset splits; `arch` "small_detector" by default, or "mobilenetv2_detector") writes
    ``model.keras`` (best validation mAP@[.5:.95]), ``metrics.json``, ``history.png`` and ``val_boxes.png``.
    With `teacher` the model learns from a blend of the hard labels and the teacher's softened outputs
    (knowledge distillation); with `strategy` it trains on several devices (only the chief writes files).
    `verbose=1` logs a summary of the splits, then one line per epoch (logger ``edgekit.training``): on stderr
    when the caller set up no logging, through the caller's handlers when it did; `verbose=0` is silent. A
    folder holding an earlier run is kept: this run goes to ``runs/train2`` (``exist_ok=True`` reuses it).

    Args:
        train: the training split (an ImageDataset, a streamed one, or a DetectionDataset).
        val: the validation split: early stopping and the best epoch are chosen on it.
        arch: an architecture name (`edgekit.ARCHITECTURES`), a keras.Model or a .keras path; None: the task's
            small default.
        options: a `TrainOptions`; its fields can also be given as keywords (`epochs=15`), which win.
        **keywords: any `TrainOptions` field.

    Returns:
        A `TrainResult`: the trained model, its contract and where its files went.

    Raises:
        TrainingError: splits that do not match, or options the task cannot honour.
        TypeError: a keyword that is not a `TrainOptions` field.

    Examples:
        >>> tr, va, te = edgekit.ImageFolder("shapes", image_size=64).split(seed=0)
        >>> result = edgekit.train(tr, va, arch="small_cnn", test=te, epochs=15)
        >>> result.metrics["accuracy"]["test"]
        0.95
    """
    from edgekit.host_tasks import HOST_TASKS
    from edgekit.training.options import TrainOptions

    chosen = TrainOptions.from_call(options, keywords)
    if chosen.test is not None and not len(chosen.test):  # the data's splits may hold no test split
        chosen = replace(chosen, test=None)
    task = chosen.task or _task_of(train)
    if task not in HOST_TASKS:
        raise TrainingError(f"unknown task {task!r}; valid tasks: {', '.join(HOST_TASKS.names())}")
    with shown_progress(chosen.verbose):
        chosen = replace(chosen, out_dir=new_run_folder(chosen.out_dir, chosen.exist_ok))
        splits = {"train": train, "val": val, "test": chosen.test}
        if chosen.verbose:
            log.info("%s", dataset_summary(splits))
        result = HOST_TASKS.get(task).train(train, val, arch, chosen)
        write_run_splits(result.out_dir, splits)
        return result


def export(
    model: Any,
    targets: Sequence[str],
    *,
    out_dir: str | Path = "runs/export",
    calibration: CalibrationInput | None = None,
    check: CheckData | None = None,
    contract: ModelContract | None = None,
    name: str | None = None,
    calibration_samples: int = 100,
    max_drop: float | None = None,
    fallback: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
) -> ExportReport:
    """Convert `model` to each target and check each artifact against it.

    A failing target does not stop the others: its error is in the report. With `max_drop`, an artifact
    that falls further below Keras is failed and removed; with `fallback=True` the next safer mode of that
    format is tried instead. A failed export leaves no half-written artifact.

    Args:
        model: a keras.Model or a .keras path (an edgekit one carries its contract).
        targets: ``format:mode`` strings (``tflite:int8``); an unknown one lists the valid ones.
        out_dir: where the artifacts and the report (report.md, report.json, plots) go.
        calibration: int8 calibration images: a dataset, a CalibrationData or an array of input tensors.
        check: held-out data every artifact is compared with Keras on.
        contract: the preprocessing contract, for a model that carries none.
        name: the artifacts' file name stem; the contract's model name by default.
        calibration_samples: how many calibration images int8 uses.
        max_drop: the most points of the task's metric (accuracy, or mAP@[.5:.95]) an artifact may lose.
        fallback: try the next safer mode of a format whose mode failed or lost too much.
        options: format-specific config fields for every mode of that format, e.g.
            ``{"coreml": {"compute_units": "CPU_AND_NE", "minimum_deployment_target": "iOS17"}}``.
        progress: draw a progress bar on a terminal.

    Returns:
        An `ExportReport`: one `ExportResult` per target (and per fallback tried), with the table and notes.

    Raises:
        ContractError: the model carries no contract and none was given.
        ExportError: `max_drop` without `check` data.
        UnknownTargetError: a target that is not registered (the message lists the valid ones).

    Examples:
        >>> report = edgekit.export("runs/train/model.keras", ["tflite:int8", "onnx:int8", "coreml:fp16"],
        ...                         calibration=train, check=test, max_drop=1.0, fallback=True)
        >>> print(report.table())
    """
    from converters import needing_calibration, parse_target
    from edgekit.data.images import in_memory
    from edgekit.exporter import ExportJob, ExportReport, calibration_data, configurator, run_targets
    from edgekit.host_tasks import host_task
    from edgekit.keras_io import load_keras
    from edgekit.optimize.qat import float_reference, trained_aware

    parsed = [(target, *parse_target(target)) for target in targets]  # fail fast on unknown targets
    configure = configurator(options or {})
    for _, entry, mode, _ in parsed:  # and on bad options, before the model loads
        configure(entry, mode)
    if calibration is None and needing_calibration(targets) and not trained_aware(model, contract):
        raise ExportError(
            f"{', '.join(needing_calibration(targets))}: full-integer modes need calibration data; pass "
            "calibration= (a few hundred training images, a dataset or an image folder), or pick a float or "
            "dynamic mode"
        )
    if max_drop is not None and check is None:
        raise ExportError("max_drop needs check= data to measure accuracy against Keras; pass check=test_split")
    run_splits = read_run_splits(Path(model).parent) if isinstance(model, (str, Path)) else None
    if isinstance(model, (str, Path)):
        model, embedded = load_keras(model)
        contract = contract or embedded
    if contract is None:
        raise ContractError(
            "no preprocessing contract: export a .keras file written by edgekit.train, or pass "
            "contract=ModelContract(Preprocessing(...), labels=[...])"
        )
    task = host_task(contract.task)
    model = task.deployable(model, contract)  # a detector's decoding goes into every artifact
    calib = calibration_data(calibration, contract, calibration_samples, task)
    warnings: list[str] = []
    if calib is not None and any(config.needs_calibration for *_, config in parsed):
        warnings = list(calib.check(contract.preprocessing, recommended=calibration_samples).warnings)
    reference = keras_quality = None
    check = in_memory(check)  # a streamed split is decoded once: every artifact is checked on the same images
    if check is not None:
        reference = task.reference(model, check, contract)
        keras_quality = task.reference_quality(check, reference, contract)
    job = ExportJob(
        model,
        contract,
        Path(out_dir),
        name or contract.model_name,
        calib,
        check,
        reference,
        max_drop,
        configure,
        progress,
        task,
    )
    results = run_targets(job, parsed, fallback)
    checked = len(check) if check is not None else 0
    seen = seen_in_training(check.sources, run_splits) if check is not None else None
    report = ExportReport(job.name, keras_quality, checked, results, max_drop, warnings, contract.task, seen)
    if check is not None:
        report.compare_with_float(float_reference(contract, check, task))
    return report


def evaluate(model: str | Path | Model, dataset: Any) -> Any:
    """The task's metrics of an artifact on a labelled dataset.

    Args:
        model: an artifact path or an open `Model`.
        dataset: a labelled dataset of the model's task (streamed ones are decoded once).

    Returns:
        For a classifier, `ClassificationMetrics` (accuracy, confusion, per-class precision and recall); for a
        detector, `DetectionMetrics` (COCO mAP with per-class AP).

    Raises:
        DatasetError: a dataset of another task, or with other labels than the model's.

    Examples:
        >>> edgekit.evaluate("runs/demo/export/model_int8.tflite", test).accuracy
        0.96
    """
    from edgekit.data.images import in_memory
    from edgekit.host_tasks import host_task

    owned = not isinstance(model, Model)
    loaded = open_model(model) if owned else model
    try:
        task = host_task(loaded.contract.task if loaded.contract is not None else "classification")
        dataset = in_memory(dataset)  # a streamed split: decoded once, then scored like any other
        if not isinstance(dataset, task.dataset_type):
            raise DatasetError(
                f"a {task.name} model is evaluated on a {task.dataset_type.__name__}, got {type(dataset).__name__}"
            )
        return task.evaluate(loaded, dataset)
    finally:
        if owned:
            loaded.close()


def load(
    path: str | Path,
    *,
    preprocessing: Preprocessing | None = None,
    labels: Sequence[str] | None = None,
    backend: str | None = None,
    contract: ModelContract | str | Path | None = None,
    **options: Any,
) -> Model:
    """Open an artifact (TFLite, ONNX, CoreML, SavedModel) on the runtime for its file type, contract applied.

    Args:
        path: the model file (or .mlpackage / SavedModel folder).
        preprocessing: the contract's preprocessing for a file that carries none.
        labels: the labels for a file that carries none.
        backend: a backend by name (`runtimes.BACKENDS`) instead of the one for the suffix.
        contract: the whole contract for a third-party file: a `ModelContract`, a contract JSON file or a contract
            edgekit ships by name ("mediapipe_face_detection_short_range": MediaPipe's BlazeFace).
        **options: the backend's options (`num_threads`, `delegate`, `providers`, `compute_units`).

    Returns:
        A `Model`: `predict`, `stream`, `run` and `run_all`.

    Raises:
        ModelLoadError: a missing, unreadable or unknown file.
        ContractError: `preprocessing` or `labels` that contradict the embedded contract.

    Examples:
        >>> with edgekit.load("runs/demo/export/model_int8.tflite") as model:
        ...     print(model.predict("circle.png").label)
        circle
    """
    return open_model(path, preprocessing=preprocessing, labels=labels, backend=backend, contract=contract, **options)
