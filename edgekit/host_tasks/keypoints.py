"""Host side of the keypoints task: training and evaluation on the host. Exporting keypoint models (every format,
their check against Keras) comes next; until then export says so, naming the task."""

from __future__ import annotations

from typing import Any, NoReturn

from edgekit.errors import ExportError

NOT_YET = (
    "exporting keypoint models is not available yet: train and evaluate them with edgekit; third-party keypoint "
    "models (MediaPipe's face detector) run with a contract: edgekit.load(path, contract=...)"
)


class KeypointsHost:
    """What only the host knows about keypoint models: their training loop and their metrics."""

    name = "keypoints"
    metric = "OKS mAP"
    header = ["OKS mAP", "delta (pts)", "PCK@0.1", "max point error"]
    float_scopes: tuple[str, ...] = ()

    def train(self, train: Any, val: Any, arch: Any, options: Any) -> Any:
        from edgekit.training.keypoints import train_keypoints

        return train_keypoints(train, val, arch, options)

    def load(self, path: Any, preprocessing: Any) -> Any:
        from edgekit.data.keypoints import load_keypoints

        return load_keypoints(path, preprocessing.input_size, preprocessing.color_order, preprocessing.resize)

    def _not_yet(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ExportError(NOT_YET)

    deployable = for_config = serving_outputs = calibration = reference = _not_yet
    reference_quality = check = cells = evaluate = headline = _not_yet
