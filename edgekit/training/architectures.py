"""Model architectures `edgekit.train` can build, in a registry.

Each entry knows how to build the network and which input scaling it expects; the
scaling becomes part of the model's preprocessing contract.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from edgekit._tf import keras
from edgekit.errors import TrainingError
from runtimes.contract import Preprocessing
from runtimes.registry import Registry

Builder = Callable[[tuple[int, int, int], int, "str | None"], Any]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Builder
    scale: float
    offset: float
    min_size: int = 32
    description: str = ""
    needs_rgb: bool = True

    def preprocessing(self, geometry: Preprocessing) -> Preprocessing:
        """The contract for this architecture: the dataset's geometry plus its input scaling."""
        return replace(geometry, scale=self.scale, offset=self.offset, mean=None, std=None)


ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def register_architecture(
    name: str, scale: float, offset: float, min_size: int = 32, description: str = "", needs_rgb: bool = True
) -> Callable[[Builder], Builder]:
    def decorator(build: Builder) -> Builder:
        ARCHITECTURES.register(name)(Architecture(name, build, scale, offset, min_size, description, needs_rgb))
        return build

    return decorator


def _check_weights(weights: str | None) -> str | None:
    if weights is None:
        return None
    if weights == "imagenet":
        raise TrainingError(
            "weights='imagenet' would download at run time, which edgekit never does; "
            "pass weights=None or the path of a local weights file (.h5 / .weights.h5)"
        )
    if not Path(weights).is_file():
        raise TrainingError(f"weights file not found: {weights}")
    return str(weights)


def _fast_batchnorm(model: Any, momentum: float = 0.9) -> Any:
    """Let BatchNorm statistics settle within a short from-scratch run.

    keras.applications use momentum 0.99-0.999, tuned for ImageNet-length training; on a
    few hundred steps the moving averages would still be mostly their initial values and
    inference-mode accuracy would sit at chance.
    """
    for layer in model.layers:
        if isinstance(layer, keras().layers.BatchNormalization):
            layer.momentum = momentum
    return model


def _residual_branch_norms(model: Any) -> list[Any]:
    """The BatchNormalization layers that end a residual branch: each feeds only an Add (perhaps through Dropout).

    A shortcut's tensor feeds the next block too, so the rule never picks a block's output.
    """
    k = keras()
    found = []
    for layer in model.layers:
        if not isinstance(layer, k.layers.Add):
            continue
        for tensor in layer.input:
            source = tensor._keras_history.operation
            while isinstance(source, k.layers.Dropout) and len(source._outbound_nodes) == 1:
                source = source.input._keras_history.operation
            if isinstance(source, k.layers.BatchNormalization) and len(source._outbound_nodes) == 1:
                found.append(source)
    return found


def _scale_residual_branches(model: Any, value: float) -> Any:
    """Set the last BatchNorm scale of every residual branch to `value`.

    Zero starts every block as the identity, the zero-init of Goyal et al. (2017): a deep random
    network then trains like a shallow one at first. MobileNetV2 from scratch on the shapes left
    chance two to three epochs sooner. One undoes it where every op must count (checks of random models).
    """
    for norm in _residual_branch_norms(model):
        norm.gamma.assign(keras().ops.full(norm.gamma.shape, value, norm.gamma.dtype))
    return model


def _from_scratch_ready(model: Any, weights: str | None) -> Any:
    """Pretrained backbones keep their weights and BatchNorm settings; random ones get fast statistics
    and identity residual blocks."""
    return _scale_residual_branches(_fast_batchnorm(model), 0.0) if weights is None else model


def _classifier_head(backbone: Any, num_classes: int, dropout: float = 0.2, inputs: Any = None) -> Any:
    """Dropout and a softmax layer on `backbone`; `inputs` when the backbone was built on a tensor."""
    k = keras()
    x = k.layers.Dropout(dropout)(backbone.output)
    outputs = k.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return k.Model(backbone.input if inputs is None else inputs, outputs, name=backbone.name)


@register_architecture("small_cnn", scale=1 / 255, offset=0.0, min_size=16, description="4-conv CNN", needs_rgb=False)
def build_small_cnn(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None) -> Any:
    k = keras()
    inputs = k.Input(input_shape, name="image")
    x = inputs
    for filters in (24, 48, 96):
        x = k.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = k.layers.BatchNormalization(momentum=0.9)(x)  # small datasets: few steps per epoch
        x = k.layers.ReLU()(x)
        x = k.layers.MaxPooling2D()(x)
    x = k.layers.Conv2D(96, 3, padding="same", activation="relu")(x)
    x = k.layers.GlobalMaxPooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    # A zero classifier starts at uniform scores (loss ln C): with Keras' default init the max-pooled
    # features give logits of a few units, and on the shapes data the CNN sat near chance for 12 epochs
    # (takes off at epoch 4 instead; 93% validation accuracy at epoch 8 rather than 21, seed 0).
    outputs = k.layers.Dense(num_classes, activation="softmax", kernel_initializer="zeros", name="scores")(x)
    model = k.Model(inputs, outputs, name="small_cnn")
    if weights := _check_weights(weights):
        model.load_weights(weights)
    return model


def _pixel_input(input_shape: tuple[int, int, int]) -> tuple[Any, Any]:
    """The model input (0..255 pixels) and the MobileNets' x/127.5 - 1 as the model's first layer.

    Normalizing inside the model, as Keras's newer backbones do, keeps the contract at plain
    pixels: an int8 artifact then quantizes its input exactly (scale 1: camera pixels go in
    by one 8-bit add), where x/127.5 - 1 on 2/255 steps puts every pixel on a rounding tie.
    """
    k = keras()
    inputs = k.Input(input_shape, name="image")
    return inputs, k.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)


@register_architecture(
    "mobilenetv2", scale=1.0, offset=0.0, description="keras.applications MobileNetV2 (normalizes inside)"
)
def build_mobilenetv2(
    input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None, alpha: float = 1.0
) -> Any:
    """`alpha` is keras.applications' width multiplier (its weights files exist for 0.35 to 1.4)."""
    inputs, normalized = _pixel_input(input_shape)
    backbone = keras().applications.MobileNetV2(
        input_shape=input_shape,
        input_tensor=normalized,
        include_top=False,
        weights=_check_weights(weights),
        pooling="avg",
        alpha=alpha,
    )
    return _from_scratch_ready(_classifier_head(backbone, num_classes, inputs=inputs), weights)


@register_architecture(
    "mobilenetv3small", scale=1.0, offset=0.0, description="keras.applications MobileNetV3Small (normalizes inside)"
)
def build_mobilenetv3small(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None) -> Any:
    backbone = keras().applications.MobileNetV3Small(
        input_shape=input_shape,
        include_top=False,
        weights=_check_weights(weights),
        pooling="avg",
        include_preprocessing=True,
    )
    return _from_scratch_ready(_classifier_head(backbone, num_classes), weights)


@register_architecture(
    "efficientnetb0", scale=1.0, offset=0.0, description="keras.applications EfficientNetB0 (rescales inside)"
)
def build_efficientnetb0(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None) -> Any:
    backbone = keras().applications.EfficientNetB0(
        input_shape=input_shape, include_top=False, weights=_check_weights(weights), pooling="avg"
    )
    return _from_scratch_ready(_classifier_head(backbone, num_classes), weights)
