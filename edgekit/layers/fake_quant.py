"""Keras 3 layers that compute what TFLite's int8 kernels compute, for quantization-aware training.

Weights: per output channel, symmetric, int8 in [-127, 127] (TFLite's per-channel scheme), re-read from the
weights at every step. Activations: per tensor, asymmetric, int8, over a range learned from the data (a moving
average of each batch's min and max, then frozen). Both through `tf.quantization`'s fake-quant ops, whose
gradient is the straight-through estimator (1 inside the range, 0 outside) and which TensorFlow's converters read
as the tensors' quantization: TFLite turns them into an all-int8 graph without a representative dataset.
"""

from __future__ import annotations

from typing import Any

from edgekit._tf import keras, tensorflow

PACKAGE = "edgekit"
SIGMOID_RANGE = (0.0, 255.0 / 256.0)  # TFLite's int8 LOGISTIC and SOFTMAX outputs: scale 1/256, zero point -128


def fake_quant_kernel(kernel: Any, depthwise: bool = False, per_channel: bool = True) -> Any:
    """`kernel` through symmetric int8 (narrow range: [-127, 127], zero point 0), per output channel.

    The last axis holds the output channels; a DepthwiseConv2D kernel (h, w, in, multiplier) has in x multiplier
    of them, as TFLite's DEPTHWISE_CONV_2D stores it. A Dense kernel is quantized per tensor (`per_channel=False`),
    as TFLite's FULLY_CONNECTED is.
    """
    tf = tensorflow()
    if not per_channel:
        bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel)), 1e-8))
        return tf.quantization.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=8, narrow_range=True)
    shape = tf.shape(kernel)
    flat = tf.reshape(kernel, tf.concat([shape[:2], [-1]], 0)) if depthwise else kernel
    axes = list(range(len(flat.shape) - 1))
    bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(flat), axis=axes), 1e-8))
    quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        flat, -bound, bound, num_bits=8, narrow_range=True
    )
    return tf.reshape(quantized, shape) if depthwise else quantized


def _activation_range_class() -> type:
    k = keras()

    @k.saving.register_keras_serializable(package=PACKAGE)
    class ActivationRange(k.layers.Layer):
        """Fake-quantizes a tensor to int8 over [range_min, range_max].

        While training, the range follows each batch's min and max (a moving average with `decay`; the first batch
        sets it) until `frozen` is set; at inference it is the stored range. `fixed` pins it (a sigmoid's output).
        """

        def __init__(self, fixed: tuple[float, float] | None = None, decay: float = 0.99, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.fixed = tuple(fixed) if fixed is not None else None
            self.decay = float(decay)

        def build(self, input_shape: Any) -> None:
            def scalar(name: str) -> Any:
                return self.add_weight(shape=(), initializer="zeros", trainable=False, name=name)

            self.range_min, self.range_max = scalar("range_min"), scalar("range_max")
            self.seen, self.frozen = scalar("seen"), scalar("frozen")

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            tf = tensorflow()
            if self.fixed is not None:
                low, high = self.fixed
            elif training:
                low, high = self._follow(tf, inputs)
            else:
                low, high = self.range_min, self.range_max
            high = tf.maximum(high, low + 1e-6)
            return tf.quantization.fake_quant_with_min_max_vars(inputs, low, high, num_bits=8, narrow_range=False)

        def _follow(self, tf: Any, inputs: Any) -> tuple[Any, Any]:
            """The range after this batch (a frozen range stays), stored; zero always inside it, as int8 needs."""
            batch_min = tf.minimum(tf.reduce_min(tf.stop_gradient(inputs)), 0.0)
            batch_max = tf.maximum(tf.reduce_max(tf.stop_gradient(inputs)), 0.0)
            moving = self.seen * self.decay
            low = (1 - self.frozen) * (moving * self.range_min + (1 - moving) * batch_min)
            high = (1 - self.frozen) * (moving * self.range_max + (1 - moving) * batch_max)
            low, high = low + self.frozen * self.range_min, high + self.frozen * self.range_max
            self.range_min.assign(low)
            self.range_max.assign(high)
            self.seen.assign(1.0)
            return low, high

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "fixed": self.fixed, "decay": self.decay}

    return ActivationRange


def _finish(layer: Any, outputs: Any, channels: int) -> Any:
    """A weighted layer's bias and activation after its (fake-quantized) product."""
    ops = keras().ops
    if layer.use_bias:
        outputs = ops.add(outputs, ops.reshape(layer.bias, (1,) * (len(outputs.shape) - 1) + (channels,)))
    return layer.activation(outputs) if layer.activation is not None else outputs


def _quantized_classes() -> dict[str, type]:
    """Conv2D, DepthwiseConv2D and Dense whose kernels go through `fake_quant_kernel`."""
    k = keras()
    ops = k.ops
    finish = _finish

    @k.saving.register_keras_serializable(package=PACKAGE)
    class QuantConv2D(k.layers.Conv2D):
        def call(self, inputs: Any) -> Any:
            return finish(self, self.convolution_op(inputs, fake_quant_kernel(self.kernel)), self.filters)

    @k.saving.register_keras_serializable(package=PACKAGE)
    class QuantDepthwiseConv2D(k.layers.DepthwiseConv2D):
        def call(self, inputs: Any) -> Any:
            outputs = ops.depthwise_conv(
                inputs,
                fake_quant_kernel(self.kernel, depthwise=True),
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            return finish(self, outputs, self.kernel.shape[2] * self.depth_multiplier)

    @k.saving.register_keras_serializable(package=PACKAGE)
    class QuantDense(k.layers.Dense):
        def call(self, inputs: Any, training: bool | None = None) -> Any:
            return finish(self, ops.matmul(inputs, fake_quant_kernel(self.kernel, per_channel=False)), self.units)

    return {"Conv2D": QuantConv2D, "DepthwiseConv2D": QuantDepthwiseConv2D, "Dense": QuantDense}


def _add_between(layer: Any, input_shape: Any) -> None:
    """The int8 range of the tensor between a two-op layer's ops, built with its parent so that a saved model's
    range loads into it."""
    layer.between = ACTIVATION_RANGE()(name=f"{layer.name}_between")
    layer.between.build(input_shape)


def _two_step_classes() -> dict[str, type]:
    """SeparableConv2D and Rescaling, which TFLite runs as two ops: the tensor between them is int8 too."""
    k = keras()
    ops = k.ops

    @k.saving.register_keras_serializable(package=PACKAGE)
    class QuantSeparableConv2D(k.layers.SeparableConv2D):
        """TFLite runs it as a depthwise then a 1x1 convolution: the tensor between them is int8 too."""

        def build(self, input_shape: Any) -> None:
            super().build(input_shape)
            _add_between(self, input_shape)

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            depthwise = ops.depthwise_conv(
                inputs,
                fake_quant_kernel(self.depthwise_kernel, depthwise=True),
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            between = self.between(depthwise, training=training)
            outputs = ops.conv(between, fake_quant_kernel(self.pointwise_kernel), data_format=self.data_format)
            return _finish(self, outputs, self.filters)

    @k.saving.register_keras_serializable(package=PACKAGE)
    class QuantRescaling(k.layers.Rescaling):
        """TFLite runs `x * scale + offset` as a MUL then an ADD: the product is an int8 tensor too."""

        def build(self, input_shape: Any) -> None:
            super().build(input_shape)
            _add_between(self, input_shape)

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            scaled = ops.multiply(ops.cast(inputs, self.compute_dtype), ops.cast(self.scale, self.compute_dtype))
            if not self.offset:
                return scaled
            return ops.add(self.between(scaled, training=training), ops.cast(self.offset, self.compute_dtype))

    return {"SeparableConv2D": QuantSeparableConv2D, "Rescaling": QuantRescaling}


_CLASSES: dict[str, Any] = {}


def ACTIVATION_RANGE() -> type:  # noqa: N802 (a class, made on first use: Keras is imported lazily)
    """The `ActivationRange` layer class."""
    if "ActivationRange" not in _CLASSES:
        _CLASSES["ActivationRange"] = _activation_range_class()
    return _CLASSES["ActivationRange"]


def quantized_class(kind: str) -> type:
    """The fake-quantizing subclass of Keras layer class `kind` ("Conv2D", "DepthwiseConv2D", "Dense", ...)."""
    ACTIVATION_RANGE()
    if kind not in _CLASSES:
        _CLASSES.update(_quantized_classes())
        _CLASSES.update(_two_step_classes())
    return _CLASSES[kind]


def register() -> None:
    """Make every QAT layer class known to Keras' loader (a QAT model.keras names them)."""
    quantized_class("Conv2D")
