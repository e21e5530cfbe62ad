"""edgekit.train: files written, contract inside the .keras, architectures, misuse."""

import json

import numpy as np
import pytest
from helpers import CLASSIFIER_RUN_FILES

import edgekit
from edgekit.errors import TrainingError, UnknownNameError
from edgekit.keras_io import load_keras, read_keras_contract
from edgekit.training.architectures import ARCHITECTURES, _residual_branch_norms


def test_training_writes_model_metrics_and_plots(trained):
    out = trained.out_dir
    assert sorted(p.name for p in out.iterdir()) == CLASSIFIER_RUN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["accuracy"]) == {"train", "val", "test"}
    assert 0.85 <= metrics["accuracy"]["test"] < 1.0  # learnt, and the shapes are not trivial
    assert set(metrics["per_class"]) == {"circle", "square", "triangle"}
    for stats in metrics["per_class"].values():
        assert 0.0 <= stats["precision"] <= 1.0 and 0.0 <= stats["recall"] <= 1.0 and stats["support"] == 60
    assert np.sum(metrics["confusion"]) == 180
    assert (
        len(metrics["history"]["loss"]) == metrics["epochs_run"] and 1 <= metrics["best_epoch"] <= metrics["epochs_run"]
    )
    for plot in ("history.png", "confusion.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


def test_keras_file_carries_the_contract(trained):
    contract = read_keras_contract(trained.model_path)
    assert contract == trained.contract
    assert contract.labels == ("circle", "square", "triangle")
    assert contract.preprocessing.scale == pytest.approx(1 / 255) and contract.preprocessing.input_size == (64, 64)
    model, again = load_keras(trained.model_path)
    assert again == contract and model.output_shape == (None, 3)


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
def test_every_architecture_builds_offline_with_its_scaling(arch):
    spec = ARCHITECTURES.get(arch)
    model = spec.build((64, 64, 3), 4, None)
    scores = np.asarray(model(np.zeros((2, 64, 64, 3), np.float32)))
    assert scores.shape == (2, 4) and scores.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-4)
    low, high = spec.preprocessing(edgekit.Preprocessing(64)).output_range()
    assert (low[0], high[0]) == pytest.approx((0, 1) if arch == "small_cnn" else (0, 255))  # the rest normalize inside


@pytest.mark.parametrize("arch", [name for name in ARCHITECTURES.names() if name != "small_cnn"])
def test_from_scratch_every_residual_block_starts_as_the_identity(arch):
    """Each Add's branch gives exactly zero at first, so the block passes its shortcut through."""
    from edgekit._tf import keras

    k = keras()
    model = ARCHITECTURES.get(arch).build((64, 64, 3), 3, None)
    adds = [layer for layer in model.layers if isinstance(layer, k.layers.Add)]
    assert len(_residual_branch_norms(model)) == len(adds) > 0
    probe = k.Model(model.input, [tensor for add in adds for tensor in (*add.input, add.output)])
    values = probe(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32), training=False)
    for index in range(len(adds)):
        first, second, total = (np.asarray(v) for v in values[3 * index : 3 * index + 3])
        branch, shortcut = (first, second) if not first.any() else (second, first)
        assert not branch.any() and shortcut.any(), adds[index].name
        np.testing.assert_array_equal(total, shortcut)


def test_from_scratch_the_small_cnn_starts_at_uniform_scores():
    """Its zero classifier gives every class 1/C for any image (loss ln C): no early saturation to unlearn."""
    model = ARCHITECTURES.get("small_cnn").build((64, 64, 3), 4, None)
    images = np.random.default_rng(0).uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    assert np.asarray(model(images, training=False)) == pytest.approx(np.full((3, 4), 0.25), abs=1e-7)
    assert np.abs(model.get_layer("scores").kernel.numpy()).max() == 0.0


@pytest.fixture(scope="module")
def tiny_splits(shapes_root):
    dataset = edgekit.ImageFolder(shapes_root, image_size=32)
    return dataset.subset(np.arange(0, 1200, 10)).split(val=0.25, test=0.0, seed=0)[:2]


def test_user_model_and_keras_file_can_be_trained(tiny_splits, tmp_path):
    from edgekit._tf import keras

    k = keras()
    train, val = tiny_splits
    inputs = k.Input((32, 32, 3))
    outputs = k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 3)(inputs)))
    first = edgekit.train(
        train, val, k.Model(inputs, outputs, name="mine"), epochs=1, out_dir=tmp_path / "a", verbose=0
    )
    assert first.contract.model_name == "mine" and first.preprocessing.scale == pytest.approx(1 / 255)
    again = edgekit.train(train, val, str(first.model_path), epochs=1, out_dir=tmp_path / "b", verbose=0)
    assert again.contract.preprocessing == first.contract.preprocessing


def test_training_misuse_is_named(tiny_splits, tmp_path):
    from edgekit._tf import keras

    train, val = tiny_splits
    with pytest.raises(
        UnknownNameError, match="unknown architecture 'resnet9'; valid architectures: efficientnetb0, mobilenetv2"
    ):
        edgekit.train(train, val, "resnet9", out_dir=tmp_path)
    with pytest.raises(TrainingError, match="weights='imagenet' would download at run time"):
        edgekit.train(train, val, "mobilenetv2", weights="imagenet", out_dir=tmp_path)
    with pytest.raises(TrainingError, match="weights file not found: nowhere.h5"):
        edgekit.train(train, val, "mobilenetv2", weights="nowhere.h5", out_dir=tmp_path)
    with pytest.raises(TrainingError, match="epochs and batch_size must be >= 1"):
        edgekit.train(train, val, epochs=0, out_dir=tmp_path)
    k = keras()
    wrong = k.Sequential([k.Input((32, 32, 3)), k.layers.Flatten(), k.layers.Dense(5, activation="softmax")])
    with pytest.raises(TrainingError, match="model outputs 5 scores but the dataset has 3 classes"):
        edgekit.train(train, val, wrong, out_dir=tmp_path)
    small = k.Sequential([k.Input((16, 16, 3)), k.layers.Flatten(), k.layers.Dense(3, activation="softmax")])
    with pytest.raises(
        TrainingError, match=r"model input shape \(16, 16, 3\) does not match the dataset images \(32, 32, 3\)"
    ):
        edgekit.train(train, val, small, out_dir=tmp_path)
    gray = edgekit.ImageFolder(train.sources[0].rsplit("/", 2)[0], image_size=32, color_order="gray")
    with pytest.raises(TrainingError, match="mobilenetv2 takes 3-channel images"):
        edgekit.train(gray, gray, "mobilenetv2", out_dir=tmp_path)


BACKBONES = {
    "mobilenetv2": ("MobileNetV2", {}),
    "mobilenetv3small": ("MobileNetV3Small", {"include_preprocessing": False}),
}


@pytest.mark.parametrize("weights_format", ["weights.h5", "legacy-h5"])
@pytest.mark.parametrize("arch", list(BACKBONES))
def test_mobilenets_normalize_inside_and_load_a_local_backbone_weights_file(arch, weights_format, tmp_path):
    """Contract at plain pixels; the backbone sees x/127.5 - 1 and takes a keras.applications weights file
    (legacy .h5 is the format of the published ImageNet files)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from edgekit._tf import keras

    k = keras()
    name, options = BACKBONES[arch]
    plain = getattr(k.applications, name)(
        input_shape=(64, 64, 3), include_top=False, weights=None, pooling="avg", **options
    )
    path = tmp_path / ("backbone.weights.h5" if weights_format == "weights.h5" else "backbone_no_top.h5")
    if weights_format == "weights.h5":
        plain.save_weights(path)
    else:
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, plain)
    spec = ARCHITECTURES.get(arch)
    assert (spec.scale, spec.offset) == (1.0, 0.0)
    model = spec.build((64, 64, 3), 3, str(path))
    features = k.Model(model.input, model.get_layer("scores").input)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(features(pixels), plain(pixels / 127.5 - 1), atol=1e-5)
