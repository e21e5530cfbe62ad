"""Segmentation on the host: training, mean IoU at each source image's size, and each artifact's masks against
Keras' (the share of pixels given the same class), all through the decoding predict() uses."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from converters import CalibrationData
from edgekit.data.segmentation import SegmentationDataset
from edgekit.errors import DatasetError
from edgekit.host_tasks.base import DataDefaults, Verdict, pct, with_export_policy
from edgekit.metrics.segmentation import SegmentationMetrics, pixel_agreement, segmentation_metrics
from runtimes.heads.segmentation import SegmentationHead


def artifact_masks(loaded: Any, dataset: SegmentationDataset) -> list[np.ndarray]:
    """Each image through the artifact's runtime, one per call (as on a camera), decoded as predict() decodes:
    its class mask at the source image's size."""
    decoder, spec = loaded.decoder, loaded.runtime.output_specs[0]
    if decoder.problem is not None:
        raise DatasetError(f"{loaded.path.name}: {decoder.problem}")
    preprocessing = loaded.require_preprocessing()
    masks = []
    for i in range(len(dataset)):
        output = loaded.run_all(dataset.tensors(preprocessing, slice(i, i + 1)))[spec.name][0]
        masks.append(decoder.source_mask(output, tuple(int(v) for v in dataset.source_sizes[i])))
    return masks


class SegmentationHost:
    """What only the host knows about segmentation models: their training loop, metrics and check."""

    name = "segmentation"
    metric = "mIoU"
    header = ["mIoU", "delta (pts)", "pixel acc.", "pixel agreement"]
    float_scopes: tuple[str, ...] = ()

    def __init__(self) -> None:
        import weakref

        self._masked: Any = weakref.WeakKeyDictionary()  # model -> its category-mask graph, while the model lives

    defaults = DataDefaults((128, 128), "letterbox", "linear")
    written = "metrics.json, confusion.png"

    def train(self, train: Any, val: Any, arch: Any, options: Any) -> Any:
        from edgekit.training.segmentation import train_segmentation

        return train_segmentation(train, val, arch, options)

    def read(self, path: Any, geometry: dict[str, Any], stream: Any, cache_dir: Any) -> Any:
        from edgekit.data.segmentation import load_segmentation

        return load_segmentation(path, **geometry, stream=stream, cache_dir=cache_dir)

    def metric_lines(self, metrics: dict[str, Any]) -> list[str]:
        return [
            f"{split:>5} mIoU: {value * 100:.1f}%  pixel accuracy: {metrics['pixel_accuracy'][split] * 100:.1f}%"
            for split, value in metrics["miou"].items()
        ]

    def load(self, path: Any, preprocessing: Any) -> SegmentationDataset:
        from edgekit.data.segmentation import load_segmentation

        return load_segmentation(
            path, preprocessing.input_size, preprocessing.color_order, preprocessing.resize, preprocessing.interpolation
        )

    def deployable(self, model: Any, contract: Any) -> Any:
        return model  # its per-class logits at the input's size: runtimes resize them to each source image

    def for_config(self, model: Any, contract: Any, config: Any) -> tuple[Any, Any, Any]:
        """The scores graph, or (``segmentation_output="category_mask"``) the argmax in the graph, built once per
        model, with the contract's head saying which."""
        config = with_export_policy(config, self)
        if config.segmentation_output == "scores":
            return model, contract, config
        from edgekit.training.segmentation_graph import with_category_mask

        graph = self._masked.get(model)
        if graph is None:
            graph = self._masked[model] = with_category_mask(model)
        head = replace(SegmentationHead.from_dict(contract.head), output="category_mask")
        return graph, replace(contract, head=head.to_dict()), config

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Any, head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """`mask` (N, H, W) at the request images' size and `areas` (N, classes): predict()'s answer."""
        from edgekit.training.segmentation_graph import serving_masks

        return serving_masks(tf, outputs, labels, to_source, SegmentationHead.from_dict(head).output)

    def _check(self, dataset: Any, contract: Any, role: str) -> None:
        if not hasattr(dataset, "masks") or not hasattr(dataset, "labels"):
            raise DatasetError(
                f"the {role} data of a segmentation model must be a SegmentationDataset (edgekit.load_segmentation), "
                f"got {type(dataset).__name__}"
            )
        if tuple(dataset.labels) != contract.labels:
            raise DatasetError(
                f"the {role} dataset's labels {list(dataset.labels)} differ from the model's {list(contract.labels)}"
            )

    def calibration(self, dataset: SegmentationDataset, contract: Any, count: int) -> CalibrationData:
        self._check(dataset, contract, "calibration")
        return CalibrationData(dataset.sample(count).tensors(contract.preprocessing))

    def reference(self, model: Any, dataset: SegmentationDataset, contract: Any) -> dict[str, Any]:
        from edgekit.training.segmentation import source_masks

        self._check(dataset, contract, "check")
        head = SegmentationHead.from_dict(contract.head)
        scores = np.concatenate(
            [
                np.asarray(model(dataset.tensors(contract.preprocessing, slice(s, s + 32)), training=False))
                for s in range(0, len(dataset), 32)
            ]
        )
        masks = source_masks(scores, dataset, head.output)
        return {"masks": masks, "metrics": segmentation_metrics(dataset.source_masks, masks, dataset.labels)}

    def reference_quality(self, dataset: SegmentationDataset, reference: dict[str, Any], contract: Any) -> float:
        return reference["metrics"].miou

    def check(self, loaded: Any, dataset: SegmentationDataset, reference: dict[str, Any]) -> Verdict:
        started = time.perf_counter()
        masks = artifact_masks(loaded, dataset)
        latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(dataset))
        metrics = segmentation_metrics(dataset.source_masks, masks, dataset.labels)
        keras: SegmentationMetrics = reference["metrics"]
        agreement = pixel_agreement(reference["masks"], masks)
        return Verdict(
            metrics.miou,
            (metrics.miou - keras.miou) * 100,
            agreement,
            None,  # type: ignore[arg-type]
            latency_ms,
            details={"pixel_accuracy": metrics.pixel_accuracy, "per_class_iou": metrics.per_class_iou},
        )

    def cells(self, result: Any) -> list[str]:
        details = result.details or {}
        return [
            pct(result.accuracy),
            "-" if result.accuracy_delta is None else f"{result.accuracy_delta:+.1f}",
            pct(details.get("pixel_accuracy")),
            "-" if result.agreement is None else f"{result.agreement * 100:.2f}%",
        ]

    def reference_cells(self, quality: float | None) -> list[str]:
        return [pct(quality), "-", "-", "100.00%"]

    def headline(self, metrics: Any) -> float:
        return float(metrics.miou)

    def evaluate(self, loaded: Any, dataset: SegmentationDataset) -> SegmentationMetrics:
        if tuple(loaded.labels) != tuple(dataset.labels):
            raise DatasetError(
                f"the model's labels {list(loaded.labels)} differ from the dataset's {list(dataset.labels)}"
            )
        return segmentation_metrics(dataset.source_masks, artifact_masks(loaded, dataset), dataset.labels)
