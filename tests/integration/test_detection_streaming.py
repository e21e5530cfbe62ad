"""Detection datasets read lazily: YOLO, COCO and VOC streamed through tf.data give the in-memory dataset's
pixels and targets, skip and count corrupt images, cache decoded pixels, and train like in-memory splits."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

import edgekit
from edgekit.data.annotations import load_detection
from edgekit.data.detection import DetectionDataset
from edgekit.data.detection_streaming import StreamingDetectionDataset
from edgekit.data.synthetic import make_shapes_detection
from edgekit.errors import DatasetError
from edgekit.training.detection import _batches
from edgekit.training.detector_graph import DETECTORS

SPEC = DETECTORS.get("small_detector").preprocessing(
    edgekit.Preprocessing(64, resize="letterbox", interpolation="linear")
)
FORMATS = ("yolo", "coco", "voc")
IMAGE_FOLDER = {"yolo": "images", "coco": "images", "voc": "JPEGImages"}


@pytest.fixture(scope="module", params=FORMATS)
def scenes(request, tmp_path_factory):
    """(format, root, the truncated image's path): 48 scenes, one of them cut short after its header."""
    root = make_shapes_detection(
        tmp_path_factory.mktemp(f"stream-{request.param}") / "scenes",
        n_images=48,
        image_size=(72, 96),
        seed=2,
        format=request.param,
    )
    images = sorted((root / IMAGE_FOLDER[request.param]).iterdir())
    truncated = images[5]
    truncated.write_bytes(truncated.read_bytes()[:200])  # the header (its size) reads; the pixels do not
    return request.param, root, truncated


def _data_path(format_name: str, root: Path) -> Path:
    return root / "annotations.json" if format_name == "coco" else root


def _pipeline_batches(dataset, augment=None, **options):
    xs, ys = [], []
    for x, y in dataset.pipeline(SPEC, 16, _encode(dataset), augment, **options):
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _encode(dataset):
    from edgekit.training.detector_graph import encode_targets

    return lambda boxes, classes: encode_targets(boxes, classes, SPEC.input_size, len(dataset.labels))


def test_streamed_scenes_are_the_in_memory_ones(scenes):
    """Listing reads annotations and headers only; decoding gives the in-memory pixels, boxes and targets."""
    format_name, root, truncated = scenes
    path = _data_path(format_name, root)
    streamed = load_detection(path, image_size=64, stream=True)
    in_memory = load_detection(path, image_size=64)
    assert isinstance(streamed, StreamingDetectionDataset) and isinstance(in_memory, DetectionDataset)
    assert len(streamed) == 48 and len(in_memory) == 47  # the truncated file is found when decoded
    assert [s.path for s in in_memory.skipped] == [str(truncated)] and streamed.skipped == ()
    kept = [i for i, source in enumerate(streamed.sources) if source != str(truncated)]
    assert [streamed.sources[i] for i in kept] == list(in_memory.sources)
    for i, j in zip(kept, range(len(in_memory))):
        np.testing.assert_array_equal(streamed.boxes[i], in_memory.boxes[j])
        np.testing.assert_array_equal(streamed.classes[i], in_memory.classes[j])
        np.testing.assert_array_equal(streamed.source_sizes[i], in_memory.source_sizes[j])
    x, y = _pipeline_batches(streamed, shuffle=False)
    assert x.shape == (47, 64, 64, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x, in_memory.tensors(SPEC))  # the device's pixels, bit for bit
    expected = np.concatenate([np.asarray(batch[1]) for batch in _batches(in_memory, SPEC, 16, train=False, seed=0)[0]])
    # TensorFlow's threads flush float32 denormals (the far tails of the Gaussian heat, below 1.2e-38) to zero
    np.testing.assert_allclose(y, expected, rtol=0, atol=1.2e-38)
    assert [Path(s.path).name for s in streamed.skipped] == [truncated.name]
    assert streamed.skip_counts() == {"image unreadable": 1}
    np.testing.assert_array_equal(streamed.load().pixels, in_memory.pixels)


def test_corrupt_images_are_skipped_and_counted_once_across_splits(scenes):
    format_name, root, truncated = scenes
    streamed = load_detection(_data_path(format_name, root), image_size=64, stream=True)
    train, val, test = streamed.split(seed=0)
    assert len(train) + len(val) + len(test) == 48 and all(
        isinstance(s, StreamingDetectionDataset) for s in (train, val, test)
    )
    decoded = sum(len(_pipeline_batches(split, shuffle=False)[0]) for split in (train, val, test))
    assert decoded == 47
    assert [Path(s.path).name for s in streamed.skipped] == [truncated.name]  # recorded once, seen by every split
    assert [Path(s.path).name for s in val.skipped] == [truncated.name]
    sample = train.sample(10, seed=1)
    assert isinstance(sample, DetectionDataset) and len(sample) <= 10 and sample.pixels.shape[1:] == (64, 64, 3)


def test_augmented_streams_are_seeded_and_differ_between_epochs(scenes):
    from edgekit.training.detection import augment

    format_name, root, _ = scenes
    streamed = load_detection(_data_path(format_name, root), image_size=64, stream=True)
    pipeline = streamed.pipeline(SPEC, 16, _encode(streamed), augment, shuffle=True, seed=4)
    first = np.concatenate([y.numpy() for _, y in pipeline])
    second = np.concatenate([y.numpy() for _, y in pipeline])
    again = np.concatenate(
        [y.numpy() for _, y in streamed.pipeline(SPEC, 16, _encode(streamed), augment, shuffle=True, seed=4)]
    )
    assert first.shape == (47, 16, 16, 8) and not np.array_equal(first, second)  # reshuffled and re-augmented
    np.testing.assert_array_equal(first, again)  # one seed, one run


def test_auto_streams_past_the_memory_threshold_and_bad_values_are_refused(scenes, monkeypatch, caplog):
    import edgekit.data.image_streaming

    format_name, root, _ = scenes
    path = _data_path(format_name, root)
    assert isinstance(load_detection(path, image_size=64, stream="auto"), DetectionDataset)  # 0.6 MB decoded
    monkeypatch.setattr(edgekit.data.image_streaming, "STREAM_ABOVE_BYTES", 100_000)
    with caplog.at_level(logging.INFO, logger="edgekit.data"):
        assert isinstance(load_detection(path, image_size=64, stream="auto"), StreamingDetectionDataset)
    assert "streaming 48 images" in caplog.text and "stream=False" in caplog.text
    with pytest.raises(DatasetError, match=r"invalid stream='always'; valid: True, False or 'auto'"):
        load_detection(path, image_size=64, stream="always")


def test_the_cache_holds_decoded_scenes_so_epoch_two_decodes_nothing(scenes, tmp_path, monkeypatch):
    format_name, root, _ = scenes
    streamed = load_detection(_data_path(format_name, root), image_size=64, stream=True, cache_dir=tmp_path / "cache")
    reads = []
    original = StreamingDetectionDataset.read
    monkeypatch.setattr(
        StreamingDetectionDataset, "read", lambda self, index: reads.append(index) or original(self, index)
    )
    pipeline = streamed.pipeline(SPEC, 16, _encode(streamed), shuffle=True, seed=3)
    first = [(x.numpy(), y.numpy()) for x, y in pipeline]
    assert len(reads) == 48 and any(tmp_path.joinpath("cache").iterdir())
    second = [(x.numpy(), y.numpy()) for x, y in pipeline]
    assert len(reads) == 48  # epoch two read the cache
    x1, y1 = np.concatenate([x for x, _ in first]), np.concatenate([y for _, y in first])
    x2, y2 = np.concatenate([x for x, _ in second]), np.concatenate([y for _, y in second])
    assert len(x2) == 47 and not np.array_equal(x1, x2)  # reshuffled
    order1, order2 = _by_content(x1), _by_content(x2)
    np.testing.assert_array_equal(x1[order1], x2[order2])  # the same scenes, each with its own targets
    np.testing.assert_array_equal(y1[order1], y2[order2])


def _by_content(images: np.ndarray) -> np.ndarray:
    """An order that depends on the images' pixels only (letterboxed images share their first rows)."""
    return np.argsort([hashlib.sha256(image.tobytes()).hexdigest() for image in images])


@pytest.mark.slow
def test_fine_tuning_on_streamed_splits_matches_in_memory(trained_detector, tmp_path):
    """The session's detector, tuned two more epochs on the same scenes streamed and in memory: the same mAP band.

    Targets that did not follow their images (a wrong index, a box in the wrong frame) would
    take the streamed run's mAP far below the in-memory one's within these two epochs.
    """
    result, train, test = trained_detector
    root = Path(train.sources[0]).parents[1]
    streamed = load_detection(root, image_size=64, stream=True)
    s_train, s_val, s_test = streamed.split(seed=0)
    assert s_test.sources == test.sources
    tuned = {}
    for name, splits in (("memory", (train, test)), ("streamed", (s_train, s_test))):
        run = edgekit.train(
            splits[0],
            splits[1],
            result.model_path,
            task="detection",
            epochs=2,
            test=splits[1],
            learning_rate=1e-3,
            out_dir=tmp_path / name,
            seed=0,
            verbose=0,
        )
        tuned[name] = run.metrics["map50"]["test"]
    before = result.metrics["map50"]["test"]
    print(f"test mAP@.5: trained {before:.3f}, tuned in memory {tuned['memory']:.3f}, streamed {tuned['streamed']:.3f}")
    assert abs(tuned["streamed"] - tuned["memory"]) <= 0.05, tuned
    assert tuned["streamed"] >= before - 0.05
