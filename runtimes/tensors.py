"""What a model's input or output tensor is: name, shape, dtype and its affine quantization, if any."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of a tensor: real = (q - zero_point) * scale.

    Attributes:
        scale: The real value of one quantized step.
        zero_point: The quantized value of real 0.
    """

    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    """A model input's or output's name, shape, type and quantization.

    Attributes:
        name: The tensor's name in the file.
        shape: Its shape; -1 (or 1 for the batch in fixed-batch formats) where dynamic.
        dtype: Its numpy type.
        quantization: Its int8/uint8 scale and zero point, or None for a float tensor.
    """

    name: str
    shape: tuple[int, ...]  # -1 (or 1 for batch in fixed-batch formats) where dynamic
    dtype: np.dtype
    quantization: QuantParams | None = None
