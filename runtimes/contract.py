"""The preprocessing contract: what a model expects, carried inside every artifact.

A model is only correct together with the exact preprocessing it was trained with.
`Preprocessing` describes it; `ModelContract` adds labels, names and quantization and
serialises to JSON so converters can embed it and runtimes can read it back.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any, Iterable, Sequence

from runtimes.errors import ContractError
from runtimes.heads import HEADS

CONTRACT_SCHEMA_VERSION = 1
MAX_CONTRACT_BYTES = 1 << 20  # a contract is a few kB; anything near this is not one
MAX_CONTRACT_DEPTH = 8  # the deepest real contract nests 4 levels (quantization options)
MAX_INPUT_SIDE = 16384
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 1000
DIGEST_KEY = "sha256"  # of the canonical JSON without this key: a flipped byte is caught at load


class ColorOrder(str, Enum):
    RGB = "rgb"
    BGR = "bgr"
    GRAY = "gray"


class ResizeMode(str, Enum):
    STRETCH = "stretch"
    LETTERBOX = "letterbox"
    CENTER_CROP = "center_crop"
    # MediaPipe's ImageToTensor with keep_aspect_ratio: the whole image warped (bilinear) onto the input, centred,
    # its aspect kept, the padding offsets left fractional, not rounded to a resized image's whole pixels
    AFFINE = "affine"


class Interpolation(str, Enum):
    """How a shrinking resize reads the source: what training saw, so what the device must do."""

    AREA = "area"  # antialiased: exact 2x area halvings, then bilinear (every source pixel counts)
    LINEAR = "linear"  # one bilinear pass, as Ultralytics, TensorFlow and MediaPipe resize: fastest, aliases past 2x


class Layout(str, Enum):
    NHWC = "nhwc"
    NCHW = "nchw"


def parse_enum(enum_type: type[Enum], value: Any, what: str, error: type[Exception] = ContractError) -> Any:
    """Turn a string (or enum) into `enum_type`, or raise `error` naming the valid values."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        valid = ", ".join(repr(member.value) for member in enum_type)
        raise error(f"invalid {what} {value!r}; valid values: {valid}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value: Any, what: str) -> float:
    """`value` as a finite float; bools, strings and non-finite numbers are contract errors."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ContractError(f"invalid {what} {value!r}; it must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ContractError(f"invalid {what} {value!r}; it must be finite")
    return number


def _reals(values: Any, what: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence):
        raise ContractError(f"invalid {what} {values!r}; give one number per channel")
    return tuple(_real(v, what) for v in values)


def _size_pair(value: int | Sequence[int]) -> tuple[int, int]:
    problem = f"invalid input_size {value!r}; give an int or (height, width) of positive ints up to {MAX_INPUT_SIDE}"
    if _is_int(value):
        pair = (int(value), int(value))  # type: ignore[arg-type]
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and all(_is_int(v) for v in value):
        pair = tuple(int(v) for v in value)
    else:
        raise ContractError(problem)
    if len(pair) != 2 or any(not 1 <= v <= MAX_INPUT_SIDE for v in pair):
        raise ContractError(problem)
    return pair  # type: ignore[return-value]


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the model's input tensor.

    A pixel value p (0..255, in `color_order`) becomes ``p * scale + offset``, then
    ``(x - mean) / std`` per channel when `mean`/`std` are given (torchvision style).

    Examples:
        >>> Preprocessing(input_size=96, scale=1 / 127.5, offset=-1.0).output_range()
        ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))

    Attributes:
        input_size: (height, width) of the model's input.
        color_order: The channel order the model expects (RGB or BGR).
        resize: How an image of another shape is fitted (stretch, letterbox, center crop, or affine: MediaPipe's
            ImageToTensor warp, a letterbox with fractional padding).
        scale: The factor each pixel value is multiplied by.
        offset: Added after `scale`.
        mean: Per-channel mean subtracted after scale and offset, or None.
        std: Per-channel divisor after `mean`, or None.
        layout: NHWC or NCHW.
        dtype: The input tensor's type in the float model.
        pad_value: The pixel value letterboxing pads with.
        interpolation: The resize filter ("area" or "linear").
    """

    input_size: tuple[int, int]
    color_order: ColorOrder = ColorOrder.RGB
    resize: ResizeMode = ResizeMode.STRETCH
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: Layout = Layout.NHWC
    dtype: str = "float32"
    pad_value: int = 0
    interpolation: Interpolation = Interpolation.AREA  # absent from contracts written before it: they all used area

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "input_size", _size_pair(self.input_size))
        set_(self, "color_order", parse_enum(ColorOrder, self.color_order, "color_order"))
        set_(self, "resize", parse_enum(ResizeMode, self.resize, "resize mode"))
        set_(self, "layout", parse_enum(Layout, self.layout, "layout"))
        set_(self, "interpolation", parse_enum(Interpolation, self.interpolation, "interpolation"))
        if self.dtype != "float32":
            raise ContractError(
                f"invalid dtype {self.dtype!r}; the contract describes float32 input "
                "(quantized models are fed by the runtime, which quantizes for you)"
            )
        set_(self, "scale", _real(self.scale, "scale"))
        if self.scale == 0:
            raise ContractError(f"invalid scale {self.scale!r}; it must be finite and non-zero")
        set_(self, "offset", _real(self.offset, "offset"))
        if (self.mean is None) != (self.std is None):
            raise ContractError("mean and std must be given together (or neither)")
        if self.mean is not None and self.std is not None:
            mean = _reals(self.mean, "mean")
            std = _reals(self.std, "std")
            if len(mean) != self.channels or len(std) != self.channels:
                raise ContractError(
                    f"mean and std need {self.channels} value(s) for color_order "
                    f"{self.color_order.value!r}; got {len(mean)} and {len(std)}"
                )
            if any(s <= 0 or not math.isfinite(s) for s in std):
                raise ContractError(f"invalid std {std!r}; every value must be positive")
            set_(self, "mean", mean)
            set_(self, "std", std)
        if not (_is_int(self.pad_value) and 0 <= self.pad_value <= 255):
            raise ContractError(f"invalid pad_value {self.pad_value!r}; it must be an integer in 0..255")
        set_(self, "pad_value", int(self.pad_value))
        low, high = self.output_range()
        if not all(math.isfinite(v) and abs(v) < 1e30 for v in low + high):
            raise ContractError(
                f"scale {self.scale!r}, offset {self.offset!r}, mean and std map pixels outside the float range; "
                "the contract is damaged"
            )

    @property
    def channels(self) -> int:
        return 1 if self.color_order is ColorOrder.GRAY else 3

    @property
    def height(self) -> int:
        return self.input_size[0]

    @property
    def width(self) -> int:
        return self.input_size[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one preprocessed image, without the batch dimension."""
        h, w = self.input_size
        return (self.channels, h, w) if self.layout is Layout.NCHW else (h, w, self.channels)

    def output_range(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (low, high) of the values this contract can produce."""
        ends = sorted((0.0 * self.scale + self.offset, 255.0 * self.scale + self.offset))
        lows, highs = [], []
        for c in range(self.channels):
            lo, hi = ends
            if self.mean is not None and self.std is not None:
                lo, hi = (lo - self.mean[c]) / self.std[c], (hi - self.mean[c]) / self.std[c]
            lows.append(lo)
            highs.append(hi)
        return tuple(lows), tuple(highs)

    def with_size(self, input_size: int | Sequence[int]) -> "Preprocessing":
        return replace(self, input_size=_size_pair(input_size))

    def geometry(self) -> tuple[Any, ...]:
        """What decides the pixels before scaling: a dataset and a contract must agree on it."""
        return self.input_size, self.color_order, self.resize, self.interpolation

    def describe_geometry(self) -> str:
        return f"{self.input_size} {self.color_order.value} ({self.resize.value}, {self.interpolation.value})"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("color_order", "resize", "layout", "interpolation"):
            data[key] = data[key].value
        if self.interpolation is Interpolation.AREA:  # the default: earlier contracts (and readers) stay as they were
            del data["interpolation"]
        data["input_size"] = list(self.input_size)
        for key in ("mean", "std"):
            data[key] = list(data[key]) if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        if not isinstance(data, dict):
            raise ContractError(f"preprocessing must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ContractError(
                f"preprocessing has unknown field(s) {sorted(unknown)}; it was written by a newer "
                "edgekit: upgrade edgekit to run this model with its exact preprocessing"
            )
        if "input_size" not in data:
            raise ContractError("preprocessing is missing 'input_size'")
        return cls(**data)


@dataclass(frozen=True)
class ModelContract:
    """Everything a runtime needs besides the weights: preprocessing, labels, provenance.

    Examples:
        >>> c = ModelContract(Preprocessing(input_size=32), labels=("cat", "dog"))
        >>> ModelContract.from_json(c.to_json()) == c
        True

    Attributes:
        preprocessing: How pixels become the input tensor.
        labels: The class names, in the outputs' index order.
        model_name: The model's name, used in file names and reports.
        task: The task module that decodes the outputs ("classification", "detection").
        edgekit_version: The edgekit that wrote the contract.
        quantization: How the file was quantized (mode, calibration, float scopes).
        schema: The contract's schema version.
        head: What the outputs mean, in the task's own fields (detection's boxes).
    """

    preprocessing: Preprocessing
    labels: tuple[str, ...]
    model_name: str = "model"
    task: str = "classification"
    edgekit_version: str = ""
    quantization: dict[str, Any] = field(default_factory=dict)
    schema: int = CONTRACT_SCHEMA_VERSION
    head: dict[str, Any] = field(
        default_factory=dict
    )  # what the outputs mean, the task's own fields (detection's boxes)

    def __post_init__(self) -> None:
        if not isinstance(self.preprocessing, Preprocessing):
            raise ContractError(f"preprocessing must be a Preprocessing, got {type(self.preprocessing).__name__}")
        labels = self.labels
        if isinstance(labels, (str, bytes, dict, set, frozenset)) or not isinstance(labels, Iterable):
            raise ContractError(f"labels must be a list of strings, got {type(labels).__name__} {labels!r:.80}")
        labels = tuple(labels)
        bad = [label for label in labels if not isinstance(label, str)]
        if bad:
            raise ContractError(
                f"labels must be strings; got {bad[0]!r} ({type(bad[0]).__name__}): pass labels=[str(x) ...]"
            )
        if len(labels) > MAX_LABELS or any(len(label) > MAX_LABEL_CHARS for label in labels):
            raise ContractError(f"labels too many or too long (at most {MAX_LABELS} of {MAX_LABEL_CHARS} characters)")
        object.__setattr__(self, "labels", labels)
        for name in ("model_name", "task", "edgekit_version"):
            if not isinstance(getattr(self, name), str):
                raise ContractError(f"{name} must be a string, got {getattr(self, name)!r:.80}")
        if not isinstance(self.quantization, dict):
            raise ContractError(f"quantization must be a JSON object, got {self.quantization!r:.80}")
        if not _is_int(self.schema) or self.schema < 0:
            raise ContractError(f"invalid contract schema {self.schema!r}; it must be a non-negative integer")
        if not self.labels:
            raise ContractError("a contract needs at least one label")
        if len(set(self.labels)) != len(self.labels):
            raise ContractError(f"labels must be unique; got {list(self.labels)}")
        if not isinstance(self.head, dict):
            raise ContractError(f"head must be a JSON object, got {self.head!r:.80}")
        if self.task not in HEADS:
            raise ContractError(f"invalid task {self.task!r}; valid tasks: {', '.join(HEADS.names())}")
        HEADS.get(self.task).check(self.head)  # the task checks its own fields

    def with_quantization(self, **info: Any) -> "ModelContract":
        return replace(self, quantization=dict(info))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "edgekit_version": self.edgekit_version,
            "model_name": self.model_name,
            "task": self.task,
            "labels": list(self.labels),
            "preprocessing": self.preprocessing.to_dict(),
            "quantization": dict(self.quantization),
            **({"head": dict(self.head)} if self.head else {}),  # classification contracts stay as they were
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelContract":
        if not isinstance(data, dict):
            raise ContractError(f"the contract must be a JSON object, got {type(data).__name__}")
        schema = data.get("schema", 0)
        if not _is_int(schema) or schema < 0:
            raise ContractError(f"invalid contract schema {schema!r}; it must be a non-negative integer")
        if schema > CONTRACT_SCHEMA_VERSION:
            raise ContractError(
                f"contract schema {schema} is newer than this edgekit understands "
                f"({CONTRACT_SCHEMA_VERSION}); upgrade edgekit"
            )
        for key in ("preprocessing", "labels"):
            if key not in data:
                raise ContractError(f"embedded contract is missing {key!r}")
        quantization = data.get("quantization")
        try:
            return cls(
                preprocessing=Preprocessing.from_dict(data["preprocessing"]),
                labels=data["labels"],
                model_name=data.get("model_name", "model"),
                task=data.get("task", "classification"),
                edgekit_version=data.get("edgekit_version", ""),
                quantization={} if quantization is None else quantization,
                schema=schema,
                head=data.get("head") or {},
            )
        except TypeError as exc:
            raise ContractError(f"embedded contract is malformed: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelContract":
        """Parse and fully validate an embedded contract; anything damaged is a ContractError.

        A contract written with a digest (every artifact since edgekit 0.3) must match it, so a
        flipped byte that still parses (a label's letter) is caught here, not at predict.
        """
        if len(text) > MAX_CONTRACT_BYTES:
            raise ContractError(
                f"embedded contract is {len(text)} bytes, over the {MAX_CONTRACT_BYTES} a contract can be"
            )
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ContractError(f"embedded contract is not valid JSON: {exc}") from None
        except RecursionError:
            raise ContractError("embedded contract is not a contract: its JSON nests too deeply") from None
        if not isinstance(data, dict):
            raise ContractError("embedded contract is not a JSON object")
        if _depth(data) > MAX_CONTRACT_DEPTH:
            raise ContractError(
                f"embedded contract nests deeper than {MAX_CONTRACT_DEPTH} levels; it is not a contract"
            )
        digest = data.pop(DIGEST_KEY, None)
        if digest is not None and digest != _digest(data):
            raise ContractError(
                "embedded contract is damaged (its SHA-256 does not match its content): the file was corrupted "
                "in storage or transfer; copy or export it again"
            )
        return cls.from_dict(data)

    def to_signed_json(self) -> str:
        """The JSON that artifacts embed: the contract plus a digest of it."""
        data = self.to_dict()
        data[DIGEST_KEY] = _digest(data)
        return json.dumps(data, sort_keys=True)


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest
