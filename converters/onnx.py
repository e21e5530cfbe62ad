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
    in_float_scopes,
    mixed_precision_note,
    register_converter,
)
from converters.calibration import CalibrationData, input_range, require_calibration
from converters.shared_work import intermediate
from runtimes.contract import ModelContract
from runtimes.deps import require
from runtimes.metadata.onnx import CONTRACT_METADATA_KEY, INPUT_QUANTIZATION_KEY
from runtimes.quiet import quiet_native

log = logging.getLogger(__name__)

OPSET = 17
PROBE_TOLERANCE = 1e-3  # max |score difference| accepted between Keras and a float ONNX export

ACTIVATION_TYPES = ("uint8", "int8")
INTEGER_INPUTS = ("pixels", "always", "never")


@dataclass(frozen=True)
class OnnxConfig(ConversionConfig):
    """ONNX options. `activation_type` is the static int8 mode's activation type (weights are int8).

    uint8 activations (U8S8) take ONNX Runtime's fastest x86 kernels: 0.55-0.62 of float32
    latency for MobileNetV2 against 0.84-1.0 with int8 activations (bench/quantization.py).
    Choose int8 (S8S8) for ARM targets or x86 CPUs without VNNI, where U8S8 can saturate.

    `reduce_range` stores U8S8 weights in 7 bits. x86 CPUs without VNNI (AVX2, and AVX-512 before
    Cascade Lake) multiply uint8 by int8 with VPMADDUBSW, whose int16 pair sums saturate when
    two products near 255 x 127 meet. A pruned small CNN (larger surviving weights) lost 5
    accuracy points in ONNX int8 on one CI host and none on a VNNI one. With 7-bit weights a pair
    stays under 2^15 everywhere, so one file gives the same answers on every x86 machine, as
    ONNX Runtime's quantization guide advises.
    """

    activation_type: str = "uint8"
    reduce_range: bool = True  # U8S8 only: 7-bit weights, which no x86 kernel can saturate
    # static int8: "pixels" moves the input's QuantizeLinear to the runtime only where the quantized input
    # is exactly the raw 0..255 pixels (any reader can feed it); "always" also where it is not (the
    # reader must quantize: the int8_qinput mode); "never" keeps the float input
    integer_input: str = "pixels"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation_type not in ACTIVATION_TYPES:
            raise ValueError(f"invalid activation_type {self.activation_type!r}; valid: {', '.join(ACTIVATION_TYPES)}")
        if self.integer_input not in INTEGER_INPUTS:
            raise ValueError(f"invalid integer_input {self.integer_input!r}; valid: {', '.join(INTEGER_INPUTS)}")

    @property
    def mode(self) -> str:
        """The MODES key this config stands for."""
        if self.quantization is Quantization.INT8 and self.integer_input == "always":
            return "int8_qinput"
        return self.quantization.value


MODES = {
    "fp32": OnnxConfig(Quantization.FLOAT32),
    "dynamic": OnnxConfig(Quantization.DYNAMIC),
    "int8": OnnxConfig(Quantization.INT8, io_dtype="float32"),  # portable: float or raw-pixel input
    "int8_qinput": OnnxConfig(Quantization.INT8, io_dtype="float32", integer_input="always"),  # the reader quantizes
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


def _verify_float(path: Path, model: Any, probe: np.ndarray) -> str | None:
    """None when the ONNX file is usable and matches Keras on `probe`; else why not."""
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
    error = 0.0
    for want in expected:  # outputs may come in another order: each Keras output against the closest same-shaped one
        errors = [float(np.max(np.abs(got.astype(np.float64) - want))) for got in actual if got.shape == want.shape]
        if not errors:
            return f"no output of shape {want.shape} (Keras' output)"
        error = max(error, min(errors))
    return None if error <= PROBE_TOLERANCE else f"outputs differ from Keras by {error:.3g}"


@contextlib.contextmanager
def _float_onnx(model: Any, probe: np.ndarray) -> Iterator[tuple[Path, str, list[str]]]:
    """The first float32 ONNX graph that matches Keras: (path, export path name, notes)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-float-") as tmp:
        yield _first_matching_export(model, Path(tmp), probe)


def _first_matching_export(model: Any, workdir: Path, probe: np.ndarray) -> tuple[Path, str, list[str]]:
    notes: list[str] = []
    model(probe[:1], training=False)  # Keras export refuses models that were never called
    for float_path in FLOAT_PATHS:
        target = workdir / f"{float_path.name}.onnx"
        try:
            with quiet_native(f"ONNX {float_path.name}"):  # tf2onnx logs optimizer tracebacks; keep them in -v
                float_path.export(model, target)
                problem = _verify_float(target, model, probe)
        except Exception as exc:  # exporters raise many types; try the next path
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if problem is None:
            notes.append(f"float graph via {float_path.name}")
            return target, float_path.name, notes
        notes.append(f"{float_path.name} rejected: {problem}")
        log.debug("ONNX path %s rejected: %s", float_path.name, problem)
    raise ConversionError("no ONNX export path worked: " + "; ".join(notes))


class _Reader:
    """Adapts CalibrationData to onnxruntime's CalibrationDataReader (get_next / rewind)."""

    def __init__(self, data: CalibrationData, input_name: str) -> None:
        self.data, self.input_name = data, input_name
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._iterator, None)
        return None if feed is None else {self.input_name: feed[self.data.input_name]}

    def rewind(self) -> None:
        self._iterator = iter(self.data)


def _quantize(
    float_path: Path,
    output: Path,
    config: OnnxConfig,
    calibration: CalibrationData | None,
    value_range: tuple[float, float],
    float_scopes: tuple[str, ...] = (),
) -> int:
    """Quantize `float_path` into `output`; nodes under `float_scopes` stay float. Returns how many did."""
    quantization = require("onnxruntime.quantization", extra="onnx", package="onnxruntime")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = output.with_name("prepared.onnx")
    try:
        quant_pre_process(str(float_path), str(prepared))
    except Exception as exc:  # noqa: BLE001  symbolic shape inference asserts on some graphs (TopK, Gather in decoders)
        log.debug("ONNX quantization pre-processing: symbolic shape inference failed (%r); using ONNX's own", exc)
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    if config.quantization is Quantization.DYNAMIC:  # activations are uint8 at run time: U8S8 kernels
        quantization.quantize_dynamic(
            str(prepared),
            str(output),
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
            reduce_range=config.reduce_range,
        )
        return 0
    ort = require("onnxruntime", extra="onnx")
    input_name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    onnx = require("onnx", extra="onnx")
    value_range = {"rmin": np.float32(value_range[0]), "rmax": np.float32(value_range[1])}
    # the input's range is the contract's (pixel 0 to 255), not what the samples happen to reach; it is
    # quantized after any layout ops, which keep its values
    graph = onnx.load(str(prepared)).graph
    overrides = {name: [dict(value_range)] for name in _layout_chain(graph, input_name)[0]}
    excluded = [node.name for node in graph.node if in_float_scopes(node.name, float_scopes)]
    activation_type = config.activation_type
    quantization.quantize_static(
        str(prepared),
        str(output),
        _Reader(calibration, input_name),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type={"uint8": quantization.QuantType.QUInt8, "int8": quantization.QuantType.QInt8}[activation_type],
        weight_type=quantization.QuantType.QInt8,
        extra_options={"TensorQuantOverrides": overrides},
        nodes_to_exclude=excluded,
        reduce_range=config.reduce_range and activation_type == "uint8",
    )
    return len(excluded)


LAYOUT_OPS = ("Transpose", "Reshape", "Identity")  # ops that take integer tensors and keep values


def _reduced_range(config: OnnxConfig) -> bool:
    """True when the quantized weights are stored in 7 bits (U8S8 kernels: dynamic, or static uint8)."""
    return config.reduce_range and (config.quantization is Quantization.DYNAMIC or config.activation_type == "uint8")


def _layout_chain(graph: Any, name: str) -> tuple[list[str], list[Any]]:
    """The tensors from input `name` through the layout ops after it, and the consumers of the last one."""
    value, chain = name, [name]
    while True:
        consumers = [node for node in graph.node if value in node.input]
        if len(consumers) != 1 or consumers[0].op_type not in LAYOUT_OPS:
            return chain, consumers
        value = consumers[0].output[0]
        chain.append(value)


def _integer_input(proto: Any) -> dict[str, float | int] | None:
    """Move the input's QuantizeLinear out of the graph: the graph then takes uint8/int8 input.

    The runtime quantizes float batches itself with the stored scale and zero point, and
    `Model.predict` maps camera pixels straight to the quantized input through a 256-entry
    table, with no float tensor: the same fast path as int8 TFLite models. Returns the
    input's {"scale", "zero_point"}, or None (graph unchanged) when its input is not quantized
    by one per-tensor QuantizeLinear.
    """
    from onnx import numpy_helper

    graph = proto.graph
    initializers = {i.name: i for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return None
    chain, consumers = _layout_chain(graph, inputs[0].name)  # layout ops keep values: quantizing commutes with them
    if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear":
        return None
    value, quantize = chain[-1], consumers[0]
    if len(quantize.input) < 3 or quantize.input[0] != value:
        return None
    scale, zero_point = (initializers.get(n) for n in quantize.input[1:3])
    if scale is None or zero_point is None or numpy_helper.to_array(scale).size != 1:
        return None
    quantized = quantize.output[0]
    if any(output.name == quantized for output in graph.output):
        return None
    for node in graph.node:
        for index, used in enumerate(node.input):
            if used == quantized:
                node.input[index] = value
    graph.node.remove(quantize)
    for info in [*inputs, *(i for i in graph.value_info if i.name in chain)]:
        info.type.tensor_type.elem_type = zero_point.data_type
    return {"scale": float(numpy_helper.to_array(scale)), "zero_point": int(numpy_helper.to_array(zero_point))}


def _choose_input(
    proto: Any, config: OnnxConfig, contract: ModelContract
) -> tuple[Any, dict[str, float | int], str] | None:
    """(graph with its input QuantizeLinear moved to the runtime, the input's quantization, its input_kind),
    when `config` asks for that here; None keeps the float input."""
    candidate = type(proto)()
    candidate.CopyFrom(proto)
    quantization = _integer_input(candidate)
    if quantization is None:
        return None
    kind = "pixels" if _takes_raw_pixels(quantization, config.activation_type, contract) else "quantized"
    if config.integer_input == "pixels" and kind != "pixels":
        return None  # a plain reader would have to quantize: keep the float input (int8_qinput moves it anyway)
    return candidate, quantization, kind


def _takes_raw_pixels(quantization: dict[str, float | int], activation_type: str, contract: ModelContract) -> bool:
    """True when quantizing the contract's tensor gives back every pixel value unchanged (uint8 input = pixels)."""
    from runtimes.quantization import pixel_table
    from runtimes.tensors import QuantParams, TensorSpec

    spec = contract.preprocessing
    if activation_type != "uint8":
        return False
    params = QuantParams(float(quantization["scale"]), int(quantization["zero_point"]))
    table = pixel_table(spec, TensorSpec("input", (1, *spec.input_shape), np.dtype(np.uint8), params))
    return table is not None and table.ndim == 1 and bool((table == np.arange(256)).all())


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

    Example:
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
    if config.quantization is Quantization.INT8:
        calibration, lint = require_calibration(calibration, contract.preprocessing, config.calibration_samples)
        notes.extend(lint)
    probe = _probe_inputs(contract, calibration)
    with (
        intermediate(model, "onnx-float", lambda: _float_onnx(model, probe)) as (float_path, path_name, path_notes),
        tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp,
    ):
        workdir = Path(tmp)
        notes.extend(path_notes)
        final = float_path
        scopes = config.float_scopes if config.quantization is Quantization.INT8 and config.mixed_precision else ()
        kept = 0
        if config.quantization is not Quantization.FLOAT32:
            final = workdir / "quantized.onnx"
            try:
                with quiet_native(f"ONNX Runtime quantization {config.quantization.value}"):
                    kept = _quantize(
                        float_path, final, config, calibration, input_range(contract.preprocessing), scopes
                    )
            except Exception as exc:
                raise ConversionError(f"ONNX {config.quantization.value} quantization failed: {exc!r}") from exc
        proto = onnx.load(str(final))
        extra: dict[str, Any] = {}
        if config.quantization is Quantization.INT8:
            extra["activation_type"] = config.activation_type
        if config.quantization is not Quantization.FLOAT32 and _reduced_range(config):
            extra["weight_bits"] = 7
            notes.append(
                "weights in 7 bits (reduce_range): uint8 x int8 products cannot saturate on x86 CPUs without VNNI"
            )
        if kept:
            extra["float_scopes"] = list(scopes)
            notes.append(mixed_precision_note(kept, scopes))
        input_kind = "float"
        if config.quantization is Quantization.INT8 and config.integer_input != "never":
            moved = _choose_input(proto, config, contract)
            if moved is not None:
                proto, extra["input_quantization"], input_kind = moved
        embedded = describe(contract, config, export_path=path_name, input_kind=input_kind, **extra)
        del proto.metadata_props[:]
        proto.metadata_props.add(key=CONTRACT_METADATA_KEY, value=embedded.to_signed_json())
        if extra.get("input_quantization"):
            proto.metadata_props.add(key=INPUT_QUANTIZATION_KEY, value=json.dumps(extra["input_quantization"]))
        for key, value in portable_metadata(contract, input_kind, extra.get("input_quantization")).items():
            proto.metadata_props.add(key=key, value=value)
        proto.producer_name = "edgekit"
        with atomic_output(output_path) as tmp_out:
            onnx.save(proto, str(tmp_out))
    size = output_path.stat().st_size
    seconds = time.perf_counter() - started
    log.debug("wrote %s (%.1f kB, %.1f s, %s)", output_path, size / 1024, seconds, notes[-1] if notes else "")
    return Artifact(
        output_path, f"onnx:{config.mode}", config, embedded, size, seconds, tuple(notes), (INPUT_READERS[input_kind],)
    )
