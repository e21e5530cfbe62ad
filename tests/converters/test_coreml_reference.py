"""CoreML packages checked on Linux by the numpy reference executor: every architecture, every mode.

The trained small CNN (97% accurate) goes through all six modes and is held to the bars:
top-1 agreement >= 99% for float32/float16, the int8 accuracy bar for weight compression.
keras.applications backbones cannot be trained to a decided state within CI time (no
pretrained weights may be downloaded), so they are random-feature classifiers: float32 must
match Keras to float32 precision (which proves every op they use), and float16 and 8-bit
weights must track Keras closely enough to catch an executor bug.
"""

import numpy as np
import pytest
from helpers.needs import need_module

import edgekit
from converters.coreml import MODES
from edgekit.training.architectures import ARCHITECTURES, _scale_residual_branches

pytestmark = pytest.mark.slow  # builds and converts keras.applications backbones

need_module("coremltools", extra="coreml")

FLOAT_MODES = ("fp32", "fp16")
EIGHT_BIT_MODES = ("int8", "palettize8")
MAX_WEIGHT_DROP = 2.0  # points: the int8 bar the other formats meet (tests/integration/test_quality.py)
BACKBONES = [name for name in ARCHITECTURES.names() if name != "small_cnn"]


@pytest.fixture(scope="module")
def small_cnn_report(trained, shapes_splits, tmp_path_factory):
    """The trained small CNN in every CoreML mode, checked on the test split."""
    return edgekit.export(
        trained.model_path,
        [f"coreml:{m}" for m in MODES],
        out_dir=tmp_path_factory.mktemp("coreml_small"),
        check=shapes_splits[2],
        progress=False,
    )


def _random_features_classifier(arch, train, preprocessing):
    """A backbone with random weights, BatchNorm statistics set from data, and a least-squares head.

    Training keras.applications from scratch for CI-length runs gives near-ties everywhere;
    random convolutional features with calibrated statistics and a fitted linear head give
    input-dependent, decided scores in seconds, so top-1 agreement measures the package.
    """
    from edgekit._tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    model = ARCHITECTURES.get(arch).build((32, 32, 3), len(train.labels), None)
    _scale_residual_branches(model, 1.0)  # from scratch they start at zero: every op must count here
    x = train.tensors(preprocessing)
    for layer in model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = 0.0  # one training-mode pass sets the moving statistics to the data's
    model(x[:256], training=True)
    features = np.asarray(k.Model(model.input, model.layers[-1].input)(x, training=False), np.float64)
    mean, std = features.mean(0), features.std(0) + 1e-6
    z = (features - mean) / std
    onehot = np.eye(len(train.labels))[train.targets]
    w = np.linalg.solve(
        z.T @ z + len(z) * np.eye(z.shape[1]), z.T @ (onehot - onehot.mean(0))
    )  # strong ridge: small, stable weights
    model.layers[-1].set_weights(
        [(10 * w / std[:, None]).astype(np.float32), (-10 * (mean / std) @ w).astype(np.float32)]
    )
    return model


@pytest.fixture(scope="module", params=BACKBONES)
def backbone_report(request, shapes_root, tmp_path_factory):
    """A backbone classifier at 32x32 in the float and 8-bit modes, checked on 100 test images."""
    from runtimes.contract import ModelContract

    train, _, test = edgekit.ImageFolder(shapes_root, image_size=32).split(val=0.15, test=0.15, seed=0)
    spec = ARCHITECTURES.get(request.param)
    preprocessing = spec.preprocessing(train.geometry)
    model = _random_features_classifier(request.param, train.sample(600, seed=0), preprocessing)
    contract = ModelContract(preprocessing, train.labels, model_name=request.param)
    return edgekit.export(
        model,
        [f"coreml:{m}" for m in FLOAT_MODES + EIGHT_BIT_MODES],
        contract=contract,
        out_dir=tmp_path_factory.mktemp(request.param),
        check=test.subset(np.arange(100)),
        progress=False,
    )


def _assert_checked_by_reference(report):
    for result in report.results:
        assert result.status == "ok", (result.target, result.error)
        assert any("reference executor" in note for note in result.notes)
        assert result.latency_ms is None  # a correctness check, not a speed figure


def _assert_float(report, mode):
    result = report.result(f"coreml:{mode}")
    print(f"{report.model_name} coreml:{mode}: agreement {result.agreement:.3f}, max error {result.max_abs_error:.2e}")
    assert result.agreement >= 0.99
    assert result.max_abs_error < (1e-3 if mode == "fp32" else 3e-2)  # scores in [0, 1]


def _assert_weights(report, mode):
    result = report.result(f"coreml:{mode}")
    print(
        f"{report.model_name} coreml:{mode}: keras {report.keras_accuracy:.3f}, package {result.accuracy:.3f}, "
        f"agreement {result.agreement:.3f}"
    )
    assert result.accuracy_delta >= -MAX_WEIGHT_DROP


def test_small_cnn_every_mode_is_checked(small_cnn_report):
    _assert_checked_by_reference(small_cnn_report)


@pytest.mark.parametrize("mode", FLOAT_MODES)
def test_small_cnn_float_packages_agree_with_keras(small_cnn_report, mode):
    _assert_float(small_cnn_report, mode)


@pytest.mark.parametrize("mode", [m for m in MODES if m not in FLOAT_MODES])
def test_small_cnn_weight_compressed_packages_stay_within_the_int8_bar(small_cnn_report, mode):
    _assert_weights(small_cnn_report, mode)


def test_backbone_modes_are_checked(backbone_report):
    _assert_checked_by_reference(backbone_report)


def test_backbone_float32_packages_match_keras(backbone_report):
    _assert_float(backbone_report, "fp32")


@pytest.mark.parametrize("mode", ("fp16",) + EIGHT_BIT_MODES)
def test_backbone_reduced_precision_packages_track_keras(backbone_report, mode):
    """A guard against executor bugs: a wrong op or decompression collapses agreement towards chance.

    These random-feature classifiers are ill-conditioned (their head amplifies small feature
    differences), so the full bars are held on the trained small CNN above instead.
    """
    result = backbone_report.result(f"coreml:{mode}")
    print(
        f"{backbone_report.model_name} coreml:{mode}: agreement {result.agreement:.3f}, max error "
        f"{result.max_abs_error:.2e}, "
        f"accuracy delta {result.accuracy_delta:+.1f}"
    )
    assert result.agreement >= 0.8  # chance is 1/3: a wrong op or decompression lands near it


def test_neural_engine_lint_in_the_report(small_cnn_report, tmp_path):
    """float32 programs, dilated convolutions and CPU/GPU-only compute units are flagged; a plain fp16 CNN is not."""
    from converters.coreml import CoreMLConfig, convert_coreml
    from converters.coreml_lint import neural_engine_lint
    from edgekit._tf import keras
    from runtimes.contract import ModelContract, Preprocessing

    fp32_notes = [n for n in small_cnn_report.result("coreml:fp32").notes if n.startswith("Neural Engine")]
    assert len(fp32_notes) == 1 and "computes in float32" in fp32_notes[0]
    assert not [n for n in small_cnn_report.result("coreml:fp16").notes if n.startswith("Neural Engine")]
    assert "coreml:fp32: Neural Engine: the program computes in float32" in small_cnn_report.table()

    k = keras()
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(4, 3, dilation_rate=2, padding="same")(inputs)
    model = k.Model(inputs, k.layers.Dense(2, activation="softmax")(k.layers.GlobalAveragePooling2D()(x)))
    contract = ModelContract(Preprocessing(16), ("a", "b"))
    artifact = convert_coreml(
        model, tmp_path / "dilated.mlpackage", CoreMLConfig("fp16", compute_units="CPU_ONLY"), contract=contract
    )
    assert artifact.notes == (
        "Neural Engine: compute_units=CPU_ONLY excludes the Neural Engine",
        "Neural Engine: 1 x conv with dilation > 1 (dilated convolution): known to run off the Neural Engine",
    )
    assert neural_engine_lint(artifact.path) == [artifact.notes[1].removeprefix("Neural Engine: ")]


@pytest.mark.parametrize(
    "target, mode, op, tolerance",
    [
        ("iOS16", "int8", "constexpr_affine_dequantize", 2e-3),
        ("iOS18", "int8", "constexpr_blockwise_shift_scale", 2e-3),
        ("iOS16", "palettize4", "constexpr_lut_to_dense", 1e-2),
        ("iOS18", "palettize4", "constexpr_lut_to_dense", 1e-2),
    ],
)
def test_compressed_weights_of_both_opset_generations(target, mode, op, tolerance, tmp_path):
    """iOS16 and iOS18 packages store compressed weights with different ops; both decompress to Keras' weights."""
    import dataclasses

    from converters.coreml import convert_coreml
    from edgekit._tf import keras
    from runtimes.contract import ModelContract, Preprocessing

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(64, 3, padding="same", activation="relu")(
        k.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    )
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling2D()(x)))
    config = dataclasses.replace(MODES[mode], minimum_deployment_target=target)
    artifact = convert_coreml(
        model,
        tmp_path / "m.mlpackage",
        config,
        contract=ModelContract(Preprocessing(16, scale=1 / 255), ("a", "b", "c")),
    )
    x = np.random.default_rng(0).random((8, 16, 16, 3)).astype(np.float32)
    with edgekit.load(artifact.path, backend="reference") as package:
        assert package.runtime.program.op_counts.get(op, 0) >= 1
        assert np.abs(package.run(x) - np.asarray(model(x))).max() < tolerance
