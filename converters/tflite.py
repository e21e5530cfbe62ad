"""Keras -> TFLite in float32, float16, dynamic-range and full-integer int8."""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from converters.accelerators import accelerator_fit
from converters.base import (
    MIXED_PRECISION,
    Artifact,
    ConversionConfig,
    ConversionError,
    Quantization,
    atomic_output,
    describe,
    mixed_precision_note,
    register_converter,
)
from converters.calibration import CalibrationData, full_integer_warnings, input_range, require_calibration
from converters.shared_work import intermediate
from converters.tflite_integer import AWARE_NOTE, _aware_int8, _full_integer, _mixed_int8, aware_int8
from runtimes.contract import ModelContract
from runtimes.deps import require
from runtimes.heads import head_schema
from runtimes.metadata.standard import (
    LABELS_FILE,
    STANDARD_METADATA_NAME,
    build_metadata,
    standard_limits,
    with_associated_files,
)
from runtimes.metadata.tflite import write_metadata
from runtimes.quiet import quiet_native

log = logging.getLogger(__name__)

DETECTION_OUTPUTS = ("edgekit", "postprocess")


@dataclass(frozen=True)
class TFLiteConfig(ConversionConfig):
    """TFLite options. `detection_outputs` is a detector's output layout (runtimes.tasks.detection.LAYOUTS):
    "edgekit" (boxes, scores, integer classes; NMS in runtimes) or "postprocess" (TFLite_Detection_PostProcess's
    boxes, classes, scores and count with NMS in the graph: what MediaPipe Tasks' ObjectDetector reads).
    Classifiers ignore it."""

    detection_outputs: str = "edgekit"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.detection_outputs not in DETECTION_OUTPUTS:
            raise ValueError(
                f"invalid detection_outputs {self.detection_outputs!r}; valid: {', '.join(DETECTION_OUTPUTS)}"
            )

    @property
    def mode(self) -> str:
        """The MODES key this config stands for."""
        if self.full_integer:
            return "int8_full"
        if self.detection_outputs == "postprocess" and self.quantization is Quantization.FLOAT32:
            return "mediapipe"
        if self.detection_outputs == "postprocess" and self.quantization is Quantization.INT8:
            return "mediapipe_int8"
        return "uint8" if self.io_dtype == "uint8" else self.quantization.value


MODES = {
    "fp32": TFLiteConfig(Quantization.FLOAT32),
    "fp16": TFLiteConfig(Quantization.FLOAT16),
    "dynamic": TFLiteConfig(Quantization.DYNAMIC),
    "int8": TFLiteConfig(Quantization.INT8, io_dtype="int8"),
    "uint8": TFLiteConfig(Quantization.INT8, io_dtype="uint8"),
    # float32 in the form MediaPipe Tasks runs: a classifier's fp32 file as is; a detector with
    # TFLite_Detection_PostProcess's outputs (its ObjectDetector takes no other layout)
    "mediapipe": TFLiteConfig(Quantization.FLOAT32, detection_outputs="postprocess"),
    # int8 in the form MediaPipe's own quantized models take: uint8 pixels in; a detector's box layers, decoding
    # and NMS in float (mixed precision), so its outputs are float as TFLite_Detection_PostProcess's are
    "mediapipe_int8": TFLiteConfig(Quantization.INT8, io_dtype="uint8", detection_outputs="postprocess"),
    # for accelerators (Coral Edge TPU, Hailo, NPUs): int8 everywhere, int8 in and out, batch 1, no float operator
    # (checked on the file); a detector's raw maps, decoded in runtimes
    "int8_full": TFLiteConfig(Quantization.INT8, io_dtype="int8", mixed_precision=False, full_integer=True),
}


@contextlib.contextmanager
def _saved_model(model: Any) -> Iterator[Path | None]:
    """The inference SavedModel TFLiteConverter.from_keras_model would write, kept for reuse.

    Same endpoint as TensorFlow's own Keras 3 path (``__call__`` with training=False); None for
    models without symbolic inputs (subclassed), which go through from_keras_model instead.
    """
    keras = require("keras", extra="tflite", package="tensorflow")
    tf = require("tensorflow", extra="tflite")
    inputs = getattr(model, "inputs", None) if isinstance(model, keras.Model) else None
    if not inputs:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="edgekit-savedmodel-") as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        specs = [tf.TensorSpec(x.shape, dtype=x.dtype, name=x.name) for x in inputs]
        signature = specs if len(specs) == 1 else [specs]
        try:
            archive.add_endpoint("serve", functools.partial(model.__call__, training=False), signature)
            with quiet_native("SavedModel export"):
                archive.write_out(tmp, verbose=False)
        except Exception as exc:  # as TensorFlow does: fall back to its frozen-graph path
            log.debug("SavedModel export failed (%s); converting with from_keras_model", exc)
            yield None
            return
        yield Path(tmp)


@contextlib.contextmanager
def _converter(model: Any) -> Iterator[Any]:
    """A TFLiteConverter for `model`, from a SavedModel shared by every mode of one export."""
    tf = require("tensorflow", extra="tflite")
    with intermediate(model, "tflite-saved-model", lambda: _saved_model(model)) as saved:
        yield (
            tf.lite.TFLiteConverter.from_keras_model(model)
            if saved is None
            else tf.lite.TFLiteConverter.from_saved_model(str(saved))
        )


def float_flatbuffer(model: Any) -> bytes:
    """The float32 TFLite flatbuffer of `model` (no metadata), shared within one export."""

    @contextlib.contextmanager
    def make() -> Iterator[bytes]:
        # the redirect must end before the yield: a session keeps this context open until the
        # export ends, and a redirect left open across other redirects restores the wrong stdout
        with _converter(model) as converter:
            with quiet_native("TFLite converter"):
                flatbuffer = converter.convert()
            yield flatbuffer

    with intermediate(model, "tflite-float-flatbuffer", make) as flatbuffer:
        return flatbuffer


@register_converter(
    "tflite",
    suffix=".tflite",
    modes=MODES,
    fallbacks={"int8": "dynamic", "uint8": "dynamic", "dynamic": "fp16", "mediapipe_int8": "mediapipe"},
)
def convert_tflite(
    model: Any,
    output_path: str | Path,
    config: ConversionConfig,
    *,
    contract: ModelContract,
    calibration: CalibrationData | None = None,
    progress: bool = True,
) -> Artifact:
    """Convert a Keras model to a .tflite file with `contract` embedded in its metadata.

    Examples:
        >>> convert_tflite(model, "m.tflite", MODES["int8"], contract=c, calibration=data)
    """
    tf = require("tensorflow", extra="tflite")
    output_path = Path(output_path)
    if not isinstance(config, TFLiteConfig):
        config = TFLiteConfig(
            config.quantization,
            config.io_dtype,
            config.calibration_samples,
            config.mixed_precision,
            full_integer=config.full_integer,
        )
    _check_layout(config, contract)
    started = time.perf_counter()
    sparsity = kernel_sparsity(model)
    with _converter(model) as converter:
        flatbuffer, notes = _convert(tf, converter, config, contract, calibration, progress, sparsity)
    if sparsity >= SPARSE_ENOUGH and (problem := _load_problem(flatbuffer)):
        # XNNPACK, the interpreter's default, refuses some sparse kernels (int8 FULLY_CONNECTED)
        with _converter(model) as converter:
            flatbuffer, notes = _convert(tf, converter, config, contract, calibration, progress, 0.0)
        notes.append(f"sparse storage dropped: the default interpreter cannot load it ({problem}); zeros still gzip")
        sparsity = 0.0
    extra: dict[str, Any] = {"sparse": True} if sparsity >= SPARSE_ENOUGH else {}
    if contract.head.get("layout") == "postprocess":
        notes.append(
            f"TFLite_Detection_PostProcess outputs: NMS and the score threshold {contract.head['score_threshold']:g} "
            "in the graph; mAP is measured at that threshold, against Keras at the same"
        )
    if any(note.startswith(MIXED_PRECISION) for note in notes):
        extra["float_scopes"] = list(config.float_scopes)  # what stayed float, for readers of the contract
    embedded = describe(contract, config, **extra)
    # a detector's outputs in its Keras (and the layout's) order, in the same rewrite as the contract
    flatbuffer = write_metadata(flatbuffer, embedded.to_signed_json().encode(), signature_order=True)
    flatbuffer = with_standard_metadata(flatbuffer, embedded)
    with atomic_output(output_path) as tmp:
        tmp.write_bytes(flatbuffer)
        if config.full_integer or aware_int8(config, contract):  # what Coral's and Hailo's compilers would map
            notes.extend(fit.line() for fit in accelerator_fit(tmp, output_path.name))
    seconds = time.perf_counter() - started
    log.debug("wrote %s (%.1f kB, %.1f s)", output_path, len(flatbuffer) / 1024, seconds)
    return Artifact(
        output_path,
        f"tflite:{config.mode}",
        config,
        embedded,
        len(flatbuffer),
        seconds,
        tuple(notes),
        tuple(consumer_notes(embedded, config)),
    )


def _check_layout(config: TFLiteConfig, contract: ModelContract) -> None:
    """A detector's graph must already have the outputs the config asks for (edgekit.export builds them)."""
    if contract.task != "detection":
        return
    layout = contract.head.get("layout", "edgekit")
    if layout != ("maps" if config.full_integer or aware_int8(config, contract) else config.detection_outputs):
        raise ConversionError(
            f"detection_outputs={config.detection_outputs!r} but the model and its contract have the "
            f"{layout!r} output layout; export with edgekit.export, which builds each layout's graph"
        )


def with_standard_metadata(flatbuffer: bytes, contract: ModelContract) -> bytes:
    """`flatbuffer` with TFLite Support metadata (normalization, colour space, labels.txt) beside edgekit's contract."""
    roles = head_schema(contract.task).standard_outputs(_output_specs(flatbuffer), contract.head)
    flatbuffer = write_metadata(flatbuffer, build_metadata(contract, outputs=roles), name=STANDARD_METADATA_NAME)
    return with_associated_files(flatbuffer, {LABELS_FILE: ("\n".join(contract.labels) + "\n").encode()})


def _output_specs(flatbuffer: bytes) -> list[Any]:
    """The model's outputs as the interpreter reports them (order, shape, type, quantization)."""
    from runtimes.backends.tflite import _spec, interpreter_class

    with quiet_native("LiteRT"):
        interpreter = interpreter_class()[0](model_content=flatbuffer)
    return [_spec(detail) for detail in interpreter.get_output_details()]


def consumer_notes(contract: ModelContract, config: ConversionConfig) -> list[str]:
    """Which well-known consumers read this artifact correctly from the file alone, and why not where not."""
    limits = standard_limits(contract.preprocessing)
    notes = []
    if config.io_dtype == "int8":
        notes.append(
            "MediaPipe Tasks: refuses it (int8 input tensor; export tflite:uint8 or a float mode for MediaPipe)"
        )
    elif contract.head.get("layout") == "edgekit":  # a detector: MediaPipe's ObjectDetector takes one layout only
        notes.append(
            "MediaPipe Tasks: its ObjectDetector needs TFLite_Detection_PostProcess outputs: export tflite:mediapipe"
        )
    elif contract.head.get("output") == "category_mask":  # a segmentation model's argmax in the graph
        notes.append("MediaPipe Tasks: its ImageSegmenter reads per-class scores, not a category mask")
    elif contract.head.get("layout") == "maps":  # raw heat maps (a full-integer detector, a keypoint model)
        notes.append("MediaPipe Tasks: no task reads raw heat maps; edgekit's runtimes decode them (the maps layout)")
    elif contract.head.get("layout") == "postprocess":
        notes.append(
            "MediaPipe Tasks: ObjectDetector reads it (boxes, classes, scores, count; labels.txt)"
            + (f"; it would mis-read {'; '.join(limits)} on non-square images" if limits else "")
        )
    elif limits:
        notes.append(f"MediaPipe Tasks: would mis-read it: {'; '.join(limits)}")
    else:
        notes.append("MediaPipe Tasks: reads it (standard metadata: normalization, colour space, labels.txt)")
    if limits:
        notes.append(
            (
                f"LiteRT alone (TFLite Support metadata readers): mis-reads {'; '.join(limits)}; edgekit reads its own "
                "contract"
            )
        )
    return notes


SPARSE_ENOUGH = 0.5  # kernel zeros from which TFLite's sparse storage pays (pruned models)


def _load_problem(flatbuffer: bytes) -> str | None:
    """Why the default interpreter (XNNPACK included) cannot load `flatbuffer`, or None."""
    from runtimes.backends.tflite import interpreter_class

    try:
        with quiet_native("LiteRT"):
            interpreter_class()[0](model_content=flatbuffer).allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        return str(exc).splitlines()[0][:160]
    return None


def kernel_sparsity(model: Any) -> float:
    """Fraction of exact zeros over the model's convolution and dense kernels."""
    kernels = [w for w in getattr(model, "weights", []) if "kernel" in w.path and len(w.shape) >= 2]
    total = sum(int(np.prod(w.shape)) for w in kernels)
    return sum(int(np.sum(np.asarray(w) == 0)) for w in kernels) / total if total else 0.0


def _convert(
    tf: Any,
    converter: Any,
    config: ConversionConfig,
    contract: ModelContract,
    calibration: CalibrationData | None,
    progress: bool,
    sparsity: float = 0.0,
) -> tuple[bytes, list[str]]:
    quant = config.quantization
    notes: list[str] = []
    if quant is not Quantization.FLOAT32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if sparsity >= SPARSE_ENOUGH:  # pruned: store the zeros compressed (TFLite's sparse tensors)
        converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        notes.append(f"kernels {sparsity * 100:.0f}% zeros: stored with EXPERIMENTAL_SPARSITY")
    if quant is Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if aware_int8(config, contract):
        flatbuffer = _aware_int8(tf, converter, config)
        return flatbuffer, [*notes, AWARE_NOTE]
    if quant is Quantization.INT8:
        data, lint = require_calibration(calibration, contract.preprocessing, config.calibration_samples)
        notes.extend(lint)
        if config.full_integer:  # every range from these samples: each class, the whole input range
            notes.extend(full_integer_warnings(data, contract.preprocessing, contract.labels))
        data = data.spanning(
            *input_range(contract.preprocessing)
        )  # the input's range is the contract's, not the samples'
        converter.representative_dataset = (
            data.representative_dataset()
        )  # runs inside convert(), whose output is captured
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = {"int8": tf.int8, "uint8": tf.uint8}[config.io_dtype]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    if config.full_integer:
        flatbuffer = _converted(converter, quant)
        return _full_integer(flatbuffer), notes
    scopes = config.float_scopes if quant is Quantization.INT8 and config.mixed_precision else ()
    if scopes:
        try:
            with quiet_native(f"TFLite converter {quant.value} (mixed precision)"):
                flatbuffer, kept = _mixed_int8(tf, converter, config, scopes)
            notes.append(mixed_precision_note(kept, scopes))
            return flatbuffer, notes
        except Exception as exc:  # a private converter path: full integer is the documented fallback
            log.debug("mixed-precision int8 failed (%r); converting to full integer", exc)
            notes.append(f"mixed precision failed ({type(exc).__name__}); full integer instead")
            converter._experimental_calibrate_only = False
    return _converted(converter, quant), notes


def _converted(converter: Any, quant: Quantization) -> bytes:
    try:  # the converter prints `fully_quantize: ...` from C++ and Keras its signature: debug log only
        with quiet_native(f"TFLite converter {quant.value}"):
            return converter.convert()
    except Exception as exc:  # the converter raises many unrelated types
        raise ConversionError(f"TFLite conversion ({quant.value}) failed: {exc}") from exc
