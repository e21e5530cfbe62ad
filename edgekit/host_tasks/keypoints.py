"""Keypoints on the host: training, the maps graph every format exports, OKS mAP by pycocotools, and each
artifact's objects and points against Keras'."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from converters import CalibrationData
from edgekit.data.keypoint_datasets import KeypointDataset, is_keypoint_data
from edgekit.errors import DatasetError, ExportError
from edgekit.host_tasks.base import DataDefaults, Verdict, pct, with_export_policy
from edgekit.metrics.keypoints import KeypointMetrics, keypoint_agreement, keypoint_metrics
from runtimes.heads.keypoints import KeypointHead
from runtimes.tasks.keypoint_maps import decode_keypoint_maps, per_image

MATCH_IOU = 0.9  # an object "agrees" when the other side has one of the same class at this box IoU
EVAL_SCORE_THRESHOLD = 0.05  # the objects OKS mAP ranks (as detection's mAP)


def _head(contract: Any) -> KeypointHead:
    return KeypointHead.from_dict(contract.head)


def artifact_candidates(loaded: Any, dataset: KeypointDataset) -> list:
    """Every check image through the artifact's runtime, one image per call (as on a camera), decoded as
    predict() decodes: per image, its candidates before thresholds and NMS."""
    decoder, specs = loaded.decoder, loaded.runtime.output_specs
    if decoder.problem is not None:
        raise DatasetError(decoder.problem)
    preprocessing = loaded.require_preprocessing()
    found = []
    for i in range(len(dataset)):
        outputs = loaded.run_all(dataset.tensors(preprocessing, slice(i, i + 1)))
        found += decoder.candidates([outputs[spec.name] for spec in specs], decoder.head.max_detections)
    return found


def _metrics(dataset: KeypointDataset, found: list, head: KeypointHead) -> KeypointMetrics:
    boxes, scores, classes, points = (list(part) for part in list(zip(*found))[:4])
    return keypoint_metrics(
        dataset.boxes,
        dataset.classes,
        dataset.keypoints,
        boxes,
        scores,
        classes,
        points,
        labels=dataset.labels,
        sigmas=head.sigmas,
    )


class KeypointsHost:
    """What only the host knows about keypoint models: their training loop, the graph every format converts (the
    raw maps, decoded on the device), their metrics and the check against Keras."""

    name = "keypoints"
    metric = "OKS mAP"
    header = ["OKS mAP", "delta (pts)", "PCK@0.1", "obj. agreement", "max point error"]
    float_scopes: tuple[str, ...] = ()

    def train(self, train: Any, val: Any, arch: Any, options: Any) -> Any:
        from edgekit.training.keypoints import train_keypoints

        return train_keypoints(train, val, arch, options)

    defaults = DataDefaults((128, 128), "letterbox", "linear")
    written = "metrics.json"

    def read(self, path: Any, geometry: dict[str, Any], stream: Any, cache_dir: Any) -> Any:
        from edgekit.data.keypoints import load_keypoints

        return load_keypoints(path, **geometry, stream=stream, cache_dir=cache_dir)

    def metric_lines(self, metrics: dict[str, Any]) -> list[str]:
        return [
            f"{split:>5} OKS mAP: {value * 100:.1f}%  PCK@0.1: {metrics['pck'][split] * 100:.1f}%  "
            f"point error: {metrics['mean_error_px'][split]:.1f} px"
            for split, value in metrics["oks_map"].items()
        ]

    def load(self, path: Any, preprocessing: Any) -> Any:
        from edgekit.data.keypoints import load_keypoints

        return load_keypoints(path, preprocessing.input_size, preprocessing.color_order, preprocessing.resize)

    def deployable(self, model: Any, contract: Any) -> Any:
        """The model with its four maps as outputs (already so when passed again)."""
        from edgekit.training.keypoint_graph import with_keypoint_maps

        if len(getattr(model, "outputs", [])) == 4:
            return model
        return with_keypoint_maps(model, len(contract.labels), len(_head(contract).keypoint_names))

    def for_config(self, model: Any, contract: Any, config: Any) -> tuple[Any, Any, Any]:
        """Every format converts the same maps graph: no float operator in it, whatever the quantization."""
        if getattr(config, "detection_outputs", "edgekit") == "postprocess":
            raise ExportError(
                "MediaPipe Tasks has no task for a custom keypoint model, so there is no file it reads: export "
                "tflite:fp32 or tflite:int8 (decoded by edgekit's runtimes)"
            )
        return model, contract, with_export_policy(config, self)

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Any, head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """Final objects per image, as predict() gives them: `boxes` (N, M, 4) in the request image's pixels,
        `scores` (N, M), `classes` (N, M), `labels` (N, M), `keypoints` (N, M, K, 2) x y in the same pixels,
        `keypoint_scores` (N, M, K) and `count` (N,); rows past `count` are zeros."""
        from edgekit.training.keypoint_graph import serving_keypoints

        return serving_keypoints(tf, outputs, labels, _head_of(head), to_source)

    def _check(self, dataset: Any, contract: Any, role: str) -> None:
        if not is_keypoint_data(dataset):
            raise DatasetError(
                f"the {role} data of a keypoint model must be a KeypointDataset (edgekit.load_keypoints), "
                f"got {type(dataset).__name__}"
            )
        names = _head(contract).keypoint_names
        if tuple(dataset.labels) != contract.labels or tuple(dataset.keypoint_names) != names:
            raise DatasetError(
                f"the {role} dataset's labels {list(dataset.labels)} and points {list(dataset.keypoint_names)} "
                f"differ from the model's {list(contract.labels)} and {list(names)}"
            )

    def calibration(self, dataset: KeypointDataset, contract: Any, count: int) -> CalibrationData:
        self._check(dataset, contract, "calibration")
        return CalibrationData(dataset.sample(count).tensors(contract.preprocessing))

    def reference(self, model: Any, dataset: KeypointDataset, contract: Any) -> dict[str, Any]:
        from edgekit.training.keypoints import source_objects

        self._check(dataset, contract, "check")
        head = _head(contract)
        chunks = [
            model(dataset.tensors(contract.preprocessing, slice(s, s + 64)), training=False)
            for s in range(0, len(dataset), 64)
        ]
        maps = [np.concatenate([np.asarray(chunk[i]) for chunk in chunks]) for i in range(4)]
        candidates = per_image(decode_keypoint_maps(*maps, head.max_detections))
        return {
            "metrics": _metrics(dataset, source_objects(candidates, dataset, head, EVAL_SCORE_THRESHOLD), head),
            "shown": source_objects(candidates, dataset, head, head.score_threshold),
            "head": head,
            "candidates": candidates,
        }

    def reference_quality(self, dataset: KeypointDataset, reference: dict[str, Any], contract: Any) -> float:
        return reference["metrics"].oks_map

    def check(self, loaded: Any, dataset: KeypointDataset, reference: dict[str, Any]) -> Verdict:
        from edgekit.training.keypoints import source_objects

        head = reference["head"]
        started = time.perf_counter()
        candidates = artifact_candidates(loaded, dataset)
        latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(dataset))
        metrics = _metrics(dataset, source_objects(candidates, dataset, head, EVAL_SCORE_THRESHOLD), head)
        shown = source_objects(candidates, dataset, head, head.score_threshold)
        agreement = keypoint_agreement(
            [(b, c, p) for b, _, c, p, _ in reference["shown"]], [(b, c, p) for b, _, c, p, _ in shown], MATCH_IOU
        )
        keras: KeypointMetrics = reference["metrics"]
        return Verdict(
            metrics.oks_map,
            (metrics.oks_map - keras.oks_map) * 100,
            agreement.agreement,
            agreement.max_point_error_px,
            latency_ms,
            details={
                "pck": metrics.pck,
                "pck_delta": (metrics.pck - keras.pck) * 100,
                "keras_pck": keras.pck,
                "mean_error_px": metrics.mean_error_px,
                "reverse": agreement.reverse,
                "objects": agreement.artifact_count,
                "keras_objects": agreement.reference_count,
                "points_within_1px": agreement.points_within_1px,
            },
        )

    def cells(self, result: Any) -> list[str]:
        details = result.details or {}
        return [
            pct(result.accuracy),
            "-" if result.accuracy_delta is None else f"{result.accuracy_delta:+.1f}",
            pct(details.get("pck")),
            pct(result.agreement),
            "-" if result.max_abs_error is None else f"{result.max_abs_error:.2f} px",
        ]

    def reference_cells(self, quality: float | None) -> list[str]:
        return [pct(quality), "-", "-", "100.0%", "-"]

    def headline(self, metrics: Any) -> float:
        return float(metrics.oks_map)

    def evaluate(self, loaded: Any, dataset: KeypointDataset) -> KeypointMetrics:
        from edgekit.training.keypoints import source_objects

        if tuple(loaded.labels) != tuple(dataset.labels):
            raise DatasetError(
                f"the model's labels {list(loaded.labels)} differ from the dataset's {list(dataset.labels)}"
            )
        head = KeypointHead.from_dict(loaded.contract.head)
        found = source_objects(artifact_candidates(loaded, dataset), dataset, head, EVAL_SCORE_THRESHOLD)
        return _metrics(dataset, found, head)


def _head_of(head: dict[str, Any]) -> KeypointHead:
    return KeypointHead.from_dict(head)
