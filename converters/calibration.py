"""One calibration source for every quantizer, and the checks run before quantizing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from converters.base import CalibrationError
from runtimes.contract import Preprocessing

log = logging.getLogger(__name__)

RECOMMENDED_SAMPLES = 100


@dataclass(frozen=True)
class CalibrationReport:
    samples: int
    minimum: float
    maximum: float
    mean: float
    std: float
    in_range_fraction: float
    warnings: tuple[str, ...]


class CalibrationData:
    """Preprocessed float samples, yielded as ``{input_name: batch_of_one}`` dicts.

    Build it from data passed through the model's contract (``edgekit`` does this from a
    dataset); quantizers adapt it to their own API (TFLite representative dataset, ...).
    """

    def __init__(self, samples: np.ndarray | Iterable[np.ndarray], input_name: str = "input") -> None:
        array = samples if isinstance(samples, np.ndarray) else np.stack([np.asarray(s) for s in samples])
        if array.ndim < 2 or len(array) == 0:
            raise CalibrationError(f"calibration data must be a non-empty batch (N, ...); got shape {array.shape}")
        self.samples = array.astype(np.float32, copy=False)
        self.input_name = input_name

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for sample in self.samples:
            yield {self.input_name: sample[None]}

    def limit(self, count: int) -> "CalibrationData":
        return CalibrationData(self.samples[:count], self.input_name)

    def representative_dataset(self, on_sample: Callable[[], None] | None = None) -> Callable[[], Iterator[list[np.ndarray]]]:
        """Adapter for ``tf.lite.TFLiteConverter.representative_dataset``."""

        def generator() -> Iterator[list[np.ndarray]]:
            for feed in self:
                yield [feed[self.input_name]]
                if on_sample is not None:
                    on_sample()

        return generator

    def check(self, preprocessing: Preprocessing, recommended: int = RECOMMENDED_SAMPLES) -> CalibrationReport:
        """Refuse data that cannot be right; warn about data that is probably wrong."""
        expected = preprocessing.input_shape
        if tuple(self.samples.shape[1:]) != expected:
            raise CalibrationError(
                f"calibration samples have shape {tuple(self.samples.shape[1:])} but the model's "
                f"contract produces {expected}; preprocess calibration images with the model's contract"
            )
        if not np.isfinite(self.samples).all():
            raise CalibrationError("calibration samples contain NaN or infinite values")
        lo, hi = (np.asarray(v, dtype=np.float32) for v in preprocessing.output_range())
        channel_axis = 1 if preprocessing.layout.value == "nchw" else -1
        values = np.moveaxis(self.samples, channel_axis, -1)
        tolerance = 1e-3 * np.maximum(1.0, hi - lo)
        in_range = float(((values >= lo - tolerance) & (values <= hi + tolerance)).mean())
        stats = dict(
            minimum=float(values.min()), maximum=float(values.max()),
            mean=float(values.mean()), std=float(values.std()),
        )
        if stats["std"] == 0.0:
            raise CalibrationError(
                f"calibration samples are constant (every value {stats['minimum']:.4g}); "
                "quantization ranges cannot be learned from them: use real images"
            )
        if in_range == 0.0:
            raise CalibrationError(
                f"every calibration value lies outside the range the contract produces "
                f"[{lo.min():.4g}, {hi.max():.4g}] (data min {stats['minimum']:.4g}, max {stats['maximum']:.4g}); "
                "the data was preprocessed differently from the model's contract"
            )
        warnings = []
        if len(self) < recommended:
            warnings.append(
                f"only {len(self)} calibration samples; {recommended} or more are recommended for stable int8 ranges"
            )
        if in_range < 0.99:
            warnings.append(
                f"{(1 - in_range) * 100:.1f}% of calibration values lie outside the contract's range "
                f"[{lo.min():.4g}, {hi.max():.4g}]"
            )
        for message in warnings:
            log.warning("calibration: %s", message)
        return CalibrationReport(len(self), in_range_fraction=in_range, warnings=tuple(warnings), **stats)
