"""Keras -> a TensorFlow SavedModel as TensorFlow Serving loads it: `<out>/<name>/<version>/`.

Two signatures over the same weights:
- ``serving_default``: uint8 RGB images of any size (``images``, N x H x W x 3), preprocessing in the
  graph (colour order, the contract's resize, scaling), outputs named by the task (a classifier's
  ``scores``, ``label_id``, ``label``; a detector's ``boxes`` in the request image's pixels, ``scores``,
  ``classes``, ``labels``, ``count``). A client needs no contract.
- ``edgekit``: uint8 pixels already at the contract's geometry, scaled in the graph, and the model's
  own outputs: what edgekit's runtimes feed every artifact, so the export checks it like the others.

The contract travels in the SavedModel's assets (``assets/edgekit_contract.json``, a tracked asset,
so ``tf.saved_model.load(path).contract.asset_path`` names it).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from converters.base import (
    Artifact,
    ConversionConfig,
    ConversionError,
    Quantization,
    ordinary_permissions,
    register_converter,
    replace_folder,
)
from runtimes.backends.base import artifact_size
from runtimes.contract import Layout, ModelContract, ResizeMode
from runtimes.deps import require
from runtimes.metadata.savedmodel import CONTRACT_ASSET, EDGEKIT_SIGNATURE, IMAGES_INPUT, SERVING_SIGNATURE
from runtimes.quiet import quiet_native

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedModelConfig(ConversionConfig):
    """`version`: the numbered folder TensorFlow Serving loads (it serves the highest). `serving_outputs` builds
    the serving signature's named outputs (the task's, from edgekit's host task):
    ``serving_outputs(tf, outputs, labels, head, to_source) -> {name: tensor}``, where `to_source` is the
    request's `RequestGeometry`: it maps (N, K, 4) boxes normalized to the model input to the request image's
    pixels, and gives the request's size and the resize's map."""

    version: int = 1
    serving_outputs: Callable[..., dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"invalid version {self.version!r}; TensorFlow Serving's versions are integers >= 1")


MODES = {"fp32": SavedModelConfig(Quantization.FLOAT32)}


def savedmodel_path(out_dir: Path, name: str, mode: str, config: ConversionConfig) -> Path:
    """TensorFlow Serving's layout: a model base folder named for the model, one numbered folder per version."""
    return Path(out_dir) / name / str(getattr(config, "version", 1))


def embedded_contract(contract: ModelContract, config: ConversionConfig, outputs: list[str]) -> ModelContract:
    """The contract as the `edgekit` signature takes it: uint8 pixels at the geometry, scaling in the graph."""
    from dataclasses import replace

    pre = contract.preprocessing
    inside = replace(pre, scale=1.0, offset=0.0, mean=None, std=None, layout=Layout.NHWC)
    return replace(contract, preprocessing=inside).with_quantization(
        mode=config.quantization.value,
        io_dtype="uint8",
        scaling_in_graph={
            "scale": pre.scale,
            "offset": pre.offset,
            "mean": list(pre.mean) if pre.mean else None,
            "std": list(pre.std) if pre.std else None,
            "layout": pre.layout.value,
        },
        serving={"signature": SERVING_SIGNATURE, "input": IMAGES_INPUT, "color_order": "rgb"},
        outputs=outputs,
    )


def scaled(tf: Any, pixels: Any, contract: ModelContract) -> Any:
    """uint8 pixels at the geometry -> the model's float input: the runtime's `normalize`, as TensorFlow ops."""
    pre = contract.preprocessing
    x = tf.cast(pixels, tf.float32) * pre.scale + pre.offset
    if pre.mean is not None and pre.std is not None:
        x = (x - tf.constant(pre.mean, tf.float32)) / tf.constant(pre.std, tf.float32)
    return tf.transpose(x, [0, 3, 1, 2]) if pre.layout is Layout.NCHW else x


def to_geometry(tf: Any, images: Any, contract: ModelContract) -> tuple[Any, Any]:
    """RGB uint8 images of any one size -> uint8 pixels at the contract's geometry, and the box mapping
    (scale_x, scale_y, offset_x, offset_y: input = source * scale + offset) as `box_mapping` computes it.

    The same size passes untouched. Shrinking uses TensorFlow's bilinear resize, antialiased for
    the contract's "area" (OpenCV's pixels may differ by a level or two of 255 there).
    """
    pre = contract.preprocessing
    out_h, out_w = pre.input_size
    if pre.channels == 1:
        images = tf.cast(
            tf.round(tf.tensordot(tf.cast(images, tf.float32), tf.constant([0.299, 0.587, 0.114]), 1)), tf.uint8
        )[..., None]
    elif pre.color_order.value == "bgr":
        images = tf.reverse(images, axis=[-1])
    shape = tf.shape(images)
    in_h, in_w = tf.cast(shape[1], tf.float64), tf.cast(shape[2], tf.float64)
    antialias = pre.interpolation.value == "area"

    def resized(height: Any, width: Any) -> Any:
        x = tf.image.resize(images, tf.stack([height, width]), method="bilinear", antialias=antialias)
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)

    if pre.resize is ResizeMode.AFFINE:
        raise ConversionError(
            "the serving signature does not implement the affine (MediaPipe) resize; use a stretch, letterbox or "
            "center-crop contract for TensorFlow Serving"
        )
    if pre.resize is ResizeMode.STRETCH:
        out = resized(out_h, out_w)
        mapping = tf.stack([out_w / in_w, out_h / in_h, tf.zeros_like(in_w), tf.zeros_like(in_w)])
    else:
        pick = tf.minimum if pre.resize is ResizeMode.LETTERBOX else tf.maximum
        ratio = pick(out_h / in_h, out_w / in_w)
        one = tf.constant(1.0, tf.float64)
        new_w = tf.maximum(one, tf.round(in_w * ratio))
        new_h = tf.maximum(one, tf.round(in_h * ratio))
        if pre.resize is ResizeMode.CENTER_CROP:
            new_w, new_h = (
                tf.maximum(tf.constant(out_w, tf.float64), new_w),
                tf.maximum(tf.constant(out_h, tf.float64), new_h),
            )
        image = resized(tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32))
        if pre.resize is ResizeMode.LETTERBOX:
            top, left = (out_h - tf.cast(new_h, tf.int32)) // 2, (out_w - tf.cast(new_w, tf.int32)) // 2
            out = (
                tf.pad(
                    image - pre.pad_value,
                    [
                        [0, 0],
                        [top, out_h - tf.cast(new_h, tf.int32) - top],
                        [left, out_w - tf.cast(new_w, tf.int32) - left],
                        [0, 0],
                    ],
                )
                + pre.pad_value
            )
            mapping = tf.stack([new_w / in_w, new_h / in_h, tf.cast(left, tf.float64), tf.cast(top, tf.float64)])
        else:
            top, left = (tf.cast(new_h, tf.int32) - out_h) // 2, (tf.cast(new_w, tf.int32) - out_w) // 2
            out = image[:, top : top + out_h, left : left + out_w, :]
            mapping = tf.stack([new_w / in_w, new_h / in_h, -tf.cast(left, tf.float64), -tf.cast(top, tf.float64)])
    same = tf.logical_and(tf.equal(shape[1], out_h), tf.equal(shape[2], out_w))
    out = tf.cond(same, lambda: tf.ensure_shape(images, [None, None, None, pre.channels]), lambda: out)
    mapping = tf.where(same, tf.constant([1.0, 1.0, 0.0, 0.0], tf.float64), mapping)
    out.set_shape([None, out_h, out_w, pre.channels])
    return out, tf.cast(mapping, tf.float32)


def output_names(model: Any) -> list[str]:
    """The model's outputs' names, in its order: the `edgekit` signature's keys, recorded in the contract."""
    return [
        str(name)
        for name in (getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
    ]


class RequestGeometry:
    """Where the contract's resize put a serving request's images, for the task's serving outputs: called with
    (N, K, 4) boxes normalized to the model input, it gives them in the request image's pixels, clipped to it
    (``clip=False``: not clipped, as a keypoint may lie outside the image); `size` is the request images' (height,
    width) and `mapping` the resize's (scale_x, scale_y, offset_x, offset_y), input = source * scale + offset."""

    def __init__(self, tf: Any, images: Any, mapping: Any, input_size: tuple[int, int]) -> None:
        self.tf, self.mapping, self.input_size = tf, mapping, input_size
        shape = tf.shape(images)
        self.size = (shape[1], shape[2])

    def __call__(self, boxes: Any, clip: bool = True) -> Any:  # BoxMapping.to_source, then predict()'s clip
        tf, (out_h, out_w) = self.tf, self.input_size
        height, width = (tf.cast(side, tf.float32) for side in self.size)
        scale = tf.stack([self.mapping[0], self.mapping[1]] * 2)
        offset = tf.stack([self.mapping[2], self.mapping[3]] * 2)
        mapped = (boxes * tf.constant([out_w, out_h, out_w, out_h], tf.float32) - offset) / scale
        return tf.minimum(tf.maximum(mapped, 0.0), tf.stack([width, height, width, height])) if clip else mapped


def build_module(tf: Any, model: Any, contract: ModelContract, contract_file: Path, config: SavedModelConfig) -> Any:
    """A tf.Module with both signatures and the contract as a tracked asset."""
    pre = contract.preprocessing
    out_h, out_w = pre.input_size
    serving_outputs = config.serving_outputs
    if serving_outputs is None:
        raise ValueError(
            f"a SavedModel's serving signature needs the {contract.task} task's outputs "
            "(SavedModelConfig.serving_outputs); export through edgekit.export, which sets them"
        )
    names = output_names(model)

    def run(pixels: Any) -> list[Any]:
        outputs = model(scaled(tf, pixels, contract), training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.contract = tf.saved_model.Asset(str(contract_file))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES_INPUT)])
        def serve(self, images: Any) -> dict[str, Any]:
            pixels, mapping = to_geometry(tf, images, contract)
            return serving_outputs(
                tf, run(pixels), contract.labels, contract.head, RequestGeometry(tf, images, mapping, (out_h, out_w))
            )

        @tf.function(input_signature=[tf.TensorSpec([None, out_h, out_w, pre.channels], tf.uint8, name="pixels")])
        def edgekit(self, pixels: Any) -> dict[str, Any]:
            return dict(zip(names, run(pixels)))

    return Serving()


@register_converter("savedmodel", suffix="", modes=MODES, layout=savedmodel_path)
def convert_savedmodel(
    model: Any,
    output_path: str | Path,
    config: ConversionConfig,
    *,
    contract: ModelContract,
    calibration: Any = None,
    progress: bool = True,
) -> Artifact:
    """Write `model` as a versioned SavedModel folder with raw-image and edgekit signatures (module docstring).

    Examples:
        >>> convert_savedmodel(model, "runs/serving/shapes/1", MODES["fp32"], contract=c)
    """
    tf = require("tensorflow", extra="train")
    output_path = Path(output_path)
    if not isinstance(config, SavedModelConfig):
        config = SavedModelConfig(config.quantization)
    started = time.perf_counter()
    embedded = embedded_contract(contract, config, output_names(model))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_path.name}.", dir=output_path.parent))
    try:
        contract_file = staging / CONTRACT_ASSET
        contract_file.write_text(embedded.to_signed_json())
        module = build_module(tf, model, contract, contract_file, config)
        staged = staging / "savedmodel"
        with quiet_native("tf.saved_model.save"):
            tf.saved_model.save(
                module,
                str(staged),
                signatures={
                    SERVING_SIGNATURE: module.serve.get_concrete_function(),
                    EDGEKIT_SIGNATURE: module.edgekit.get_concrete_function(),
                },
            )
        if not (staged / "assets" / CONTRACT_ASSET).is_file():
            raise ConversionError("the SavedModel was written without its contract asset")
        ordinary_permissions(staged)
        replace_folder(staged, output_path)
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(f"SavedModel export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    log.debug("wrote %s (%.1f s)", output_path, seconds)
    notes = (
        f"TensorFlow Serving layout: --model_name={output_path.parent.name} --model_base_path={output_path.parent}",
    )
    return Artifact(
        output_path,
        f"savedmodel:{config.quantization.value}",
        config,
        embedded,
        artifact_size(output_path),
        seconds,
        notes,
        ("TensorFlow Serving: serving_default takes uint8 RGB images of any size",),
    )
