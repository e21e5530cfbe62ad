"""The export pipeline behind `edgekit.export` (edgekit.api): each target converted, checked against Keras and
reported; a failed or gated artifact is removed."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from converters import CONVERTERS, CalibrationData, ConversionConfig, ConverterEntry
from converters.shared_work import shared_work
from edgekit.data.detection import DetectionData
from edgekit.data.image_streaming import StreamingImageDataset
from edgekit.data.images import ImageDataset
from edgekit.errors import ExportError
from edgekit.host_tasks import HostTask, host_task
from edgekit.reports.progress import ProgressBar
from edgekit.reports.tables import text_table
from runtimes.backends.base import BACKENDS, reference_backend_for
from runtimes.contract import ModelContract
from runtimes.integrity import sha256_file
from runtimes.loading import open_model
from runtimes.model import Model

log = logging.getLogger(__name__)

CalibrationInput = ImageDataset | StreamingImageDataset | DetectionData | CalibrationData | np.ndarray
CheckData = ImageDataset | StreamingImageDataset | DetectionData


@dataclass
class ExportResult:
    """One target's outcome: where it went, and how it compares with Keras."""

    target: str
    status: str  # "ok", "unchecked" (no check data), "unverified" (cannot run here), "failed"
    path: str | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None  # what a download or an OTA update moves: sparse and palettized weights shrink here
    sha256: str | None = None  # of the file (of a package's files): what a device checks before it runs it
    seconds: float | None = None
    accuracy: float | None = None
    accuracy_delta: float | None = None  # points vs Keras
    agreement: float | None = None
    max_abs_error: float | None = None
    latency_ms: float | None = None
    details: dict[str, Any] = field(
        default_factory=dict
    )  # the task's further figures (a detector's mAP@.5, both agreements)
    error: str | None = None
    fallback_for: str | None = None  # the target whose failure led to this one
    notes: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)  # which other readers take the file as is (report only)


@dataclass
class ExportReport:
    """Every target's result plus the Keras reference, printable as a table or Markdown.

    Attributes:
        model_name: The exported model's name.
        keras_accuracy: The Keras model's accuracy (mAP for detection) on the check data, or None without it.
        check_samples: How many check images each artifact was compared on.
        results: One `ExportResult` per target, in the order asked.
        max_drop: The accuracy gate in points, or None.
        calibration_warnings: What the calibration data lacked (too few images, a missing class).
        task: Whose metric `keras_accuracy` and each result's `accuracy` hold.
        check_seen_in_training: Check images the model was trained on (None: its run recorded no splits).
        float_accuracy: For a quantization-aware model, the float model it was fine-tuned from, on the same check
            data (None otherwise, or when that file has moved).
    """

    model_name: str
    keras_accuracy: float | None
    check_samples: int
    results: list[ExportResult]
    max_drop: float | None = None
    calibration_warnings: list[str] = field(default_factory=list)
    task: str = "classification"  # whose metric `keras_accuracy` and each result's `accuracy` hold (mAP for detection)
    check_seen_in_training: int | None = None  # check images the model trained on (None: its run recorded no splits)
    float_accuracy: float | None = None  # a QAT model's float original, on the same check data

    def compare_with_float(self, reference: tuple[str, float] | None) -> None:
        """Record the float model a QAT model came from (its file name, its quality on the check data), and each
        checked file's delta from it in that file's notes."""
        if reference is None:
            return
        name, self.float_accuracy = reference
        for r in self.results:
            if r.accuracy is not None:
                delta = round((r.accuracy - self.float_accuracy) * 100, 1) + 0.0  # no "-0.0"
                r.notes.append(
                    f"against the float model before quantization-aware training ({name}, {self.metric} "
                    f"{self.float_accuracy:.1%}): {delta:+.1f} points"
                )

    @property
    def metric(self) -> str:
        """The headline metric's name: what `accuracy` fields hold and `max_drop` gates."""
        return host_task(self.task).metric

    @property
    def header(self) -> list[str]:
        return ["target", "status", "size", "gzip", *host_task(self.task).header, "latency", "export time"]

    def result(self, target: str) -> ExportResult:
        """The last result for `target` (a fallback may follow a failed attempt)."""
        return [r for r in self.results if r.target == target][-1]

    @property
    def ok(self) -> bool:
        """True when no artifact that this report stands for failed (fallbacks count as the fix)."""
        replaced = {r.fallback_for for r in self.results if r.fallback_for and r.status != "failed"}
        return all(r.status != "failed" or r.target in replaced or r.fallback_for in replaced for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "keras_accuracy": self.keras_accuracy,
            "check_samples": self.check_samples,
            "check_seen_in_training": self.check_seen_in_training,
            "float_accuracy": self.float_accuracy,
            "check_data": self.check_data,
            "max_drop": self.max_drop,
            "calibration_warnings": self.calibration_warnings,
            "task": self.task,
            "metric": self.metric,
            "results": [asdict(r) for r in self.results],
        }

    @property
    def check_data(self) -> str:
        """What the check data was, honestly: held-out, partly seen in training, or of unknown provenance."""
        if not self.check_samples:
            return "no check data"
        seen = self.check_seen_in_training
        if seen is None:
            return f"{self.check_samples} check images (no splits recorded by the model's run: overlap unknown)"
        if seen:
            return (
                f"{self.check_samples} check images, {seen} of them seen in training: not held-out "
                "(check on the run's test split: --check RUN_FOLDER)"
            )
        return f"{self.check_samples} held-out images (none seen in training)"

    def errors(self) -> list[str]:
        """One line per failed or unverified target with its whole message (the table cell keeps it short)."""
        return [f"{r.target}: {r.error}" for r in self.results if r.status in ("failed", "unverified") and r.error]

    def rows(self) -> list[list[str]]:
        task = host_task(self.task)
        rows = [["keras", "reference", "-", "-", *task.reference_cells(self.keras_accuracy), "-", "-"]]
        if self.float_accuracy is not None:
            rows.append(["keras float", "before QAT", "-", "-", *task.reference_cells(self.float_accuracy), "-", "-"])
        for r in self.results:
            status = {"failed": "FAILED (below)", "unverified": "unverified (below)"}.get(r.status, r.status)
            if r.fallback_for:
                status += f" (fallback for {r.fallback_for})"
            rows.append(
                [
                    r.target,
                    status,
                    "-" if r.size_bytes is None else f"{r.size_bytes / 1024:.1f} kB",
                    "-" if r.gzip_bytes is None else f"{r.gzip_bytes / 1024:.1f} kB",
                    *task.cells(r),
                    "-" if r.latency_ms is None else f"{r.latency_ms:.2f} ms",
                    "-" if r.seconds is None else f"{r.seconds:.1f} s",
                ]
            )
        return rows

    def note_lines(self) -> list[str]:
        """One line per distinct note (export paths taken, calibration lint, Neural Engine lint, reference
        checks), naming every target it applies to."""
        targets: dict[str, list[str]] = {}
        for r in self.results:
            for note in r.notes:
                targets.setdefault(note, []).append(r.target)
        return [f"{', '.join(names)}: {note}" for note, names in targets.items()]

    def table(self) -> str:
        lines = [f"check: {self.check_data}", text_table(self.header, self.rows())]
        for title, items in (("errors", self.errors()), ("notes", self.note_lines())):
            if items:
                lines.append(f"{title}:\n" + "\n".join(f"  {item}" for item in items))
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"# Export report: {self.model_name}", "", f"Checked on {self.check_data}."]
        if self.max_drop is not None:
            lines.append(
                f"{self.metric[0].upper()}{self.metric[1:]} gate: at most {self.max_drop:g} points below Keras."
            )
        lines.extend(f"- calibration warning: {w}" for w in self.calibration_warnings)
        lines.append("")
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "---|" * len(self.header))
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows())
        if self.errors():
            lines.extend(["", "Errors:", ""] + [f"- {line}" for line in self.errors()])
        notes = self.note_lines()
        if notes:
            lines.extend(["", "Notes:", ""] + [f"- {n}" for n in notes])
        consumers = [f"- {r.target}: {line}" for r in self.results for line in r.consumers]
        if consumers:
            lines.extend(["", "Other consumers (reading the file alone, without edgekit):", ""] + consumers)
        sums = [f"- `{r.sha256}`  {Path(r.path).name}" for r in self.results if r.sha256 and r.path]
        if sums:
            lines.extend(["", "SHA-256 (check a copy with `sha256sum`, or `edgekit info`):", ""] + sums)
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write export_report.json, export_report.md and export_report.png."""
        from edgekit.reports.plots import plot_artifacts

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / "export_report.json",
            "markdown": out / "export_report.md",
            "plot": out / "export_report.png",
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2))
        paths["markdown"].write_text(self.markdown())
        plot_artifacts(
            [asdict(r) for r in self.results if r.accuracy is not None or r.status == "unverified"],
            paths["plot"],
            reference_accuracy=self.keras_accuracy,
            metric=self.metric,
        )
        return paths


def calibration_data(
    calibration: CalibrationInput | None, contract: ModelContract, count: int, task: HostTask
) -> CalibrationData | None:
    if calibration is None or isinstance(calibration, CalibrationData):
        return calibration
    if hasattr(calibration, "tensors") and hasattr(calibration, "sample"):  # a dataset of any task
        return task.calibration(calibration, contract, count)  # a streamed dataset decodes just the sample
    return CalibrationData(np.asarray(calibration))


def gzip_size(path: str | Path) -> int:
    """Bytes of `path` gzip-compressed (each file of a package folder, summed)."""
    path = Path(path)
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    return sum(len(gzip.compress(f.read_bytes(), compresslevel=6)) for f in files)


def _open_for_check(path: Path) -> Model:
    """The artifact on its own runtime, or on its format's reference backend where that cannot run here."""
    model = open_model(path)
    reference = None if model.can_run else reference_backend_for(path)
    if reference is None:
        return model
    model.close()
    return open_model(path, backend=reference.name)


@dataclass
class ExportJob:
    """What every target of one export call shares."""

    model: Any
    contract: ModelContract
    out_dir: Path
    name: str
    calibration: CalibrationData | None
    check: CheckData | None
    reference: Any
    max_drop: float | None
    configure: Callable[[ConverterEntry, str], ConversionConfig]
    progress: bool
    task: HostTask

    def run(self, entry: ConverterEntry, mode: str, bar: ProgressBar | None = None) -> ExportResult:
        """Convert and check one target; one log line (after the bar is cleared) says how it went."""
        result = self._convert_and_check(entry, mode)
        if bar is not None:
            bar.close()
        if result.status == "failed":
            log.warning("%-14s FAILED: %s", result.target, result.error)
        else:
            accuracy = (
                ""
                if result.accuracy is None
                else (
                    f"  {self.task.metric} {result.accuracy * 100:.1f}% ({result.accuracy_delta:+.1f} pts), "
                    f"agreement {result.agreement * 100:.1f}%"
                )
            )
            log.info(
                "%-14s %s  %.1f kB%s  (%.1f s)",
                result.target,
                result.status,
                (result.size_bytes or 0) / 1024,
                accuracy,
                result.seconds or 0.0,
            )
        return result

    def _convert_and_check(self, entry: ConverterEntry, mode: str) -> ExportResult:
        target = f"{entry.name}:{mode}"
        config = self.configure(entry, mode)  # checked for every target before the first conversion
        path = entry.artifact_path(self.out_dir, self.name, mode, config)
        log.debug("exporting %s -> %s", target, path)
        try:
            model, contract, config = self.task.for_config(self.model, self.contract, config)
            artifact = entry.convert(
                model, path, config, contract=contract, calibration=self.calibration, progress=self.progress
            )
        except Exception as exc:  # one failing target must not stop the others
            log.debug("%s failed", target, exc_info=True)
            return ExportResult(target, "failed", error=f"{type(exc).__name__}: {exc}")
        result = ExportResult(
            target,
            "unchecked",
            str(artifact.path),
            artifact.size_bytes,
            gzip_size(artifact.path),
            sha256_file(artifact.path),
            round(artifact.seconds, 2),
            notes=list(artifact.notes),
            consumers=list(artifact.consumers),
        )
        if self.check is None or self.reference is None:
            return result
        try:
            with _open_for_check(artifact.path) as loaded:
                if not loaded.can_run:
                    result.status, result.error = "unverified", loaded.runtime.unavailable_reason.split(";")[0]
                    return result
                by_reference = BACKENDS.get(loaded.backend).reference
                if by_reference:
                    result.notes.append(
                        f"checked with the {loaded.backend} backend (numpy reference executor): "
                        f"its own runtime cannot run here"
                    )
                verdict = self.task.check(loaded, self.check, self.reference)
        except Exception as exc:  # an artifact that cannot be checked must not be shipped, nor stop the others
            log.debug("%s: check failed", target, exc_info=True)
            _remove(artifact.path)
            result.status, result.error = (
                "failed",
                f"the check against Keras failed ({type(exc).__name__}: {exc}); artifact removed",
            )
            return result
        result.accuracy, result.accuracy_delta = verdict.quality, verdict.quality_delta
        result.agreement, result.max_abs_error = verdict.agreement, verdict.max_error
        result.details = dict(verdict.details)
        result.latency_ms = None if by_reference else verdict.latency_ms  # the reference is not a speed path
        result.status = "ok"
        if self.max_drop is not None and verdict.quality_delta < -self.max_drop:
            result.status = "failed"
            result.error = (
                f"{self.task.metric} dropped {-verdict.quality_delta:.1f} points (max_drop {self.max_drop:g}); "
                "artifact removed"
            )
            _remove(artifact.path)
        return result


def configurator(options: Mapping[str, Mapping[str, Any]]) -> Callable[[ConverterEntry, str], ConversionConfig]:
    """Config for (format, mode): the mode's preset with the caller's options for that format applied."""
    unknown = set(options) - set(CONVERTERS.names())
    if unknown:
        raise ExportError(f"options for unknown format(s) {sorted(unknown)}; formats: {', '.join(CONVERTERS.names())}")

    def configure(entry: ConverterEntry, mode: str) -> ConversionConfig:
        preset = entry.modes[mode]
        chosen = dict(options.get(entry.name, {}))
        valid = {f.name for f in fields(preset)} - {"quantization", "io_dtype", "palettize_bits"}
        bad = set(chosen) - valid
        if bad:
            raise ExportError(f"unknown {entry.name} option(s) {sorted(bad)}; valid: {', '.join(sorted(valid))}")
        try:
            return replace(preset, **chosen)
        except ValueError as exc:
            raise ExportError(f"{entry.name} options: {exc}") from None

    return configure


def _remove(path: Path) -> None:
    """Delete a gated-out artifact so it cannot be shipped by mistake."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_targets(job: ExportJob, parsed: Sequence[tuple[str, ConverterEntry, str, Any]], fallback: bool) -> list:
    """Every target through `job`, in order; with `fallback`, a failed mode's next safer mode is tried."""
    results = []
    bar = ProgressBar("export", len(parsed), enabled=job.progress)
    with shared_work():  # one SavedModel / float graph / base program per format, not per mode
        for done, (target, entry, mode, _) in enumerate(parsed):
            bar.update(done, target)
            chain = entry.fallback_chain(mode) if fallback else [mode]
            for attempt in chain:
                result = job.run(entry, attempt, bar)
                if attempt != mode:
                    result.fallback_for = target
                    log.warning("%s failed; fell back to %s: %s", target, result.target, result.status)
                results.append(result)
                if result.status != "failed":
                    break
    bar.close()
    return results
