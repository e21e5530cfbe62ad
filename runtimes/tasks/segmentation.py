"""Semantic segmentation on the device: each pixel of the source image gets a class.

The model's output (`runtimes.heads.segmentation`) is mapped back through the contract's resize: per-class scores
are warped bilinearly onto the source image's pixels (the letterbox undone, one affine warp per image), then each
pixel takes its best class; a category mask computed in the graph is warped by nearest pixel. The result is a
`Segmentation`: the class mask at the source size, the labels and each label's share of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import cv2
import numpy as np

from runtimes.errors import ContractError, InferenceError, InputError
from runtimes.heads.segmentation import SegmentationHead, output_problem
from runtimes.quantization import dequantize
from runtimes.tasks.binding import ModelInfo, where
from runtimes.tasks.detection import _colour
from runtimes.tasks.segmentation_masks import source_mask


@dataclass(frozen=True, eq=False)
class Segmentation:
    """Each source pixel's class, plus what it cost.

    Attributes:
        mask: (height, width) class index per pixel of the source image (uint8; uint16 past 255 classes).
        labels: The class names, in index order.
        latency_ms: The model's inference alone, in milliseconds.
        preprocess_ms: Decoding, resizing and normalizing the image, in milliseconds.
        background: The class index of "nothing" (left uncoloured when drawn), or None.
    """

    mask: np.ndarray
    labels: tuple[str, ...]
    latency_ms: float
    preprocess_ms: float
    background: int | None = 0

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the source image the mask covers."""
        return int(self.mask.shape[0]), int(self.mask.shape[1])

    @cached_property
    def pixel_counts(self) -> np.ndarray:
        """How many pixels each class has, in label order."""
        return np.bincount(self.mask.reshape(-1), minlength=len(self.labels))[: len(self.labels)]

    @property
    def areas(self) -> dict[str, float]:
        """Each label's share of the image, 0..1 (every label, 0 where absent)."""
        counts = self.pixel_counts
        total = max(1, int(self.mask.size))
        return {label: float(count) / total for label, count in zip(self.labels, counts.tolist())}

    def label_at(self, x: int, y: int) -> str:
        """The label of the source pixel at column `x`, row `y`."""
        return self.labels[int(self.mask[y, x])]

    def present(self) -> list[tuple[str, float]]:
        """(label, share) of the classes in the image other than the background, largest first."""
        shares = [(i, share) for i, share in enumerate(self.areas.values()) if share > 0 and i != self.background]
        return [(self.labels[i], share) for i, share in sorted(shares, key=lambda item: -item[1])]

    def __str__(self) -> str:
        height, width = self.image_size
        found = ", ".join(f"{label} {share:.1%}" for label, share in self.present()) or "background only"
        return f"segmentation {width}x{height}: {found}"


def run_lengths(mask: np.ndarray) -> list[list[int]]:
    """A class mask in row-major order as [[class, run length], ...] (what `--json` writes)."""
    flat = mask.reshape(-1)
    if not flat.size:
        return []
    starts = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1]]))
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    return [[int(value), int(length)] for value, length in zip(flat[starts].tolist(), lengths.tolist())]


def from_run_lengths(runs: Sequence[Sequence[int]], size: tuple[int, int]) -> np.ndarray:
    """`run_lengths`' inverse: the (height, width) mask."""
    values = [value for value, _ in runs]
    lengths = [length for _, length in runs]
    return np.repeat(np.asarray(values, np.int64), lengths).reshape(size)


class SegmentationDecoder:
    """One segmentation model's decoding, made when the model loads: its head, output and quantization."""

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        self.head = SegmentationHead.from_dict(model.head or {})
        self.problem = output_problem(model.output_specs, self.head, len(model.labels))
        spec = model.output_specs[0] if model.output_specs else None
        self.quantized = spec if spec is not None and spec.quantization is not None else None
        self.dtype = np.uint8 if len(model.labels) <= 256 else np.uint16

    def options(self, options: dict[str, Any]) -> None:
        if options:
            raise InputError(f"a segmentation model takes no predict() options; got {sorted(options)}")
        return None

    def _scores(self, output: np.ndarray) -> np.ndarray:
        array = np.asarray(output)
        if self.quantized is not None and array.dtype.kind in "iu" and self.head.output == "scores":
            array = dequantize(array, self.quantized)
        return array

    def source_mask(self, output: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """One image's output (h, w, classes) scores or (h, w) classes -> its (height, width) class mask."""
        if self.head.output == "scores":
            output = np.ascontiguousarray(self._scores(output), np.float32)
            if not np.isfinite(output).all():
                raise InferenceError(
                    f"{self.model.name} produced non-finite scores; its weights are probably damaged: check the "
                    "file's SHA-256 (edgekit info) and copy or export it again"
                )
        mask = source_mask(output, size, self.model.require_preprocessing(), self.head.output)
        return mask.astype(self.dtype, copy=False)

    def results(
        self,
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: None,
    ) -> list[Segmentation]:
        if self.problem is not None:
            raise InputError(f"{self.model.name}: {self.problem}; export it again with edgekit, or use run_all(batch)")
        labels = tuple(self.model.labels)
        return [
            Segmentation(
                self.source_mask(outputs[0][i], (int(size[0]), int(size[1]))),
                labels,
                latency_ms,
                preprocess_ms,
                self.head.background,
            )
            for i, size in enumerate(sizes)
        ]


LEGEND_ROWS = 8  # the legend lists at most this many classes, the largest first


def legend_box(image_size: tuple[int, int], rows: int) -> np.ndarray:
    """The legend's (1, 4) x0 y0 x1 y1 region: the bottom left corner."""
    height, width = image_size
    row = max(12, round(min(height, width) / 24))
    return np.array([[0, height - row * rows - 4, min(width, row * 9), height]], np.float32)


def draw_segmentation(image: np.ndarray, result: Segmentation) -> None:
    """Each class but the background blended in its colour, and a legend of the largest; in place."""
    colours = np.array([_colour(i) for i in range(len(result.labels))], np.uint8)
    painted = colours[result.mask]
    keep = result.mask != result.background if result.background is not None else np.ones(result.mask.shape, bool)
    blended = cv2.addWeighted(image, 0.5, painted, 0.5, 0.0)
    image[keep] = blended[keep]
    shown = result.present()[:LEGEND_ROWS]
    if not shown:
        return
    x0, y0, _, _ = legend_box(image.shape[:2], len(shown))[0]
    row = max(12, round(min(image.shape[:2]) / 24))
    for n, (label, share) in enumerate(shown):
        top = int(y0) + 2 + n * row
        colour = tuple(int(v) for v in colours[result.labels.index(label)])
        cv2.rectangle(image, (int(x0) + 2, top), (int(x0) + row - 2, top + row - 4), colour, -1)
        text = f"{label} {share:.0%}"
        scale = row / 30
        cv2.putText(image, text, (int(x0) + row + 2, top + row - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3)
        cv2.putText(image, text, (int(x0) + row + 2, top + row - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1)


class SegmentationTask:
    """The segmentation task's device side: binds a model to a `SegmentationDecoder`; draws, prints and serves."""

    name = "segmentation"
    role = "segmentation model"
    record_help = (
        "source (and frame), the class mask at the source's size as run lengths ([class, count] in row-major "
        "order) and each label's share of the image, latency and frame age"
    )
    trackable = False
    command_line_defaults: dict[str, Any] = {}

    def bind(self, model: ModelInfo) -> SegmentationDecoder:
        if model.preprocessing is None:
            raise ContractError(f"{model.name} carries no preprocessing contract; pass one when loading")
        return SegmentationDecoder(model)

    def serving_prediction(self, result: Segmentation, labels: Sequence[str], head: dict[str, Any]) -> dict[str, Any]:
        """The SavedModel serving signature's answer: the mask at the request image's size and each label's
        share of it."""
        return {"mask": result.mask.astype(int).tolist(), "areas": [round(v, 6) for v in result.areas.values()]}

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        return {}

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        return {"mask": ("DT_INT32", [-1, -1, -1]), "areas": ("DT_FLOAT", [-1, len(labels)])}

    def draw(self, image: np.ndarray, result: Segmentation, labels: Sequence[str]) -> None:
        draw_segmentation(image, result)

    def side_images(self, result: Segmentation) -> dict[str, np.ndarray]:
        """The class mask, one id per pixel at the source size (``<name>_mask.png``)."""
        return {"mask": result.mask}

    def lines(self, result: Segmentation, threshold: float = 0.0) -> list[str]:
        return [f"{len(result.present())} class(es)"]

    def occupied(self, result: Segmentation) -> np.ndarray:
        shown = min(LEGEND_ROWS, len(result.present()))
        return legend_box(result.image_size, shown) if shown else np.zeros((0, 4), np.float32)

    def summary(self, result: Segmentation) -> dict[str, Any]:
        return {
            "mask": {"size": list(result.image_size), "run_lengths": run_lengths(result.mask)},
            "areas": {label: round(share, 6) for label, share in result.areas.items()},
        }

    def record(
        self, origin: dict[str, Any], result: Segmentation, threshold: float | None, **extra: float
    ) -> dict[str, Any]:
        return {**origin, **self.summary(result), **{key: round(value, 3) for key, value in extra.items()}}

    def line(self, record: dict[str, Any]) -> str:
        height, width = record["mask"]["size"]
        shares = sorted(((share, label) for label, share in record["areas"].items() if share > 0), reverse=True)
        timing = "".join(f"  {key}={record[key]:.1f}" for key in ("latency_ms", "age_ms") if key in record)
        found = ", ".join(f"{label} {share:.1%}" for share, label in shares)
        return f"{where(record)}: {width}x{height} mask: {found}{timing}"
