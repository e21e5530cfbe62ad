"""Image classification: one score per label; the result is the best labels with their scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from runtimes.boxes import passes
from runtimes.errors import InferenceError, InputError
from runtimes.quantization import dequantize, dequantized_codes, is_quantized
from runtimes.tasks.binding import ModelInfo, where
from runtimes.vocabulary import predict_terms

FEW_SCORES = 256  # up to this many classes, scores are handled as Python floats


@dataclass(frozen=True)
class Classification:
    """One prediction: the best label, its score, the top-k and what it cost.

    `label` is None when predict() was given a `threshold` the best score is below (`best` is still the label).

    Attributes:
        label: The best label, or None when it scored below predict()'s `threshold`.
        index: The best label's class index.
        score: The best label's score (the model's probability, 0..1).
        top_k: (label, score) pairs, best first.
        latency_ms: The model's inference alone, in milliseconds.
        preprocess_ms: Decoding, resizing and normalizing the image, in milliseconds.
    """

    label: str | None
    index: int
    score: float
    top_k: tuple[tuple[str, float], ...]
    latency_ms: float  # model inference only
    preprocess_ms: float

    def __str__(self) -> str:
        return f"{self.label or '? ' + self.best} ({self.score:.3f})"

    @property
    def best(self) -> str:
        """The best-scoring label, whether or not it passed the threshold."""
        return self.top_k[0][0]


@dataclass(frozen=True)
class ClassifyOptions:
    """A classifier's per-call options (runtimes.vocabulary's names)."""

    top_k: int = 5
    threshold: float | None = None


def require_finite(name: str, rows: list[list[float]]) -> None:
    """NaN or infinite scores are never a result: the weights are damaged or the input is far out of range."""
    for row in rows:
        if not all(map(math.isfinite, row)):
            raise InferenceError(
                f"{name} produced non-finite scores ({', '.join(f'{v:g}' for v in row[:5])}); its weights "
                "are probably damaged: check the file's SHA-256 (edgekit info) and copy or export it again"
            )


def classify(
    values: list[float],
    labels: Sequence[str],
    top_k: int,
    latency_ms: float,
    preprocess_ms: float,
    threshold: float | None = None,
) -> Classification:
    k = max(1, top_k)
    if len(values) <= FEW_SCORES:  # plain Python is several times faster than numpy on a few scores
        order = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]
    else:
        order = np.argsort(-np.asarray(values), kind="stable")[:k].tolist()
    best = order[0]
    return Classification(
        label=labels[best] if threshold is None or passes(values[best], threshold) else None,
        index=best,
        score=values[best],
        top_k=tuple((labels[i], values[i]) for i in order),
        latency_ms=latency_ms,
        preprocess_ms=preprocess_ms,
    )


class ClassificationDecoder:
    """One classifier's decoding, made when the model loads: its score reader (an 8-bit output's code table)."""

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        self.spec = model.output_specs[0]
        self.quantized = is_quantized(self.spec)
        self._codes = dequantized_codes(self.spec)  # every 8-bit code's float value, or None
        self.problem = self._problem()
        self.names = predict_terms("classification")
        self.defaults = ClassifyOptions()  # the usual frame's, kept

    def _problem(self) -> str | None:
        specs = self.model.output_specs
        if len(specs) == 1 and len(specs[0].shape) == 2:
            return None
        outputs = ", ".join(f"{spec.name} {list(spec.shape)}" for spec in specs)
        return (
            f"{self.model.name} has {len(specs)} output(s) ({outputs}); predict() reads one (batch, classes) "
            "score tensor as a classification, so this is another kind of model (detection, landmarks, "
            "segmentation?): use run_all(batch) for its raw outputs"
        )

    def rows(self, raw: np.ndarray) -> list[list[float]]:
        """The backend's output rows as float scores, exactly `Model.run()`'s float32 values.

        A classifier has a handful of scores, and after an inference has flushed the caches,
        numpy's fixed cost per call is more than the work: few 8-bit scores are read from a
        256-entry table of their dequantized values instead.
        """
        if self._codes is not None and raw.shape[-1] <= FEW_SCORES:
            table = self._codes
            return [[table[code] for code in row] for row in raw.view(np.uint8).tolist()]
        return (dequantize(raw, self.spec) if self.quantized else raw).tolist()

    def options(self, options: dict[str, Any]) -> ClassifyOptions:
        """predict()'s keyword options, checked (InputError names the valid ones)."""
        if not options:
            return self.defaults
        unknown = set(options).difference(self.names)
        if unknown:
            raise InputError(f"unknown option(s) {sorted(unknown)} for a classifier; valid: {', '.join(self.names)}")
        top_k, threshold = options.get("top_k"), options.get("threshold")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a whole number >= 1, got {top_k!r}")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1
        ):
            raise InputError(f"threshold must be a score in 0..1, got {threshold!r}")
        return ClassifyOptions(5 if top_k is None else top_k, threshold)

    def results(
        self,
        outputs: list[np.ndarray],
        sizes: Sequence[tuple[int, int]],
        latency_ms: float,
        preprocess_ms: float,
        options: Any,
    ) -> list[Classification]:
        rows = self.rows(outputs[0])
        if not self.quantized:  # 8-bit scores are finite by construction
            require_finite(self.model.name, rows)
        labels = self.model.labels
        return [classify(row, labels, options.top_k, latency_ms, preprocess_ms, options.threshold) for row in rows]


class ClassificationTask:
    """The classification task's device side: binds a model to a `ClassificationDecoder`; prints and serves."""

    name = "classification"
    role = "classifier"  # what a model of this task is called (bundle names, service descriptions)
    record_help = "source (and frame), label (null below --threshold), score, top-k, latency and frame age"
    trackable = False  # one label per image: nothing for a tracker to follow

    def bind(self, model: ModelInfo) -> ClassificationDecoder:
        return ClassificationDecoder(model)

    def serving_prediction(self, result: Classification, labels: Sequence[str], head: dict[str, Any]) -> dict[str, Any]:
        scores = dict(result.top_k)
        return {
            "scores": [float(scores.get(label, 0.0)) for label in labels],
            "label_id": result.index,
            "label": result.label,
        }

    def serving_options(self, labels: Sequence[str]) -> dict[str, Any]:
        return {"top_k": len(labels)}

    def serving_spec(self, labels: Sequence[str], head: dict[str, Any]) -> dict[str, tuple[str, list[int]]]:
        return {
            "scores": ("DT_FLOAT", [-1, len(labels)]),
            "label_id": ("DT_INT32", [-1]),
            "label": ("DT_STRING", [-1]),
        }

    def side_images(self, result: Any) -> dict[str, np.ndarray]:
        return {}

    def draw(self, image: np.ndarray, result: Any, labels: Sequence[str]) -> None:
        """Nothing on the picture itself: the label goes in the overlay's text box."""

    def occupied(self, result: Classification) -> np.ndarray:
        """Nothing: a classifier draws on no region of the picture."""
        return np.zeros((0, 4), np.float32)

    def lines(self, result: Classification, threshold: float = 0.0) -> list[str]:
        """The overlay's text for `result`."""
        return [
            f"{result.label} {result.score:.2f}"
            if result.label is not None and passes(result.score, threshold)
            else f"? ({result.best} {result.score:.2f})"
        ]

    command_line_defaults = {"top_k": 3}  # predict options the CLI sets when its flag is not given

    def record(
        self, origin: dict[str, Any], result: Classification, threshold: float | None, **extra: float
    ) -> dict[str, Any]:
        """One result as a JSON-ready dict after its `origin` (``source``, and ``frame`` for a stream's);
        `label` is None when the score is below `threshold`."""
        confident = result.label is not None and passes(result.score, threshold or 0.0)
        return {
            **origin,
            "label": result.label if confident else None,
            "best": result.best,
            "score": round(result.score, 6),
            "top_k": [[label, round(score, 6)] for label, score in result.top_k],
            **{key: round(value, 3) for key, value in extra.items()},
        }

    def line(self, record: dict[str, Any]) -> str:
        label = record["label"] or f"? ({record['best']})"
        others = ", ".join(f"{lbl} {score:.3f}" for lbl, score in record["top_k"][1:])
        timing = "".join(f"  {key}={record[key]:.1f}" for key in ("latency_ms", "age_ms") if key in record)
        return f"{where(record)}: {label} {record['score']:.3f}" + (f"  ({others})" if others else "") + timing

    def summary(self, result: Classification) -> dict[str, Any]:
        return {
            "label": result.label,
            "index": result.index,
            "score": round(result.score, 6),
            "top_k": [[label, round(score, 6)] for label, score in result.top_k],
        }
