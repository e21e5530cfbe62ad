"""Detection on the host: the decoding appended for export, mAP by pycocotools, agreement with Keras."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from converters import CalibrationData
from converters.tflite_integer import aware_int8
from edgekit.data.detection import DetectionData, DetectionDataset
from edgekit.errors import DatasetError
from edgekit.host_tasks.base import DataDefaults, Verdict, pct, with_export_policy
from edgekit.metrics.detection import (
    EVAL_SCORE_THRESHOLD,
    DetectionMetrics,
    detection_agreement,
    map_of,
    source_detections,
)
from edgekit.training.detector_graph import BOX_SCOPES, DECODE_SCOPE, POSTPROCESS_SCOPE
from runtimes.heads.detection import DetectionHead, output_roles
from runtimes.tasks.detection_outputs import decoded_outputs

MATCH_IOU = 0.9  # a detection "agrees" when the other side has the same class at this IoU


def artifact_outputs(loaded: Any, dataset: DetectionDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes, scores, classes) of every check image through the artifact's runtime, one image per call (as on a
    camera),
    in edgekit's layout whatever the file's (boxes x0 y0 x1 y1; a postprocess model's padding scored -1)."""
    specs = loaded.runtime.output_specs
    head = DetectionHead.from_dict(loaded.contract.head)
    if output_roles(specs, head.layout) is None:
        raise DatasetError(f"{loaded.path.name} does not have a detector's outputs ({', '.join(head.outputs)})")
    preprocessing = loaded.require_preprocessing()
    parts: list[list[np.ndarray]] = [[], [], []]
    for i in range(len(dataset)):
        outputs = loaded.run_all(dataset.tensors(preprocessing, slice(i, i + 1)))
        for part, array in zip(parts, decoded_outputs([outputs[spec.name] for spec in specs], specs, head)):
            part.append(array)
    return tuple(np.concatenate(part) for part in parts)  # type: ignore[return-value]


def _head(contract: Any) -> DetectionHead:
    return DetectionHead.from_dict(contract.head)


class DetectionHost:
    name = "detection"
    metric = "mAP@[.5:.95]"
    header = ["mAP@[.5:.95]", "delta (pts)", "mAP@.5", "det. agreement", "max box error"]
    dataset_type = DetectionDataset

    def __init__(self) -> None:
        import weakref

        self._postprocessed: Any = weakref.WeakKeyDictionary()  # model -> its postprocess graph, while the model lives
        self._mapped: Any = weakref.WeakKeyDictionary()  # model -> its maps graph

    defaults = DataDefaults((128, 128), "letterbox", "linear")  # boxed objects: letterboxed, linear resize
    written = "metrics.json, history.png, val_boxes.png"

    def train(self, train: Any, val: Any, arch: Any, options: Any) -> Any:
        from edgekit.training.detection import train_detector

        return train_detector(train, val, arch, options)

    def read(self, path: Any, geometry: dict[str, Any], stream: Any, cache_dir: Any) -> Any:
        from edgekit.data.annotations import load_detection

        return load_detection(path, **geometry, stream=stream, cache_dir=cache_dir)

    def metric_lines(self, metrics: dict[str, Any]) -> list[str]:
        return [
            f"{split:>5} mAP@[.5:.95]: {value * 100:.1f}%  mAP@.5: {metrics['map50'][split] * 100:.1f}%"
            for split, value in metrics["map"].items()
        ]

    def deployable(self, model: Any, contract: Any) -> Any:
        from edgekit.training.detector_graph import with_decoding

        outputs = getattr(model, "outputs", [])
        if len(outputs) == 3:  # already decodes (a deployable model passed again)
            return model
        return with_decoding(model, len(contract.labels), _head(contract))

    # int8 box sides cost 8 mAP@[.5:.95] points in TFLite, kept in float about 0 (bench/detection_quality.py);
    # one 1x1 conv and the decoding: a tiny share of the compute
    float_scopes = (*BOX_SCOPES, DECODE_SCOPE)

    def for_config(self, model: Any, contract: Any, config: Any) -> tuple[Any, Any, Any]:
        """TFLite's postprocess layout converts `model` with NMS and TFLite_Detection_PostProcess's outputs added;
        every other target converts `model` (edgekit's layout). Built once per model."""
        config = with_export_policy(config, self)
        if config.full_integer or aware_int8(config, contract):  # no float op: the raw maps, decoded in runtimes
            return (
                self._maps(model, contract),
                replace(contract, head=DetectionHead.maps(_head(contract)).to_dict()),
                config,
            )
        if getattr(config, "detection_outputs", "edgekit") != "postprocess":
            return model, contract, config
        from edgekit.training.detector_graph import with_postprocess

        head = DetectionHead.postprocess(_head(contract))
        graph = self._postprocessed.get(model)
        if graph is None:
            graph = self._postprocessed[model] = with_postprocess(model, head)
        if config.float_scopes:  # int8: NMS and its count stay float, or a reader truncating 2.98 to an int loses one
            config = replace(config, float_scopes=(*config.float_scopes, POSTPROCESS_SCOPE))
        return graph, replace(contract, head=head.to_dict()), config

    def _maps(self, model: Any, contract: Any) -> Any:
        """`model`'s `maps`-layout graph (its raw heat and box sides), built once per model."""
        from edgekit.training.detector_graph import with_maps

        graph = self._mapped.get(model)
        if graph is None:
            graph = self._mapped[model] = with_maps(model, len(contract.labels))
        return graph

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Any, head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """Final detections per image, as predict() gives them: `boxes` (N, K, 4) x0 y0 x1 y1 in the request
        image's pixels, `scores` (N, K), `classes` (N, K) int, `labels` (N, K) string, `count` (N,); rows past
        `count` are zeros. The contract's score threshold, then class-aware IoU NMS (`class_aware_nms`, the
        same as the TFLite postprocess layout's), K = max_detections."""
        from edgekit.training.detector_graph import class_aware_nms

        chosen = DetectionHead.from_dict(head)
        boxes, scores, classes = outputs[:3]
        limit = chosen.max_detections

        def one(args: Any) -> tuple[Any, Any, Any, Any]:
            b, s, c = args
            selected, _, valid = class_aware_nms(tf, b, s, c, chosen)
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

    def load(self, path: Any, preprocessing: Any) -> DetectionDataset:
        """An annotated dataset on disk (YOLO, COCO, VOC), read at the model's geometry."""
        from edgekit.data.annotations import load_detection

        return load_detection(
            path,
            image_size=preprocessing.input_size,
            color_order=preprocessing.color_order,
            resize=preprocessing.resize,
            labels=None,
            interpolation=preprocessing.interpolation,
        )

    def _check(self, dataset: Any, contract: Any, role: str) -> None:
        if not isinstance(dataset, DetectionData):
            raise DatasetError(
                f"the {role} data of a detector must be a DetectionDataset (edgekit.load_detection), "
                f"got {type(dataset).__name__}"
            )
        if tuple(dataset.labels) != contract.labels:
            raise DatasetError(
                f"the {role} dataset's labels {list(dataset.labels)} differ from the model's {list(contract.labels)}"
            )

    def calibration(self, dataset: DetectionDataset, contract: Any, count: int) -> CalibrationData:
        self._check(dataset, contract, "calibration")
        return CalibrationData(dataset.sample(count).tensors(contract.preprocessing))

    def reference(self, model: Any, dataset: DetectionDataset, contract: Any) -> dict[str, Any]:
        self._check(dataset, contract, "check")
        head = _head(contract)
        chunks = [
            model(dataset.tensors(contract.preprocessing, slice(s, s + 64)), training=False)
            for s in range(0, len(dataset), 64)
        ]
        boxes, scores, classes = (np.concatenate([np.asarray(c[i]) for c in chunks]) for i in range(3))
        return {
            "metrics": map_of(dataset, source_detections(dataset, boxes, scores, classes, head, EVAL_SCORE_THRESHOLD)),
            "shown": source_detections(dataset, boxes, scores, classes, head, head.score_threshold),
            "head": head,
        }

    def reference_quality(self, dataset: DetectionDataset, reference: dict[str, Any], contract: Any) -> float:
        return reference["metrics"].map

    def check(self, loaded: Any, dataset: DetectionDataset, reference: dict[str, Any]) -> Verdict:
        head = reference["head"]
        started = time.perf_counter()
        outputs = artifact_outputs(loaded, dataset)
        latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(dataset))
        metrics = map_of(dataset, source_detections(dataset, *outputs, head, EVAL_SCORE_THRESHOLD))
        shown = source_detections(dataset, *outputs, head, head.score_threshold)
        agreement = detection_agreement(
            [(b, c) for b, _, c in reference["shown"]], [(b, c) for b, _, c in shown], MATCH_IOU
        )
        keras_metrics: DetectionMetrics = reference["metrics"]
        if DetectionHead.from_dict(loaded.contract.head).layout == "postprocess":
            # NMS in the graph dropped what scores under the contract's threshold: rank Keras at the same threshold
            if "metrics_at_threshold" not in reference:
                reference["metrics_at_threshold"] = map_of(dataset, reference["shown"])
            keras_metrics = reference["metrics_at_threshold"]
        return Verdict(
            metrics.map,
            (metrics.map - keras_metrics.map) * 100,
            agreement.agreement,
            agreement.max_box_error_px,
            latency_ms,
            details={
                "map50": metrics.map50,
                "map50_delta": (metrics.map50 - keras_metrics.map50) * 100,
                "keras_map50": keras_metrics.map50,
                "matched": agreement.matched,
                "reverse": agreement.reverse,
                "detections": agreement.artifact_count,
                "keras_detections": agreement.reference_count,
                "within_1px": agreement.within_1px,
            },
        )

    def cells(self, result: Any) -> list[str]:
        details = result.details or {}
        return [
            pct(result.accuracy),
            "-" if result.accuracy_delta is None else f"{result.accuracy_delta:+.1f}",
            pct(details.get("map50")),
            pct(result.agreement),
            "-" if result.max_abs_error is None else f"{result.max_abs_error:.2f} px",
        ]

    def reference_cells(self, quality: float | None) -> list[str]:
        return [pct(quality), "-", "-", "100.0%", "-"]

    def headline(self, metrics: Any) -> float:
        return float(metrics.map)

    def evaluate(self, loaded: Any, dataset: DetectionDataset) -> DetectionMetrics:
        if tuple(loaded.labels) != tuple(dataset.labels):
            raise DatasetError(
                f"the model's labels {list(loaded.labels)} differ from the dataset's {list(dataset.labels)}"
            )
        head = DetectionHead.from_dict(loaded.contract.head)
        return map_of(
            dataset, source_detections(dataset, *artifact_outputs(loaded, dataset), head, EVAL_SCORE_THRESHOLD)
        )
