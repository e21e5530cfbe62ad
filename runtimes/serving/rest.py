"""TensorFlow Serving's REST API, the parts a client of an image model uses, without TensorFlow.

Requests (``POST /v1/models/<name>[/versions/<v>]:predict``): ``{"instances": [...]}`` (row format)
or ``{"inputs": ...}`` (columnar), optionally ``"signature_name": "serving_default"``. An image is
``{"b64": "<base64 JPEG, PNG or WebP>"}`` (the formats whose size is read from their header before decoding,
image_headers.py), or nested lists of 0..255 values (H x W x 3, RGB, as `tf.io.decode_image` gives), or
either under the input's name (``{"images": ...}``). An optional ``"parameters"`` object sets predict()'s options
for this request under their one name (runtimes.vocabulary): ``threshold``, ``iou``, ``max_detections``,
``agnostic``. Every image is checked against `Limits` before it is
decoded; `read_predict` checks, `PendingRequest.decoded` decodes. Responses are
``{"predictions": [...]}`` (row) or ``{"outputs": {...}}`` (columnar), with the output names of
edgekit's SavedModel signature (a classifier's ``scores``, ``label_id``, ``label``; a detector's
``boxes``, ``scores``, ``classes``, ``labels``, ``count``), and errors ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from runtimes.errors import RequestError
from runtimes.metadata.savedmodel import IMAGES_INPUT, SERVING_SIGNATURE
from runtimes.serving.image_headers import ImageHeader, read_header
from runtimes.serving.limits import Limits
from runtimes.vocabulary import rest_terms

BASE64_SLICE = 1 << 20  # characters decoded per step (a multiple of 4)

__all__ = [
    "Limits",
    "PendingRequest",
    "PredictRequest",
    "RequestError",
    "model_metadata",
    "model_status",
    "parse_predict",
    "predict_response",
    "read_predict",
]


@dataclass(frozen=True)
class EncodedImage:
    """An image as sent ({"b64": ...}), its size read from its header, not yet decoded."""

    data: bytes
    header: ImageHeader
    where: str

    @property
    def pixels(self) -> int:
        return self.header.pixels

    def decode(self) -> np.ndarray:
        """RGB uint8 H x W x 3; a RequestError (400) where the decoder fails or disagrees with the header."""
        return cv2.cvtColor(self.decode_bgr(), cv2.COLOR_BGR2RGB)

    def decode_bgr(self) -> np.ndarray:
        """BGR uint8 H x W x 3, as OpenCV decodes it (no conversion: Model.predict takes color="bgr")."""
        try:
            image = cv2.imdecode(np.frombuffer(self.data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            if "CV_IO_MAX_IMAGE" in str(exc):  # OpenCV's own cap (the backstop behind the header check)
                raise RequestError(413, f"{self.where}: over OpenCV's pixel limit ({_first_line(exc)})") from None
            raise RequestError(
                400, f"{self.where}: a damaged {self.header.format} image ({_first_line(exc)})"
            ) from None
        if image is None:
            raise RequestError(400, f"{self.where}: a damaged {self.header.format} image: OpenCV could not decode it")
        height, width = image.shape[:2]
        if height * width > self.header.pixels:  # never expected: the header parser is the decoder's reading
            raise RequestError(
                400,
                f"{self.where}: decoded to {width}x{height}, not the {self.header.width}x"
                f"{self.header.height} its header declares",
            )
        return image


@dataclass(frozen=True)
class PixelImage:
    """An image sent as nested lists of numbers, already checked and converted."""

    array: np.ndarray

    @property
    def pixels(self) -> int:
        return self.array.shape[0] * self.array.shape[1]

    def decode(self) -> np.ndarray:
        return self.array


@dataclass(frozen=True)
class PendingRequest:
    """A predict request read and checked, its images not yet decoded (`pixels` says what decoding will hold)."""

    images: list[EncodedImage | PixelImage]
    row_format: bool
    parameters: dict[str, Any] = field(default_factory=dict)  # predict() options sent with the request

    @property
    def pixels(self) -> int:
        return sum(image.pixels for image in self.images)

    def decoded(self) -> "PredictRequest":
        return PredictRequest([image.decode() for image in self.images], self.row_format)

    def for_model(self) -> tuple[list[np.ndarray], str]:
        """The decoded images and their colour order for `Model.predict`: BGR as decoded when every image was encoded
        (a full-size RGB copy saved), else RGB."""
        if all(isinstance(image, EncodedImage) for image in self.images):
            return [image.decode_bgr() for image in self.images], "bgr"  # type: ignore[union-attr]
        return [image.decode() for image in self.images], "rgb"


@dataclass(frozen=True)
class PredictRequest:
    images: list[np.ndarray]  # RGB uint8, H x W x 3
    row_format: bool  # "instances" (answer "predictions") or "inputs" (answer "outputs")


def parse_predict(body: bytes, limits: Limits) -> PredictRequest:
    """The decoded images of a predict request, or a RequestError (400 malformed, 413 too large, 415 format)."""
    return read_predict(body, limits).decoded()


def read_predict(body: bytes, limits: Limits) -> PendingRequest:
    """A predict request checked against `limits` without decoding an image: JSON, base64, every image's size from
    its header, the request's total pixels. A RequestError (400 malformed, 413 too large, 415 format) says why."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body of {len(body)} bytes is over the {limits.max_body_bytes} byte limit")
    values_bound = body.count(b",") + body.count(b"[") + body.count(b"{")  # JSON values <= separators + containers
    if values_bound > limits.max_json_values:
        raise RequestError(
            413,
            f"the request holds up to {values_bound} JSON values, over the {limits.max_json_values} "
            'limit: send large images encoded, as {"b64": "<base64 JPEG or PNG>"}',
        )
    try:
        request = json.loads(body)
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer over Python's digit limit
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError(400, 'the request must be a JSON object with "instances" or "inputs"')
    signature = request.get("signature_name", SERVING_SIGNATURE)
    if signature != SERVING_SIGNATURE:
        raise RequestError(400, f"unknown signature_name {_shown(signature)}; this model serves {SERVING_SIGNATURE!r}")
    if ("instances" in request) == ("inputs" in request):
        raise RequestError(400, 'give exactly one of "instances" (row format) or "inputs" (columnar format)')
    parameters = _parameters(request.get("parameters", {}))
    unknown = set(request) - {"instances", "inputs", "signature_name", "parameters"}
    if unknown:
        raise RequestError(
            400,
            f"unknown field(s) {_shown(sorted(unknown))}; a request has instances or inputs, signature_name, "
            "parameters",
        )
    row = "instances" in request
    key = "instances" if row else "inputs"
    values = request[key]
    if isinstance(values, dict) and "b64" not in values:  # columnar, by name: {"inputs": {"images": [...]}}
        values = _named(values)
    if isinstance(values, dict):
        values = [values]
    if not isinstance(values, list) or not values:
        raise RequestError(
            400, f'"{key}" must be a non-empty list of images (each {{"b64": ...}} or H x W x 3 numbers)'
        )
    if _depth(values) == 3:
        raise RequestError(400, f'"{key}" holds one image as H x W x 3 lists: wrap it in a list (a batch of one)')
    if len(values) > limits.max_images:
        raise RequestError(413, f"{len(values)} images in one request; at most {limits.max_images}")
    images, total = [], 0
    for index, value in enumerate(values):
        image = _image(value, index, limits)
        total += image.pixels
        if total > limits.max_request_pixels:
            raise RequestError(
                413,
                f"the images of this request hold over {total} pixels, over the "
                f"{limits.max_request_pixels} pixel limit of one request: send fewer or smaller",
            )
        images.append(image)
    return PendingRequest(images, row, parameters)


_PARAMETER_TYPES = {
    "threshold": "a number",
    "iou": "a number",
    "max_detections": "a whole number",
    "agnostic": "true or false",
}


def _parameters(value: Any) -> dict[str, Any]:
    """A request's ``"parameters"``: known names (runtimes.vocabulary's REST options), each of the right JSON type;
    ranges are the model's to check (a 400 from its InputError)."""
    if not isinstance(value, dict):
        raise RequestError(400, '"parameters" must be an object, e.g. {"threshold": 0.5}')
    valid = rest_terms()
    for name, item in value.items():
        if name not in valid:
            raise RequestError(400, f"unknown parameter {_shown(name)}; valid: {', '.join(valid)}")
        kind = _PARAMETER_TYPES[name]
        ok = (
            isinstance(item, bool)
            if kind == "true or false"
            else isinstance(item, int) and not isinstance(item, bool)
            if kind == "a whole number"
            else isinstance(item, (int, float)) and not isinstance(item, bool)
        )
        if not ok:
            raise RequestError(400, f'parameter "{name}" must be {kind}, got {_shown(item)}')
    return dict(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(exc).__name__


def _named(value: dict) -> Any:
    if set(value) != {IMAGES_INPUT}:
        raise RequestError(
            400, f"unknown input(s) {_shown(sorted(value))}; this model takes one input, {IMAGES_INPUT!r}"
        )
    return value[IMAGES_INPUT]


def _depth(value: Any) -> int:
    """How deep nested lists go before a number (0 for anything else)."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _image(value: Any, index: int, limits: Limits) -> EncodedImage | PixelImage:
    where = f"image {index}"
    if isinstance(value, dict) and "b64" not in value:  # row format, by name: {"images": ...}
        value = _named(value)
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise RequestError(400, f'{where}: a binary value is {{"b64": "<base64 string>"}}')
        data = _base64(value["b64"], where)
        if not data:
            raise RequestError(400, f"{where}: empty image data")
        header = read_header(data, where)
        if header.pixels > limits.max_image_pixels:
            raise RequestError(
                413,
                f"{where}: {header.width}x{header.height} ({header.pixels} pixels) is over the "
                f"{limits.max_image_pixels} pixel limit",
            )
        return EncodedImage(data, header, where)
    if isinstance(value, list):
        return PixelImage(_pixels(value, where, limits))
    raise RequestError(400, f'{where}: expected {{"b64": ...}} or nested lists of pixels, got {type(value).__name__}')


def _base64(text: str, where: str) -> bytes:
    """Standard base64, strictly; decoded a slice at a time, so other threads (the event loop) get the GIL between."""
    try:
        if len(text) <= BASE64_SLICE:
            return base64.b64decode(text, validate=True)
        if len(text) % 4:
            raise ValueError(f"{len(text)} characters is not a multiple of 4")
        return b"".join(
            base64.b64decode(text[i : i + BASE64_SLICE], validate=True) for i in range(0, len(text), BASE64_SLICE)
        )
    except (binascii.Error, ValueError) as exc:
        raise RequestError(400, f"{where}: bad base64 ({exc})") from None


def _pixels(value: list, where: str, limits: Limits) -> np.ndarray:
    """H x W x C nested lists -> RGB uint8, its size checked before conversion and converted a row at a time."""
    bad_shape = RequestError(400, f"{where}: nested lists of unequal lengths or non-numbers; send H x W x 3 numbers")
    height = len(value)
    first = value[0] if height else None
    width = len(first) if isinstance(first, list) else 0
    pixel = first[0] if width else None
    channels = len(pixel) if isinstance(pixel, list) else 0
    if not (height and width and channels) or channels not in (1, 3):
        shape = [height, width, channels] if channels else [height, width] if width else [height]
        raise RequestError(400, f"{where}: shape {shape}; an image is H x W x 3 (RGB) or H x W x 1")
    if height * width > limits.max_image_pixels:
        raise RequestError(413, f"{where}: {width}x{height} is over the {limits.max_image_pixels} pixel limit")
    rows = []
    for row in value:
        try:
            array = np.asarray(row, dtype=np.float64)
        except OverflowError:  # an integer beyond float64
            raise RequestError(400, f"{where}: pixel values must be numbers in 0..255") from None
        except (ValueError, TypeError):
            raise bad_shape from None
        if array.shape != (width, channels):
            raise bad_shape
        rows.append(array)
    pixels = np.stack(rows)
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise RequestError(400, f"{where}: pixel values must be numbers in 0..255")
    image = np.rint(pixels).astype(np.uint8)
    return np.repeat(image, 3, axis=2) if channels == 1 else image


def predict_response(predictions: Sequence[dict[str, Any]], row_format: bool) -> dict[str, Any]:
    """Per-image named outputs -> TF Serving's body: row format lists them, columnar gathers each output."""
    if row_format:
        return {"predictions": list(predictions)}
    return {"outputs": {name: [p[name] for p in predictions] for name in predictions[0]}}


def model_status(version: int = 1) -> dict[str, Any]:
    """GET /v1/models/<name>: the one loaded version, available."""
    return {
        "model_version_status": [
            {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def model_metadata(name: str, version: int, outputs: dict[str, Any], contract: dict[str, Any] | None) -> dict[str, Any]:
    """GET /v1/models/<name>/metadata: the serving signature as TF Serving describes it, and edgekit's contract."""
    tensor = lambda dtype, shape: {
        "dtype": dtype,
        "tensor_shape": {"dim": [{"size": str(s), "name": ""} for s in shape]},
    }  # noqa: E731
    signature = {
        "inputs": {
            IMAGES_INPUT: {"name": f"{SERVING_SIGNATURE}_{IMAGES_INPUT}:0", **tensor("DT_UINT8", [-1, -1, -1, 3])}
        },
        "outputs": {
            key: {"name": f"StatefulPartitionedCall:{i}", **tensor(dtype, shape)}
            for i, (key, (dtype, shape)) in enumerate(outputs.items())
        },
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {SERVING_SIGNATURE: signature}}},
        "edgekit_contract": contract,
    }
