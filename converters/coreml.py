"""Keras -> CoreML ML program (.mlpackage): float32, float16, int8 weights, palettized weights.

coremltools cannot convert a Keras 3 model object or its SavedModel, but it converts a
single `tf.function` concrete function. The contract's scaling becomes the `ImageType`'s
scale and per-channel bias; a per-channel std, which ImageType cannot express, is folded
into the function as a multiply before the model.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from converters.base import (
    AWARE_TRAINING,
    Artifact,
    ConversionConfig,
    ConversionError,
    Quantization,
    describe,
    ordinary_permissions,
    register_converter,
    replace_folder,
)
from converters.calibration import CalibrationData
from converters.coreml_aware import aware_target, fake_quant_as_int8, int8_weights
from converters.coreml_lint import neural_engine_lint
from converters.shared_work import intermediate
from converters.tflite_integer import AWARE_NOTE
from runtimes.backends.base import artifact_size
from runtimes.contract import ColorOrder, Layout, ModelContract
from runtimes.deps import require
from runtimes.heads import head_schema
from runtimes.metadata.coreml import COMPUTE_UNITS, CONTRACT_METADATA_KEY, INPUT_NAME
from runtimes.quiet import quiet_native

log = logging.getLogger(__name__)

DEPLOYMENT_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")


@dataclass(frozen=True)
class CoreMLConfig(ConversionConfig):
    """CoreML options: weight compression, compute units and minimum deployment target."""

    palettize_bits: int | None = None  # 4, 6 or 8: k-means palettized weights
    compute_units: str = "ALL"
    minimum_deployment_target: str = "iOS16"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compute_units not in COMPUTE_UNITS:
            raise ValueError(f"invalid compute_units {self.compute_units!r}; valid: {', '.join(COMPUTE_UNITS)}")
        if self.minimum_deployment_target not in DEPLOYMENT_TARGETS:
            raise ValueError(
                (
                    f"invalid minimum_deployment_target {self.minimum_deployment_target!r}; valid: "
                    f"{', '.join(DEPLOYMENT_TARGETS)}"
                )
            )
        if self.palettize_bits not in (None, 4, 6, 8):
            raise ValueError(f"invalid palettize_bits {self.palettize_bits!r}; valid: 4, 6, 8")
        if self.palettize_bits is not None and self.quantization is not Quantization.FLOAT16:
            raise ValueError("palettized weights are applied to a float16 program; use quantization='fp16'")


MODES = {
    "fp32": CoreMLConfig(Quantization.FLOAT32),
    "fp16": CoreMLConfig(Quantization.FLOAT16),
    "int8": CoreMLConfig(Quantization.DYNAMIC),  # weight-only linear int8, float activations
    "palettize8": CoreMLConfig(Quantization.FLOAT16, palettize_bits=8),
    "palettize6": CoreMLConfig(Quantization.FLOAT16, palettize_bits=6),
    "palettize4": CoreMLConfig(Quantization.FLOAT16, palettize_bits=4),
}


def image_scale_and_bias(contract: ModelContract) -> tuple[float, list[float], np.ndarray | None]:
    """ImageType (scale, per-channel bias) for the contract, and a per-channel factor to fold in.

    The contract computes ``((p * s + o) - mean_c) / std_c``. With one std for all channels
    that is ``p * (s / std) + (o - mean_c) / std``; otherwise ImageType applies
    ``p * s + (o - mean_c)`` and the model multiplies by ``1 / std_c`` first.
    """
    spec = contract.preprocessing
    if spec.mean is None or spec.std is None:
        return spec.scale, [spec.offset] * spec.channels, None
    if len(set(spec.std)) == 1:
        std = spec.std[0]
        return spec.scale / std, [(spec.offset - m) / std for m in spec.mean], None
    return spec.scale, [spec.offset - m for m in spec.mean], np.asarray([1.0 / s for s in spec.std], np.float32)


def _concrete_function(model: Any, contract: ModelContract, fold: np.ndarray | None) -> Any:
    tf = require("tensorflow", extra="coreml")
    spec = contract.preprocessing
    signature = tf.TensorSpec([1, *spec.input_size, spec.channels], tf.float32, name=INPUT_NAME)
    if fold is None:
        return tf.function(lambda x: model(x, training=False)).get_concrete_function(signature)
    factor = tf.constant(fold)
    return tf.function(lambda x: model(x * factor, training=False)).get_concrete_function(signature)


def aware_w8a8(config: ConversionConfig, contract: ModelContract) -> bool:
    """True for `coreml:int8` of a model trained quantization-aware: int8 weights and activations, its ranges."""
    palettized = getattr(config, "palettize_bits", None) is not None
    return config.quantization is Quantization.DYNAMIC and not palettized and AWARE_TRAINING in contract.quantization


def _compress(mlmodel: Any, config: CoreMLConfig, aware: bool = False) -> Any:
    optimize = require("coremltools.optimize.coreml", extra="coreml", package="coremltools")
    if aware:
        return int8_weights(mlmodel)
    if config.palettize_bits is not None:
        op_config = optimize.OpPalettizerConfig(mode="kmeans", nbits=config.palettize_bits)
        return optimize.palettize_weights(mlmodel, optimize.OptimizationConfig(global_config=op_config))
    if config.quantization is Quantization.DYNAMIC:
        op_config = optimize.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
        return optimize.linear_quantize_weights(mlmodel, optimize.OptimizationConfig(global_config=op_config))
    return mlmodel


def _output_names(model: Any, contract: ModelContract) -> list[str]:
    """The Keras model's output names (boxes, scores, classes), for tasks whose outputs are arrays; none for
    classifiers."""
    if head_schema(contract.task).scores_per_label:
        return []
    return list(getattr(model, "output_names", None) or [])


def _named_outputs(ct: Any, mlmodel: Any, names: list[str]) -> Any:
    """`mlmodel` with its outputs renamed from TensorFlow's Identity, Identity_1, ... to `names`, in order."""
    spec = mlmodel.get_spec()
    current = [feature.name for feature in spec.description.output]
    if not names or len(names) != len(current) or current == names:
        return mlmodel
    for old, new in zip(current, names):
        ct.utils.rename_feature(spec, old, new)
    return ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir)


def _mode_name(config: CoreMLConfig) -> str:
    if config.palettize_bits is not None:
        return f"palettize{config.palettize_bits}"
    return "int8" if config.quantization is Quantization.DYNAMIC else config.quantization.value


def _image_input(ct: Any, spec: Any, scale: float, bias: list[float]) -> Any:
    """The program's image input: the contract's size, colour layout and scaling (CoreML scales before the model)."""
    layouts = {
        ColorOrder.RGB: ct.colorlayout.RGB,
        ColorOrder.BGR: ct.colorlayout.BGR,
        ColorOrder.GRAY: ct.colorlayout.GRAYSCALE,
    }
    return ct.ImageType(
        name=INPUT_NAME,
        shape=(1, *spec.input_size, spec.channels),
        scale=scale,
        bias=bias if spec.channels == 3 else bias[0],
        color_layout=layouts[spec.color_order],
    )


def _save(mlmodel: Any, output_path: Path) -> None:
    """Save the package beside its destination and move it into place: never a half-written package."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_path.name}.", dir=output_path.parent))
    try:
        staged = staging / output_path.name
        with quiet_native("coremltools save"):
            mlmodel.save(str(staged))
        ordinary_permissions(staged)  # coremltools copies its private temp folder's modes
        replace_folder(staged, output_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@register_converter(
    "coreml",
    suffix=".mlpackage",
    modes=MODES,
    fallbacks={
        "palettize4": "palettize6",
        "palettize6": "palettize8",
        "palettize8": "int8",
        "int8": "fp16",
        "fp16": "fp32",
    },
)
def convert_coreml(
    model: Any,
    output_path: str | Path,
    config: ConversionConfig,
    *,
    contract: ModelContract,
    calibration: CalibrationData | None = None,
    progress: bool = True,
) -> Artifact:
    """Convert a Keras model to an ML program package with the contract in its user metadata.

    Examples:
        >>> convert_coreml(model, "m.mlpackage", MODES["fp16"], contract=c)
    """
    ct = require("coremltools", extra="coreml")
    config = config if isinstance(config, CoreMLConfig) else CoreMLConfig(config.quantization)
    output_path = Path(output_path)
    spec = contract.preprocessing
    if spec.layout is not Layout.NHWC:
        raise ConversionError("CoreML export takes NHWC Keras models; this contract's layout is nchw")
    started = time.perf_counter()
    aware = aware_w8a8(config, contract)
    target = aware_target(config.minimum_deployment_target) if aware else config.minimum_deployment_target
    scale, bias, fold = image_scale_and_bias(contract)
    image = _image_input(ct, spec, scale, bias)
    precision = ct.precision.FLOAT32 if config.quantization is Quantization.FLOAT32 else ct.precision.FLOAT16

    @contextlib.contextmanager
    def base_program() -> Iterator[Any]:
        activations = fake_quant_as_int8() if aware else contextlib.nullcontext()
        with quiet_native("coremltools convert"), activations:  # progress bars and version warnings; QAT's ranges
            program = ct.convert(
                [_concrete_function(model, contract, fold)],
                source="tensorflow",
                inputs=[image],
                classifier_config=ct.ClassifierConfig(list(contract.labels))
                if head_schema(contract.task).scores_per_label
                else None,
                convert_to="mlprogram",
                compute_precision=precision,
                compute_units=getattr(ct.ComputeUnit, config.compute_units),
                minimum_deployment_target=getattr(ct.target, target),
            )
        yield program

    # the compressions rebuild the program from the base's spec, so one base serves every mode
    key = ("coreml-program", str(precision), config.compute_units, target, aware, contract.to_json())
    try:
        with intermediate(model, key, base_program) as base, quiet_native(f"coremltools {config.quantization.value}"):
            mlmodel = _named_outputs(ct, _compress(base, config, aware), _output_names(model, contract))
    except Exception as exc:  # coremltools raises many types from its graph passes
        raise ConversionError(f"CoreML conversion failed: {exc}") from exc
    mode = _mode_name(config)
    embedded = describe(
        contract,
        config,
        coreml_mode=mode,
        compute_units=config.compute_units,
        minimum_deployment_target=target,
        **({"activations": "int8"} if aware else {}),
        image_scale=scale,
        image_bias=bias,
        folded_std=fold is not None,
    )
    mlmodel.user_defined_metadata[CONTRACT_METADATA_KEY] = embedded.to_signed_json()
    mlmodel.short_description = f"{contract.model_name}: {contract.task} over {len(contract.labels)} labels (edgekit)"
    _save(mlmodel, output_path)
    size = artifact_size(output_path)
    seconds = time.perf_counter() - started
    log.debug("wrote %s (%.1f kB, %.1f s)", output_path, size / 1024, seconds)
    notes = tuple(f"Neural Engine: {finding}" for finding in neural_engine_lint(output_path, config.compute_units))
    if aware:
        notes = (f"{AWARE_NOTE} (W8A8, {target} or later)", *notes)
    return Artifact(output_path, f"coreml:{mode}", config, embedded, size, seconds, notes)
