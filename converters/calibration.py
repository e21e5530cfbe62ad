"""One calibration source for every quantizer, and the checks run before quantizing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from converters.errors import CalibrationError
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

    def __init__(
        self,
        samples: np.ndarray | Iterable[np.ndarray],
        input_name: str = "input",
        labels: Sequence[str] | None = None,
    ) -> None:
        array = samples if isinstance(samples, np.ndarray) else np.stack([np.asarray(s) for s in samples])
        if array.ndim < 2 or len(array) == 0:
            raise CalibrationError(f"calibration data must be a non-empty batch (N, ...); got shape {array.shape}")
        if labels is not None and len(labels) != len(array):
            raise CalibrationError(f"{len(labels)} calibration labels for {len(array)} samples")
        self.samples = array.astype(np.float32, copy=False)
        self.input_name = input_name
        self.labels = tuple(labels) if labels is not None else None  # class of each sample, when known
        self._reports: dict[tuple[Preprocessing, int], CalibrationReport] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for sample in self.samples:
            yield {self.input_name: sample[None]}

    def limit(self, count: int) -> "CalibrationData":
        if count >= len(self):
            return self
        labels = self.labels[:count] if self.labels is not None else None
        return CalibrationData(self.samples[:count], self.input_name, labels)

    def spanning(self, low: float, high: float) -> "CalibrationData":
        """These samples with one value moved to `low` and one to `high` where none reaches them.

        For quantizers that read the input's range off the samples (TFLite). Inputs come from
        8-bit pixels, so the contract's range is the input's true range: a narrower one read
        off the samples would split pixel levels with its steps and saturate pixels brighter
        than calibration saw. One value at each end moves only that range.
        """
        reaches_low, reaches_high = self.reaches(low, high)
        if reaches_low and reaches_high:
            return self
        samples = self.samples.copy()
        first = samples[0].reshape(-1)  # a view: the copy is contiguous
        if not reaches_low:
            first[0] = low
        if not reaches_high:
            first[-1] = high
        return CalibrationData(samples, self.input_name, self.labels)

    def reaches(self, low: float, high: float) -> tuple[bool, bool]:
        """Whether some sample value is at (or beyond) `low`, and some at `high`."""
        slack = 1e-6 * max(1.0, high - low)  # float32 samples against the float64 contract
        return bool(self.samples.min() <= low + slack), bool(self.samples.max() >= high - slack)

    def representative_dataset(
        self, on_sample: Callable[[], None] | None = None
    ) -> Callable[[], Iterator[list[np.ndarray]]]:
        """Adapter for ``tf.lite.TFLiteConverter.representative_dataset``."""

        def generator() -> Iterator[list[np.ndarray]]:
            for feed in self:
                yield [feed[self.input_name]]
                if on_sample is not None:
                    on_sample()

        return generator

    def check(self, preprocessing: Preprocessing, recommended: int = RECOMMENDED_SAMPLES) -> CalibrationReport:
        """Refuse data that cannot be right; warn (once) about data that is probably wrong.

        Errors: wrong shape, NaN, constant values, every value outside the contract's range.
        Warnings, each with the statistic behind it: too few samples, values outside the
        range, a range far narrower than the contract's (normalized twice?), pixels with no
        spatial correlation (random noise?), a single class.
        """
        key = (preprocessing, recommended)
        if key not in self._reports:
            self._reports[key] = self._check(preprocessing, recommended)
            for message in self._reports[key].warnings:
                log.warning("calibration: %s", message)
        return self._reports[key]

    def _check(self, preprocessing: Preprocessing, recommended: int) -> CalibrationReport:
        expected = preprocessing.input_shape
        if tuple(self.samples.shape[1:]) != expected:
            raise CalibrationError(
                f"calibration samples have shape {tuple(self.samples.shape[1:])} but the model's "
                f"contract produces {expected}; preprocess calibration images with the model's contract"
            )
        if not np.isfinite(self.samples).all():
            raise CalibrationError("calibration samples contain NaN or infinite values")
        lo, hi = (np.asarray(v, dtype=np.float32) for v in preprocessing.output_range())
        nchw = preprocessing.layout.value == "nchw"
        values = np.moveaxis(self.samples, 1, -1) if nchw else self.samples  # N, H, W, C
        tolerance = 1e-3 * np.maximum(1.0, hi - lo)
        in_range = float(((values >= lo - tolerance) & (values <= hi + tolerance)).mean())
        stats = dict(
            minimum=float(values.min()),
            maximum=float(values.max()),
            mean=float(values.mean()),
            std=float(values.std()),
        )
        if stats["std"] == 0.0:
            raise CalibrationError(
                f"calibration samples are constant (every value {stats['minimum']:.4g}); "
                "quantization ranges cannot be learned from them: use real images"
            )
        contract_range = f"[{lo.min():.4g}, {hi.max():.4g}]"
        if in_range == 0.0:
            raise CalibrationError(
                f"every calibration value lies outside the range the contract produces {contract_range} "
                f"(data min {stats['minimum']:.4g}, max {stats['maximum']:.4g}); "
                "the data was preprocessed differently from the model's contract"
            )
        warnings = []
        if len(self) < recommended:
            warnings.append(
                f"only {len(self)} calibration samples; {recommended} or more are recommended for stable int8 ranges"
            )
        if in_range < 0.99:
            warnings.append(
                f"{(1 - in_range) * 100:.1f}% of calibration values lie outside the contract's range {contract_range}"
            )
        span = (stats["maximum"] - stats["minimum"]) / float(hi.max() - lo.min())
        if span < 0.1:
            warnings.append(
                f"calibration values span only [{stats['minimum']:.4g}, {stats['maximum']:.4g}], {span * 100:.1f}% of "
                f"the contract's range {contract_range}: were the images normalized twice?"
            )
        correlation = _neighbour_correlation(values)
        if correlation < 0.3:
            warnings.append(
                f"calibration images look like random noise: neighbouring-pixel correlation is {correlation:.2f} "
                "(real images are typically above 0.5); calibrate on real images"
            )
        if self.labels is not None and len(set(self.labels)) == 1 and len(self) > 1:
            warnings.append(
                f"all {len(self)} calibration samples are of one class ({self.labels[0]!r}); sample every class"
            )
        return CalibrationReport(len(self), in_range_fraction=in_range, warnings=tuple(warnings), **stats)


FULL_INTEGER_PER_CLASS = 10  # images per class below which full-integer ranges miss a class's activations


def full_integer_warnings(
    calibration: CalibrationData, preprocessing: Preprocessing, labels: Sequence[str]
) -> list[str]:
    """What full integer needs beyond int8 with float scopes: every tensor's range, the last layers' included, is
    set by these samples alone, so each class must be there in numbers and the inputs must span the contract's
    range (Hailo's 0.548 -> 0.069 mAP50 came from calibrating on too few images)."""
    warnings = []
    if calibration.labels is not None:
        counts = {label: calibration.labels.count(label) for label in labels}
        few = {label: count for label, count in counts.items() if count < FULL_INTEGER_PER_CLASS}
        if few:
            shown = ", ".join(f"{label!r} {count}" for label, count in sorted(few.items(), key=lambda item: item[1]))
            warnings.append(
                f"full integer: calibration images per class {shown} (of {len(calibration)}); "
                f"{FULL_INTEGER_PER_CLASS} or more of every class are recommended"
            )
    low, high = input_range(preprocessing)
    seen = (float(calibration.samples.min()), float(calibration.samples.max()))
    span = (seen[1] - seen[0]) / (high - low)
    if span < 0.5:
        warnings.append(
            f"full integer: calibration inputs span [{seen[0]:.4g}, {seen[1]:.4g}], {span * 100:.0f}% of the "
            f"contract's [{low:.4g}, {high:.4g}]: too narrow for ranges other images will need"
        )
    return warnings


def input_range(preprocessing: Preprocessing) -> tuple[float, float]:
    """Where every input value lies: pixel 0 to pixel 255 through the contract, over all channels."""
    low, high = preprocessing.output_range()
    return float(min(low)), float(max(high))


def require_calibration(
    calibration: CalibrationData | None, preprocessing: Preprocessing, samples: int
) -> tuple[CalibrationData, tuple[str, ...]]:
    """What every full-integer quantizer does first: insist on data, check it, take `samples` of it.

    The notes returned say what the checks found, and where the samples do not reach the
    contract's range, that the int8 input range comes from the contract instead (each quantizer
    sets it so: see CalibrationData.spanning).
    """
    if calibration is None:
        raise CalibrationError(
            "int8 quantization needs calibration data: pass calibration= with real samples "
            "preprocessed by the model's contract"
        )
    report = calibration.check(preprocessing, recommended=samples)
    chosen = calibration.limit(samples)
    low, high = input_range(preprocessing)
    notes = report.warnings
    if not all(chosen.reaches(low, high)):
        notes += (
            f"int8 input range set from the contract, [{low:.4g}, {high:.4g}]; the calibration samples "
            f"reach only [{chosen.samples.min():.4g}, {chosen.samples.max():.4g}]",
        )
    return chosen, notes


def _neighbour_correlation(values: np.ndarray, max_samples: int = 32) -> float:
    """Mean correlation of horizontally adjacent pixels: high for photos, about 0 for noise."""
    sample = values[:max_samples]
    if sample.ndim != 4 or sample.shape[2] < 2:
        return 1.0
    left, right = sample[:, :, :-1].reshape(len(sample), -1), sample[:, :, 1:].reshape(len(sample), -1)
    left, right = left - left.mean(axis=1, keepdims=True), right - right.mean(axis=1, keepdims=True)
    denominator = np.sqrt((left**2).sum(axis=1) * (right**2).sum(axis=1))
    valid = denominator > 0
    if not valid.any():
        return 1.0
    return float(np.mean((left * right).sum(axis=1)[valid] / denominator[valid]))
