"""Anchor-free detectors (CenterNet-style centres with FCOS-style box sides) and their training targets.

Why this head: its decoding is a 3x3 max-pool peak test, one top-k and a gather, which
TFLite, ONNX and CoreML all express in standard ops, so every artifact carries its own
decoding; and its outputs are a sigmoid heatmap in [0, 1] and box sides in pixels (no
exponentials of quantized values, no anchor offsets to amplify rounding). In int8 the heat
holds; the box sides do not (TFLite lost 8 mAP@[.5:.95] points), so int8 export keeps the
one 1x1 box-side conv and the decoding in float: mixed precision, measured by
bench/detection_quality.py. The network's raw output is one map per stride-4 cell: C class heat values
then 4 box sides (left, top, right, bottom) in input pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from edgekit._tf import keras
from edgekit.errors import TrainingError
from edgekit.training.architectures import _check_weights, _fast_batchnorm
from runtimes.contract import Preprocessing
from runtimes.heads.detection import DetectionHead
from runtimes.registry import Registry
from runtimes.tasks.detection_maps import STRIDE  # cells of the raw maps, in input pixels
from runtimes.tasks.detection_maps import decode_maps as decode_raw_maps

DECODE_SCOPE = "decode"  # the exported graph's decoding layer
POSTPROCESS_SCOPE = "postprocess"  # the TFLite postprocess layout's NMS layer (`with_postprocess`)
BOX_SCOPES = ("sides_raw", "sides")  # the head's box-side layers: 1x1 conv and its pixel scale
BOX_UNIT = 16.0  # pixels per unit of the box-side output: relu(x) * 16 keeps the raw values small
HEAT_PRIOR = 0.01  # initial heat everywhere: focal-loss training starts stable


@dataclass(frozen=True)
class DetectorArchitecture:
    name: str
    build: Callable[[tuple[int, int, int], int, "str | None"], Any]
    scale: float
    offset: float
    min_size: int
    description: str

    def preprocessing(self, geometry: Preprocessing) -> Preprocessing:
        """The dataset's geometry (size, colours, resize, interpolation) plus this architecture's input scaling."""
        return replace(geometry, scale=self.scale, offset=self.offset, mean=None, std=None)


DETECTORS: Registry[DetectorArchitecture] = Registry("detector architecture")


def register_detector(name: str, scale: float, offset: float, min_size: int, description: str) -> Callable:
    def decorator(build: Callable) -> Callable:
        DETECTORS.register(name)(DetectorArchitecture(name, build, scale, offset, min_size, description))
        return build

    return decorator


def _conv(x: Any, filters: int, stride: int = 1, kernel: int = 3) -> Any:
    k = keras()
    x = k.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
    x = k.layers.BatchNormalization(momentum=0.9)(x)
    return k.layers.ReLU()(x)


def _head(features: Any, num_classes: int, width: int) -> Any:
    """Heat (sigmoid) and box sides (relu * BOX_UNIT pixels) from stride-4 features, as one map."""
    k = keras()
    x = _conv(features, width)
    heat = k.layers.Conv2D(
        num_classes,
        1,
        activation="sigmoid",
        name="heat",
        bias_initializer=k.initializers.Constant(-math.log((1 - HEAT_PRIOR) / HEAT_PRIOR)),
    )(x)
    # ReLU, not softplus: TFLite has no softplus kernel, and its int8 exp/log expansion collapses the boxes
    raw_name, sides_name = BOX_SCOPES  # int8 export keeps these in float (mixed precision): names matter
    sides = k.layers.Conv2D(4, 1, name=raw_name, bias_initializer=k.initializers.Constant(1.0))(x)
    sides = k.layers.ReLU(name=f"{raw_name}_relu")(sides)
    sides = k.layers.Rescaling(BOX_UNIT, name=sides_name)(sides)
    return k.layers.Concatenate(name="maps")([heat, sides])


def _top_down(levels: list[Any], width: int) -> Any:
    """Merge coarse levels into the finest (stride 4) by nearest upsampling and addition (a small FPN)."""
    k = keras()
    merged = k.layers.Conv2D(width, 1)(levels[-1])
    for level in reversed(levels[:-1]):
        merged = k.layers.Add()(
            [k.layers.Conv2D(width, 1)(level), k.layers.UpSampling2D(2, interpolation="nearest")(merged)]
        )
    return merged


def with_nearest_resizes(model: Any) -> Any:
    """`model` (its layers shared) with each nearest UpSampling2D as a nearest resize to the same size: the same
    values, but one RESIZE_NEAREST_NEIGHBOR in TFLite, which accelerators map, where UpSampling2D's repeat lowers
    to SHAPE and TILE, which they do not."""
    k = keras()

    class NearestResize(k.layers.Layer):
        """A nearest resize with no `training` argument: Keras' Resizing defaults it to True, and its call then
        sets the whole call's training phase, so that every layer after it (BatchNorm, QAT ranges) would run as
        in training when a graph is traced without an explicit phase, as Keras' ONNX export traces it."""

        def __init__(self, size: tuple[int, int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.size = tuple(size)

        def call(self, inputs: Any) -> Any:
            return k.ops.image.resize(inputs, self.size, interpolation="nearest")

    def swap(layer: Any) -> Any:
        if type(layer).__name__ == "UpSampling2D" and layer.get_config().get("interpolation") == "nearest":
            return NearestResize(tuple(layer.output.shape[1:3]), name=layer.name)
        return layer

    return k.models.clone_model(model, clone_function=swap)


@register_detector(
    "small_detector",
    scale=1 / 255,
    offset=0.0,
    min_size=64,
    description="5-level CNN with a small FPN, trains from scratch on a CPU in minutes",
)
def build_small_detector(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None) -> Any:
    k = keras()
    inputs = k.Input(input_shape, name="image")
    x = _conv(inputs, 16, 2)  # /2
    c2 = _conv(_conv(x, 32, 2), 32)  # /4
    c3 = _conv(_conv(c2, 48, 2), 48)  # /8
    c4 = _conv(_conv(c3, 80, 2), 80)  # /16
    c5 = _conv(_conv(c4, 112, 2), 112)  # /32: context for the largest objects
    maps = _head(_top_down([c2, c3, c4, c5], 48), num_classes, 48)
    model = k.Model(inputs, maps, name="small_detector")
    if weights := _check_weights(weights):
        model.load_weights(weights)
    return model


@register_detector(
    "mobilenetv2_detector",
    scale=1.0,
    offset=0.0,
    min_size=96,
    description="keras.applications MobileNetV2 backbone (local weights file optional), FPN, same head",
)
def build_mobilenetv2_detector(
    input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None, alpha: float = 1.0
) -> Any:
    """`alpha` is keras.applications' width multiplier: 1.0, the standard network, by default (as the classifier).

    Narrower backbones train faster but quantize worse for size: per output channel, TFLite stores a
    float32 scale and an int64 zero point for the weights and again for the int32 bias, beside a 3x3
    depthwise filter's 9 bytes. bench/detection.py --widths printed int8/fp32 sizes of 0.320 at 0.35,
    0.302 at 0.5, 0.286 at 0.75 and 0.277 at 1.0 (160 px).
    """
    k = keras()
    inputs = k.Input(input_shape, name="image")
    normalized = k.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    weights = _check_weights(weights)
    try:
        backbone = k.applications.MobileNetV2(
            input_shape=input_shape, input_tensor=normalized, include_top=False, weights=weights, alpha=alpha
        )
    except ValueError as exc:  # Keras' own message is a layer's shape mismatch deep in the file
        raise TrainingError(
            f"the weights file {weights} does not fit a MobileNetV2 backbone of width {alpha} without "
            f"its top ({str(exc).splitlines()[0][:200]}); pass the no-top file for width {alpha} "
            f"(keras.applications names it ..._{alpha}_{input_shape[0]}_no_top.h5)"
        ) from None
    names = ["block_2_add", "block_5_add", "block_12_add", "out_relu"]  # strides 4, 8, 16, 32
    levels = [backbone.get_layer(n).output for n in names]
    maps = _head(_top_down(levels, 64), num_classes, 64)
    model = k.Model(inputs, maps, name="mobilenetv2_detector")
    return _fast_batchnorm(model) if weights is None else model


# -- training targets -------------------------------------------------------------------------


def grid_size(input_size: tuple[int, int]) -> tuple[int, int]:
    return input_size[0] // STRIDE, input_size[1] // STRIDE


def encode_targets(boxes: np.ndarray, classes: np.ndarray, input_size: tuple[int, int], num_classes: int) -> np.ndarray:
    """One image's (n, 4) input-pixel boxes -> (Gh, Gw, C + 5): Gaussian heat, box sides, box-loss weight.

    Each object's heat peaks at its centre cell with a spread that grows with its size
    (CenterNet); box sides are learned at the cells near the centre (weighted by that heat),
    the smaller object winning a shared cell, so the peak cell always holds a box.
    """
    gh, gw = grid_size(input_size)
    target = np.zeros((gh, gw, num_classes + 5), np.float32)
    if len(boxes) == 0:
        return target
    ys = (np.arange(gh, dtype=np.float32) + 0.5) * STRIDE
    xs = (np.arange(gw, dtype=np.float32) + 0.5) * STRIDE
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    claimed = np.full((gh, gw), np.inf, np.float32)
    for index in np.argsort(-areas):  # large first, so smaller objects overwrite shared cells
        x0, y0, x1, y1 = boxes[index]
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sigma_x, sigma_y = max(w / 6 / STRIDE, 0.6) * STRIDE, max(h / 6 / STRIDE, 0.6) * STRIDE
        gauss = np.exp(-((xs[None, :] - cx) ** 2) / (2 * sigma_x**2) - ((ys[:, None] - cy) ** 2) / (2 * sigma_y**2))
        peak_y, peak_x = min(int(cy // STRIDE), gh - 1), min(int(cx // STRIDE), gw - 1)
        gauss[peak_y, peak_x] = 1.0
        channel = int(classes[index])
        np.maximum(target[..., channel], gauss, out=target[..., channel])
        inside = (xs[None, :] > x0) & (xs[None, :] < x1) & (ys[:, None] > y0) & (ys[:, None] < y1)
        weight = np.where(inside & (gauss > 0.3), gauss, 0.0)
        weight[peak_y, peak_x] = 1.0
        take = (weight > 0) & (areas[index] <= claimed)
        claimed[take] = areas[index]
        gx, gy = np.meshgrid(xs, ys)
        sides = np.stack([gx - x0, gy - y0, x1 - gx, y1 - gy], axis=-1)
        target[..., num_classes : num_classes + 4][take] = np.maximum(sides[take], 0.5)
        target[..., num_classes + 4][take] = weight[take]
    return target


def detection_loss(num_classes: int, box_weight: float = 5.0) -> Callable[[Any, Any], Any]:
    """Penalty-reduced focal loss on the heat (CenterNet) plus weighted GIoU on the box sides (TTFNet)."""
    ops = keras().ops

    def loss(y_true: Any, y_pred: Any) -> Any:
        heat_t, sides_t, weight = (
            y_true[..., :num_classes],
            y_true[..., num_classes : num_classes + 4],
            y_true[..., num_classes + 4],
        )
        heat = ops.clip(y_pred[..., :num_classes], 1e-4, 1 - 1e-4)
        sides = y_pred[..., num_classes : num_classes + 4]
        positive = ops.cast(heat_t >= 1.0, "float32")
        pos_loss = -ops.log(heat) * ops.square(1 - heat) * positive
        neg_loss = -ops.log(1 - heat) * ops.square(heat) * ops.power(1 - heat_t, 4) * (1 - positive)
        objects = ops.maximum(ops.sum(positive), 1.0)
        focal = (ops.sum(pos_loss) + ops.sum(neg_loss)) / objects
        # GIoU of boxes given as sides around the same cell centre
        l_t, t_t, r_t, b_t = (sides_t[..., i] for i in range(4))
        l_p, t_p, r_p, b_p = (sides[..., i] for i in range(4))
        area_t, area_p = (l_t + r_t) * (t_t + b_t), (l_p + r_p) * (t_p + b_p)
        inter = (ops.minimum(l_t, l_p) + ops.minimum(r_t, r_p)) * (ops.minimum(t_t, t_p) + ops.minimum(b_t, b_p))
        union = area_t + area_p - inter
        enclose = (ops.maximum(l_t, l_p) + ops.maximum(r_t, r_p)) * (ops.maximum(t_t, t_p) + ops.maximum(b_t, b_p))
        giou = inter / ops.maximum(union, 1e-6) - (enclose - union) / ops.maximum(enclose, 1e-6)
        box = ops.sum((1 - giou) * weight) / ops.maximum(ops.sum(weight), 1e-6)
        return focal + box_weight * box

    return loss


# -- the exported graph: decoding inside the model ----------------------------------------------


def with_decoding(model: Any, num_classes: int, head: DetectionHead) -> Any:
    """`model` (raw maps) plus its decoding as standard ops: boxes, scores and classes outputs.

    Peaks are cells whose best class heat equals its 3x3 max-pooled value (CenterNet's
    NMS); the top `max_detections` peaks are gathered with their box sides and turned into
    (x0, y0, x1, y1) boxes normalized to the input size. The same arithmetic as
    `decode_maps`, which decodes raw maps in NumPy.
    """
    k = keras()
    import tensorflow as tf

    height, width = model.input_shape[1:3]
    gh, gw = grid_size((height, width))
    centres = np.stack(np.meshgrid((np.arange(gw) + 0.5) * STRIDE, (np.arange(gh) + 0.5) * STRIDE), axis=-1).reshape(
        -1, 2
    )
    centres = np.concatenate([centres, centres], axis=1).astype(np.float32)  # x y x y per cell
    signs = np.array([-1, -1, 1, 1], np.float32)
    norm = np.array([width, height, width, height], np.float32)

    class Decode(k.layers.Layer):
        def call(self, heat: Any, sides: Any) -> Any:
            pooled = tf.nn.max_pool2d(heat, 3, 1, "SAME")
            peaks = tf.where(tf.equal(heat, pooled), heat, tf.zeros_like(heat))
            best = tf.reshape(tf.reduce_max(peaks, axis=-1), [-1, gh * gw])
            best_class = tf.reshape(tf.argmax(peaks, axis=-1, output_type=tf.int32), [-1, gh * gw])
            scores, cells = tf.math.top_k(best, k=head.max_detections, sorted=True)
            classes = tf.gather(best_class, cells, batch_dims=1)
            chosen = tf.gather(tf.reshape(sides, [-1, gh * gw, 4]), cells, batch_dims=1)
            boxes = (tf.gather(tf.constant(centres), cells) + chosen * tf.constant(signs)) / tf.constant(norm)
            boxes = tf.clip_by_value(boxes, 0.0, 1.0)
            return boxes, scores, classes

    boxes, scores, classes = Decode(name=DECODE_SCOPE)(*_heat_and_sides(model, num_classes))
    boxes = k.layers.Identity(name="boxes")(boxes)
    scores = k.layers.Identity(name="scores")(scores)
    classes = k.layers.Identity(name="classes")(classes)
    return k.Model(model.input, [boxes, scores, classes], name=model.name)


def _heat_and_sides(model: Any, num_classes: int) -> tuple[Any, Any]:
    """The head's two maps as separate tensors: concatenated, int8 would give both one scale.

    Training concatenates them into one output (one loss over one target array); the
    exported graph decodes from the layers themselves, so the heat keeps a [0, 1] scale and
    the box sides a pixel scale. Models without the named layers are split by slicing.
    """
    names = {layer.name for layer in model.layers}
    if {"heat", BOX_SCOPES[1]} <= names:  # a quantization-aware model's maps are its layers' int8 ranges
        heat, sides = (f"{name}_range" if f"{name}_range" in names else name for name in ("heat", BOX_SCOPES[1]))
        return model.get_layer(heat).output, model.get_layer(sides).output
    maps = model.output
    return maps[..., :num_classes], maps[..., num_classes : num_classes + 4]


def class_aware_nms(tf: Any, boxes: Any, scores: Any, classes: Any, head: DetectionHead) -> tuple[Any, Any, Any]:
    """edgekit's one TensorFlow NMS, for one image's (K, 4) normalized boxes, (K,) scores and (K,) classes:
    the contract's score threshold (`runtimes.boxes.passes`' rule), then class-aware IoU NMS, the boxes of each
    class shifted apart so one NMS keeps classes separate (as the TFLite postprocess layout does).

    Returns (selected indices padded to max_detections, their scores, the number valid).
    """
    # NMS keeps scores strictly above its threshold; runtimes keep those equal to theirs
    floor = float(np.nextafter(np.float32(head.score_threshold), np.float32(0)))
    shifted = boxes + 2.0 * tf.cast(classes, tf.float32)[:, None]  # normalized boxes: classes never overlap
    return tf.raw_ops.NonMaxSuppressionV5(
        boxes=shifted,
        scores=scores,
        max_output_size=head.max_detections,
        iou_threshold=head.iou_threshold,
        score_threshold=floor,
        soft_nms_sigma=0.0,
        pad_to_max_output_size=True,
    )


def decode_maps(maps: np.ndarray, num_classes: int, max_detections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (N, Gh, Gw, C + 4) maps -> normalized boxes (N, K, 4), scores (N, K), classes (N, K): the in-graph
    decoding (`with_decoding`) step for step, as runtimes decodes a `maps`-layout file."""
    return decode_raw_maps(maps[..., :num_classes], maps[..., num_classes : num_classes + 4], max_detections)


def with_maps(model: Any, num_classes: int) -> Any:
    """`model` with its heat and box-side maps as two outputs, no decoding: the `maps` layout, all of which an
    accelerator runs in int8 (runtimes decodes peaks and boxes in NumPy)."""
    k = keras()
    heat, sides = _heat_and_sides(model, num_classes)
    maps = k.Model(model.input, [k.layers.Identity(name="heat_map")(heat), k.layers.Identity(name="box_sides")(sides)])
    return with_nearest_resizes(maps)


def with_postprocess(model: Any, head: DetectionHead) -> Any:
    """A decoding model (`with_decoding`'s boxes, scores, classes) with TFLite_Detection_PostProcess's outputs.

    Adds class-aware IoU NMS to the graph (TFLite's NON_MAX_SUPPRESSION_V5 builtin, boxes of
    each class shifted apart so one NMS keeps classes separate) and returns, in that op's
    order: boxes (1, K, 4) as top, left, bottom, right; float classes (1, K); scores (1, K);
    and the number of valid detections (1,). Boxes scoring under the contract's threshold are
    dropped in the graph: MediaPipe's ObjectDetector applies no threshold of its own by default
    (measured: it returns every box the model gives), so this is what its users see out of the
    box, and what edgekit's predict gives by default. Greedy NMS never lets a weaker box
    suppress a stronger one, so what survives is exactly what NumPy NMS at that threshold keeps.
    """
    k = keras()
    import tensorflow as tf

    class Postprocess(k.layers.Layer):
        def call(self, boxes: Any, scores: Any, classes: Any) -> Any:
            boxes, scores, classes = boxes[0], scores[0], classes[0]
            selected, kept_scores, valid = class_aware_nms(tf, boxes, scores, classes, head)
            chosen = tf.gather(boxes, selected)
            yxyx = tf.stack([chosen[:, 1], chosen[:, 0], chosen[:, 3], chosen[:, 2]], axis=-1)
            kept_classes = tf.cast(tf.gather(classes, selected), tf.float32)
            return yxyx[None], kept_classes[None], kept_scores[None], tf.cast(valid, tf.float32)[None]

    outputs = Postprocess(name=POSTPROCESS_SCOPE)(*model.outputs)
    names = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")  # TF Object Detection API's
    return k.Model(
        model.input, [k.layers.Identity(name=name)(out) for name, out in zip(names, outputs)], name=model.name
    )
