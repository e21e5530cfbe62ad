"""What a model's input or output tensor is: name, shape, dtype and its affine quantization, if any."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1 (or 1 for batch in fixed-batch formats) where dynamic
    dtype: np.dtype
    quantization: QuantParams | None = None
