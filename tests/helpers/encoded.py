"""Small encoded images for the serving tests: any size, any format OpenCV writes, as bytes or base64 text."""

from __future__ import annotations

import base64

import cv2
import numpy as np

RNG = np.random.default_rng(7)


def encoded(extension: str, height: int, width: int, *params: int) -> bytes:
    """A smooth random height x width image encoded as `extension` (".jpg", ".png", ".webp", ...) with OpenCV's
    params."""
    image = cv2.resize(RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.imencode(extension, image, list(params))[1].tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
