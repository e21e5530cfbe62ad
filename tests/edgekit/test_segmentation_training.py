"""Training segmentation models, piece by piece: augmentation moves masks with the pixels, streamed splits give the
in-memory batches, and the MobileNetV2 segmenter trains and exports like the small one."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.training.segmentation import _batches, augment_segmentation
from runtimes.contract import Preprocessing


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return edgekit.datasets.make_shapes_segmentation(
        tmp_path_factory.mktemp("segtrain") / "scenes", n_images=40, image_size=(72, 112), seed=2
    )


def test_augmentation_moves_each_mask_with_its_pixels():
    """An image whose colour is its class: after scaling, flipping and shifting, each labelled mask pixel still
    sits on its class's colour (away from the edges, where the image interpolates and the mask does not)."""
    classes = np.zeros((64, 64), np.uint8)
    classes[10:40, 8:30], classes[30:60, 36:60] = 1, 2
    palette = np.array([[0, 0, 0], [200, 0, 0], [0, 0, 200]], np.uint8)
    image = palette[classes]
    shifted = 0
    for seed in range(12):
        pixels, mask = augment_segmentation(image, classes, np.random.default_rng(seed))
        assert mask.shape == classes.shape and set(np.unique(mask)) <= {0, 1, 2, 255}
        for cls in (1, 2):
            inside = np.zeros_like(mask, bool)
            inside[2:-2, 2:-2] = (mask[2:-2, 2:-2] == cls) & (mask[:-4, 2:-2] == cls) & (mask[4:, 2:-2] == cls)
            inside[2:-2, 2:-2] &= (mask[2:-2, :-4] == cls) & (mask[2:-2, 4:] == cls)
            if inside.any():  # the colour channel of the class is its brightest (colour jitter scales, not swaps)
                assert (pixels[inside].argmax(axis=-1) == (0 if cls == 1 else 2)).mean() > 0.99, seed
        shifted += bool((mask == 255).any())  # a draw that shifts the image off its border: not labelled there
    assert shifted >= 3


@pytest.mark.parametrize("stream", [False, True])
def test_streamed_splits_give_the_in_memory_batches(scenes, tmp_path, stream):
    memory = edgekit.load_segmentation(scenes, image_size=64)
    data = edgekit.load_segmentation(scenes, image_size=64, stream=stream)
    assert type(data).__name__ == ("StreamingSegmentationDataset" if stream else "SegmentationDataset")
    train, val, test = data.split(seed=0)
    spec = Preprocessing(64, resize="letterbox", interpolation="linear", scale=1 / 255)
    same = memory.subset([memory.sources.index(source) for source in train.sources])
    for (xa, ya), (xb, yb) in zip(_batches(same, spec, 8, False, 0), _batches(train, spec, 8, False, 0)):
        assert np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())
    loaded = val if not stream else val.load()
    assert all(
        np.array_equal(a, memory.source_masks[memory.sources.index(s)])
        for a, s in zip(loaded.source_masks, loaded.sources)
    )
    result = edgekit.train(train, val, task="segmentation", epochs=1, test=test, out_dir=tmp_path / "run", verbose=0)
    assert set(result.metrics["miou"]) == {"val", "test"} and result.contract.task == "segmentation"


def test_a_streamed_split_skips_bad_masks_while_listing(scenes, tmp_path):
    import cv2

    root = tmp_path / "bad"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "labels.txt").write_text((scenes / "labels.txt").read_text())
    for name in sorted(p.name for p in (scenes / "images").glob("*.png"))[:6]:
        (root / "images" / name).write_bytes((scenes / "images" / name).read_bytes())
        (root / "masks" / name).write_bytes((scenes / "masks" / name).read_bytes())
    first, second = sorted((root / "masks").glob("*.png"))[:2]
    cv2.imwrite(str(first), cv2.imread(str(first), cv2.IMREAD_UNCHANGED)[:50])
    second.unlink()
    data = edgekit.load_segmentation(root, image_size=64, stream=True)
    assert len(data) == 4 and data.skip_counts() == {"mask size differs from its image": 1, "no mask for the image": 1}


def test_a_mobilenetv2_segmenter_trains_and_exports(scenes, tmp_path):
    """The MobileNetV2 backbone with a light DeepLab head: raw pixels in (its scaling inside), one epoch, and a
    float file that gives Keras' masks."""
    train, val, test = edgekit.load_segmentation(scenes, image_size=96).split(seed=0)
    result = edgekit.train(train, val, "mobilenetv2_segmenter", task="segmentation", epochs=1, out_dir=tmp_path / "r")
    assert result.contract.model_name == "mobilenetv2_segmenter" and result.contract.preprocessing.scale == 1.0
    assert result.model.count_params() > 1e6 and result.model.output_shape == (None, 96, 96, 4)
    report = edgekit.export(result.model_path, ["onnx:fp32"], out_dir=tmp_path / "x", check=test, progress=False)
    checked = report.result("onnx:fp32")
    assert checked.status == "ok" and checked.agreement >= 0.995, (checked.error, checked.agreement)
    small = edgekit.load_segmentation(scenes, image_size=64)
    with pytest.raises(edgekit.TrainingError, match="at least 96"):
        edgekit.train(small, small, "mobilenetv2_segmenter", task="segmentation", out_dir=tmp_path / "s")


def test_edgekit_train_reads_a_mask_folder_and_prints_mean_iou(scenes, tmp_path, capsys):
    from edgekit.cli import main

    out = tmp_path / "run"
    command = ["train", str(scenes), "--task", "segmentation", "--image-size", "64", "--epochs", "1"]
    assert main([*command, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert " val mIoU: " in printed and "pixel accuracy:" in printed and "confusion.png" in printed
    assert (out / "model.keras").is_file() and (out / "confusion.png").is_file() and (out / "splits.json").is_file()
