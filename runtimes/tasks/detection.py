"""Object detection: what a detector's outputs mean, how they become `Detections`, how they are drawn.

The contract's ``head`` says it: box format and coordinates, whether decoding and peak
suppression ran in the graph, and the default score threshold, IoU threshold and
maximum detections. This module holds the one NumPy implementation of what does not run
in the graph (IoU NMS, thresholds, mapping boxes back to the source image), and of the
whole decoding for raw maps (Keras' training-time evaluation), with the same arithmetic
as the in-graph version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Sequence

import cv2
import numpy as np

from runtimes.boxes import suppress
from runtimes.errors import ContractError, InferenceError, InputError

if TYPE_CHECKING:
    from runtimes.model import Model
    from runtimes.tensors import TensorSpec

STRIDE = 4  # cells of the raw maps, in input pixels
DECODE_SCOPE = "decode"  # the exported graph's decoding layer
BOX_SCOPES = ("sides_raw", "sides")  # the head's box-side layers: 1x1 conv and its pixel scale


# How a detector's outputs are laid out (the contract's head.layout):
#   "edgekit": boxes (N, K, 4) x0 y0 x1 y1, scores (N, K), integer classes (N, K); class-aware NMS runs in runtimes
#   "postprocess": TFLite_Detection_PostProcess's outputs, in its order: boxes (N, K, 4) as y0 x0 y1 x1, float
#     classes (N, K), scores (N, K) and the number of detections (N,), with NMS in the graph. What MediaPipe
#     Tasks' ObjectDetector, the TFLite Task Library and Frigate read.
LAYOUTS = {
    "edgekit": ("xyxy", ("boxes", "scores", "classes")),
    "postprocess": ("yxyx", ("boxes", "classes", "scores", "count")),
}


@dataclass(frozen=True)
class DetectionHead:
    """What a detector's outputs mean; stored in the contract's ``head``."""

    box_format: str = "xyxy"  # x0, y0, x1, y1
    box_coordinates: str = "normalized"  # fractions of the model input's width and height
    decoding_in_graph: bool = True  # peaks, top-k and boxes computed by the model itself
    nms: str = "3x3 peak suppression in graph; class-aware IoU NMS in runtimes (NumPy)"
    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_detections: int = 50
    outputs: tuple[str, ...] = ("boxes", "scores", "classes")  # (1, K, 4) float, (1, K) float, (1, K) int
    layout: str = "edgekit"  # see LAYOUTS

    def __post_init__(self) -> None:
        if not 0 <= self.score_threshold <= 1 or not 0 < self.iou_threshold <= 1:
            raise ContractError(
                f"detection thresholds out of range: score {self.score_threshold}, iou {self.iou_threshold}; "
                "both are fractions in [0, 1]"
            )
        if not isinstance(self.max_detections, int) or not 1 <= self.max_detections <= 10_000:
            raise ContractError(f"invalid max_detections {self.max_detections!r}; give an integer in 1..10000")
        if self.layout not in LAYOUTS:
            raise ContractError(f"unknown detection output layout {self.layout!r}; valid: {', '.join(LAYOUTS)}")
        box_format, outputs = LAYOUTS[self.layout]
        if self.box_format != box_format or self.box_coordinates != "normalized" or tuple(self.outputs) != outputs:
            raise ContractError(
                f"unsupported boxes {self.box_format}/{self.box_coordinates} with outputs {list(self.outputs)} "
                f"for the {self.layout} layout; edgekit writes {box_format}/normalized with {list(outputs)}"
            )

    @classmethod
    def postprocess(cls, head: "DetectionHead") -> "DetectionHead":
        """`head` for the same model exported with TFLite_Detection_PostProcess-style outputs (NMS in the graph)."""
        box_format, outputs = LAYOUTS["postprocess"]
        return replace(
            head,
            layout="postprocess",
            box_format=box_format,
            outputs=outputs,
            nms="3x3 peak suppression and class-aware IoU NMS in graph (padded; count valid)",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outputs"] = list(self.outputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectionHead":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ContractError(f"detection head has unknown field(s) {sorted(unknown)}; upgrade edgekit")
        values = dict(data)
        if "outputs" in values:
            values["outputs"] = tuple(values["outputs"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ContractError(f"detection head is malformed: {exc}") from None


@dataclass(frozen=True)
class Detection:
    """One object: its label, class index, score and box (x0, y0, x1, y1) in the original image's pixels.

    `track_id` is the object's id across a stream's frames when it is tracked (`stream(track=True)`).
    """

    label: str
    index: int
    score: float
    box: tuple[float, float, float, float]
    track_id: int | None = None

    def __str__(self) -> str:
        x0, y0, x1, y1 = self.box
        tag = f"#{self.track_id} " if self.track_id is not None else ""
        return f"{tag}{self.label} {self.score:.2f} at ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})"


@dataclass(frozen=True)
class Detections(Sequence[Detection]):
    """Every object found in one image, best first, plus what it cost."""

    detections: tuple[Detection, ...]
    latency_ms: float
    preprocess_ms: float
    image_size: tuple[int, int]  # (height, width) of the image the boxes refer to

    def __len__(self) -> int:
        return len(self.detections)

    def __getitem__(self, index: Any) -> Any:
        return self.detections[index]

    def __iter__(self) -> Iterator[Detection]:
        return iter(self.detections)

    @property
    def boxes(self) -> np.ndarray:
        return np.array([d.box for d in self.detections], np.float32).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        return np.array([d.score for d in self.detections], np.float32)

    @property
    def classes(self) -> np.ndarray:
        return np.array([d.index for d in self.detections], np.int64)

    @property
    def track_ids(self) -> list[int | None]:
        return [d.track_id for d in self.detections]

    def __str__(self) -> str:
        return f"{len(self)} object(s)" + ("".join(f"\n  {d}" for d in self.detections) if self.detections else "")


# -- NumPy decoding ---------------------------------------------------------------------------


def decode_maps(maps: np.ndarray, num_classes: int, max_detections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (N, Gh, Gw, C + 4) maps -> normalized boxes (N, K, 4), scores (N, K), classes (N, K).

    The in-graph decoding (`edgekit.training.detector.with_decoding`) step for step: 3x3 peaks,
    best class per cell, top-k cells (ties to the lower cell index), boxes from the cell
    centre and its four sides.
    """
    n, gh, gw = maps.shape[:3]
    heat, sides = maps[..., :num_classes], maps[..., num_classes : num_classes + 4]
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.max(np.stack([padded[:, dy : dy + gh, dx : dx + gw] for dy in range(3) for dx in range(3)]), axis=0)
    peaks = np.where(heat == pooled, heat, 0.0).reshape(n, gh * gw, num_classes)
    best, best_class = peaks.max(axis=-1), peaks.argmax(axis=-1)
    k = min(max_detections, gh * gw)
    cells = np.argsort(-best, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(best, cells, axis=1)
    classes = np.take_along_axis(best_class, cells, axis=1)
    chosen = np.take_along_axis(sides.reshape(n, gh * gw, 4), cells[..., None], axis=1)
    cy, cx = np.divmod(cells, gw)
    centres = np.stack([cx, cy, cx, cy], axis=-1).astype(np.float32) * STRIDE + STRIDE / 2
    boxes = (centres + chosen * np.array([-1, -1, 1, 1], np.float32)) / np.array([gw, gh, gw, gh], np.float32) / STRIDE
    return np.clip(boxes, 0.0, 1.0).astype(np.float32), scores.astype(np.float32), classes.astype(np.int64)


# -- the task ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectOptions:
    score_threshold: float
    iou_threshold: float
    max_detections: int


def output_roles(specs: Sequence["TensorSpec"], layout: str = "edgekit") -> dict[str, int] | None:
    """Role ("boxes", "scores", "classes", and "count" in the postprocess layout) -> output index, or None.

    Formats name and order outputs their own way; shapes and types say which is which. In the
    postprocess layout classes and scores are both float (N, K): TFLite_Detection_PostProcess's
    order (classes before scores), which edgekit keeps in the file, tells them apart.
    """
    boxes = [i for i, s in enumerate(specs) if len(s.shape) == 3 and s.shape[-1] == 4]
    pairs = [i for i, s in enumerate(specs) if len(s.shape) == 2 and s.shape[-1] != 1]
    if layout == "postprocess":
        counts = [i for i, s in enumerate(specs) if len(s.shape) == 1 or (len(s.shape) == 2 and s.shape[-1] == 1)]
        if len(specs) == 4 and len(boxes) == len(counts) == 1 and len(pairs) == 2:
            return {"boxes": boxes[0], "classes": pairs[0], "scores": pairs[1], "count": counts[0]}
        return None
    classes = [i for i in pairs if np.issubdtype(specs[i].dtype, np.integer) and specs[i].quantization is None]
    scores = [i for i in pairs if i not in classes]
    if len(specs) == 3 and len(boxes) == len(classes) == len(scores) == 1:
        return {"boxes": boxes[0], "scores": scores[0], "classes": classes[0]}
    return None


class OutputReader:
    """A detector's outputs in any layout -> boxes (N, K, 4) x0 y0 x1 y1 normalized, float scores (N, K), integer
    classes (N, K). Padding past a postprocess model's count gets score -1, below every threshold.

    Built once per model (roles, which outputs are quantized, the box order): predict() reads
    a camera's every frame through it.
    """

    def __init__(self, specs: Sequence["TensorSpec"], head: DetectionHead, roles: dict[str, int] | None = None) -> None:
        roles = roles or output_roles(specs, head.layout)
        if roles is None:
            raise InferenceError(
                f"outputs are not a {head.layout}-layout detector's "
                f"({', '.join(f'{list(s.shape)} {np.dtype(s.dtype).name}' for s in specs)})"
            )
        self.roles = roles
        self.specs = {role: specs[i] if specs[i].quantization is not None else None for role, i in roles.items()}
        self.yxyx = head.box_format == "yxyx"
        from runtimes.quantization import dequantize

        self._dequantize = dequantize

    def read(self, outputs: Sequence[np.ndarray], role: str) -> np.ndarray:
        """One output as float (or integer classes): raw quantized outputs are dequantized, run_all's are not."""
        array, spec = np.asarray(outputs[self.roles[role]]), self.specs[role]
        return self._dequantize(array, spec) if spec is not None and array.dtype.kind in "iu" else array

    def scores(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) float32 scores: a float output as it is, without a copy; past a count, -1."""
        scores = self.read(outputs, "scores")
        if scores.dtype != np.float32:
            scores = scores.astype(np.float32)
        if "count" in self.roles:
            count = self.read(outputs, "count").reshape(len(scores), -1)[:, 0]
            scores = np.where(np.arange(scores.shape[1])[None, :] < count[:, None], scores, np.float32(-1.0))
        return scores

    def boxes(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K, 4) float32 boxes, x0 y0 x1 y1 normalized."""
        boxes = np.asarray(self.read(outputs, "boxes"), np.float32)
        return boxes[..., [1, 0, 3, 2]] if self.yxyx else boxes

    def classes(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) int64 class indices (the postprocess layout's float classes rounded)."""
        classes = self.read(outputs, "classes")
        return np.asarray(np.rint(classes) if "count" in self.roles else classes, np.int64)

    def __call__(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.boxes(outputs), self.scores(outputs), self.classes(outputs)


def decoded_outputs(
    outputs: Sequence[np.ndarray],
    specs: Sequence["TensorSpec"],
    head: DetectionHead,
    roles: dict[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's raw outputs in any layout, read once (see `OutputReader`, which a model keeps)."""
    return OutputReader(specs, head, roles)(outputs)


def _colour(index: int) -> tuple[int, int, int]:
    """A distinct, bright BGR colour per class."""
    hue = (index * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[str],
    scores: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    thickness: int | None = None,
    track_ids: Sequence[int | None] | None = None,
) -> None:
    """Boxes with label (and score, and track id) tags on the BGR `image`, in place; line and text sizes follow the
    frame size."""
    side = min(image.shape[:2])
    thickness = thickness or max(1, round(side / 240))
    font = max(0.35, side / 900)
    for i, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
        cls = int(classes[i]) if classes is not None else 0
        colour = _colour(cls)
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        text = labels[cls] if cls < len(labels) else str(cls)
        if track_ids is not None and track_ids[i] is not None:
            text = f"#{track_ids[i]} {text}"
        if scores is not None:
            text += f" {float(scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, thickness // 2))
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else y0  # inside the box when there is no room above
        cv2.rectangle(image, (x0, top), (x0 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(
            image,
            text,
            (x0 + 2, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            (0, 0, 0),
            max(1, thickness // 2),
            cv2.LINE_AA,
        )


class DetectionTask:
    name = "detection"
    role = "detector"
    record_help = (
        "source position and its detections (label, class index, score, box x0,y0,x1,y1 in the source's "
        "pixels, and the track id with --track), latency and frame age; with --count-line the objects "
        "that crossed the line so far"
    )
    trackable = True  # results have boxes a tracker can follow across frames
    scores_per_label = False
    # int8 box sides cost 8 mAP@[.5:.95] points in TFLite, kept in float about 0 (bench/detection_quality.py);
    # one 1x1 conv and the decoding: a tiny share of the compute
    float_scopes = (*BOX_SCOPES, DECODE_SCOPE)

    def standard_outputs(self, specs: Sequence["TensorSpec"], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Each output's role in standard metadata, in the file's order."""
        parsed = DetectionHead.from_dict(head or {})
        roles = output_roles(specs, parsed.layout)
        if roles is None:
            raise ContractError(
                f"a detector in the {parsed.layout} layout needs outputs {', '.join(parsed.outputs)}; "
                f"got {[list(s.shape) for s in specs]}"
            )
        names = {
            index: {
                "scores": "detection_scores",
                "boxes": "boxes_yxyx" if parsed.box_format == "yxyx" else "boxes",
            }.get(role, role)
            for role, index in roles.items()
        }
        return tuple(names[i] for i in range(len(specs)))

    def head(self, model: "Model") -> DetectionHead:
        """The model's parsed head, parsed once per model: predict() on a camera asks for it every frame."""
        cache = model._task_cache
        if "head" not in cache:
            cache["head"] = (
                DetectionHead.from_dict(model.contract.head) if model.contract is not None else DetectionHead()
            )
        return cache["head"]

    def check_head(self, head: dict[str, Any]) -> None:
        DetectionHead.from_dict(head)

    def serving_prediction(self, result: Detections, labels: Sequence[str], head: dict[str, Any]) -> dict[str, Any]:
        """Padded to max_detections with zeros past `count`, as the SavedModel's signature is."""
        size = max(DetectionHead.from_dict(head).max_detections, len(result))
        pad = size - len(result)
        return {
            "boxes": [[round(v, 3) for v in d.box] for d in result] + [[0.0] * 4] * pad,
            "scores": [round(d.score, 6) for d in result] + [0.0] * pad,
            "classes": [d.index for d in result] + [0] * pad,
            "labels": [d.label for d in result] + [labels[0] if labels else ""] * pad,
            "count": len(result),
        }

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        return {}

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        k = DetectionHead.from_dict(head).max_detections
        return {
            "boxes": ("DT_FLOAT", [-1, k, 4]),
            "scores": ("DT_FLOAT", [-1, k]),
            "classes": ("DT_INT32", [-1, k]),
            "labels": ("DT_STRING", [-1, k]),
            "count": ("DT_INT32", [-1]),
        }

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Sequence[str], head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """Final detections per image, as predict() gives them: `boxes` (N, K, 4) x0 y0 x1 y1 in the request
        image's pixels, `scores` (N, K), `classes` (N, K) int, `labels` (N, K) string, `count` (N,); rows past
        `count` are zeros. The contract's score threshold, then class-aware IoU NMS (boxes of each class
        shifted apart, as the TFLite postprocess layout does), K = max_detections."""
        chosen = DetectionHead.from_dict(head)
        boxes, scores, classes = outputs[:3]
        limit = chosen.max_detections
        floor = float(np.nextafter(np.float32(chosen.score_threshold), np.float32(0)))  # NMS keeps scores above it

        def one(args: Any) -> tuple[Any, Any, Any, Any]:
            b, s, c = args
            shifted = b + 2.0 * tf.cast(c, tf.float32)[:, None]  # normalized boxes: classes never overlap
            selected, kept, valid = tf.raw_ops.NonMaxSuppressionV5(
                boxes=shifted,
                scores=s,
                max_output_size=limit,
                iou_threshold=chosen.iou_threshold,
                score_threshold=floor,
                soft_nms_sigma=0.0,
                pad_to_max_output_size=True,
            )
            mask = tf.range(limit) < valid
            return (
                tf.where(mask[:, None], tf.gather(b, selected), 0.0),
                tf.where(mask, tf.gather(s, selected), 0.0),
                tf.where(mask, tf.gather(tf.cast(c, tf.int32), selected), 0),
                valid,
            )

        b, s, c, count = tf.map_fn(
            one,
            (boxes, scores, classes),
            fn_output_signature=(
                tf.TensorSpec([limit, 4], tf.float32),
                tf.TensorSpec([limit], tf.float32),
                tf.TensorSpec([limit], tf.int32),
                tf.TensorSpec([], tf.int32),
            ),
        )
        b = tf.where(tf.range(limit)[None, :, None] < count[:, None, None], to_source(b), 0.0)
        return {
            "boxes": b,
            "scores": s,
            "classes": c,
            "labels": tf.gather(tf.constant(list(labels)), c),
            "count": count,
        }

    def describe(self, head: dict[str, Any]) -> list[str]:
        h = DetectionHead.from_dict(head)
        return [
            f"outputs: {', '.join(h.outputs)}; boxes {h.box_format}, {h.box_coordinates} to the input size",
            f"decoding: {'in the graph' if h.decoding_in_graph else 'in runtimes (NumPy)'}; NMS: {h.nms}",
            f"defaults: score >= {h.score_threshold:g}, IoU {h.iou_threshold:g}, at most {h.max_detections} detections",
        ]

    def problem(self, model: "Model") -> str | None:
        head = self.head(model)
        if output_roles(model.runtime.output_specs, head.layout) is not None:
            return None
        outputs = ", ".join(
            f"{spec.name} {list(spec.shape)} {np.dtype(spec.dtype).name}" for spec in model.runtime.output_specs
        )
        expected = (
            "boxes (N, K, 4), scores (N, K) and integer classes (N, K)"
            if head.layout == "edgekit"
            else "boxes (N, K, 4), classes (N, K), scores (N, K) and a count (N,)"
        )
        return (
            f"{model.path.name} is a detection model but its outputs ({outputs}) are not {expected}; "
            "export it again with edgekit, or use run_all(batch)"
        )

    def _defaults(self, model: "Model") -> DetectOptions:
        """The contract's thresholds as options, kept: most frames ask for nothing else."""
        defaults = model._task_cache.get("defaults")
        if defaults is None:
            head = self.head(model)
            defaults = model._task_cache["defaults"] = DetectOptions(
                head.score_threshold, head.iou_threshold, head.max_detections
            )
        return defaults

    def options(self, model: "Model", options: dict[str, Any]) -> DetectOptions:
        if not options:  # the usual frame: the contract's defaults, kept
            return self._defaults(model)
        valid = {"score_threshold", "iou_threshold", "max_detections"}
        unknown = set(options) - valid
        if unknown:
            raise InputError(f"unknown option(s) {sorted(unknown)} for a detector; valid: {', '.join(sorted(valid))}")
        if all(value is None for value in options.values()):
            return self._defaults(model)
        head = self.head(model)
        chosen = {key: getattr(head, key) if options.get(key) is None else options[key] for key in valid}
        try:
            DetectionHead(
                score_threshold=chosen["score_threshold"],
                iou_threshold=chosen["iou_threshold"],
                max_detections=chosen["max_detections"],
            )
        except ContractError as exc:
            raise InputError(str(exc)) from None
        return DetectOptions(
            float(chosen["score_threshold"]), float(chosen["iou_threshold"]), int(chosen["max_detections"])
        )

    def results(
        self,
        model: "Model",
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: DetectOptions,
    ) -> list[Detections]:
        if model._task_problem:  # predict() and stream() raise it first; run here directly, say it too
            raise InputError(model._task_problem)
        cache = model._task_cache
        reader = cache.get("reader")
        if reader is None:
            reader = cache["reader"] = OutputReader(model.runtime.output_specs, self.head(model))
        # a frame reads its scores; boxes and classes only once a candidate passes the threshold. After an
        # inference each distinct numpy call costs its cold caches, and most frames have nothing to report.
        scores, boxes, classes = reader.scores(outputs), None, None
        labels = model._labels
        results = []
        for i, size in enumerate(sizes):
            # NaN is never below the threshold: a damaged score is read, and fails, below
            above = np.flatnonzero(~(scores[i] < options.score_threshold))
            found: tuple[Detection, ...] = ()
            if len(above):
                if not np.isfinite(scores[i][above]).all():
                    self._damaged(model)
                if boxes is None:
                    boxes, classes = reader.boxes(outputs), reader.classes(outputs)
                b, s, c = suppress(
                    boxes[i], scores[i], classes[i], above, options.iou_threshold, options.max_detections
                )
                if not np.isfinite(b).all():
                    self._damaged(model)
                to_source = self._to_source(model, (int(size[0]), int(size[1])))
                found = tuple(
                    Detection(labels[k] if 0 <= k < len(labels) else str(k), k, score, tuple(box))
                    for box, score, k in zip(to_source(b).tolist(), s.tolist(), c.tolist())
                )
            results.append(Detections(found, latency_ms, preprocess_ms, (int(size[0]), int(size[1]))))
        return results

    @staticmethod
    def _damaged(model: "Model") -> NoReturn:
        raise InferenceError(
            f"{model.path.name} produced non-finite boxes or scores; its weights are probably damaged: "
            "check the file's SHA-256 (edgekit info) and copy or export it again"
        )

    @staticmethod
    def _to_source(model: "Model", size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
        """Normalized input boxes -> the source image's pixels, clipped to it; one function per frame size, kept."""
        plans = model._task_cache.setdefault("to_source", {})
        plan = plans.get(size)
        if plan is None:
            from runtimes.preprocess import box_mapping

            spec = model.require_preprocessing()
            height, width = spec.input_size
            mapping = box_mapping(size, spec)
            pixels = np.array([width, height, width, height], np.float32)
            offset = np.array([mapping.offset_x, mapping.offset_y] * 2, np.float32)
            scale = np.array([mapping.scale_x, mapping.scale_y] * 2, np.float32)
            limit = np.array([size[1], size[0], size[1], size[0]], np.float32)

            def plan(boxes: np.ndarray) -> np.ndarray:  # BoxMapping.to_source's float32 steps, then the clip
                return np.minimum(np.maximum((boxes * pixels - offset) / scale, 0), limit)

            if len(plans) >= 8:  # frames of many sizes: keep memory bounded
                plans.clear()
            plans[size] = plan
        return plan

    def draw(self, image: np.ndarray, result: Detections, labels: Sequence[str]) -> None:
        draw_detections(image, result.boxes, labels, result.scores, result.classes, track_ids=result.track_ids)

    def lines(self, result: Detections, threshold: float = 0.0) -> list[str]:
        return [f"{len(result)} object(s)"]

    def cli_options(self, top_k: int | None, threshold: float | None) -> dict[str, Any]:
        """predict() options from the CLI: --threshold is the minimum detection score (the model's default when
        unset)."""
        return {} if threshold is None else {"score_threshold": threshold}

    def record(self, position: object, result: Detections, threshold: float | None, **extra: float) -> dict[str, Any]:
        """One image's detections as a JSON-ready dict, boxes in source pixels."""
        return {
            "source": str(position),
            **self.summary(result),
            **{key: round(value, 3) for key, value in extra.items()},
        }

    def line(self, record: dict[str, Any]) -> str:
        def one(d: dict[str, Any]) -> str:
            tag = f"#{d['id']} " if d.get("id") is not None else ""
            return f"{tag}{d['label']} {d['score']:.3f} [{', '.join(f'{v:.1f}' for v in d['box'])}]"

        found = "; ".join(one(d) for d in record["detections"])
        counted = (
            f"  {record['count']['total']} crossed (in {record['count']['in']}, out {record['count']['out']})"
            if "count" in record
            else ""
        )
        timing = "".join(f"  {key}={record[key]:.1f}" for key in ("latency_ms", "age_ms") if key in record)
        return (
            f"{record['source']}: {len(record['detections'])} object(s)"
            + (f": {found}" if found else "")
            + counted
            + timing
        )

    def summary(self, result: Detections) -> dict[str, Any]:
        return {
            "detections": [
                {
                    "label": d.label,
                    "index": d.index,
                    "score": round(d.score, 6),
                    "box": [round(v, 3) for v in d.box],
                    **({"id": d.track_id} if d.track_id is not None else {}),
                }
                for d in result
            ]
        }
