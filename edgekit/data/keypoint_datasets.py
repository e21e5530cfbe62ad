"""Keypoint datasets: `KeypointDataset` (images decoded into memory) and `StreamingKeypointDataset` (the images
decoded per epoch: `load_keypoints(path, stream=True)`, or "auto" past 2 GiB of decoded pixels, through the same
tf.data stage as streamed detection data, `edgekit.data.detection_streaming.example_batches`; validation, test and
check splits are decoded once with `load()`). Each object has a box, a class and K points."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np

from edgekit.data.detection import DetectionDataset
from edgekit.data.detection_streaming import StreamingDetectionDataset
from edgekit.errors import DatasetError


@dataclass
class KeypointDataset(DetectionDataset):
    """A `DetectionDataset` whose objects have named points.

    Attributes:
        pixels: (N, H, W, C) uint8 images in `geometry`'s colour order and resize mode.
        boxes: Per image, an (n, 4) float32 array of x0, y0, x1, y1 in source pixels.
        classes: Per image, an (n,) int64 array of class indices.
        source_sizes: (N, 2) source (height, width) of each image.
        labels: The class names, in index order.
        geometry: The input size, colour order and resize the pixels were made with.
        sources: Each image's file path.
        skipped: Files and annotations left out, each with its reason.
        given_splits: Per image, the split the data put it in ("" for none); () when the data has none.
        split_source: Where the given splits came from.
        keypoints: Per image, an (n, K, 3) float32 array: each object's points as x, y (source pixels) and
            visibility (0 not labelled, 1 labelled but hidden, 2 visible).
        keypoint_names: The K points' names.
        skeleton: Pairs of point indices joined when drawn.
        flip_idx: For each point, the point it becomes in a horizontally mirrored image.
    """

    keypoints: list[np.ndarray] = field(default_factory=list)
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_idx: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.keypoints) != len(self.pixels):
            raise DatasetError("keypoints need one (n, K, 3) array per image")
        if not self.flip_idx:
            self.flip_idx = tuple(range(len(self.keypoint_names)))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "KeypointDataset":
        base = super().subset(indices)
        chosen = np.asarray(indices, dtype=np.int64)
        return KeypointDataset(
            **{name: getattr(base, name) for name in DetectionDataset.__dataclass_fields__},
            keypoints=[self.keypoints[i] for i in chosen],
            keypoint_names=self.keypoint_names,
            skeleton=self.skeleton,
            flip_idx=self.flip_idx,
        )


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


def is_keypoint_data(dataset: Any) -> bool:
    """Whether `dataset` holds objects with points: a `KeypointDataset` or a streamed one."""
    return isinstance(dataset, (KeypointDataset, StreamingKeypointDataset))
