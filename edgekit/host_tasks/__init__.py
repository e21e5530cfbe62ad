"""Host side of tasks as modules: how a task is deployed, scored and compared with Keras.

`runtimes.tasks` says how outputs become results on the device; each module here adds
what needs the host (Keras, pycocotools): the graph that is exported, calibration
samples, the Keras reference on check data, the check of an artifact against it, the
report's columns and the evaluation of an artifact on a labelled dataset. The exporter,
`edgekit.evaluate` and the CLI look the contract's task up here.
"""

from __future__ import annotations

from edgekit.host_tasks.base import HostTask, Verdict, pct
from edgekit.host_tasks.classification import ClassificationHost
from edgekit.host_tasks.detection import DetectionHost
from edgekit.host_tasks.keypoints import KeypointsHost
from edgekit.host_tasks.segmentation import SegmentationHost
from runtimes.registry import Registry

HOST_TASKS: Registry[HostTask] = Registry("task")


def host_task(name: str) -> HostTask:
    return HOST_TASKS.get(name)


HOST_TASKS.register("classification")(ClassificationHost())
HOST_TASKS.register("detection")(DetectionHost())
HOST_TASKS.register("keypoints")(KeypointsHost())
HOST_TASKS.register("segmentation")(SegmentationHost())

__all__ = ["HOST_TASKS", "HostTask", "Verdict", "host_task", "pct"]
