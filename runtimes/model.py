"""`Model`: one API over every backend, applying the embedded preprocessing contract."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np

from runtimes.base import Runtime, TensorSpec, open_runtime
from runtimes.contract import ModelContract, Preprocessing
from runtimes.errors import ContractError, InputError
from runtimes.preprocess import ColorName, normalize, prepare_pixels, preprocess, reused_buffer

if TYPE_CHECKING:
    from runtimes.stream import Stream

log = logging.getLogger(__name__)

ImageLike = np.ndarray | str | Path


@dataclass(frozen=True)
class Classification:
    """One prediction: the best label, its score, the top-k and what it cost."""

    label: str
    index: int
    score: float
    top_k: tuple[tuple[str, float], ...]
    latency_ms: float  # model inference only
    preprocess_ms: float

    def __str__(self) -> str:
        return f"{self.label} ({self.score:.3f})"


def quantize(x: np.ndarray, spec: TensorSpec, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """Float -> the integer type of `spec` using its scale and zero point.

    With `out` (integer) and `scratch` (float32) buffers of x's shape, nothing is allocated:
    every pass writes in place.
    """
    q = spec.quantization
    info = np.iinfo(spec.dtype)
    scratch = np.empty(x.shape, np.float32) if scratch is None else scratch
    out = np.empty(x.shape, spec.dtype) if out is None else out
    np.multiply(x, np.float32(1.0 / q.scale), out=scratch)
    np.rint(scratch, out=scratch)
    scratch += np.float32(q.zero_point)
    np.clip(scratch, info.min, info.max, out=scratch)
    np.copyto(out, scratch, casting="unsafe")
    return out


def dequantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    q = spec.quantization
    return (x.astype(np.float32) - q.zero_point) * np.float32(q.scale)


def _is_quantized(spec: TensorSpec) -> bool:
    return spec.quantization is not None and np.issubdtype(spec.dtype, np.integer)


class Model:
    """A model file plus its contract. Use `edgekit.load` / `runtimes.open` to make one.

    Example:
        >>> with runtimes.open("shapes_int8.tflite") as model:
        ...     print(model.predict("circle.png").label)
        circle
    """

    def __init__(self, runtime: Runtime, contract: ModelContract | None) -> None:
        self.runtime = runtime
        self.contract = contract
        self.input_spec: TensorSpec = runtime.input_specs[0]
        self.output_spec: TensorSpec = runtime.output_specs[0]
        if contract is not None:
            self._check_contract(contract)
        self._pixel_table = self._pixel_lookup()
        self._frame_buffers: dict = {}  # reused by predict() on single frames
        self._input_shape = tuple(self.input_spec.shape[1:])
        self._input_quantized = _is_quantized(self.input_spec)
        self._output_quantized = _is_quantized(self.output_spec)

    def _pixel_lookup(self) -> np.ndarray | None:
        """A 256-entry table per channel: uint8 pixel -> the model's quantized input value.

        For int8/uint8 inputs, scaling and quantization are elementwise over 256 possible
        pixel values, so the table is exact: it is the slow path evaluated once per value.
        Camera pixels then go straight in through one cv2.LUT pass, with no float tensor.
        """
        spec = self.preprocessing
        if spec is None or not _is_quantized(self.input_spec) or spec.layout.value != "nhwc":
            return None
        if self.input_spec.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            return None
        values = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], spec.channels, axis=2)  # 1 x 256 x C
        table = quantize(normalize(values, spec), self.input_spec)[0]  # 1 x 256 x C, the model's dtype
        return np.ascontiguousarray(table.view(np.uint8))

    @property
    def direct_pixel_input(self) -> bool:
        """True when predict() maps uint8 pixels straight to the quantized input (no float tensor)."""
        return self._pixel_table is not None

    # -- description -------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.runtime.path

    @property
    def backend(self) -> str:
        return self.runtime.backend_name

    @property
    def can_run(self) -> bool:
        """False where the file opens but this machine cannot execute it (CoreML off macOS)."""
        return self.runtime.can_run

    @property
    def preprocessing(self) -> Preprocessing | None:
        return self.contract.preprocessing if self.contract else None

    @property
    def labels(self) -> tuple[str, ...]:
        if self.contract is not None:
            return self.contract.labels
        return tuple(str(i) for i in range(self.output_spec.shape[-1]))

    def _check_contract(self, contract: ModelContract) -> None:
        expected = tuple(self.input_spec.shape[1:])
        if all(d > 0 for d in expected) and contract.preprocessing.input_shape != expected:
            raise ContractError(
                f"{self.path.name} takes input of shape {expected} but its preprocessing produces "
                f"{contract.preprocessing.input_shape}; fix input_size/color_order/layout"
            )
        classes = self.output_spec.shape[-1]
        if classes > 0 and len(contract.labels) != classes:
            raise ContractError(
                f"{self.path.name} outputs {classes} scores but {len(contract.labels)} labels were given"
            )

    # -- inference ---------------------------------------------------------------------
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float batch in, float scores out; int8 models are (de)quantized here.

        The per-call path is kept short: shapes are checked against a precomputed tuple and
        int8 inputs are quantized into reused buffers.
        """
        if not isinstance(batch, np.ndarray):
            batch = np.asarray(batch)
        if batch.shape[1:] != self._input_shape:
            self._check_batch(batch)
        if self._input_quantized:
            feed = quantize(batch, self.input_spec, *self._quantize_buffers(batch.shape))
        else:
            feed = batch if batch.dtype == self.input_spec.dtype else batch.astype(self.input_spec.dtype)
        scores = self.runtime.run([feed])[0]
        return dequantize(scores, self.output_spec) if self._output_quantized else scores.astype(np.float32, copy=False)

    def _check_batch(self, batch: np.ndarray) -> None:
        expected = tuple(self.input_spec.shape[1:])
        if batch.ndim != len(expected) + 1 or any(e > 0 and e != b for e, b in zip(expected, batch.shape[1:])):
            raise InputError(
                f"{self.path.name} expects a batch of shape (N, {', '.join(map(str, expected))}); "
                f"got {batch.shape}. Add the batch axis or preprocess with the model's contract"
            )

    def _quantize_buffers(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Reused (int, float32) buffers for quantizing batches of `shape`: no per-call allocation."""
        if getattr(self, "_buffers_shape", None) != shape:
            self._buffers = (np.empty(shape, self.input_spec.dtype), np.empty(shape, np.float32))
            self._buffers_shape = shape
        return self._buffers

    def _infer_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The fast path: uint8 pixels -> quantized input by table lookup, no floats."""
        table = self._pixel_table
        channels = table.shape[-1]
        flat = pixels.reshape(-1, pixels.shape[-2], channels)  # LUT works on 2-D images of C channels
        if channels == 1:
            flat, table = flat[..., 0], table[:, :, 0].reshape(256)
        else:
            table = table.reshape(1, 256, channels)
        mapped = cv2.LUT(flat, table, dst=reused_buffer(self._frame_buffers, flat.shape, "lut"))
        feed = mapped.reshape(pixels.shape).view(self.input_spec.dtype)
        scores = self.runtime.run([feed])[0]
        return dequantize(scores, self.output_spec) if self._output_quantized else scores.astype(np.float32, copy=False)

    def preprocess(self, image: ImageLike, color: ColorName = "rgb") -> np.ndarray:
        """Apply the contract to one image: the exact tensor `predict` feeds the model."""
        return preprocess(image, self.require_preprocessing(), color)

    def require_preprocessing(self) -> Preprocessing:
        """The embedded (or given) preprocessing; an error that says how to supply one if missing."""
        if self.contract is None:
            raise ContractError(
                f"{self.path.name} carries no preprocessing contract; pass one when loading: "
                "edgekit.load(path, preprocessing=Preprocessing(...), labels=[...])"
            )
        return self.contract.preprocessing

    def predict(
        self, image: ImageLike | Sequence[ImageLike], color: ColorName = "rgb", top_k: int = 5
    ) -> Classification | list[Classification]:
        """Classify an image (path, RGB array by default, or a BGR frame with color="bgr").

        Any size is accepted; grayscale and RGBA are converted. A list gives a list.
        """
        images = image if isinstance(image, (list, tuple)) else [image]
        if not images:
            return []
        spec = self.require_preprocessing()
        started = time.perf_counter()
        if len(images) == 1:  # one camera frame: every step writes into reused buffers
            batch = prepare_pixels(images[0], spec, color, self._frame_buffers)[None]
        else:
            batch = np.stack([prepare_pixels(item, spec, color) for item in images])
        if self._pixel_table is None:
            out = reused_buffer(self._frame_buffers, batch.shape, "normalize", np.float32) if len(images) == 1 else None
            batch = normalize(batch, spec, out)
        prepared = time.perf_counter()
        scores = self._infer_pixels(batch) if self._pixel_table is not None else self.run(batch)
        inference_ms = (time.perf_counter() - prepared) * 1000 / len(images)
        preprocess_ms = (prepared - started) * 1000 / len(images)
        results = [self._classify(row, top_k, inference_ms, preprocess_ms) for row in scores]
        return results if isinstance(image, (list, tuple)) else results[0]

    def _classify(self, scores: np.ndarray, top_k: int, latency_ms: float, preprocess_ms: float) -> Classification:
        order = np.argsort(-scores)[: max(1, top_k)]
        labels = self.labels
        best = int(order[0])
        return Classification(
            label=labels[best],
            index=best,
            score=float(scores[best]),
            top_k=tuple((labels[int(i)], float(scores[int(i)])) for i in order),
            latency_ms=latency_ms,
            preprocess_ms=preprocess_ms,
        )

    def stream(self, source: Any, every: int = 1, max_frames: int | None = None, top_k: int = 5) -> "Stream":
        """Classify frames from `source` (anything `open_source` takes, or an open Source).

        Example:
            >>> with model.stream("clip.mp4", every=2) as results:
            ...     for r in results:
            ...         print(r.frame.position, r.classification.label, f"{r.age_ms:.0f} ms old")
        """
        from runtimes.sources import Source, open_source
        from runtimes.stream import Stream

        self.require_preprocessing()  # fail before a camera is opened
        return Stream(self, source if isinstance(source, Source) else open_source(source), every, max_frames, top_k)

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Model {self.path.name} on {self.backend}, {len(self.labels)} labels>"


def open_model(
    path: str | Path,
    *,
    preprocessing: Preprocessing | None = None,
    labels: Sequence[str] | None = None,
    backend: str | None = None,
    **options: Any,
) -> Model:
    """Open a model file; its embedded contract is used unless it has none.

    Passing `preprocessing` or `labels` that contradict an embedded contract is an
    error: the model would run with preprocessing it was not trained for.
    """
    runtime = open_runtime(path, backend=backend, **options)
    try:
        raw = runtime.embedded_contract()
        contract = ModelContract.from_json(raw) if raw is not None else None
        if contract is None:
            if preprocessing is not None:
                n = runtime.output_specs[0].shape[-1]
                contract = ModelContract(preprocessing, tuple(labels) if labels else tuple(str(i) for i in range(n)))
            else:
                log.info("%s has no embedded contract: only run() works until one is given", path)
        else:
            if preprocessing is not None and preprocessing != contract.preprocessing:
                raise ContractError(
                    f"{Path(path).name} embeds preprocessing {contract.preprocessing.to_dict()} but "
                    f"{preprocessing.to_dict()} was passed; drop the argument to use the embedded one"
                )
            if labels is not None and tuple(labels) != contract.labels:
                raise ContractError(
                    f"{Path(path).name} embeds labels {list(contract.labels)} but {list(labels)} were passed"
                )
        return Model(runtime, contract)
    except BaseException:
        runtime.close()
        raise
