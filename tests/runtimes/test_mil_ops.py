"""The reference executor's MIL ops: hand-computed cases, and Keras layers converted to CoreML and run op by op."""

import numpy as np
import pytest
from helpers.needs import need_module

from runtimes.errors import UnsupportedOpError
from runtimes.reference import mil_ops as mil_ops
from runtimes.reference.mil_program import MILProgram, Step, _Ref

need_module("coremltools", extra="coreml")


# -- hand-computed ---------------------------------------------------------------------


def test_same_padding_puts_the_odd_pixel_after_and_same_lower_before():
    # 5 wide, kernel 3, stride 2 -> 3 outputs, total padding (3-1)*2+3-5 = 2: one each side
    assert mil_ops.spatial_padding((5,), (3,), (2,), (1,), "same") == [(1, 1)]
    # 6 wide, kernel 3, stride 2 -> 3 outputs, total padding 1: after for same, before for same_lower
    assert mil_ops.spatial_padding((6,), (3,), (2,), (1,), "same") == [(0, 1)]
    assert mil_ops.spatial_padding((6,), (3,), (2,), (1,), "same_lower") == [(1, 0)]
    # dilation 2 makes a 3-tap kernel 5 wide
    assert mil_ops.spatial_padding((7,), (3,), (1,), (2,), "same") == [(2, 2)]
    assert mil_ops.spatial_padding((4, 4), (3, 3), (1, 1), (1, 1), "custom", [1, 0, 2, 1]) == [(1, 0), (2, 1)]


def test_conv_by_hand_stride_two_and_bias():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2), np.float32)
    out = mil_ops.conv(x, w, np.array([0.5], np.float32), strides=[2, 2], pad_type="valid")
    np.testing.assert_array_equal(
        out[0, 0], [[0 + 1 + 4 + 5 + 0.5, 2 + 3 + 6 + 7 + 0.5], [8 + 9 + 12 + 13 + 0.5, 10 + 11 + 14 + 15 + 0.5]]
    )


def test_grouped_conv_keeps_groups_apart():
    x = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3)), 3 * np.ones((3, 3)), 4 * np.ones((3, 3))])[None].astype(
        np.float32
    )
    w = np.ones((2, 2, 1, 1), np.float32)  # 2 groups of 2 input channels -> 1 output each
    out = mil_ops.conv(x, w, groups=2)
    np.testing.assert_array_equal(out[0, :, 0, 0], [1 + 2, 3 + 4])


def test_grouped_conv_equals_one_conv_per_group():
    """coremltools cannot convert Keras' grouped Conv2D, so this is checked against groups=1 convs."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 7, 7)).astype(np.float32)
    w = rng.normal(size=(9, 2, 3, 3)).astype(np.float32)  # 3 groups: 2 input -> 3 output channels each
    grouped = mil_ops.conv(x, w, strides=[2, 2], pad_type="same", groups=3)
    separate = np.concatenate(
        [
            mil_ops.conv(x[:, 2 * g : 2 * g + 2], w[3 * g : 3 * g + 3], strides=[2, 2], pad_type="same")
            for g in range(3)
        ],
        axis=1,
    )
    np.testing.assert_allclose(grouped, separate, rtol=1e-5, atol=1e-5)


def test_pools_with_ceil_mode_and_excluded_padding():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    floor = mil_ops.max_pool(x, [2, 2], [2, 2], "valid")
    ceil = mil_ops.max_pool(x, [2, 2], [2, 2], "valid", ceil_mode=True)
    assert floor.shape == (1, 1, 2, 2) and ceil.shape == (1, 1, 3, 3)
    assert ceil[0, 0, 2, 2] == 24 and ceil[0, 0, 0, 2] == 9
    ones = np.ones((1, 1, 3, 3), np.float32)
    included = mil_ops.avg_pool(ones, [3, 3], [1, 1], "same")
    excluded = mil_ops.avg_pool(ones, [3, 3], [1, 1], "same", exclude_padding_from_average=True)
    assert included[0, 0, 0, 0] == pytest.approx(4 / 9) and excluded[0, 0, 0, 0] == 1.0


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_axis(axis):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    expected = np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(mil_ops.softmax(x, axis), expected, rtol=1e-6)


def test_shape_ops():
    x = np.arange(24).reshape(2, 3, 4)
    assert mil_ops.reshape(x, [0, -1, 2]).shape == (2, 6, 2)  # 0 keeps the input's dimension when ranks match
    assert mil_ops.squeeze(x[:, :1], [1]).shape == (2, 4)
    assert mil_ops.expand_dims(x, [-1]).shape == (2, 3, 4, 1)
    assert mil_ops.MIL_OPS.get("reduce_mean")(x.astype(np.float32), [1, 2], True).shape == (2, 1, 1)
    a, b = np.zeros((1, 2)), np.ones((1, 2))
    np.testing.assert_array_equal(mil_ops.concat([a, b], 1, interleave=True), [[0, 1, 0, 1]])
    np.testing.assert_array_equal(mil_ops.concat([a, b], 1), [[0, 0, 1, 1]])
    sliced = mil_ops.slice_by_index(
        x, [0, 1, 0], [2, 3, 4], [1, 1, 2], end_mask=[True, False, False], squeeze_mask=[False, False, False]
    )
    np.testing.assert_array_equal(sliced, x[:, 1:3, ::2])
    np.testing.assert_array_equal(
        mil_ops.slice_by_index(x, [1, 0, 0], [2, 3, 4], squeeze_mask=[True, False, False]), x[1]
    )


@pytest.mark.parametrize("mode, numpy_mode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge")])
def test_pad_modes(mode, numpy_mode):
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    out = mil_ops.pad(x, [1, 2, 0, 1], mode)  # pairs for the last two axes
    np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (0, 0), (1, 2), (0, 1)], mode=numpy_mode))


def test_activations_by_hand():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 7.0], np.float32)
    np.testing.assert_array_equal(mil_ops.MIL_OPS.get("relu6")(x), [0, 0, 0, 1, 6])
    np.testing.assert_allclose(mil_ops.MIL_OPS.get("sigmoid_hard")(x, 1 / 6, 0.5), [0, 1 / 3, 0.5, 2 / 3, 1])
    np.testing.assert_allclose(mil_ops.silu(x), x / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_array_equal(mil_ops.cast(np.array([-1.7, 2.7]), "int32"), [-1, 2])  # toward zero


# -- compressed weights: against coremltools' own decompression ------------------------


@pytest.mark.parametrize("nbits", [1, 2, 4, 6, 8])
def test_lut_to_dense_unpacks_like_coremltools(nbits):
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_lut_to_dense
    from coremltools.optimize import _utils

    rng = np.random.default_rng(nbits)
    shape = (3, 5, 7)  # 105 elements: the last byte is partly padding for most widths
    indices = rng.integers(0, 2**nbits, int(np.prod(shape))).astype(np.uint8)
    packed = _utils.pack_elements_into_bits(indices, nbits)
    lut = rng.normal(size=2**nbits).astype(np.float16)
    ours = mil_ops.constexpr_lut_to_dense(packed, lut, np.array(shape, np.uint32))
    np.testing.assert_array_equal(ours, constexpr_lut_to_dense.decompress(lut, packed, np.array(shape, np.uint32)))
    np.testing.assert_array_equal(ours, lut[indices].reshape(shape))


def test_affine_dequantize_per_channel_and_per_tensor():
    q = np.array([[0, 10], [20, -128]], np.int8)
    per_channel = mil_ops.constexpr_affine_dequantize(
        q, np.array([0, 10], np.int8), np.array([0.5, 2.0], np.float32), axis=0
    )
    np.testing.assert_array_equal(per_channel, [[0, 5], [20, -276]])
    per_tensor = mil_ops.constexpr_affine_dequantize(q, np.int8(0), np.float16(0.25), axis=0)
    assert per_tensor.dtype == np.float16 and per_tensor[1, 1] == -32


def test_blockwise_shift_scale_and_sparse():
    data = np.arange(8, dtype=np.int8).reshape(2, 4)
    scale = np.array([[1.0, 10.0], [100.0, 1000.0]], np.float32)  # 1 x 2 blocks of 1 x 2
    offset = np.array([[1, 0], [0, 4]], np.int8)
    np.testing.assert_array_equal(
        mil_ops.constexpr_blockwise_shift_scale(data, scale, offset), [[-1, 0, 20, 30], [400, 500, 2000, 3000]]
    )
    mask = np.packbits(np.array([1, 0, 0, 1, 0, 1], np.uint8), bitorder="little")
    dense = mil_ops.constexpr_sparse_to_dense(np.array([7, 8, 9], np.float32), mask, np.array([2, 3]))
    np.testing.assert_array_equal(dense, [[7, 0, 0], [8, 0, 9]])


def test_an_unknown_op_is_named_never_skipped():
    steps = [
        Step("const", "c", {"val": np.ones(2, np.float32)}, ("c",), (np.dtype(np.float32),)),
        Step("einsum", "mixer_0", {"x": _Ref("image")}, ("y",), (np.dtype(np.float32),)),
    ]
    with pytest.raises(
        UnsupportedOpError,
        match=r"does not implement MIL op\(s\) 'einsum' \(first at 'mixer_0'\); it implements: .*conv",
    ):
        MILProgram({"image": ((2,), np.dtype(np.float32))}, steps, ["y"])


# -- Keras layers converted to CoreML and run by the executor --------------------------


def _keras_case(name):
    from edgekit._tf import keras

    k = keras()
    k.utils.set_random_seed(3)
    inputs = k.Input((9, 9, 4))  # odd size: same padding with stride 2 is asymmetric
    layers = {
        "conv_same_stride2": lambda x: k.layers.Conv2D(6, 3, strides=2, padding="same")(x),
        "conv_valid_stride2": lambda x: k.layers.Conv2D(6, 3, strides=2, padding="valid")(x),
        "conv_dilated": lambda x: k.layers.Conv2D(5, 3, dilation_rate=2, padding="same")(x),
        "depthwise_multiplier": lambda x: k.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x),
        "hard_swish": lambda x: k.layers.Activation("hard_swish")(k.layers.Conv2D(4, 1)(x)),
        "global_pools": lambda x: k.layers.Concatenate()(
            [k.layers.GlobalAveragePooling2D()(x), k.layers.GlobalMaxPooling2D()(x)]
        ),
        "pools_same": lambda x: k.layers.Add()(
            [k.layers.MaxPooling2D(3, 2, padding="same")(x), k.layers.AveragePooling2D(3, 2, padding="same")(x)]
        ),
        "residual_concat": lambda x: k.layers.Concatenate()(
            [x, k.layers.Add()([x, k.layers.Conv2D(4, 3, padding="same")(x)])]
        ),
        "softmax_channels": lambda x: k.layers.Softmax(axis=-1)(k.layers.Conv2D(3, 1)(x)),
        "upsample_bilinear": lambda x: k.layers.UpSampling2D(4, interpolation="bilinear")(x),
        "upsample_nearest_then_resize": lambda x: k.layers.Resizing(13, 7, interpolation="bilinear")(
            k.layers.UpSampling2D(2, interpolation="nearest")(x)
        ),
    }
    outputs = layers[name](inputs)
    outputs = k.layers.Flatten()(outputs) if len(outputs.shape) > 2 else outputs
    return k.Model(inputs, outputs)


def _run_with_executor(model, tmp_path):
    """Convert `model` to an fp32 ML program (tensor input) and evaluate it with the reference executor."""
    import coremltools as ct
    import tensorflow as tf

    from runtimes.reference.mil_program import load_program

    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, 9, 9, 4], tf.float32)
    )
    mlmodel = ct.convert(
        [function],
        source="tensorflow",
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32,
        minimum_deployment_target=ct.target.iOS16,
    )
    path = tmp_path / "case.mlpackage"
    mlmodel.save(str(path))
    program = load_program(path)
    ((name, _),) = program.inputs.items()
    x = np.random.default_rng(1).normal(size=(1, 9, 9, 4)).astype(np.float32)
    outputs = program.run({name: x})
    return next(iter(outputs.values())), np.asarray(model(x)), program


@pytest.mark.parametrize(
    "case",
    [
        "conv_same_stride2",
        "conv_valid_stride2",
        "conv_dilated",
        "depthwise_multiplier",
        "hard_swish",
        "global_pools",
        "pools_same",
        "residual_concat",
        "softmax_channels",
        "upsample_bilinear",
        "upsample_nearest_then_resize",
    ],
)
def test_keras_layer_through_coreml_matches_keras(case, tmp_path):
    ours, expected, program = _run_with_executor(_keras_case(case), tmp_path)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)
    if case == "depthwise_multiplier":  # the converter kept it a grouped conv with 8 outputs from 4 groups
        assert program.op_counts["conv"] == 1


def test_detection_decoding_ops_match_numpy_and_tensorflow_semantics():
    from runtimes.reference.mil_ops import MIL_OPS

    x = np.array([[0.2, 0.9, 0.9, 0.1], [0.5, 0.4, 0.7, 0.7]], np.float32)
    values, indices = MIL_OPS.get("topk")(x, k=2)
    assert values.tolist() == [[pytest.approx(0.9), pytest.approx(0.9)], [pytest.approx(0.7), pytest.approx(0.7)]]
    assert indices.tolist() == [[1, 2], [2, 3]]  # ties: the lower index first, as TensorFlow's top_k
    assert MIL_OPS.get("reduce_argmax")(x, axis=-1).tolist() == [1, 2]
    table = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    picked = MIL_OPS.get("gather")(table, np.array([[2, 0], [1, 1]]), axis=1, batch_dims=1)
    assert (
        picked.shape == (2, 2, 4)
        and picked[0, 0].tolist() == table[0, 2].tolist()
        and picked[1, 1].tolist() == table[1, 1].tolist()
    )
    assert MIL_OPS.get("gather")(table, np.array([1]), axis=2).shape == (2, 3, 1)
    assert MIL_OPS.get("select")(MIL_OPS.get("equal")(x, 0.9), x, 0.0).tolist()[0] == [
        0,
        pytest.approx(0.9),
        pytest.approx(0.9),
        0,
    ]
    assert MIL_OPS.get("tile")(np.ones((1, 2)), [2, 3]).shape == (2, 6)
