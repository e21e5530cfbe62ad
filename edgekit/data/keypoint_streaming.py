"""Keypoint datasets read lazily: `load_keypoints(path, stream=True)` (or "auto" past 2 GiB of decoded pixels)
keeps the annotations and each image's size in memory and decodes the images per epoch, through the same tf.data
stage as streamed detection data (`edgekit.data.detection_streaming.example_batches`). Validation, test and check
splits are decoded once (`load()`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np

from edgekit.data.detection_streaming import StreamingDetectionDataset
from edgekit.data.keypoints import KeypointDataset


@dataclass
class StreamingKeypointDataset(StreamingDetectionDataset):
    """Annotated image files with each object's points, decoded when read. Splits like `KeypointDataset`."""

    keypoints: list[np.ndarray] = field(default_factory=list)  # per image (n, K, 3): x, y (source px), visibility
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_idx: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.flip_idx:
            self.flip_idx = tuple(range(len(self.keypoint_names)))

    def _point_fields(self, indices: Sequence[int]) -> dict[str, Any]:
        return {
            "keypoints": [self.keypoints[i] for i in indices],
            "keypoint_names": self.keypoint_names,
            "skeleton": self.skeleton,
            "flip_idx": self.flip_idx,
        }

    def subset(self, indices: Sequence[int] | np.ndarray) -> "StreamingKeypointDataset":
        chosen = [int(i) for i in np.asarray(indices, dtype=np.int64)]
        base = super().subset(chosen)
        values = {f.name: getattr(base, f.name) for f in fields(StreamingDetectionDataset)}
        return StreamingKeypointDataset(**values, **self._point_fields(chosen))

    def load(self, workers: int = 4) -> KeypointDataset:  # type: ignore[override]
        """Decode every image into memory, skipping unreadable ones (their points go with them)."""
        base, kept = self.loaded(workers)
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        return KeypointDataset(**values, **self._point_fields(kept))


def streamed(base: StreamingDetectionDataset, **points: Any) -> StreamingKeypointDataset:
    """A streamed detection dataset with its objects' points (`KeypointDataset`'s point fields)."""
    values = {f.name: getattr(base, f.name) for f in fields(StreamingDetectionDataset)}
    return StreamingKeypointDataset(**values, **points)
