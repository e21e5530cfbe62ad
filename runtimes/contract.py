"""The preprocessing contract: what a model expects, carried inside every artifact.

A model is only correct together with the exact preprocessing it was trained with.
`Preprocessing` describes it; `ModelContract` adds labels, names and quantization and
serialises to JSON so converters can embed it and runtimes can read it back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any, Sequence

from runtimes.errors import ContractError

CONTRACT_SCHEMA_VERSION = 1
TASKS = ("classification",)


class ColorOrder(str, Enum):
    RGB = "rgb"
    BGR = "bgr"
    GRAY = "gray"


class ResizeMode(str, Enum):
    STRETCH = "stretch"
    LETTERBOX = "letterbox"
    CENTER_CROP = "center_crop"


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


def _size_pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(int(v) for v in value)
    if len(pair) != 2 or any(v < 1 for v in pair):
        raise ContractError(
            f"invalid input_size {value!r}; give an int or (height, width) of positive ints"
        )
    return pair  # type: ignore[return-value]


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the model's input tensor.

    A pixel value p (0..255, in `color_order`) becomes ``p * scale + offset``, then
    ``(x - mean) / std`` per channel when `mean`/`std` are given (torchvision style).

    Example:
        >>> Preprocessing(input_size=96, scale=1 / 127.5, offset=-1.0).output_range()
        ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
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

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "input_size", _size_pair(self.input_size))
        set_(self, "color_order", parse_enum(ColorOrder, self.color_order, "color_order"))
        set_(self, "resize", parse_enum(ResizeMode, self.resize, "resize mode"))
        set_(self, "layout", parse_enum(Layout, self.layout, "layout"))
        if self.dtype != "float32":
            raise ContractError(
                f"invalid dtype {self.dtype!r}; the contract describes float32 input "
                "(quantized models are fed by the runtime, which quantizes for you)"
            )
        if not (math.isfinite(self.scale) and self.scale != 0):
            raise ContractError(f"invalid scale {self.scale!r}; it must be finite and non-zero")
        if not math.isfinite(self.offset):
            raise ContractError(f"invalid offset {self.offset!r}; it must be finite")
        if (self.mean is None) != (self.std is None):
            raise ContractError("mean and std must be given together (or neither)")
        if self.mean is not None and self.std is not None:
            mean = tuple(float(v) for v in self.mean)
            std = tuple(float(v) for v in self.std)
            if len(mean) != self.channels or len(std) != self.channels:
                raise ContractError(
                    f"mean and std need {self.channels} value(s) for color_order "
                    f"{self.color_order.value!r}; got {len(mean)} and {len(std)}"
                )
            if any(s <= 0 or not math.isfinite(s) for s in std):
                raise ContractError(f"invalid std {std!r}; every value must be positive")
            set_(self, "mean", mean)
            set_(self, "std", std)
        if not 0 <= int(self.pad_value) <= 255:
            raise ContractError(f"invalid pad_value {self.pad_value!r}; it must be in 0..255")

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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("color_order", "resize", "layout"):
            data[key] = data[key].value
        data["input_size"] = list(self.input_size)
        for key in ("mean", "std"):
            data[key] = list(data[key]) if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
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

    Example:
        >>> c = ModelContract(Preprocessing(input_size=32), labels=("cat", "dog"))
        >>> ModelContract.from_json(c.to_json()) == c
        True
    """

    preprocessing: Preprocessing
    labels: tuple[str, ...]
    model_name: str = "model"
    task: str = "classification"
    edgekit_version: str = ""
    quantization: dict[str, Any] = field(default_factory=dict)
    schema: int = CONTRACT_SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        if not self.labels:
            raise ContractError("a contract needs at least one label")
        if len(set(self.labels)) != len(self.labels):
            raise ContractError(f"labels must be unique; got {list(self.labels)}")
        if self.task not in TASKS:
            raise ContractError(f"invalid task {self.task!r}; valid tasks: {', '.join(TASKS)}")

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
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelContract":
        schema = int(data.get("schema", 0))
        if schema > CONTRACT_SCHEMA_VERSION:
            raise ContractError(
                f"contract schema {schema} is newer than this edgekit understands "
                f"({CONTRACT_SCHEMA_VERSION}); upgrade edgekit"
            )
        try:
            return cls(
                preprocessing=Preprocessing.from_dict(data["preprocessing"]),
                labels=tuple(data["labels"]),
                model_name=data.get("model_name", "model"),
                task=data.get("task", "classification"),
                edgekit_version=data.get("edgekit_version", ""),
                quantization=dict(data.get("quantization") or {}),
                schema=schema,
            )
        except KeyError as exc:
            raise ContractError(f"embedded contract is missing {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ContractError(f"embedded contract is malformed: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelContract":
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ContractError(f"embedded contract is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ContractError("embedded contract is not a JSON object")
        return cls.from_dict(data)
