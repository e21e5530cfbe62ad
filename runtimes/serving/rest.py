"""TensorFlow Serving's REST API, the parts a client of an image model uses, without TensorFlow.

Requests (``POST /v1/models/<name>[/versions/<v>]:predict``): ``{"instances": [...]}`` (row format)
or ``{"inputs": ...}`` (columnar), optionally ``"signature_name": "serving_default"``. An image is
``{"b64": "<base64 JPEG/PNG/...>"}``, or nested lists of 0..255 values (H x W x 3, RGB, as
`tf.io.decode_image` gives), or either under the input's name (``{"images": ...}``). Responses are
``{"predictions": [...]}`` (row) or ``{"outputs": {...}}`` (columnar), with the output names of
edgekit's SavedModel signature (a classifier's ``scores``, ``label_id``, ``label``; a detector's
``boxes``, ``scores``, ``classes``, ``labels``, ``count``), and errors ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from runtimes.metadata.savedmodel import IMAGES_INPUT, SERVING_SIGNATURE


class RequestError(Exception):
    """A request edgekit refuses: its HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    """What one request may hold (a camera box has little memory): bytes of body, images, pixels per image."""

    max_body_bytes: int = 16 << 20
    max_images: int = 32
    max_image_pixels: int = 4096 * 4096

    def __post_init__(self) -> None:
        if min(self.max_body_bytes, self.max_images, self.max_image_pixels) < 1:
            raise ValueError(f"limits must be >= 1: {self}")


@dataclass(frozen=True)
class PredictRequest:
    images: list[np.ndarray]  # RGB uint8, H x W x 3
    row_format: bool  # "instances" (answer "predictions") or "inputs" (answer "outputs")


def parse_predict(body: bytes, limits: Limits) -> PredictRequest:
    """The images of a predict request, or a RequestError (400 malformed, 413 too large) that says why."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body of {len(body)} bytes is over the {limits.max_body_bytes} byte limit")
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError(400, 'the request must be a JSON object with "instances" or "inputs"')
    signature = request.get("signature_name", SERVING_SIGNATURE)
    if signature != SERVING_SIGNATURE:
        raise RequestError(400, f"unknown signature_name {signature!r}; this model serves {SERVING_SIGNATURE!r}")
    if ("instances" in request) == ("inputs" in request):
        raise RequestError(400, 'give exactly one of "instances" (row format) or "inputs" (columnar format)')
    row = "instances" in request
    key = "instances" if row else "inputs"
    values = request[key]
    if isinstance(values, dict) and "b64" not in values:  # columnar, by name: {"inputs": {"images": [...]}}
        values = _named(values)
    if isinstance(values, dict):
        values = [values]
    if not isinstance(values, list) or not values:
        raise RequestError(400, f'"{key}" must be a non-empty list of images (each {{"b64": ...}} or H x W x 3 numbers)')
    if _depth(values) == 3:
        raise RequestError(400, f'"{key}" holds one image as H x W x 3 lists: wrap it in a list (a batch of one)')
    if len(values) > limits.max_images:
        raise RequestError(413, f"{len(values)} images in one request; at most {limits.max_images}")
    return PredictRequest([_image(value, i, limits) for i, value in enumerate(values)], row)


def _named(value: dict) -> Any:
    if set(value) != {IMAGES_INPUT}:
        raise RequestError(400, f"unknown input(s) {sorted(value)}; this model takes one input, {IMAGES_INPUT!r}")
    return value[IMAGES_INPUT]


def _depth(value: Any) -> int:
    """How deep nested lists go before a number (0 for anything else)."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _image(value: Any, index: int, limits: Limits) -> np.ndarray:
    where = f"image {index}"
    if isinstance(value, dict) and "b64" not in value:  # row format, by name: {"images": ...}
        value = _named(value)
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise RequestError(400, f'{where}: a binary value is {{"b64": "<base64 string>"}}')
        try:
            data = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RequestError(400, f"{where}: bad base64 ({exc})") from None
        return _decoded(data, where, limits)
    if isinstance(value, list):
        try:
            pixels = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise RequestError(400, f"{where}: nested lists of unequal lengths or non-numbers; send H x W x 3 numbers") from None
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or 0 in pixels.shape:
            raise RequestError(400, f"{where}: shape {list(pixels.shape)}; an image is H x W x 3 (RGB) or H x W x 1")
        if pixels.shape[0] * pixels.shape[1] > limits.max_image_pixels:
            raise RequestError(413, f"{where}: {pixels.shape[1]}x{pixels.shape[0]} is over the {limits.max_image_pixels} pixel limit")
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
            raise RequestError(400, f"{where}: pixel values must be numbers in 0..255")
        image = np.rint(pixels).astype(np.uint8)
        return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    raise RequestError(400, f'{where}: expected {{"b64": ...}} or nested lists of pixels, got {type(value).__name__}')


def _decoded(data: bytes, where: str, limits: Limits) -> np.ndarray:
    header = np.frombuffer(data, np.uint8)
    if not data:
        raise RequestError(400, f"{where}: empty image data")
    size = _header_pixels(data)
    if size is not None and size > limits.max_image_pixels:
        raise RequestError(413, f"{where}: {size} pixels is over the {limits.max_image_pixels} pixel limit")
    image = cv2.imdecode(header, cv2.IMREAD_COLOR)
    if image is None:
        raise RequestError(400, f"{where}: not an image OpenCV can decode (JPEG, PNG, BMP, WebP, TIFF)")
    if image.shape[0] * image.shape[1] > limits.max_image_pixels:
        raise RequestError(413, f"{where}: {image.shape[1]}x{image.shape[0]} is over the {limits.max_image_pixels} pixel limit")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _header_pixels(data: bytes) -> int | None:
    """Width x height from a PNG or JPEG header, before decoding (a decompression bomb is refused unread)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                return int.from_bytes(data[i + 5:i + 7], "big") * int.from_bytes(data[i + 7:i + 9], "big")
            i += 2 + length
    return None


def predict_response(predictions: Sequence[dict[str, Any]], row_format: bool) -> dict[str, Any]:
    """Per-image named outputs -> TF Serving's body: row format lists them, columnar gathers each output."""
    if row_format:
        return {"predictions": list(predictions)}
    return {"outputs": {name: [p[name] for p in predictions] for name in predictions[0]}}


def model_status(version: int = 1) -> dict[str, Any]:
    """GET /v1/models/<name>: the one loaded version, available."""
    return {"model_version_status": [{"version": str(version), "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


def model_metadata(name: str, version: int, outputs: dict[str, Any], contract: dict[str, Any] | None) -> dict[str, Any]:
    """GET /v1/models/<name>/metadata: the serving signature as TF Serving describes it, and edgekit's contract."""
    tensor = lambda dtype, shape: {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(s), "name": ""} for s in shape]}}  # noqa: E731
    signature = {
        "inputs": {IMAGES_INPUT: {"name": f"{SERVING_SIGNATURE}_{IMAGES_INPUT}:0", **tensor("DT_UINT8", [-1, -1, -1, 3])}},
        "outputs": {key: {"name": f"StatefulPartitionedCall:{i}", **tensor(dtype, shape)}
                    for i, (key, (dtype, shape)) in enumerate(outputs.items())},
        "method_name": "tensorflow/serving/predict",
    }
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": {SERVING_SIGNATURE: signature}}},
            "edgekit_contract": contract}
