"""The keypoint detector: edgekit's small detector with a keypoint head, its training targets and loss.

Each cell of the stride-4 maps holds, besides the detector's heat and box sides, the object's K points as offsets
from the cell's centre (in cells) and each point's visibility. An object's points are learned at its centre cell
and the cells around it, so the peak cell that decoding picks always holds them.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgekit._tf import keras
from edgekit.training.detector_graph import (
    BOX_SCOPES,
    DETECTORS,
    STRIDE,
    _conv,
    detection_loss,
    encode_targets,
    grid_size,
    with_nearest_resizes,
)

OFFSETS, VISIBILITY = "keypoint_offsets", "keypoint_visibility"


KEYPOINT_DETECTORS = {  # keypoint architecture -> the detector it adds its keypoint branch to
    "small_keypoint_detector": "small_detector",
    "mobilenetv2_keypoint_detector": "mobilenetv2_detector",
}


def build_keypoint_detector(
    input_shape: tuple[int, int, int],
    num_classes: int,
    num_points: int,
    base: str = "small_detector",
    weights: str | None = None,
) -> Any:
    """The `base` detector (`DETECTORS`) with a keypoint branch on its head's features: maps of C + 4 + 2K + K
    channels."""
    k = keras()
    detector = DETECTORS.get(base).build(input_shape, num_classes, weights)
    features = detector.get_layer("heat").input  # the head's shared features
    for _ in range(2):  # a branch of its own: where each point lies needs the object's orientation, not its box
        features = _conv(features, 64)
    offsets = k.layers.Conv2D(2 * num_points, 1, name=OFFSETS)(features)
    visible = k.layers.Conv2D(num_points, 1, activation="sigmoid", name=VISIBILITY)(features)
    maps = k.layers.Concatenate(name="keypoint_maps")([detector.output, offsets, visible])
    name = next(arch for arch, detector_name in KEYPOINT_DETECTORS.items() if detector_name == base)
    return k.Model(detector.input, maps, name=name)


def encode_keypoint_targets(
    boxes: np.ndarray, classes: np.ndarray, points: np.ndarray, input_size: tuple[int, int], num_classes: int
) -> np.ndarray:
    """One image's input-pixel boxes (n, 4) and points (n, K, 3) -> (Gh, Gw, C + 5 + 4K): the detector's targets,
    then each point's offset from the cell centre (2K, in cells), visibility (K) and whether it is labelled (K),
    at each object's centre cell and its 3x3 neighbourhood (smaller objects win shared cells)."""
    base = encode_targets(boxes, classes, input_size, num_classes)
    count = points.shape[1] if points.ndim == 3 else 0
    gh, gw = grid_size(input_size)
    extra = np.zeros((gh, gw, 4 * count), np.float32)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    for index in np.argsort(-areas):
        x0, y0, x1, y1 = boxes[index]
        peak_y = min(int((y0 + y1) / 2 // STRIDE), gh - 1)
        peak_x = min(int((x0 + x1) / 2 // STRIDE), gw - 1)
        labelled = points[index, :, 2] > 0
        for cy in range(max(0, peak_y - 1), min(gh, peak_y + 2)):
            for cx in range(max(0, peak_x - 1), min(gw, peak_x + 2)):
                centre = (np.array([cx, cy], np.float32) + 0.5) * STRIDE
                offsets = (points[index, :, :2] - centre) / STRIDE
                extra[cy, cx, : 2 * count] = np.where(labelled[:, None], offsets, 0.0).reshape(-1)
                extra[cy, cx, 2 * count : 3 * count] = points[index, :, 2] == 2
                extra[cy, cx, 3 * count :] = labelled
    return np.concatenate([base, extra], axis=-1)


def keypoint_loss(num_classes: int, num_points: int, point_weight: float = 1.0) -> Callable[[Any, Any], Any]:
    """The detector's loss, plus an L1 loss on labelled points' offsets and a binary cross-entropy on their
    visibility, both where an object's points are learned."""
    ops = keras().ops
    detection = detection_loss(num_classes)
    c, k = num_classes, num_points

    def loss(y_true: Any, y_pred: Any) -> Any:
        boxes = detection(y_true[..., : c + 5], y_pred[..., : c + 4])
        offsets_t, visible_t = y_true[..., c + 5 : c + 5 + 2 * k], y_true[..., c + 5 + 2 * k : c + 5 + 3 * k]
        labelled = y_true[..., c + 5 + 3 * k :]
        offsets_p = y_pred[..., c + 4 : c + 4 + 2 * k]
        visible_p = ops.clip(y_pred[..., c + 4 + 2 * k :], 1e-4, 1 - 1e-4)
        mask = ops.repeat(labelled, 2, axis=-1)
        offset = ops.sum(ops.abs(offsets_t - offsets_p) * mask) / ops.maximum(ops.sum(mask), 1.0)
        bce = -(visible_t * ops.log(visible_p) + (1 - visible_t) * ops.log(1 - visible_p))
        visibility = ops.sum(bce * labelled) / ops.maximum(ops.sum(labelled), 1.0)
        return boxes + point_weight * offset + 0.5 * visibility

    return loss


def with_keypoint_maps(model: Any, num_classes: int, num_points: int) -> Any:
    """`model` with its heat, box-side, point-offset and visibility maps as four outputs (the keypoints task's
    `maps` layout): each gets its own int8 scale, and every operator is one an accelerator runs."""
    k = keras()
    names = {layer.name for layer in model.layers}
    wanted = ("heat", BOX_SCOPES[1], OFFSETS, VISIBILITY)
    if set(wanted) <= names:  # a quantization-aware model's maps are its layers' int8 ranges
        parts = [model.get_layer(f"{n}_range" if f"{n}_range" in names else n).output for n in wanted]
    else:  # a model without the named layers: its one output, sliced
        maps, c, p = model.output, num_classes, num_points
        parts = [maps[..., :c], maps[..., c : c + 4], maps[..., c + 4 : c + 4 + 2 * p], maps[..., c + 4 + 2 * p :]]
    outputs = [
        k.layers.Identity(name=name)(part)
        for name, part in zip(("heat_map", "box_sides", "point_offsets", "point_visibility"), parts)
    ]
    return with_nearest_resizes(k.Model(model.input, outputs, name=model.name))


def serving_keypoints(tf: Any, outputs: list[Any], labels: Any, head: Any, to_source: Any) -> dict[str, Any]:
    """The SavedModel serving signature's objects from the maps layout's four outputs, in TensorFlow ops: the
    arithmetic of `runtimes.tasks.keypoint_maps` (3x3 heat peaks, top-k, boxes and points at each peak cell),
    then the contract's score threshold and class-aware IoU NMS (`class_aware_nms`), at most max_detections."""
    from edgekit.training.detector_graph import class_aware_nms

    heat, sides, offsets, visibility = outputs[:4]
    gh, gw, count = int(heat.shape[1]), int(heat.shape[2]), len(head.keypoint_names)
    limit = head.max_detections
    peaks = tf.where(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), heat, tf.zeros_like(heat))
    best = tf.reshape(tf.reduce_max(peaks, axis=-1), [-1, gh * gw])
    best_class = tf.reshape(tf.argmax(peaks, axis=-1, output_type=tf.int32), [-1, gh * gw])
    scores, cells = tf.math.top_k(best, k=min(limit, gh * gw), sorted=True)
    centres = (tf.cast(tf.stack([cells % gw, cells // gw], axis=-1), tf.float32) + 0.5)[:, :, None, :]  # in cells
    grid = tf.constant([gw, gh], tf.float32)
    chosen_sides = tf.gather(tf.reshape(sides, [-1, gh * gw, 4]), cells, batch_dims=1)
    corners = tf.concat([centres[:, :, 0], centres[:, :, 0]], axis=-1) / tf.concat([grid, grid], axis=0)
    boxes = corners + chosen_sides * tf.constant([-1, -1, 1, 1], tf.float32) / (tf.concat([grid, grid], 0) * STRIDE)
    boxes = tf.clip_by_value(boxes, 0.0, 1.0)
    chosen_offsets = tf.gather(tf.reshape(offsets, [-1, gh * gw, count, 2]), cells, batch_dims=1)
    points = (centres + chosen_offsets) / grid
    seen = tf.gather(tf.reshape(visibility, [-1, gh * gw, count]), cells, batch_dims=1)
    classes = tf.gather(best_class, cells, batch_dims=1)

    def one(args: Any) -> tuple[Any, ...]:
        b, s, c, p, v = args
        selected, _, valid = class_aware_nms(tf, b, s, c, head)
        mask = tf.range(limit) < valid
        return (
            tf.where(mask[:, None], tf.gather(b, selected), 0.0),
            tf.where(mask, tf.gather(s, selected), 0.0),
            tf.where(mask, tf.gather(c, selected), 0),
            tf.where(mask[:, None, None], tf.gather(p, selected), 0.0),
            tf.where(mask[:, None], tf.gather(v, selected), 0.0),
            valid,
        )

    b, s, c, p, v, found = tf.map_fn(
        one,
        (boxes, scores, classes, points, seen),
        fn_output_signature=(
            tf.TensorSpec([limit, 4], tf.float32),
            tf.TensorSpec([limit], tf.float32),
            tf.TensorSpec([limit], tf.int32),
            tf.TensorSpec([limit, count, 2], tf.float32),
            tf.TensorSpec([limit, count], tf.float32),
            tf.TensorSpec([], tf.int32),
        ),
    )
    valid = tf.range(limit)[None, :] < found[:, None]
    flat = tf.reshape(tf.concat([p, p], axis=-1), [-1, limit * count, 4])  # each point as a box, mapped alike
    source_points = tf.reshape(to_source(flat, clip=False)[..., :2], [-1, limit, count, 2])
    return {
        "boxes": tf.where(valid[..., None], to_source(b), 0.0),
        "scores": s,
        "classes": c,
        "labels": tf.gather(tf.constant(list(labels)), c),
        "keypoints": tf.where(valid[..., None, None], source_points, 0.0),
        "keypoint_scores": v,
        "count": found,
    }
