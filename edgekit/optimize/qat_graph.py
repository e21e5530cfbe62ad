"""A trained Keras 3 functional model rewritten for quantization-aware training, as TFLite will run it in int8.

The plan reads the graph the way TFLite's converter lowers it: a BatchNormalization right after a convolution or
dense layer is folded into its kernel and bias (the converter's fold, before it quantizes the kernel per channel);
a ReLU or ReLU6 after a convolution, dense layer or addition is fused into it (no int8 tensor between them); a
sigmoid or softmax gets TFLite's fixed int8 output range; pooling (max or average, not global average), reshapes,
padding, dropout and nearest upsampling keep their input's range, as TFLite's kernels for them require. Every other
tensor (the input, each layer's output) gets its own learned int8 range.
A layer outside this list is named in the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit._tf import keras
from edgekit.errors import TrainingError
from edgekit.layers.fake_quant import ACTIVATION_RANGE, SIGMOID_RANGE, quantized_class

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense", "SeparableConv2D")
KEEP_RANGE = (  # TFLite's int8 kernels for these take the input's scale for their output
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalMaxPooling2D",
    "Reshape",
    "Flatten",
    "Dropout",
    "SpatialDropout2D",
    "Identity",
    "ZeroPadding2D",
    "Cropping2D",
)
RANGED = (
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Concatenate",
    "GlobalAveragePooling2D",
    "Rescaling",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "BatchNormalization",
    "UpSampling2D",
    "Resizing",
)
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")  # what TFLite fuses into a convolution, dense layer or addition
FIXED_RANGE_ACTIVATIONS = ("sigmoid", "softmax", "hard_sigmoid")


@dataclass
class QATPlan:
    """What the rewrite does to each layer, by name.

    Attributes:
        folded: BatchNormalization layer -> the convolution or dense layer it folds into.
        fused: Layers whose output goes straight into a fused activation (no int8 range of their own).
        split: Layers whose own activation TFLite runs as a separate op -> that activation.
        fixed: Layers whose output has TFLite's fixed int8 range (sigmoid, softmax).
        kept: Layers whose output keeps its input's range.
    """

    folded: dict[str, str] = field(default_factory=dict)
    fused: set[str] = field(default_factory=set)
    split: dict[str, str] = field(default_factory=dict)
    fixed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)


def _kind(layer: Any) -> str:
    return type(layer).__name__


def _activation(layer: Any) -> str:
    """The activation a layer applies, by its Keras name ("linear" for none)."""
    if _kind(layer) == "ReLU":
        config = layer.get_config()
        plain = not config.get("negative_slope") and not config.get("threshold")
        return {None: "relu", 6.0: "relu6"}.get(config.get("max_value"), "other") if plain else "other"
    if _kind(layer) == "Softmax":
        return "softmax"
    name = layer.get_config().get("activation", "linear")
    return name if isinstance(name, str) else "other"


def _consumers(layer: Any, model: Any) -> list[Any]:
    """The layers that take `layer`'s output, and None for each time it is a model output."""
    found = [node.operation for node in layer._outbound_nodes if node.operation in model.layers]
    outputs = {id(tensor) for tensor in model.outputs}
    found += [None for node in layer._inbound_nodes for tensor in node.outputs if id(tensor) in outputs]
    return found


def plan_qat(model: Any) -> QATPlan:
    """How `model` becomes its QAT form.

    Raises:
        TrainingError: a nested model, or a layer QAT does not know, named with its class.
    """
    plan = QATPlan()
    for layer in model.layers:
        kind = _kind(layer)
        if kind == "InputLayer":
            continue
        if kind in ("Functional", "Sequential"):
            raise TrainingError(f"QAT needs a flat model: {layer.name!r} is a nested {kind}; build it inline")
        if kind not in WEIGHTED + KEEP_RANGE + RANGED:
            raise TrainingError(
                f"quantization-aware training does not support layer {layer.name!r} ({kind}); supported: "
                f"{', '.join(sorted(set(WEIGHTED + KEEP_RANGE + RANGED)))}"
            )
        activation = _activation(layer)
        nearest = kind in ("UpSampling2D", "Resizing") and layer.get_config().get("interpolation") == "nearest"
        if nearest or kind in KEEP_RANGE:
            plan.kept.add(layer.name)
        if kind in WEIGHTED and activation not in FUSED_ACTIVATIONS:
            plan.split[layer.name] = activation
        if activation in FIXED_RANGE_ACTIVATIONS:
            plan.fixed.add(layer.name)
        consumers = _consumers(layer, model)
        if len(consumers) != 1 or consumers[0] is None:
            continue
        (consumer,) = consumers
        if kind in WEIGHTED and activation == "linear" and _foldable(consumer):
            plan.folded[consumer.name] = layer.name
            plan.fused.add(layer.name)
    for layer in model.layers:  # a fused activation after a convolution (or its folded norm) or an addition
        consumers = _consumers(layer, model)
        producer = _kind(layer) in WEIGHTED and _activation(layer) == "linear"
        producer = producer or layer.name in plan.folded or _kind(layer) == "Add"
        if producer and len(consumers) == 1 and consumers[0] is not None:
            if _activation(consumers[0]) in ("relu", "relu6") and _kind(consumers[0]) in ("ReLU", "Activation"):
                plan.fused.add(layer.name)
    return plan


def _foldable(layer: Any) -> bool:
    return _kind(layer) == "BatchNormalization" and layer.get_config().get("axis") in (-1, 3, [-1], [3])


def folded_weights(conv: Any, norm: Any) -> list[np.ndarray]:
    """`conv`'s kernel and bias with `norm` folded in, as TFLite's converter folds them."""
    kernel = np.asarray(conv.kernel if _kind(conv) != "SeparableConv2D" else conv.pointwise_kernel, np.float64)
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else 0.0
    gamma = np.asarray(norm.gamma, np.float64) if norm.scale else 1.0
    beta = np.asarray(norm.beta, np.float64) if norm.center else 0.0
    mean, variance = np.asarray(norm.moving_mean, np.float64), np.asarray(norm.moving_variance, np.float64)
    factor = gamma / np.sqrt(variance + norm.epsilon)
    if _kind(conv) == "DepthwiseConv2D":
        kernel = kernel * factor.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * factor
    weights = [kernel.astype(np.float32), ((bias - mean) * factor + beta).astype(np.float32)]
    if _kind(conv) == "SeparableConv2D":
        return [np.asarray(conv.depthwise_kernel), *weights]
    return weights


def qat_model(model: Any, input_range: tuple[float, float]) -> tuple[Any, QATPlan]:
    """`model` rewritten for QAT (its weights carried over, BatchNorm folded) and the plan it followed.

    Args:
        model: a trained functional Keras 3 model.
        input_range: the input tensor's (low, high), as the contract's preprocessing makes it.

    Returns:
        (the QAT model, its `QATPlan`).
    """
    k = keras()
    plan = plan_qat(model)
    by_name = {layer.name: layer for layer in model.layers}
    inputs = [k.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    ranged = {id(t): ACTIVATION_RANGE()(fixed=input_range, name=f"{t.name}_range")(t) for t in inputs}
    calls: dict[str, int] = {}

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in plan.folded:
            return k.layers.Identity(name=layer.name)
        if _kind(layer) in WEIGHTED:
            if layer.name in plan.folded.values():
                config["use_bias"] = True
            if layer.name in plan.split:
                config["activation"] = "linear"
            return quantized_class(_kind(layer)).from_config(config)
        if _kind(layer) == "Rescaling":
            return quantized_class("Rescaling").from_config(config)
        return type(layer).from_config(config)

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        args = k.tree.map_structure(lambda t: ranged.get(id(t), t), args)
        outputs = layer(args[0]) if layer.name in plan.folded else layer(*args, **kwargs)  # an Identity now
        calls[layer.name] = calls.get(layer.name, 0) + 1
        suffix = "" if calls[layer.name] == 1 else f"_{calls[layer.name]}"
        if layer.name in plan.split:
            outputs = ACTIVATION_RANGE()(name=f"{layer.name}_preactivation_range{suffix}")(outputs)
            outputs = k.layers.Activation(plan.split[layer.name], name=f"{layer.name}_activation{suffix}")(outputs)
        if layer.name in plan.fused or layer.name in plan.kept:
            return outputs
        fixed = SIGMOID_RANGE if layer.name in plan.fixed else None
        return ACTIVATION_RANGE()(fixed=fixed, name=f"{layer.name}_range{suffix}")(outputs)

    structure = k.tree.pack_sequence_as(model.input, inputs)
    quantized = k.models.clone_model(model, input_tensors=structure, clone_function=clone, call_function=call)
    for layer in quantized.layers:
        source = by_name.get(layer.name)
        if source is None or not source.weights or layer.name in plan.folded:
            continue
        norm = next((by_name[bn] for bn, conv in plan.folded.items() if conv == layer.name), None)
        values = folded_weights(source, norm) if norm is not None else source.get_weights()
        inner = {id(v) for v in getattr(getattr(layer, "between", None), "weights", [])}  # its own int8 range
        for variable, value in zip([w for w in layer.weights if id(w) not in inner], values, strict=True):
            variable.assign(value)
    return quantized, plan


def activation_ranges(model: Any) -> list[Any]:
    """Every learned-range `ActivationRange` layer of a QAT model (fixed ranges left out)."""
    kind = ACTIVATION_RANGE()
    inner = [layer.between for layer in model.layers if hasattr(layer, "between")]  # two-op layers' own ranges
    found = [*model.layers, *inner]
    return [layer for layer in found if isinstance(layer, kind) and layer.fixed is None]


def is_qat_model(model: Any) -> bool:
    """True when `model` simulates int8 (it holds `ActivationRange` layers)."""
    kind = ACTIVATION_RANGE()
    return any(isinstance(layer, kind) for layer in getattr(model, "layers", []))
