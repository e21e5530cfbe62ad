"""The segmentation models: a small encoder-decoder (U-Net style, trains from scratch on a CPU in minutes), its
per-class scores at the input's resolution, and the loss that leaves unlabelled pixels (255) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from edgekit._tf import keras
from edgekit.errors import TrainingError
from runtimes.heads.segmentation import IGNORE


def _conv(x: Any, filters: int, stride: int = 1, kernel: int = 3) -> Any:
    k = keras()
    x = k.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
    x = k.layers.BatchNormalization(momentum=0.9)(x)
    return k.layers.ReLU()(x)


LOGITS_STRIDE = 4  # input pixels per cell of the logits the network computes


def build_small_segmenter(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None) -> Any:
    """Four stride-2 stages down to 1/16, back up to 1/4 with skips from 1/8 and 1/4 (nearest upsampling and a
    convolution each: operators every format and accelerator runs), per-class logits at 1/4, and those logits
    upsampled bilinearly (pixel centres aligned) to the input's size: the output every format carries, so that a
    reader that takes a model's output at its input's size (MediaPipe's ImageSegmenter) reads what edgekit reads."""
    if weights is not None:
        raise TrainingError("small_segmenter trains from scratch: it takes no weights file")
    k = keras()
    inputs = k.Input(input_shape, name="image")
    skips, x = [], inputs
    for filters in (24, 48, 64, 96):
        x = _conv(_conv(x, filters, 2), filters)
        skips.append(x)
    x = _conv(x, 128)
    for skip, filters in zip((skips[2], skips[1]), (96, 64)):
        x = k.layers.UpSampling2D(2, interpolation="nearest")(x)
        x = k.layers.Concatenate()([x, skip])
        x = _conv(x, filters)
    logits = k.layers.Conv2D(num_classes, 1, name="logits")(x)
    full = k.layers.UpSampling2D(LOGITS_STRIDE, interpolation="bilinear", name="scores")(logits)
    return k.Model(inputs, full, name="small_segmenter")


def build_mobilenetv2_segmenter(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None) -> Any:
    """keras.applications' MobileNetV2 (a local ImageNet no-top weights file optional) with a light DeepLab head:
    at 1/16, a 1x1 and a 3x3 branch (ASPP's, without its dilation, which the Neural Engine runs elsewhere, and
    its pooling branch, which accelerators map poorly), upsampled to 1/4 and joined with the backbone's 1/4
    features (DeepLabV3+'s decoder), per-class logits there, then upsampled bilinearly to the input's size. It
    takes raw pixels: the backbone's scaling is inside."""
    from edgekit.training.architectures import _check_weights, _fast_batchnorm

    k = keras()
    inputs = k.Input(input_shape, name="image")
    normalized = k.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    backbone = k.applications.MobileNetV2(
        input_shape=input_shape, input_tensor=normalized, include_top=False, weights=_check_weights(weights)
    )
    high = backbone.get_layer("block_13_expand_relu").output  # 1/16
    low = backbone.get_layer("block_3_expand_relu").output  # 1/4
    branches = [_conv(high, 96, kernel=1), _conv(high, 96)]
    x = _conv(k.layers.Concatenate()(branches), 96, kernel=1)
    x = k.layers.UpSampling2D(4, interpolation="bilinear")(x)
    x = k.layers.Concatenate()([x, _conv(low, 32, kernel=1)])
    x = _conv(x, 64)
    logits = k.layers.Conv2D(num_classes, 1, name="logits")(x)
    full = k.layers.UpSampling2D(LOGITS_STRIDE, interpolation="bilinear", name="scores")(logits)
    model = k.Model(inputs, full, name="mobilenetv2_segmenter")
    return _fast_batchnorm(model) if weights is None else model


@dataclass(frozen=True)
class SegmenterArchitecture:
    """A segmentation architecture: its builder, the input scaling it takes and its smallest input side."""

    build: Callable[..., Any]
    scale: float
    min_size: int


SEGMENTERS = {
    "small_segmenter": SegmenterArchitecture(
        lambda shape, classes, weights: build_small_segmenter(shape, classes), 1 / 255, 32
    ),
    "mobilenetv2_segmenter": SegmenterArchitecture(build_mobilenetv2_segmenter, 1.0, 96),  # raw pixels: scaled inside
}


def with_category_mask(model: Any) -> Any:
    """`model` with the argmax of its scores in the graph: (N, H, W) int32 class ids at the input's size."""
    k = keras()
    import tensorflow as tf

    class CategoryMask(k.layers.Layer):
        def call(self, scores: Any) -> Any:  # TensorFlow's ARG_MAX: Keras' argmax adds bitwise ops TFLite lacks
            return tf.argmax(scores, axis=-1, output_type=tf.int32)

    return k.Model(model.input, CategoryMask(name="category_mask")(model.output), name=model.name)


def segmentation_loss() -> Callable[[Any, Any], Any]:
    """Cross-entropy over labelled pixels: a 255 (not labelled, or the letterbox's bands) counts for nothing."""
    return keras().losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)


def serving_masks(tf: Any, outputs: list[Any], labels: Any, geometry: Any, kind: str = "scores") -> dict[str, Any]:
    """The SavedModel serving signature's answer from per-class scores, in TensorFlow ops: `mask` (N, H, W) int32
    at the request images' size and `areas` (N, classes), each label's share of the image. The arithmetic of
    `runtimes.tasks.segmentation.source_mask`: each request pixel's centre through the resize's map into the
    scores' cells, bilinear (edges repeated), then each pixel's best class."""
    scores = outputs[0] if kind == "scores" else tf.cast(outputs[0], tf.float32)[..., None]  # a category mask
    h, w = int(scores.shape[1]), int(scores.shape[2])
    (in_h, in_w), (height, width) = geometry.input_size, geometry.size
    sx, sy, ox, oy = (tf.cast(geometry.mapping[i], tf.float32) for i in range(4))
    step_x, step_y = sx * w / in_w, sy * h / in_h  # output cells per request pixel
    first_x = (0.5 * sx + ox) * w / in_w - 0.5 + 1.0  # the first pixel's centre, in the padded scores' cells
    first_y = (0.5 * sy + oy) * h / in_h - 0.5 + 1.0
    rows, columns = tf.cast(height - 1, tf.float32), tf.cast(width - 1, tf.float32)
    box = tf.stack(
        [
            first_y / (h + 1),
            first_x / (w + 1),
            (first_y + step_y * rows) / (h + 1),
            (first_x + step_x * columns) / (w + 1),
        ]
    )
    padded = tf.pad(scores, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # a pad of one repeats the edge
    count = tf.shape(scores)[0]
    method = "bilinear" if kind == "scores" else "nearest"
    warped = tf.image.crop_and_resize(
        padded, tf.tile(box[None], [count, 1]), tf.range(count), tf.stack([height, width]), method=method
    )
    mask = tf.argmax(warped, axis=-1, output_type=tf.int32) if kind == "scores" else tf.cast(warped[..., 0], tf.int32)
    areas = tf.reduce_mean(tf.one_hot(mask, len(labels), dtype=tf.float32), axis=[1, 2])
    return {"mask": mask, "areas": areas}
