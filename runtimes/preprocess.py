"""The one implementation of the preprocessing contract (numpy + OpenCV).

Training, calibration and inference all call these functions, so the tensor a model
sees on a device is the tensor it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np

from runtimes.contract import ColorOrder, Interpolation, Layout, Preprocessing, ResizeMode, parse_enum
from runtimes.errors import InputError

ColorName = Literal["rgb", "bgr", "gray"]
Step = Callable[[np.ndarray], np.ndarray]


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to a uint8 array as OpenCV reads it.

    Args:
        path: a JPEG, PNG, BMP or WebP file (non-ASCII paths work).

    Returns:
        H x W x 3 BGR, H x W x 4 BGRA or H x W grayscale, uint8.

    Raises:
        InputError: a missing file, or one that is corrupt or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode copes with non-ASCII paths
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image {path}: the file is corrupt or not an image")
    if image.dtype == np.uint16:  # 16-bit PNGs: keep the contract's 0..255 pixel domain
        image = (image >> 8).astype(np.uint8)
    return image


def image_array(
    image: np.ndarray | str | Path, color: ColorName | ColorOrder
) -> tuple[np.ndarray, ColorName | ColorOrder]:
    """`image` as an array and its colour order: files are decoded by OpenCV, so they are BGR."""
    if isinstance(image, (str, Path)):
        return read_image(image), "bgr"
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy image or a path, got {type(image).__name__}")
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0 or image.size == 0:
        raise InputError(f"expected a non-empty image of shape HxW or HxWxC; got {image.shape}")
    return image, color


def _require_pixels(dtype: np.dtype) -> None:
    if np.dtype(dtype) != np.uint8:
        raise InputError(
            f"expected uint8 pixels, got dtype {np.dtype(dtype)}; pass 0..255 uint8 images to predict(), "
            "or an already preprocessed float batch to run()"
        )


# -- steps: one OpenCV or numpy call each, bound to its output buffer when one is reused ----
def _buffer(shape: tuple[int, ...], reuse: bool) -> np.ndarray | None:
    return np.empty(shape, np.uint8) if reuse else None


def _convert_step(code: int, dst: np.ndarray | None = None) -> Step:
    return lambda image: cv2.cvtColor(image, code, dst=dst)


def _resize_step(size: tuple[int, int], interpolation: int, dst: np.ndarray | None) -> Step:
    def resize(image: np.ndarray) -> np.ndarray:
        out = cv2.resize(image, size, dst=dst, interpolation=interpolation)
        return out[:, :, None] if out.ndim == 2 else out  # cv2 drops a single channel axis

    return resize


def _drop_channel_axis(image: np.ndarray) -> np.ndarray:
    return image[:, :, 0]


def _add_channel_axis(image: np.ndarray) -> np.ndarray:
    return image[:, :, None]


def _run(steps: tuple[Step, ...] | list[Step], image: np.ndarray) -> np.ndarray:
    for step in steps:
        image = step(image)
    return image


def _color_steps(
    shape: tuple[int, ...], source: ColorName | ColorOrder, target: ColorOrder, reuse: bool = False
) -> tuple[list[Step], tuple[int, ...], bool]:
    """Colour conversions for images of `shape`: (steps, the shape after them, whether an RGB<->BGR swap is left).

    The swap is left to the caller because it commutes exactly with resizing (both act per
    channel): it is done on whichever of the two images is smaller. With `reuse`, each
    conversion writes into its own buffer.
    """
    source = parse_enum(ColorOrder, source, "color", InputError)
    steps: list[Step] = []
    if len(shape) == 3 and shape[2] == 1:
        steps.append(_drop_channel_axis)
        shape = shape[:2]
    if len(shape) == 2:
        if target is ColorOrder.GRAY:
            return [*steps, _add_channel_axis], (*shape, 1), False
        return [*steps, _convert_step(cv2.COLOR_GRAY2RGB, _buffer((*shape, 3), reuse))], (*shape, 3), False  # BGR alike
    if len(shape) != 3 or shape[2] not in (3, 4):
        raise InputError(f"expected an image of shape HxW, HxWx1, HxWx3 or HxWx4; got {shape}")
    if source is ColorOrder.GRAY:
        raise InputError(f"color='gray' was given but the image has {shape[2]} channels")
    if shape[2] == 4:
        steps.append(_convert_step(cv2.COLOR_RGBA2RGB, _buffer((*shape[:2], 3), reuse)))  # drops alpha, keeps the order
        shape = (*shape[:2], 3)
    if target is ColorOrder.GRAY:
        code = cv2.COLOR_RGB2GRAY if source is ColorOrder.RGB else cv2.COLOR_BGR2GRAY
        return [*steps, _convert_step(code, _buffer(shape[:2], reuse)), _add_channel_axis], (*shape[:2], 1), False
    return steps, shape, source is not target


def _bilinear_flag(in_w: int, in_h: int, width: int, height: int) -> int:
    """OpenCV's flag for a bilinear resize from in_w x in_h to width x height.

    Shrinking by an odd whole factor on both axes (640x480 to 128x96 is 5x), each output pixel's
    centre falls on a source pixel's centre, so bilinear weights are 1 and 0 and the result is
    that pixel: INTER_NEAREST_EXACT picks it without the arithmetic, bit for bit the same (tests
    compare the two) and about twice as fast on a camera frame.
    """
    factors = (in_w // width, in_h // height)
    whole = (in_w, in_h) == (factors[0] * width, factors[1] * height)
    return cv2.INTER_NEAREST_EXACT if whole and all(f % 2 for f in factors) else cv2.INTER_LINEAR


def _stretch_steps(
    shape: tuple[int, ...],
    width: int,
    height: int,
    reuse: bool,
    interpolation: Interpolation = Interpolation.AREA,
    out: np.ndarray | None = None,
) -> list[Step]:
    """Resize HxWxC images of `shape` to width x height with the contract's interpolation.

    Area: antialiased and fast: halve with INTER_AREA while at least 2x too big, then bilinear.
    Exact 2x area halving is OpenCV's fast path (several times faster than one general
    INTER_AREA resize from 640x480) and removes the aliasing plain bilinear shows on large
    shrink factors. Linear: one bilinear pass, which reads about 4 source pixels per output
    pixel instead of every one (a 640x480 frame to 128x96 took about a quarter of the time in a
    measurement here): the detectors' default, where the frame's cost sits beside a fast model.
    `out` (reused plans) is where the last pass writes, such as the inside of a letterbox.
    """
    (in_h, in_w), channels = shape[:2], shape[2]
    steps = []
    while interpolation is Interpolation.AREA and in_w >= 2 * width and in_h >= 2 * height:
        in_h, in_w = in_h // 2, in_w // 2
        last = (in_w, in_h) == (width, height)
        buffer = out if last and out is not None else _buffer((in_h, in_w, channels), reuse)
        steps.append(_resize_step((in_w, in_h), cv2.INTER_AREA, buffer))
    if (in_w, in_h) != (width, height):
        buffer = out if out is not None else _buffer((height, width, channels), reuse)
        steps.append(_resize_step((width, height), _bilinear_flag(in_w, in_h, width, height), buffer))
    return steps


def _writes_into(window: np.ndarray | None) -> bool:
    """Whether OpenCV writes a resize straight into `window`, a strided view of a reused canvas.

    OpenCV takes row-strided views as they are; were a build to copy them instead, the
    letterbox copies the resized pixels into the canvas as before.
    """
    if window is None or window.size == 0:
        return False
    probe = np.zeros((1, 1, window.shape[2]), np.uint8)
    result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)
    return np.shares_memory(result, window)


def _resize_steps(shape: tuple[int, ...], spec: Preprocessing, reuse: bool) -> list[Step]:
    """The contract's resize mode for HxWxC images of `shape`."""
    (out_h, out_w), (in_h, in_w), channels = spec.input_size, shape[:2], shape[2]
    if (in_h, in_w) == (out_h, out_w):
        return []
    if spec.resize is ResizeMode.STRETCH:
        return _stretch_steps(shape, out_w, out_h, reuse, spec.interpolation)
    if spec.resize is ResizeMode.LETTERBOX:
        ratio = min(out_h / in_h, out_w / in_w)
        new_w, new_h = max(1, round(in_w * ratio)), max(1, round(in_h * ratio))
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
        reused = np.full((out_h, out_w, channels), spec.pad_value, np.uint8) if reuse else None
        window = reused[top : top + new_h, left : left + new_w] if reused is not None else None
        window = window if _writes_into(window) else None
        inner = _stretch_steps(shape, new_w, new_h, reuse, spec.interpolation, out=window)
        placed = bool(inner) and window is not None  # the last pass writes the canvas itself

        def letterbox(image: np.ndarray) -> np.ndarray:
            canvas = np.full((out_h, out_w, channels), spec.pad_value, np.uint8) if reused is None else reused
            resized = _run(inner, image)
            if not placed:  # the padding is never written
                canvas[top : top + new_h, left : left + new_w] = resized
            return canvas

        return [letterbox]
    if spec.resize is ResizeMode.AFFINE:
        mapping = box_mapping((in_h, in_w), spec)
        matrix = np.array([[mapping.scale_x, 0, mapping.offset_x], [0, mapping.scale_y, mapping.offset_y]])
        fill = (spec.pad_value,) * 4

        def warp(image: np.ndarray) -> np.ndarray:
            warped = cv2.warpAffine(
                image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
            )
            return warped.reshape(out_h, out_w, channels)

        return [warp]
    ratio = max(out_h / in_h, out_w / in_w)  # center crop: cover, then cut the middle
    new_w, new_h = max(out_w, round(in_w * ratio)), max(out_h, round(in_h * ratio))
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    inner = _stretch_steps(shape, new_w, new_h, reuse, spec.interpolation)
    return [lambda image: _run(inner, image)[top : top + out_h, left : left + out_w]]


class PixelPlan:
    """Geometry and colour for images of one shape: what prepare_pixels does, decided once.

    A camera sends thousands of frames of one shape: the plan checks it, picks the colour
    conversions and resize passes and binds each OpenCV call to its output once, so a frame
    costs those calls and nothing else. With `reuse`, each step writes into its own buffer
    and the result is overwritten by the next frame; without, every call allocates.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype,
        color: ColorName | ColorOrder,
        spec: Preprocessing,
        reuse: bool = False,
    ) -> None:
        _require_pixels(dtype)
        steps, shape, swap = _color_steps(tuple(shape), color, spec.color_order, reuse)
        shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]
        if swap and not shrinks:
            steps.append(_convert_step(cv2.COLOR_BGR2RGB, _buffer(shape, reuse)))  # a swap, either way round
        steps += _resize_steps(shape, spec, reuse)
        if swap and shrinks:
            steps.append(_convert_step(cv2.COLOR_BGR2RGB, _buffer((*spec.input_size, shape[2]), reuse)))
        self.steps = tuple(steps)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return _run(self.steps, image)


def to_color_order(image: np.ndarray, source: ColorName | ColorOrder, target: ColorOrder) -> np.ndarray:
    """Return `image` as uint8 HxWxC in `target` order; grayscale and 4-channel inputs are converted."""
    _require_pixels(image.dtype)
    steps, _, swap = _color_steps(image.shape, source, target)
    image = _run(steps, image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if swap else image


def resize_image(image: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """Resize HxWxC uint8 pixels to the contract's input size with its resize mode."""
    return _run(_resize_steps(image.shape, spec, reuse=False), image)


def prepare_pixels(image: np.ndarray | str | Path, spec: Preprocessing, color: ColorName = "rgb") -> np.ndarray:
    """Geometry and colour: any image -> uint8 HxWxC at the contract's size and colour order.

    A path is decoded with OpenCV (so `color` is ignored: files are read as BGR).
    """
    image, color = image_array(image, color)
    return PixelPlan(image.shape, image.dtype, color, spec)(image)


def normalize(pixels: np.ndarray, spec: Preprocessing, out: np.ndarray | None = None) -> np.ndarray:
    """Scaling and layout: uint8 pixels (HxWxC or NxHxWxC) -> float32 batch for the model.

    `out` (float32, the batch's NHWC shape) is written instead of a new array: the same
    float32 operations in place, so the same values.
    """
    batch = pixels[None] if pixels.ndim == 3 else pixels
    tensor = np.multiply(batch, np.float32(spec.scale), out=out, dtype=np.float32)
    tensor += np.float32(spec.offset)
    if spec.mean is not None and spec.std is not None:
        tensor -= np.asarray(spec.mean, dtype=np.float32)
        tensor /= np.asarray(spec.std, dtype=np.float32)
    if spec.layout is Layout.NCHW:
        tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
    return tensor


def preprocess(image: np.ndarray | str | Path, spec: Preprocessing, color: ColorName = "rgb") -> np.ndarray:
    """Apply the whole contract to one image: colour order, resize, scaling, layout.

    Args:
        image: a path or an H x W (x 1, 3 or 4) uint8 array.
        spec: the contract's `Preprocessing`.
        color: the array's colour order, "rgb" or "bgr".

    Returns:
        A float32 tensor of shape (1, *spec.input_shape): what training, calibration and inference all feed.

    Raises:
        InputError: an unreadable file or an array that is not an image.
    """
    return normalize(prepare_pixels(image, spec, color), spec)


class BoxMapping:
    """Where the contract's resize puts source pixels: input = source * scale + offset, per axis.

    Boxes are in continuous pixel coordinates (pixel i spans [i, i+1]), in which OpenCV's
    resize is exactly this affine map; detections go back to the source with `to_source`.
    """

    __slots__ = ("scale_x", "scale_y", "offset_x", "offset_y")

    def __init__(self, scale_x: float, scale_y: float, offset_x: float, offset_y: float) -> None:
        self.scale_x, self.scale_y, self.offset_x, self.offset_y = scale_x, scale_y, offset_x, offset_y

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x0 y0 x1 y1 source boxes -> model-input pixels."""
        scale = np.array([self.scale_x, self.scale_y] * 2, np.float32)
        offset = np.array([self.offset_x, self.offset_y] * 2, np.float32)
        return np.asarray(boxes, np.float32).reshape(-1, 4) * scale + offset

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x0 y0 x1 y1 model-input boxes -> source pixels (the inverse of `to_input`)."""
        scale = np.array([self.scale_x, self.scale_y] * 2, np.float32)
        offset = np.array([self.offset_x, self.offset_y] * 2, np.float32)
        return (np.asarray(boxes, np.float32).reshape(-1, 4) - offset) / scale

    def normalized_to_source(
        self, input_size: tuple[int, int], source_size: tuple[int, int]
    ) -> Callable[[np.ndarray], np.ndarray]:
        """A function for a camera's every frame: (..., 4) boxes normalized to the model input -> source pixels,
        clipped to the source (`to_source`'s float32 steps, with its constants made once)."""
        height, width = input_size
        pixels = np.array([width, height, width, height], np.float32)
        offset = np.array([self.offset_x, self.offset_y] * 2, np.float32)
        scale = np.array([self.scale_x, self.scale_y] * 2, np.float32)
        limit = np.array([source_size[1], source_size[0], source_size[1], source_size[0]], np.float32)

        def to_source(boxes: np.ndarray) -> np.ndarray:
            return np.minimum(np.maximum((boxes * pixels - offset) / scale, 0), limit)

        return to_source

    def points_to_source(self, points: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
        """(..., 2) x y points normalized to the model input -> the source image's pixels (not clipped: a
        keypoint may lie outside the image, as an occluded ear does)."""
        height, width = input_size
        pixels = np.array([width, height], np.float32)
        offset = np.array([self.offset_x, self.offset_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y], np.float32)
        return (np.asarray(points, np.float32) * pixels - offset) / scale


def box_mapping(source_size: tuple[int, int], spec: Preprocessing) -> BoxMapping:
    """The map `_resize_steps` applies to an image of `source_size` (height, width), as numbers."""
    (out_h, out_w), (in_h, in_w) = spec.input_size, source_size
    if (in_h, in_w) == (out_h, out_w):
        return BoxMapping(1.0, 1.0, 0.0, 0.0)
    if spec.resize is ResizeMode.STRETCH:
        return BoxMapping(out_w / in_w, out_h / in_h, 0.0, 0.0)
    if spec.resize is ResizeMode.LETTERBOX:
        ratio = min(out_h / in_h, out_w / in_w)
        new_w, new_h = max(1, round(in_w * ratio)), max(1, round(in_h * ratio))
        return BoxMapping(new_w / in_w, new_h / in_h, float((out_w - new_w) // 2), float((out_h - new_h) // 2))
    if spec.resize is ResizeMode.AFFINE:  # MediaPipe's: the image's rectangle, grown to the input's aspect, onto it
        ratio = min(out_h / in_h, out_w / in_w)
        return BoxMapping(ratio, ratio, (out_w - in_w * ratio) / 2, (out_h - in_h * ratio) / 2)
    ratio = max(out_h / in_h, out_w / in_w)
    new_w, new_h = max(out_w, round(in_w * ratio)), max(out_h, round(in_h * ratio))
    return BoxMapping(new_w / in_w, new_h / in_h, -float((new_w - out_w) // 2), -float((new_h - out_h) // 2))
