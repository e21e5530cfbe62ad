"""Classification on the host: scores from Keras, accuracy and top-1 agreement."""

from __future__ import annotations

from typing import Any

import numpy as np

from converters import CalibrationData
from edgekit.data.images import ImageDataset
from edgekit.errors import DatasetError
from edgekit.host_tasks.base import DataDefaults, Verdict, pct, with_export_policy


def _check_labels(dataset: Any, contract: Any, role: str) -> None:
    if tuple(dataset.labels) != contract.labels:
        raise DatasetError(
            f"the {role} dataset's labels {list(dataset.labels)} differ from the model's {list(contract.labels)}"
        )


class ClassificationHost:
    name = "classification"
    metric = "accuracy"
    header = ["accuracy", "delta (pts)", "top-1 agreement", "max |error|"]
    dataset_type = ImageDataset

    defaults = DataDefaults((96, 96), "stretch", "area")
    written = "metrics.json, history.png, confusion.png"

    def train(self, train: Any, val: Any, arch: Any, options: Any) -> Any:
        from edgekit.training.classification import train_classifier

        return train_classifier(train, val, arch, options)

    def read(self, path: Any, geometry: dict[str, Any], stream: Any, cache_dir: Any) -> Any:
        from edgekit.data.folders import ImageFolder

        return ImageFolder(path, **geometry, stream=stream, cache_dir=cache_dir)

    def metric_lines(self, metrics: dict[str, Any]) -> list[str]:
        return [f"{split:>5} accuracy: {value * 100:.1f}%" for split, value in metrics["accuracy"].items()]

    def deployable(self, model: Any, contract: Any) -> Any:
        return model

    float_scopes: tuple[str, ...] = ()  # every layer quantizes well: int8 is full integer

    def for_config(self, model: Any, contract: Any, config: Any) -> tuple[Any, Any, Any]:
        return model, contract, with_export_policy(config, self)  # one graph for every target

    def serving_outputs(
        self, tf: Any, outputs: list[Any], labels: Any, head: dict[str, Any], to_source: Any
    ) -> dict[str, Any]:
        """`scores` (N, labels), the best one's `label_id` (N,) and `label` (N,) string."""
        scores = outputs[0]
        best = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return {"scores": scores, "label_id": best, "label": tf.gather(tf.constant(list(labels)), best)}

    def load(self, path: Any, preprocessing: Any) -> ImageDataset:
        """A labelled dataset on disk, read at the model's geometry."""
        from edgekit.data.folders import folder_for

        return folder_for(path, preprocessing)

    def calibration(self, dataset: ImageDataset, contract: Any, count: int) -> CalibrationData:
        _check_labels(dataset, contract, "calibration")
        chosen = dataset.sample(count)
        return CalibrationData(
            chosen.tensors(contract.preprocessing), labels=[chosen.labels[t] for t in chosen.targets]
        )

    def reference(self, model: Any, dataset: ImageDataset, contract: Any) -> np.ndarray:
        from edgekit.training.scores import predict_scores

        _check_labels(dataset, contract, "check")
        return predict_scores(model, dataset, contract.preprocessing)

    def reference_quality(self, dataset: ImageDataset, reference: np.ndarray, contract: Any) -> float:
        from edgekit.metrics.classification import classification_metrics

        return classification_metrics(dataset.targets, reference, dataset.labels).accuracy

    def check(self, loaded: Any, dataset: ImageDataset, reference: np.ndarray) -> Verdict:
        from edgekit.evaluation import check_artifact

        verdict = check_artifact(loaded, dataset, reference)
        return Verdict(
            verdict.accuracy, verdict.accuracy_delta, verdict.agreement, verdict.max_abs_error, verdict.latency_ms
        )

    def cells(self, result: Any) -> list[str]:
        return [
            pct(result.accuracy),
            "-" if result.accuracy_delta is None else f"{result.accuracy_delta:+.1f}",
            pct(result.agreement),
            "-" if result.max_abs_error is None else f"{result.max_abs_error:.4f}",
        ]

    def reference_cells(self, quality: float | None) -> list[str]:
        return [pct(quality), "-", "100.0%", "-"]

    def headline(self, metrics: Any) -> float:
        return float(metrics.accuracy)

    def evaluate(self, loaded: Any, dataset: ImageDataset) -> Any:
        from edgekit.evaluation import artifact_scores
        from edgekit.metrics.classification import classification_metrics

        if tuple(loaded.labels) != tuple(dataset.labels):
            raise DatasetError(
                f"the model's labels {list(loaded.labels)} differ from the dataset's {list(dataset.labels)}"
            )
        return classification_metrics(dataset.targets, artifact_scores(loaded, dataset), dataset.labels)
