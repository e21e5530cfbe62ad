"""`edgekit.export`: one Keras model to every target, each artifact checked against Keras."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from converters import CalibrationData, parse_target
from edgekit.data import ImageDataset
from edgekit.errors import ContractError, DatasetError
from edgekit.evaluation import check_artifact
from edgekit.keras_io import load_keras
from edgekit.metrics import classification_metrics
from edgekit.training import predict_scores
from runtimes.contract import ModelContract
from runtimes.model import open_model

log = logging.getLogger(__name__)

CalibrationInput = ImageDataset | CalibrationData | np.ndarray


@dataclass
class ExportResult:
    """One target's outcome: where it went, and how it compares with Keras."""

    target: str
    status: str  # "ok", "failed"
    path: str | None = None
    size_bytes: int | None = None
    seconds: float | None = None
    accuracy: float | None = None
    accuracy_delta: float | None = None  # points vs Keras
    agreement: float | None = None
    max_abs_error: float | None = None
    latency_ms: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ExportReport:
    """Every target's result plus the Keras reference, printable as a table or Markdown."""

    HEADER: ClassVar[list[str]] = ["target", "status", "size", "accuracy", "delta (pts)", "top-1 agreement", "max |error|", "latency"]

    model_name: str
    keras_accuracy: float | None
    check_samples: int
    results: list[ExportResult]

    def result(self, target: str) -> ExportResult:
        return next(r for r in self.results if r.target == target)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "keras_accuracy": self.keras_accuracy,
            "check_samples": self.check_samples,
            "results": [asdict(r) for r in self.results],
        }

    def rows(self) -> list[list[str]]:
        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value * 100:.1f}%"

        rows = [["keras", "reference", "-", pct(self.keras_accuracy), "-", "100.0%", "-", "-"]]
        for r in self.results:
            rows.append([
                r.target,
                r.status if r.status == "ok" else f"FAILED: {r.error}",
                "-" if r.size_bytes is None else f"{r.size_bytes / 1024:.1f} kB",
                pct(r.accuracy),
                "-" if r.accuracy_delta is None else f"{r.accuracy_delta:+.1f}",
                pct(r.agreement),
                "-" if r.max_abs_error is None else f"{r.max_abs_error:.4f}",
                "-" if r.latency_ms is None else f"{r.latency_ms:.2f} ms",
            ])
        return rows

    def table(self) -> str:
        rows = [self.HEADER, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.HEADER))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"# Export report: {self.model_name}", "", f"Checked on {self.check_samples} held-out images.", ""]
        lines.append("| " + " | ".join(self.HEADER) + " |")
        lines.append("|" + "---|" * len(self.HEADER))
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows())
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write export_report.json, export_report.md and export_report.png."""
        from edgekit.plots import plot_artifacts

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "export_report.json", "markdown": out / "export_report.md", "plot": out / "export_report.png"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2))
        paths["markdown"].write_text(self.markdown())
        plot_artifacts([asdict(r) for r in self.results if r.status == "ok"], paths["plot"])
        return paths


def _calibration_data(calibration: CalibrationInput | None, contract: ModelContract, count: int) -> CalibrationData | None:
    if calibration is None or isinstance(calibration, CalibrationData):
        return calibration
    if isinstance(calibration, ImageDataset):
        _check_labels(calibration, contract, "calibration")
        return CalibrationData(calibration.sample(count).tensors(contract.preprocessing))
    return CalibrationData(np.asarray(calibration))


def _check_labels(dataset: ImageDataset, contract: ModelContract, role: str) -> None:
    if tuple(dataset.labels) != contract.labels:
        raise DatasetError(f"the {role} dataset's labels {list(dataset.labels)} differ from the model's {list(contract.labels)}")


def export(
    model: Any,
    targets: Sequence[str],
    *,
    out_dir: str | Path = "runs/export",
    calibration: CalibrationInput | None = None,
    check: ImageDataset | None = None,
    contract: ModelContract | None = None,
    name: str | None = None,
    calibration_samples: int = 100,
    progress: bool = True,
) -> ExportReport:
    """Convert `model` (a keras.Model or a .keras path) to each target and check each artifact.

    Targets are ``format:mode`` strings (``tflite:int8``); an unknown one lists the valid
    ones. A failing target does not stop the others: its error is in the report.

    Example:
        >>> report = edgekit.export("runs/train/model.keras", ["tflite:fp32", "tflite:int8"],
        ...                         calibration=train, check=test, out_dir="runs/export")
        >>> print(report.table())
    """
    if isinstance(model, (str, Path)):
        model, embedded = load_keras(model)
        contract = contract or embedded
    if contract is None:
        raise ContractError(
            "no preprocessing contract: export a .keras file written by edgekit.train, or pass "
            "contract=ModelContract(Preprocessing(...), labels=[...])"
        )
    parsed = [(target, *parse_target(target)) for target in targets]  # fail fast on unknown targets
    out = Path(out_dir)
    name = name or contract.model_name
    calib = _calibration_data(calibration, contract, calibration_samples)
    reference = None
    keras_accuracy = None
    if check is not None:
        _check_labels(check, contract, "check")
        reference = predict_scores(model, check, contract.preprocessing)
        keras_accuracy = classification_metrics(check.targets, reference, check.labels).accuracy

    results = []
    for target, entry, mode, config in parsed:
        path = out / f"{name}_{mode}{entry.suffix}"
        log.info("exporting %s -> %s", target, path)
        try:
            artifact = entry.convert(model, path, config, contract=contract, calibration=calib, progress=progress)
        except Exception as exc:  # one failing target must not stop the others
            log.error("%s failed: %s", target, exc)
            results.append(ExportResult(target, "failed", error=f"{type(exc).__name__}: {exc}"))
            continue
        result = ExportResult(
            target, "ok", str(artifact.path), artifact.size_bytes, round(artifact.seconds, 2), notes=list(artifact.notes)
        )
        if check is not None and reference is not None:
            with open_model(artifact.path) as loaded:
                verdict = check_artifact(loaded, check, reference)
            result.accuracy, result.accuracy_delta = verdict.accuracy, verdict.accuracy_delta
            result.agreement, result.max_abs_error = verdict.agreement, verdict.max_abs_error
            result.latency_ms = verdict.latency_ms
        results.append(result)
    return ExportReport(name, keras_accuracy, len(check) if check is not None else 0, results)

