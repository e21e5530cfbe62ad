"""`Model`: one API over every backend, applying the embedded preprocessing contract."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence, overload

import cv2
import numpy as np

from runtimes.backends.base import Runtime
from runtimes.contract import ModelContract, Preprocessing
from runtimes.errors import ContractError, InputError
from runtimes.preprocess import ColorName, PixelPlan, image_array, normalize, prepare_pixels, preprocess
from runtimes.quantization import dequantize, is_quantized, pixel_table, quantize, table_shift
from runtimes.sources import Source, open_source
from runtimes.stream import Stream
from runtimes.tasks import Decoder, Task, task_for
from runtimes.tasks.binding import ModelInfo
from runtimes.tasks.classification import Classification
from runtimes.tasks.detection import Detections
from runtimes.tasks.keypoints import KeypointObjects
from runtimes.tasks.segmentation import Segmentation
from runtimes.tensors import TensorSpec
from runtimes.tracking import LineCounter, Tracker, TrackerOptions

log = logging.getLogger(__name__)

ImageLike = np.ndarray | str | Path
TaskResult = Classification | Detections | KeypointObjects | Segmentation  # what predict() gives, by the task


MAX_PIXEL_PLANS = 4  # frame shapes whose plans (and buffers) a Model keeps
MAX_PLAN_BYTES = 64 << 20  # frame bytes whose plans a Model keeps; a larger frame gets a plan used once


class Model:
    """A model file plus its contract. Use `edgekit.load` / `runtimes.open` to make one.

    Examples:
        >>> with runtimes.open("shapes_int8.tflite") as model:
        ...     print(model.predict("circle.png").label)
        circle
    """

    def __init__(
        self, runtime: Runtime, contract: ModelContract | None, contract_sources: dict[str, str] | None = None
    ) -> None:
        self.runtime = runtime
        self.contract = contract
        # where each contract field came from when it was not edgekit's own (standard metadata, the tensor)
        self.contract_sources = dict(contract_sources or {})
        self.input_spec: TensorSpec = runtime.input_specs[0]
        self.output_spec: TensorSpec = runtime.output_specs[0]
        if contract is not None:
            self._check_contract(contract)
        self._frame_buffers: dict = {}  # float scratch reused by run() and predict()
        self._pixel_plans: dict = {}  # (shape, dtype, colour) -> PixelPlan with reused buffers, for single frames
        self._plan_bytes = 0  # frame bytes of the kept plans: their buffers are a fraction of that
        self._input_shape = tuple(self.input_spec.shape[1:])
        self._input_quantized = is_quantized(self.input_spec)
        self._output_quantized = is_quantized(self.output_spec)
        self.task: Task = task_for(contract.task if contract is not None else "classification")
        # the task's decoder for this model: its caches (a detector's head, output reader, box mappings) live there
        self.decoder: Decoder = self.task.bind(
            ModelInfo(
                self.path.name,
                tuple(runtime.output_specs),
                self.labels,
                contract.head if contract is not None else None,
                self.preprocessing,
            )
        )
        self._pixel_table = self._pixel_lookup()
        self._pixel_shift = table_shift(self._pixel_table)

    @property
    def output_specs(self) -> list[TensorSpec]:
        """Every output of the model, in order: `run_all` returns them by these names."""
        return list(self.runtime.output_specs)

    def _pixel_lookup(self) -> np.ndarray | None:
        """uint8 pixel -> the model's input value for all 256 values (runtimes.quantization.pixel_table).

        predict() then maps camera pixels with one cv2.LUT pass straight into the model's input memory.
        """
        spec = self.preprocessing
        return None if spec is None else pixel_table(spec, self.input_spec)

    @property
    def direct_pixel_input(self) -> bool:
        """True when predict() maps uint8 pixels straight to the quantized input (no float tensor)."""
        return self._pixel_table is not None and self._input_quantized

    @property
    def pixel_path(self) -> str:
        """How predict() turns uint8 pixels into this model's input: "add" (an exact 8-bit shift),
        "lookup" (one table pass) or "normalize" (float passes: NCHW or float16 inputs)."""
        if self._pixel_shift is not None:
            return "add"
        return "normalize" if self._pixel_table is None else "lookup"

    # -- description -------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The model file."""
        return self.runtime.path

    @property
    def backend(self) -> str:
        """The backend running it: "tflite", "onnxruntime", "coreml" or "reference"."""
        return self.runtime.backend_name

    @property
    def can_run(self) -> bool:
        """False where the file opens but this machine cannot execute it (CoreML off macOS)."""
        return self.runtime.can_run

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The contract's preprocessing (None for a file without one, loaded without one)."""
        return self.contract.preprocessing if self.contract else None

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, by index (from the contract, or the standard metadata's labels file)."""
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
        if (
            contract.task == "classification"
            and classes > 0
            and len(contract.labels) != classes
            and len(self.runtime.output_specs) == 1
        ):
            raise ContractError(
                f"{self.path.name} outputs {classes} scores but {len(contract.labels)} labels were given"
            )

    # -- inference ---------------------------------------------------------------------
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float batch in, float scores out (the first output); int8 models are (de)quantized here.

        The per-call path is kept short: shapes are checked against a precomputed tuple and
        int8 inputs are quantized into reused buffers. `run_all` returns every output.

        Args:
            batch: (N, H, W, C) float32 inputs as `preprocess` makes them (NCHW for an NCHW model).

        Returns:
            The first output as float32 (N, ...): a classifier's scores.

        Raises:
            InputError: a batch whose shape or type the model cannot take.
            InferenceError: the runtime failed on it.
        """
        scores = self._run_raw(batch)[0]
        return dequantize(scores, self.output_spec) if self._output_quantized else scores.astype(np.float32, copy=False)

    def run_all(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every output by name, dequantized to float where the model's outputs are quantized.

        Args:
            batch: (N, H, W, C) float32 inputs as `preprocess` makes them.

        Returns:
            Output name -> float32 array (integer outputs, such as a detector's classes, as they are).

        Raises:
            InputError: a batch whose shape or type the model cannot take.
            InferenceError: the runtime failed on it.

        Examples:
            >>> outputs = model.run_all(model.preprocess("face.jpg"))
            >>> {name: array.shape for name, array in outputs.items()}
        """
        raw = self._run_raw(batch)
        return {
            spec.name: dequantize(array, spec) if is_quantized(spec) else array
            for spec, array in zip(self.runtime.output_specs, raw)
        }

    def _run_raw(self, batch: np.ndarray) -> list[np.ndarray]:
        if not isinstance(batch, np.ndarray):
            batch = np.asarray(batch)
        if batch.shape[1:] != self._input_shape:
            self._check_batch(batch)
        if self._input_quantized:  # quantized straight into the backend's input memory
            scratch = self._scratch(batch.shape)
            return self.runtime.run_filled(
                batch.shape, lambda buffer: quantize(batch, self.input_spec, buffer, scratch)
            )
        feed = batch if batch.dtype == self.input_spec.dtype else batch.astype(self.input_spec.dtype)
        return self.runtime.run([feed])

    def _check_batch(self, batch: np.ndarray) -> None:
        expected = tuple(self.input_spec.shape[1:])
        if batch.ndim >= 1 and batch.shape[0] == 0:
            raise InputError(f"{self.path.name} got an empty batch (shape {batch.shape}); pass at least one image")
        if batch.ndim != len(expected) + 1 or any(e > 0 and e != b for e, b in zip(expected, batch.shape[1:])):
            raise InputError(
                f"{self.path.name} expects a batch of shape (N, {', '.join(map(str, expected))}); "
                f"got {batch.shape}. Add the batch axis or preprocess with the model's contract"
            )

    def _scratch(self, shape: tuple[int, ...], step: str = "quantize") -> np.ndarray:
        """A reused float32 buffer for `step` on batches of `shape`: no per-call allocation."""
        scratch = self._frame_buffers.get(step)
        if scratch is None or scratch.shape != shape:
            scratch = self._frame_buffers[step] = np.empty(shape, np.float32)
        return scratch

    def _run_pixels(self, pixels: np.ndarray) -> list[np.ndarray]:
        """The fast path: uint8 NHWC pixels -> the model's input by one table lookup, no float passes.

        Returns the backend's own outputs (quantized for int8 models): which the task's decoder reads.
        """
        return self.runtime.run_filled(pixels.shape, lambda buffer: self._map_pixels(pixels, buffer))

    def _map_pixels(self, pixels: np.ndarray, buffer: np.ndarray) -> None:
        """Write the model input for `pixels` into `buffer` (the backend's input memory)."""
        if self._pixel_shift is not None:  # the table is an 8-bit add: SIMD arithmetic instead of a gather
            target = buffer.view(np.uint8)
            if self._pixel_shift:
                np.add(pixels, np.uint8(self._pixel_shift), out=target)  # wraps modulo 256, like the table
            else:
                np.copyto(target, pixels)
            return
        source = pixels.reshape(-1, pixels.shape[-2], pixels.shape[-1])  # LUT works on 2-D images of C channels
        target = (buffer.view(np.uint8) if buffer.dtype == np.int8 else buffer).reshape(source.shape)
        if source.shape[-1] == 1:
            source, target = source[..., 0], target[..., 0]
        mapped = cv2.LUT(source, self._pixel_table, dst=target)
        if mapped is not target:  # cv2 allocated instead of writing in place
            np.copyto(target, mapped)

    def _pixel_plan(self, image: np.ndarray, color: ColorName) -> PixelPlan:
        """The cached plan for frames like `image`: a stream's frames share one shape."""
        key = (image.shape, image.dtype, color)
        plan = self._pixel_plans.get(key)
        if plan is None:
            if image.nbytes > MAX_PLAN_BYTES:  # a huge still: its buffers are freed with the call
                return PixelPlan(image.shape, image.dtype, color, self.require_preprocessing())
            if len(self._pixel_plans) >= MAX_PIXEL_PLANS or self._plan_bytes + image.nbytes > MAX_PLAN_BYTES:
                self._pixel_plans.clear()  # images of many sizes: keep memory bounded
                self._plan_bytes = 0
            plan = self._pixel_plans[key] = PixelPlan(
                image.shape, image.dtype, color, self.require_preprocessing(), reuse=True
            )
            self._plan_bytes += image.nbytes
        return plan

    def preprocess(self, image: ImageLike, color: ColorName = "rgb") -> np.ndarray:
        """Apply the contract to one image: the exact tensor `predict` feeds the model.

        Args:
            image: a path, or an H x W (x 1, 3 or 4) uint8 array.
            color: the array's colour order, "rgb" or "bgr" (an OpenCV frame).

        Returns:
            A (1, H, W, C) float32 batch of one (NCHW for an NCHW model).

        Raises:
            ContractError: the model carries no contract and none was given when loading.
            InputError: an unreadable file or an array that is not an image.
        """
        return preprocess(image, self.require_preprocessing(), color)

    def require_preprocessing(self) -> Preprocessing:
        """The embedded (or given) preprocessing; an error that says how to supply one if missing."""
        if self.contract is None:
            raise ContractError(
                f"{self.path.name} carries no preprocessing contract; pass one when loading: "
                "edgekit.load(path, preprocessing=Preprocessing(...), labels=[...])"
            )
        return self.contract.preprocessing

    @overload
    def predict(
        self, image: ImageLike, color: ColorName = "rgb", top_k: int | None = None, **options: Any
    ) -> TaskResult: ...

    @overload
    def predict(
        self,
        image: list[ImageLike] | tuple[ImageLike, ...],
        color: ColorName = "rgb",
        top_k: int | None = None,
        **options: Any,
    ) -> list[TaskResult]: ...

    def predict(
        self, image: ImageLike | Sequence[ImageLike], color: ColorName = "rgb", top_k: int | None = None, **options: Any
    ) -> TaskResult | list[TaskResult]:
        """The task's result for an image (path, RGB array by default, or a BGR frame with color="bgr").

        A classifier returns a `Classification` (`top_k` best labels, 5 by default; with `threshold`, a best
        score below it gives label None). A detector returns `Detections` with boxes in the original image's
        pixels (`threshold`, `iou`, `max_detections` and `agnostic` per call, defaults from the contract). The
        options have the same names on the command line, in the server's requests and in a bundle's config
        (runtimes.vocabulary). Any size is accepted; grayscale and RGBA are converted. A list gives a list.

        Args:
            image: a path, an H x W (x 1, 3 or 4) uint8 array, or a list of them.
            color: an array's colour order, "rgb" or "bgr" (an OpenCV frame).
            top_k: classifiers: how many labels `top_k` lists (5).
            **options: the task's options: `threshold` (both tasks), `iou`, `max_detections` and `agnostic`
                (detectors).

        Returns:
            A `Classification` for a classifier, `Detections` for a detector (boxes in the image's own pixels);
            a list of them for a list of images.

        Raises:
            ContractError: the model carries no contract and none was given when loading.
            InputError: an unreadable image, an option the task does not take, or a value out of range.
            InferenceError: the runtime failed, or the model produced non-finite scores (damaged weights).

        Examples:
            >>> model.predict("street.jpg", threshold=0.5)[0].box
            (12.0, 40.5, 96.0, 133.0)
        """
        images = image if isinstance(image, (list, tuple)) else [image]
        if not images:
            return []
        spec = self.require_preprocessing()
        if self.decoder.problem:
            raise InputError(self.decoder.problem)
        if top_k is not None:
            options["top_k"] = top_k
        chosen = self.decoder.options(options)
        started = time.perf_counter()
        if len(images) == 1:  # one camera frame: a cached plan writes every step into reused buffers
            frame, frame_color = image_array(images[0], color)
            batch = self._pixel_plan(frame, frame_color)(frame)[None]
            sizes = [frame.shape[:2]]
        else:
            frames = [image_array(item, color) for item in images]
            batch = np.stack([prepare_pixels(item, spec, item_color) for item, item_color in frames])
            sizes = [item.shape[:2] for item, _ in frames]
        if self._pixel_table is None:  # NCHW or float16 input: scale as floats
            batch = normalize(batch, spec, self._scratch(batch.shape, "normalize") if len(images) == 1 else None)
        prepared = time.perf_counter()
        outputs = self._run_pixels(batch) if self._pixel_table is not None else self._run_raw(batch)
        inference_ms = (time.perf_counter() - prepared) * 1000 / len(images)
        preprocess_ms = (prepared - started) * 1000 / len(images)
        results = self.decoder.results(outputs, sizes, inference_ms, preprocess_ms, chosen)
        return results if isinstance(image, (list, tuple)) else results[0]

    def stream(
        self,
        source: Any,
        every: int = 1,
        max_frames: int | None = None,
        top_k: int | None = None,
        track: bool | TrackerOptions | Tracker = False,
        count_line: Sequence[float] | str | None = None,
        **options: Any,
    ) -> Stream:
        """The task's result for each frame from `source` (anything `open_source` takes, or an open Source).

        `top_k` (classifiers) and the detection options are predict()'s, checked before the source opens.
        Detectors: `track` gives each object a `track_id` kept across frames (True, or TrackerOptions, or
        a Tracker to continue); `count_line` (x0, y0, x1, y1 in source pixels) counts tracked objects
        crossing it, in each result's `counts` (it turns tracking on).

        Args:
            source: a path (image, folder, glob, video), a webcam index, an rtsp:// or http:// URL, "picamera2",
                an iterable of BGR frames, or an open `Source`.
            every: predict on every Nth frame (files) or frame read (live sources).
            max_frames: stop after this many results (None: until the source ends).
            top_k: classifiers: labels per result.
            track: detectors: True, `TrackerOptions` or a `Tracker` for ids kept across frames.
            count_line: detectors: (x0, y0, x1, y1) or "x0,y0,x1,y1" in source pixels; implies `track`.
            **options: predict()'s options (`threshold`, `iou`, `max_detections`, `agnostic`).

        Returns:
            A `Stream`: iterate for `StreamResult`s (the frame, the task's result, latency, frame age, FPS and
            counts); leaving its `with` block releases the source.

        Raises:
            ContractError: the model carries no contract.
            InputError: a model whose outputs predict() cannot read, or an option it does not take.
            SourceError: the source cannot be opened.

        Examples:
            >>> with model.stream("clip.mp4", every=2) as results:
            ...     for r in results:
            ...         print(r.frame.position, r.classification.label, f"{r.age_ms:.0f} ms old")
        """
        self.require_preprocessing()  # fail before a camera is opened
        if self.decoder.problem:  # every frame would fail the same way: say so once
            raise InputError(self.decoder.problem)
        # bad options fail here, once
        self.decoder.options({**options, **({"top_k": top_k} if top_k is not None else {})})
        tracker, counter = self._tracking(track, count_line)
        return Stream(
            self,
            source if isinstance(source, Source) else open_source(source),
            every,
            max_frames,
            top_k,
            tracker=tracker,
            counter=counter,
            **options,
        )

    def _tracking(self, track: Any, count_line: Any) -> tuple[Any, Any]:
        """The stream's Tracker and LineCounter (None, None when not asked for); checked before a camera opens."""
        if not track and count_line is None:
            return None, None
        if not self.task.trackable:
            raise InputError(f"tracking and counting need a detector; {self.path.name} is a {self.task.name} model")
        if isinstance(track, Tracker):
            tracker = track
        else:
            tracker = Tracker(track if isinstance(track, TrackerOptions) else None)
        return tracker, LineCounter(count_line) if count_line is not None else None

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Release the runtime (an interpreter or session); `predict` afterwards is an InputError. Idempotent."""
        self.runtime.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Model {self.path.name} on {self.backend}, {len(self.labels)} labels>"
