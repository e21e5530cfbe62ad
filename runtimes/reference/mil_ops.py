"""CoreML ML program (MIL) operations in numpy, each as Apple's MIL op reference defines it.

The reference executor (`runtimes.reference.mil_program`) evaluates a package's ops in order with
these functions, so a CoreML artifact can be checked numerically where CoreML cannot run.
Tensors are NCHW as in MIL. Each function takes the op's inputs by their MIL names.
Adding an op means adding one function here, registered under its MIL name.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from runtimes.registry import Registry

MILOp = Callable[..., Any]
MIL_OPS: Registry[MILOp] = Registry("MIL op")


def mil_op(*names: str) -> Callable[[MILOp], MILOp]:
    """Register a function as the numpy implementation of the MIL op(s) `names`."""

    def decorator(fn: MILOp) -> MILOp:
        for name in names:
            MIL_OPS.register(name)(fn)
        return fn

    return decorator


def _axes(value: Any, rank: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(int(a) % rank for a in np.atleast_1d(value))


# -- constants and weight decompression -------------------------------------------------


@mil_op("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data: np.ndarray, zero_point: Any, scale: Any, axis: int) -> np.ndarray:
    """(q - zero_point) * scale, with zero_point/scale scalars or vectors along `axis` (iOS16)."""
    shape = [1] * quantized_data.ndim
    shape[int(axis) % quantized_data.ndim] = -1
    zero_point, scale = np.asarray(zero_point), np.asarray(scale)
    zero_point = zero_point.reshape(shape) if zero_point.size > 1 else zero_point
    scale = scale.reshape(shape) if scale.size > 1 else scale
    out = (quantized_data.astype(np.float32) - zero_point.astype(np.float32)) * scale.astype(np.float32)
    return out.astype(scale.dtype)


def _along(value: Any, rank: int, axis: Any) -> np.ndarray:
    """A scalar, or a vector shaped to broadcast along `axis` of a rank-`rank` tensor."""
    value = np.asarray(value)
    if value.size == 1 or axis is None:
        return value
    shape = [1] * rank
    shape[int(axis) % rank] = -1
    return value.reshape(shape)


@mil_op("quantize")
def quantize(input: np.ndarray, scale: Any, output_dtype: str, zero_point: Any = None, axis: Any = None) -> np.ndarray:
    """clip(round(input / scale) + zero_point) into int8 or uint8 (iOS17 activation quantization)."""
    dtype = np.dtype(np.int8 if output_dtype == "int8" else np.uint8)
    scale = _along(scale, input.ndim, axis).astype(np.float32)
    offset = 0.0 if zero_point is None else _along(zero_point, input.ndim, axis).astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(np.rint(input.astype(np.float32) / scale) + offset, info.min, info.max).astype(dtype)


@mil_op("dequantize")
def dequantize(input: np.ndarray, scale: Any, zero_point: Any = None, axis: Any = None) -> np.ndarray:
    """(input - zero_point) * scale, in the scale's float type (iOS17)."""
    scale = _along(scale, input.ndim, axis)
    offset = 0.0 if zero_point is None else _along(zero_point, input.ndim, axis).astype(np.float32)
    return ((input.astype(np.float32) - offset) * scale.astype(np.float32)).astype(scale.dtype)


def unpack_indices(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """Indices packed LSB-first into bytes (MIL's constexpr_lut_to_dense layout) -> one per element."""
    bits = np.unpackbits(packed.astype(np.uint8), bitorder="little")[: nbits * count].reshape(count, nbits)
    return (bits.astype(np.uint32) << np.arange(nbits, dtype=np.uint32)).sum(axis=1)


@mil_op("constexpr_lut_to_dense")
def constexpr_lut_to_dense(
    indices: np.ndarray, lut: np.ndarray, shape: np.ndarray | None = None, vector_axis: Any = None
) -> np.ndarray:
    """Palettized weights: each element is lut[index].

    iOS16: `indices` are packed bits, `lut` one palette, `shape` the output shape.
    iOS18: `indices` are unpacked with the output's shape and `lut` holds one palette per
    block, shaped [*blocks per axis, palette size, vector size].
    """
    if shape is not None:
        nbits = int(round(math.log2(lut.shape[0])))
        count = int(np.prod(shape))
        return lut[unpack_indices(indices, nbits, count)].reshape(tuple(int(s) for s in shape))
    if lut.shape[-1] != 1:
        raise NotImplementedError(
            "vector palettization (lut vector size > 1) is not supported by the reference executor"
        )
    out_shape = indices.shape
    blocks = lut.shape[:-2]
    block = [o // b for o, b in zip(out_shape, blocks)]
    # block index of every element along each axis, then a gather from that block's palette
    grids = np.meshgrid(*[np.arange(o) // s for o, s in zip(out_shape, block)], indexing="ij")
    return lut[(*grids, indices.astype(np.intp), 0)]


@mil_op("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(
    data: np.ndarray, scale: np.ndarray, offset: np.ndarray | None = None
) -> np.ndarray:
    """(data - offset) * scale, with scale/offset given per block of each axis (iOS18)."""

    def expand(values: np.ndarray) -> np.ndarray:
        for axis, (full, blocks) in enumerate(zip(data.shape, values.shape)):
            values = np.repeat(values, full // blocks, axis=axis)
        return values

    out = data.astype(np.float32)
    if offset is not None:
        out = out - expand(np.asarray(offset)).astype(np.float32)
    return (out * expand(np.asarray(scale)).astype(np.float32)).astype(scale.dtype)


@mil_op("constexpr_sparse_to_dense")
def constexpr_sparse_to_dense(nonzero_data: np.ndarray, mask: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Sparse weights: `mask` holds one bit per element (LSB first), set where a value is stored."""
    count = int(np.prod(shape))
    present = np.unpackbits(mask.astype(np.uint8), bitorder="little")[:count].astype(bool)
    out = np.zeros(count, nonzero_data.dtype)
    out[present] = nonzero_data
    return out.reshape(tuple(int(s) for s in shape))


# -- elementwise -------------------------------------------------------------------------

mil_op("add")(lambda x, y: np.add(x, y))
mil_op("sub")(lambda x, y: np.subtract(x, y))
mil_op("mul")(lambda x, y: np.multiply(x, y))
mil_op("real_div")(lambda x, y: np.divide(x, y))
mil_op("maximum")(lambda x, y: np.maximum(x, y))
mil_op("minimum")(lambda x, y: np.minimum(x, y))
mil_op("pow")(lambda x, y: np.power(x, y))
mil_op("sqrt")(lambda x: np.sqrt(x))
mil_op("rsqrt")(lambda x, epsilon=1e-12: 1.0 / np.sqrt(x + epsilon))
mil_op("exp")(lambda x: np.exp(x))
mil_op("abs")(lambda x: np.abs(x))
mil_op("relu")(lambda x: np.maximum(x, 0))
mil_op("relu6")(lambda x: np.clip(x, 0, 6))
mil_op("tanh")(lambda x: np.tanh(x))
mil_op("clip")(lambda x, alpha, beta: np.clip(x, alpha, beta))
mil_op("leaky_relu")(lambda x, alpha=0.01: np.where(x >= 0, x, alpha * x))
mil_op("elu")(lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x) - 1)))
mil_op("sigmoid_hard")(lambda x, alpha=0.2, beta=0.5: np.clip(alpha * x + beta, 0, 1))


@mil_op("sigmoid")
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@mil_op("silu")
def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


@mil_op("softmax")
def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=int(axis), keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=int(axis), keepdims=True)


_CAST_TYPES = {
    "fp16": np.float16,
    "fp32": np.float32,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}


@mil_op("cast")
def cast(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype not in _CAST_TYPES:
        raise NotImplementedError(f"cast to {dtype!r} is not supported by the reference executor")
    if np.issubdtype(_CAST_TYPES[dtype], np.integer) and np.issubdtype(np.asarray(x).dtype, np.floating):
        x = np.trunc(x)  # MIL casts float -> int toward zero
    return np.asarray(x).astype(_CAST_TYPES[dtype])


# -- reductions and shape ops ------------------------------------------------------------


def _reduce(fn: Callable[..., np.ndarray]) -> MILOp:
    def reduce(x: np.ndarray, axes: Any = None, keep_dims: bool = False) -> np.ndarray:
        return fn(x, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims))

    return reduce


mil_op("reduce_mean")(_reduce(np.mean))
mil_op("reduce_max")(_reduce(np.max))
mil_op("reduce_min")(_reduce(np.min))
mil_op("reduce_sum")(_reduce(np.sum))


@mil_op("reshape")
def reshape(x: np.ndarray, shape: Any) -> np.ndarray:
    shape = [int(s) for s in np.atleast_1d(shape)]
    if len(shape) == x.ndim:  # 0 inherits the input's dimension when the ranks match
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@mil_op("squeeze")
def squeeze(x: np.ndarray, axes: Any = None) -> np.ndarray:
    return np.squeeze(x, axis=_axes(axes, x.ndim))


@mil_op("expand_dims")
def expand_dims(x: np.ndarray, axes: Any) -> np.ndarray:
    rank = x.ndim + len(np.atleast_1d(axes))
    return np.expand_dims(x, axis=_axes(axes, rank))


mil_op("transpose")(lambda x, perm: np.transpose(x, [int(p) for p in perm]))
mil_op("identity")(lambda x: x)


@mil_op("concat")
def concat(values: list[np.ndarray], axis: int, interleave: bool = False) -> np.ndarray:
    if not interleave:
        return np.concatenate(values, axis=int(axis))
    axis = int(axis) % values[0].ndim  # interleave: one slice of each input in turn
    stacked = np.stack(values, axis=axis + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return stacked.reshape(shape)


@mil_op("slice_by_index")
def slice_by_index(
    x: np.ndarray,
    begin: Any,
    end: Any,
    stride: Any = None,
    begin_mask: Any = None,
    end_mask: Any = None,
    squeeze_mask: Any = None,
) -> np.ndarray:
    rank = x.ndim
    stride = np.ones(rank, int) if stride is None else np.asarray(stride, int)
    begin_mask = np.zeros(rank, bool) if begin_mask is None else np.asarray(begin_mask, bool)
    end_mask = np.zeros(rank, bool) if end_mask is None else np.asarray(end_mask, bool)
    squeeze_mask = np.zeros(rank, bool) if squeeze_mask is None else np.asarray(squeeze_mask, bool)
    index = []
    for axis in range(rank):
        if squeeze_mask[axis]:
            index.append(int(begin[axis]))
            continue
        start = None if begin_mask[axis] else int(begin[axis])
        stop = None if end_mask[axis] else int(end[axis])
        index.append(slice(start, stop, int(stride[axis])))
    return x[tuple(index)]


@mil_op("pad")
def pad(x: np.ndarray, pad: Any, mode: str = "constant", constant_val: float = 0.0) -> np.ndarray:
    """`pad` lists (before, after) pairs for the last len(pad)/2 axes."""
    pairs = np.asarray(pad, int).reshape(-1, 2)
    widths = [(0, 0)] * (x.ndim - len(pairs)) + [tuple(p) for p in pairs]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=constant_val)
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[mode])
    raise NotImplementedError(f"pad mode {mode!r} is not supported by the reference executor")


# -- convolution, pooling, matmul ------------------------------------------------------


def spatial_padding(
    in_size: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    pad_type: str,
    pad: Any = None,
    ceil_mode: bool = False,
) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis for MIL's pad_type valid / same / same_lower / custom."""
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if pad_type in ("same", "same_lower"):
        pads = []
        for size, k, s in zip(in_size, effective, strides):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if pad_type == "same" else (big, small))  # same: the extra goes after
        return pads
    if pad_type == "valid":
        pads = [(0, 0)] * len(in_size)
    elif pad_type == "custom":
        pads = [tuple(int(v) for v in pair) for pair in np.asarray(pad, int).reshape(-1, 2)]
    else:
        raise NotImplementedError(f"pad_type {pad_type!r} is not supported by the reference executor")
    if ceil_mode:  # pad the end so that a partial last window still produces an output
        pads = [
            (b, a + max(0, (math.ceil((size + b + a - k) / s)) * s + k - (size + b + a)))
            for (b, a), size, k, s in zip(pads, in_size, effective, strides)
        ]
    return pads


def _taps(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], dilations: tuple[int, int]):
    """Yield ((i, j), view) for each kernel tap: the input positions that tap reads, strided."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    out_h = (x.shape[2] - (kh - 1) * dh - 1) // sh + 1
    out_w = (x.shape[3] - (kw - 1) * dw - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield (
                (i, j),
                x[:, :, i * dh : i * dh + (out_h - 1) * sh + 1 : sh, j * dw : j * dw + (out_w - 1) * sw + 1 : sw],
            )


def _pair(value: Any, default: int = 1) -> tuple[int, int]:
    if value is None:
        return (default, default)
    values = [int(v) for v in np.atleast_1d(value)]  # one value for both axes, or (height, width)
    return (values[0], values[-1])


@mil_op("conv")
def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    strides: Any = None,
    pad_type: str = "valid",
    pad: Any = None,
    dilations: Any = None,
    groups: int = 1,
) -> np.ndarray:
    """2-D convolution, NCHW, weight (C_out, C_in / groups, kH, kW); 1-D conv as a 2-D one of height 1."""
    if x.ndim == 3:
        out = conv(
            x[:, :, None],
            weight[:, :, None],
            bias,
            [1, *np.atleast_1d(strides if strides is not None else 1)],
            pad_type,
            None if pad is None else [0, 0, *np.atleast_1d(pad)],
            [1, *np.atleast_1d(dilations if dilations is not None else 1)],
            groups,
        )
        return out[:, :, 0]
    if x.ndim != 4:
        raise NotImplementedError(f"conv over {x.ndim - 2} spatial axes is not supported by the reference executor")
    groups = int(groups)
    kernel = weight.shape[2:]
    strides, dilations = _pair(strides), _pair(dilations)
    pads = spatial_padding(x.shape[2:], kernel, strides, dilations, pad_type, pad)
    x = np.pad(x.astype(np.float32, copy=False), [(0, 0), (0, 0), *pads])
    w = weight.astype(np.float32, copy=False)
    n, c_in = x.shape[:2]
    c_out, c_group = w.shape[:2]
    out = None
    for (i, j), view in _taps(x, kernel, strides, dilations):
        if groups == 1:
            term = np.einsum("nchw,oc->nohw", view, w[:, :, i, j], optimize=True)
        elif c_group == 1 and c_out % c_in == 0:  # depthwise, with channel multiplier c_out / c_in
            term = np.repeat(view, c_out // c_in, axis=1) * w[:, 0, i, j][None, :, None, None]
        else:
            grouped = view.reshape(n, groups, c_group, *view.shape[2:])
            taps = w[:, :, i, j].reshape(groups, c_out // groups, c_group)
            term = np.einsum("ngchw,goc->ngohw", grouped, taps, optimize=True).reshape(n, c_out, *view.shape[2:])
        out = term if out is None else out + term
    if bias is not None:
        out = out + bias.astype(np.float32).reshape(1, -1, 1, 1)
    return out


def _pool(x: np.ndarray, kernel_sizes: Any, strides: Any, pad_type: str, pad: Any, ceil_mode: bool, fill: float):
    kernel, strides = _pair(kernel_sizes), _pair(strides)
    if x.ndim != 4:
        raise NotImplementedError(f"pooling over {x.ndim - 2} spatial axes is not supported by the reference executor")
    pads = spatial_padding(x.shape[2:], kernel, strides, (1, 1), pad_type, pad, bool(ceil_mode))
    padded = np.pad(x.astype(np.float32, copy=False), [(0, 0), (0, 0), *pads], constant_values=fill)
    valid = np.pad(np.ones((1, 1, *x.shape[2:]), np.float32), [(0, 0), (0, 0), *pads])
    return kernel, strides, padded, valid


@mil_op("max_pool")
def max_pool(
    x: np.ndarray,
    kernel_sizes: Any,
    strides: Any = None,
    pad_type: str = "valid",
    pad: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    kernel, strides, padded, _ = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, -np.inf)
    out = None
    for _, view in _taps(padded, kernel, strides, (1, 1)):
        out = view.copy() if out is None else np.maximum(out, view)
    return out


@mil_op("resize_nearest_neighbor")
def resize_nearest_neighbor(x: np.ndarray, target_size_height: Any, target_size_width: Any) -> np.ndarray:
    """The last two axes resized to the target size, each output index reading input index floor(i * in / out):
    TensorFlow's nearest resize (no corner alignment, no half-pixel centres), which converts to this op."""
    height, width = x.shape[-2:]
    rows = (np.arange(int(target_size_height)) * height) // int(target_size_height)
    columns = (np.arange(int(target_size_width)) * width) // int(target_size_width)
    return x[..., rows[:, None], columns[None, :]]


def _linear_taps(size: int, out: int, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of `out` positions along an axis of `size`: the two source indices and the second one's weight."""
    position = np.arange(out, dtype=np.float64)
    if mode == "align_corners":
        source = position * ((size - 1) / (out - 1) if out > 1 else 0.0)
    elif mode == "half_pixel":
        source = (position + 0.5) * size / out - 0.5
    else:  # "asymmetric": out index i reads i * size / out
        source = position * size / out
    source = np.clip(source, 0, size - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    return low, high, (source - low).astype(np.float32)


def _bilinear(x: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """The last two axes resized to (height, width), bilinear, with `mode`'s map of output to input positions."""
    y0, y1, wy = _linear_taps(x.shape[-2], height, mode)
    x0, x1, wx = _linear_taps(x.shape[-1], width, mode)
    rows = x[..., y0, :] * (1 - wy)[:, None] + x[..., y1, :] * wy[:, None]
    return (rows[..., x0] * (1 - wx) + rows[..., x1] * wx).astype(np.float32)


@mil_op("upsample_bilinear")
def upsample_bilinear(
    x: np.ndarray,
    scale_factor_height: Any = 1,
    scale_factor_width: Any = 1,
    align_corners: bool = True,
    half_pixel_centers: bool | None = None,
) -> np.ndarray:
    """Upsampled by scale factors; TensorFlow's resize with pixel centres aligned converts to half_pixel_centers."""
    height = int(round(x.shape[-2] * float(scale_factor_height)))
    width = int(round(x.shape[-1] * float(scale_factor_width)))
    if half_pixel_centers is None:
        half_pixel_centers = not align_corners
    mode = "align_corners" if align_corners else "half_pixel" if half_pixel_centers else "asymmetric"
    return _bilinear(x, height, width, mode)


@mil_op("resize_bilinear")
def resize_bilinear(
    x: np.ndarray, target_size_height: Any = 1, target_size_width: Any = 1, sampling_mode: str = "DEFAULT"
) -> np.ndarray:
    modes = {
        "STRICT_ALIGN_CORNERS": "align_corners",
        "ALIGN_CORNERS": "align_corners",
        "UNALIGN_CORNERS": "half_pixel",
        "DEFAULT": "asymmetric",
    }
    if sampling_mode not in modes:
        raise NotImplementedError(f"resize_bilinear's sampling mode {sampling_mode} is not in the reference executor")
    return _bilinear(x, int(target_size_height), int(target_size_width), modes[sampling_mode])


@mil_op("avg_pool")
def avg_pool(
    x: np.ndarray,
    kernel_sizes: Any,
    strides: Any = None,
    pad_type: str = "valid",
    pad: Any = None,
    exclude_padding_from_average: bool = False,
    ceil_mode: bool = False,
) -> np.ndarray:
    kernel, strides, padded, valid = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, 0.0)
    total = sum(view for _, view in _taps(padded, kernel, strides, (1, 1)))
    if exclude_padding_from_average:
        return total / sum(view for _, view in _taps(valid, kernel, strides, (1, 1)))
    return total / float(kernel[0] * kernel[1])


@mil_op("matmul")
def matmul(x: np.ndarray, y: np.ndarray, transpose_x: bool = False, transpose_y: bool = False) -> np.ndarray:
    x = np.swapaxes(x, -1, -2) if transpose_x and x.ndim > 1 else x
    y = np.swapaxes(y, -1, -2) if transpose_y and y.ndim > 1 else y
    return np.matmul(x.astype(np.float32, copy=False), y.astype(np.float32, copy=False))


@mil_op("linear")
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    out = np.matmul(x.astype(np.float32, copy=False), weight.astype(np.float32, copy=False).T)
    return out if bias is None else out + bias.astype(np.float32)


@mil_op("batch_norm")
def batch_norm(
    x: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    epsilon: float = 1e-5,
) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + epsilon)
    if gamma is not None:
        out = out * gamma.reshape(shape)
    return out if beta is None else out + beta.reshape(shape)


@mil_op("classify")
def classify(probabilities: np.ndarray, classes: Any) -> tuple[str, dict[str, float]]:
    """The classifier's outputs: the top label and a label -> probability mapping."""
    scores = np.asarray(probabilities, np.float32).reshape(-1)
    labels = [str(c) for c in np.atleast_1d(classes)]
    return labels[int(np.argmax(scores))], dict(zip(labels, scores.tolist()))


# -- selection: what a detector's in-graph decoding uses -------------------------------------

mil_op("equal")(lambda x, y: np.equal(x, y))
mil_op("select")(lambda cond, a, b: np.where(cond, a, b))
mil_op("tile")(lambda x, reps: np.tile(x, [int(r) for r in np.atleast_1d(reps)]))


@mil_op("reduce_argmax")
def reduce_argmax(x: np.ndarray, axis: int = -1, keep_dims: bool = False, output_dtype: str = "int32") -> np.ndarray:
    """Index of the largest value (the first on ties, as MIL and TensorFlow specify); iOS17 names the index type."""
    return np.argmax(x, axis=int(axis), keepdims=bool(keep_dims)).astype(_CAST_TYPES.get(output_dtype, np.int32))


@mil_op("topk")
def topk(
    x: np.ndarray,
    k: int = 1,
    axis: int = -1,
    ascending: bool = False,
    sort: bool = True,
    return_indices: bool = True,
    output_indices_dtype: str = "int32",
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest (or smallest) values along `axis` and their indices; equal values keep index order (iOS17
    names the indices' type)."""
    axis = int(axis) % x.ndim
    order = np.argsort(x if ascending else -x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(int(k)), axis=axis)
    return np.take_along_axis(x, indices, axis=axis), indices.astype(_CAST_TYPES.get(output_indices_dtype, np.int32))


@mil_op("gather")
def gather(
    x: np.ndarray, indices: np.ndarray, axis: int = 0, batch_dims: int = 0, validate_indices: bool = False
) -> np.ndarray:
    """x gathered at `indices` along `axis`, the first `batch_dims` axes of both paired up (TensorFlow's gather)."""
    axis, batch_dims = int(axis) % x.ndim, int(batch_dims)
    indices = np.asarray(indices).astype(np.int64)
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    batch = x.shape[:batch_dims]
    flat_x = x.reshape(-1, *x.shape[batch_dims:])
    flat_i = indices.reshape(-1, *indices.shape[batch_dims:])
    parts = [np.take(xi, ii, axis=axis - batch_dims) for xi, ii in zip(flat_x, flat_i)]
    return np.stack(parts).reshape(*batch, *parts[0].shape)
