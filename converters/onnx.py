"""Keras -> ONNX in float32, dynamic-range int8 and static int8 (QDQ, per-channel weights).

Keras 3's own ONNX export works for most models but leaves some keras.applications
constants as graph inputs (EfficientNet's normalization); converting the float32 TFLite
model with tf2onnx works there. Each float path is tried in order and accepted only when
the ONNX file has one input and matches Keras on probe inputs; the report says which ran.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from converters.base import (
    Artifact,
    ConversionConfig,
    ConversionError,
    Quantization,
    atomic_output,
    describe,
    mixed_precision_note,
    register_converter,
)
from converters.calibration import CalibrationData, input_range, require_calibration
from converters.onnx_aware import aware_qdq
from converters.onnx_integer import float_nodes
from converters.onnx_quantization import OnnxConfig, choose_input, quantize_onnx, reduced_range
from converters.shared_work import intermediate
from converters.tflite_integer import AWARE_NOTE, aware_int8
from runtimes.contract import ModelContract
from runtimes.deps import require
from runtimes.metadata.onnx import CONTRACT_METADATA_KEY, INPUT_QUANTIZATION_KEY
from runtimes.quiet import quiet_native

log = logging.getLogger(__name__)

OPSET = 17
PROBE_TOLERANCE = 1e-3  # max |score difference| accepted between Keras and a float ONNX export


MODES = {
    "fp32": OnnxConfig(Quantization.FLOAT32),
    "dynamic": OnnxConfig(Quantization.DYNAMIC),
    "int8": OnnxConfig(Quantization.INT8, io_dtype="float32"),  # portable: float or raw-pixel input
    "int8_qinput": OnnxConfig(Quantization.INT8, io_dtype="float32", integer_input="always"),  # the reader quantizes
    # for accelerators and integer runtimes: every operator between a DequantizeLinear and a QuantizeLinear
    "int8_full": OnnxConfig(Quantization.INT8, mixed_precision=False, full_integer=True, integer_input="always"),
}


@dataclass(frozen=True)
class FloatPath:
    """One way of producing a float32 ONNX file from a Keras model."""

    name: str
    export: Callable[[Any, Path], None]


def _keras_export(model: Any, path: Path) -> None:
    model.export(str(path), format="onnx", verbose=False, opset_version=OPSET)


def _via_tflite(model: Any, path: Path) -> None:
    from converters.tflite import float_flatbuffer

    tf2onnx = require("tf2onnx", extra="onnx")
    tflite_path = path.with_suffix(".tflite")
    tflite_path.write_bytes(float_flatbuffer(model))
    tf2onnx.convert.from_tflite(str(tflite_path), opset=OPSET, output_path=str(path))


FLOAT_PATHS = (FloatPath("keras-export", _keras_export), FloatPath("tflite-tf2onnx", _via_tflite))


def _probe_inputs(contract: ModelContract, calibration: CalibrationData | None) -> np.ndarray:
    """A few inputs to compare Keras and ONNX on: calibration samples, else values in the contract's range."""
    if calibration is not None and len(calibration):
        return calibration.samples[:4]
    spec = contract.preprocessing
    low, high = (np.asarray(v, np.float32) for v in spec.output_range())
    unit = np.random.default_rng(0).random((4, *spec.input_size, spec.channels), dtype=np.float32)
    probe = low + unit * (high - low)
    return np.ascontiguousarray(np.moveaxis(probe, -1, 1)) if spec.layout.value == "nchw" else probe


def _verify_float(path: Path, model: Any, probe: np.ndarray, steps: float = 0.0) -> str | None:
    """None when the ONNX file is usable and matches Keras on `probe` (its outputs then put in Keras' order, as
    readers of a layout such as the detector's maps take them); else why not. With `steps`, an int8 graph: each
    output may differ by that many of its int8 steps (its range on the probe over 255)."""
    ort = require("onnxruntime", extra="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return f"graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); constants were left as inputs"
    produced = model(probe, training=False)
    expected = [np.asarray(t) for t in (produced if isinstance(produced, (list, tuple)) else [produced])]
    rows = [session.run(None, {inputs[0].name: row[None]}) for row in probe]
    actual = [np.concatenate([row[i] for row in rows]) for i in range(len(rows[0]))]
    if len(actual) != len(expected):
        return f"graph has {len(actual)} outputs, Keras {len(expected)}"
    order, output_steps = [], _output_steps(path) if steps else {}
    for want in expected:  # outputs may come in another order: each Keras output against the closest same-shaped one
        errors = {
            i: float(np.max(np.abs(got.astype(np.float64) - want)))
            for i, got in enumerate(actual)
            if got.shape == want.shape and i not in order
        }
        if not errors:
            return f"no output of shape {want.shape} (Keras' output)"
        order.append(min(errors, key=errors.__getitem__))
        step = output_steps.get(session.get_outputs()[order[-1]].name) or float(np.ptp(want)) / 255
        allowed = steps * step if steps else PROBE_TOLERANCE
        if errors[order[-1]] > allowed:
            shown = f" ({errors[order[-1]] / step:.1f} int8 steps)" if steps and step else ""
            return f"outputs differ from Keras by {errors[order[-1]]:.3g}{shown}"
    if order != sorted(order):
        _reorder_outputs(path, order)
    return None


def _output_steps(path: Path) -> dict[str, float]:
    """Each output's int8 step: the scale of the DequantizeLinear that makes it, where one does."""
    onnx = require("onnx", extra="onnx")
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    makers = {output: node for node in graph.node for output in node.output}
    steps = {}
    for value in graph.output:
        node = makers.get(value.name)
        while node is not None and node.op_type in ("Transpose", "Reshape", "Identity"):  # values kept
            node = makers.get(node.input[0])
        if node is not None and node.op_type == "DequantizeLinear" and constants.get(node.input[1], ()).size == 1:
            steps[value.name] = float(constants[node.input[1]])
    return steps


def _reorder_outputs(path: Path, order: list[int]) -> None:
    """Rewrite the ONNX file at `path` with its graph outputs in `order` (indices into the current ones)."""
    onnx = require("onnx", extra="onnx")
    proto = onnx.load(str(path))
    outputs = [proto.graph.output[i] for i in order]
    copies = [type(value)() for value in outputs]
    for copy, value in zip(copies, outputs):
        copy.CopyFrom(value)
    del proto.graph.output[:]
    proto.graph.output.extend(copies)
    onnx.save(proto, str(path))


@contextlib.contextmanager
def _float_onnx(model: Any, probe: np.ndarray) -> Iterator[tuple[Path, str, list[str]]]:
    """The first float32 ONNX graph that matches Keras: (path, export path name, notes)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-float-") as tmp:
        yield _first_matching_export(model, Path(tmp), probe)


AWARE_PROBE_STEPS = 16.0  # int8 kernels against the simulation on random probe pixels: a sanity bound (a broken
# graph is off by a hundred steps and more); the check on real images measures the agreement


@contextlib.contextmanager
def _aware_onnx(model: Any, probe: np.ndarray) -> Iterator[tuple[Path, str, list[str]]]:
    """A quantization-aware model's int8 ONNX graph (`aware_qdq`) from the first export path whose int8 graph
    matches the fake-quantized Keras model: (path, export path name, notes)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-aware-") as tmp:
        yield _first_matching_export(model, Path(tmp), probe, aware=True)


def _first_matching_export(
    model: Any, workdir: Path, probe: np.ndarray, aware: bool = False
) -> tuple[Path, str, list[str]]:
    notes: list[str] = []
    model(probe[:1], training=False)  # Keras export refuses models that were never called
    for float_path in FLOAT_PATHS:
        target = workdir / f"{float_path.name}.onnx"
        try:
            with quiet_native(f"ONNX {float_path.name}"):  # tf2onnx logs optimizer tracebacks; keep them in -v
                float_path.export(model, target)
                if aware:
                    aware_qdq(target, target)
                problem = _verify_float(target, model, probe, AWARE_PROBE_STEPS if aware else 0.0)
        except Exception as exc:  # exporters raise many types; try the next path
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if problem is None:
            notes.append(f"float graph via {float_path.name}")
            return target, float_path.name, notes
        notes.append(f"{float_path.name} rejected: {problem}")
        log.debug("ONNX path %s rejected: %s", float_path.name, problem)
    raise ConversionError("no ONNX export path worked: " + "; ".join(notes))


INPUT_READERS = {
    "float": "plain ONNX Runtime (and OpenCV DNN): feed the float tensor the metadata's image.normalization gives",
    "pixels": "plain ONNX Runtime: feed raw 0..255 pixels as uint8 (metadata input_kind=pixels); OpenCV DNN mis-reads "
    "uint8-input QDQ graphs: use onnx.integer_input=never for it",
    "quantized": "edgekit only, or a reader that quantizes: the input is q = round(x / scale) + zero_point "
    "(metadata edgekit.input_quantization); OpenCV DNN mis-reads it",
}


def portable_metadata(
    contract: ModelContract, input_kind: str, quantization: dict[str, float | int] | None
) -> dict[str, str]:
    """metadata_props that say how to feed the model without edgekit: plain keys, plain JSON values."""
    from runtimes.metadata.standard import normalization

    spec = contract.preprocessing
    mean, std = normalization(spec)
    props = {
        "input_kind": input_kind,  # float | pixels | quantized
        "image.size": json.dumps([spec.height, spec.width]),  # height, width
        "image.color_space": {"rgb": "RGB", "bgr": "BGR", "gray": "GRAYSCALE"}[spec.color_order.value],
        "image.layout": spec.layout.value.upper(),
        "image.resize": spec.resize.value,
        "image.normalization.mean": json.dumps(mean),  # on 0..255 pixels: x = (pixel - mean) / std
        "image.normalization.std": json.dumps(std),
        "labels": json.dumps(list(contract.labels)),
    }
    if quantization is not None:
        props["input.quantization.scale"] = repr(float(quantization["scale"]))
        props["input.quantization.zero_point"] = str(int(quantization["zero_point"]))
    return props


def _with_contract(
    proto: Any,
    config: OnnxConfig,
    contract: ModelContract,
    path_name: str,
    scopes: tuple[str, ...],
    kept: int,
    notes: list[str],
) -> tuple[Any, ModelContract, str]:
    """`proto` with the contract (edgekit's and the portable keys) in its metadata_props and, for int8, its input
    moved out of the graph where pixels map straight to it; (proto, the embedded contract, the input kind)."""
    extra: dict[str, Any] = {}
    aware = aware_int8(config, contract)  # its weights are symmetric int8 (QAT's grid), not 7-bit
    if config.quantization is Quantization.INT8:
        extra["activation_type"] = config.activation_type
    if config.quantization is not Quantization.FLOAT32 and reduced_range(config) and not aware:
        extra["weight_bits"] = 7
        notes.append("weights in 7 bits (reduce_range): uint8 x int8 products cannot saturate on x86 CPUs without VNNI")
    if kept:
        extra["float_scopes"] = list(scopes)
        notes.append(mixed_precision_note(kept, scopes))
    input_kind = "float"
    if config.quantization is Quantization.INT8 and config.integer_input != "never":
        moved = choose_input(proto, config, contract)
        if moved is not None:
            proto, extra["input_quantization"], input_kind = moved
    embedded = describe(contract, config, export_path=path_name, input_kind=input_kind, **extra)
    del proto.metadata_props[:]
    proto.metadata_props.add(key=CONTRACT_METADATA_KEY, value=embedded.to_signed_json())
    if extra.get("input_quantization"):
        proto.metadata_props.add(key=INPUT_QUANTIZATION_KEY, value=json.dumps(extra["input_quantization"]))
    for key, value in portable_metadata(contract, input_kind, extra.get("input_quantization")).items():
        proto.metadata_props.add(key=key, value=value)
    return proto, embedded, input_kind


def _integer_everywhere(proto: Any, config: OnnxConfig, aware: bool, notes: list[str]) -> None:
    """The full-integer profile's check (a float operator fails it, by name); for a quantization-aware file, a
    note of any operator left in float."""
    if not (config.full_integer or aware):
        return
    left = float_nodes(proto)
    if left and config.full_integer:
        raise ConversionError(
            f"not full integer: {len(left)} operator(s) compute in float ({', '.join(left[:4])}); an accelerator "
            "would run them on the CPU or refuse the file"
        )
    if left:
        notes.append(
            f"{len(left)} operator(s) outside QuantizeLinear/DequantizeLinear run in float: {', '.join(left[:4])}"
        )


@register_converter(
    "onnx", suffix=".onnx", modes=MODES, fallbacks={"int8_qinput": "int8", "int8": "dynamic", "dynamic": "fp32"}
)
def convert_onnx(
    model: Any,
    output_path: str | Path,
    config: ConversionConfig,
    *,
    contract: ModelContract,
    calibration: CalibrationData | None = None,
    progress: bool = True,
) -> Artifact:
    """Convert a Keras model to an .onnx file with `contract` in its metadata_props.

    Examples:
        >>> convert_onnx(model, "m.onnx", MODES["int8"], contract=c, calibration=data)
    """
    onnx = require("onnx", extra="onnx")
    if not isinstance(config, OnnxConfig):
        config = OnnxConfig(
            config.quantization,
            config.io_dtype,
            config.calibration_samples,
            config.mixed_precision,
            config.float_scopes,
        )
    output_path = Path(output_path)
    started = time.perf_counter()
    notes: list[str] = []
    aware = aware_int8(config, contract)
    if config.quantization is Quantization.INT8 and not aware:
        calibration, lint = require_calibration(calibration, contract.preprocessing, config.calibration_samples)
        notes.extend(lint)
    probe = _probe_inputs(contract, calibration)
    with (
        intermediate(
            model,
            "onnx-aware" if aware else "onnx-float",
            lambda: _aware_onnx(model, probe) if aware else _float_onnx(model, probe),
        ) as (float_path, path_name, path_notes),
        tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp,
    ):
        workdir = Path(tmp)
        notes.extend(path_notes)
        final = float_path
        scopes = config.float_scopes if config.quantization is Quantization.INT8 and config.mixed_precision else ()
        kept = 0
        if aware:
            notes.append(AWARE_NOTE)
        elif config.quantization is not Quantization.FLOAT32:
            final = workdir / "quantized.onnx"
            try:
                with quiet_native(f"ONNX Runtime quantization {config.quantization.value}"):
                    kept = quantize_onnx(
                        float_path, final, config, calibration, input_range(contract.preprocessing), scopes
                    )
            except Exception as exc:
                raise ConversionError(f"ONNX {config.quantization.value} quantization failed: {exc!r}") from exc
        proto, embedded, input_kind = _with_contract(
            onnx.load(str(final)), config, contract, path_name, scopes, kept, notes
        )
        _integer_everywhere(proto, config, aware, notes)  # after the input's quantization moved to the reader
        proto.producer_name = "edgekit"
        with atomic_output(output_path) as tmp_out:
            onnx.save(proto, str(tmp_out))
    size = output_path.stat().st_size
    seconds = time.perf_counter() - started
    log.debug("wrote %s (%.1f kB, %.1f s, %s)", output_path, size / 1024, seconds, notes[-1] if notes else "")
    return Artifact(
        output_path, f"onnx:{config.mode}", config, embedded, size, seconds, tuple(notes), (INPUT_READERS[input_kind],)
    )
