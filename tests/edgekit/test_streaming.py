"""Datasets larger than memory: image folders streamed through tf.data give the device's pixels, skip and
count corrupt files, cache decoded pixels, and train and export like in-memory datasets."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from helpers import CLASSIFIER_RUN_FILES

import edgekit
from edgekit.data.image_streaming import StreamingImageDataset
from edgekit.errors import DatasetError, TrainingError
from edgekit.training.architectures import ARCHITECTURES
from runtimes.preprocess import preprocess

SPEC = ARCHITECTURES.get("small_cnn").preprocessing(edgekit.Preprocessing(48))


@pytest.fixture(scope="module")
def folder_with_corrupt_files(shapes_root, tmp_path_factory):
    """120 shapes images per class at 64 px, and two files that are not images."""
    root = tmp_path_factory.mktemp("streamed") / "shapes"
    for label in ("circle", "square", "triangle"):
        (root / label).mkdir(parents=True)
        for source in sorted((shapes_root / label).iterdir())[:120]:
            shutil.copy(source, root / label / source.name)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG but not really")
    (root / "square" / "empty.jpg").write_bytes(b"")
    return root


def _batches(dataset, spec, **options):
    xs, ys = [], []
    for x, y in dataset.pipeline(spec, 32, **options):
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_streamed_pixels_are_the_devices_bit_for_bit(folder_with_corrupt_files):
    """The pipeline's float batches equal runtimes.preprocess on each file, and the in-memory dataset's tensors."""
    streamed = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=True)
    assert isinstance(streamed, StreamingImageDataset) and len(streamed) == 362
    x, y = _batches(streamed, SPEC)
    readable = [i for i, path in enumerate(streamed.files) if not path.endswith(("broken.png", "empty.jpg"))]
    assert x.shape == (360, 48, 48, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y, streamed.targets[readable])
    for row, index in zip(range(0, 360, 37), readable[::37]):
        np.testing.assert_array_equal(x[row], preprocess(streamed.files[index], SPEC)[0])
    in_memory = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=False)
    np.testing.assert_array_equal(x, in_memory.tensors(SPEC))
    assert sorted(s.path for s in streamed.skipped) == sorted(s.path for s in in_memory.skipped)


def test_corrupt_files_are_skipped_and_counted_across_splits(folder_with_corrupt_files):
    streamed = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=True)
    assert streamed.class_counts() == {"circle": 121, "square": 121, "triangle": 120}  # nothing read yet
    train, val, test = streamed.split(val=0.2, test=0.2, seed=0)
    assert (len(train), len(val), len(test)) == (218, 72, 72)
    for split in (train, val, test):
        _batches(split, SPEC)
    skipped = sorted(s.path.rsplit("/", 2)[-2] + "/" + s.path.rsplit("/", 1)[-1] for s in streamed.skipped)
    assert skipped == ["circle/broken.png", "square/empty.jpg"]  # met in whichever split, recorded once for all
    assert all("corrupt or not an image" in s.reason or "cannot decode" in s.reason for s in streamed.skipped)
    assert streamed.class_counts() == {"circle": 120, "square": 120, "triangle": 120}
    assert sum(len(split.load()) for split in (train, val, test)) == 360
    calibration = train.sample(50, seed=1)
    assert (
        isinstance(calibration, edgekit.ImageDataset)
        and len(calibration) <= 50
        and calibration.pixels.shape[1:] == (48, 48, 3)
    )


def test_every_training_input_has_the_autotuner_off_and_in_memory_batches_reshuffle_per_epoch(
    folder_with_corrupt_files,
):
    """Keras deletes each epoch's iterator, which waited up to 18 s for tf.data's sleeping autotuner: every
    pipeline edgekit hands to fit has it off. In-memory batches (a seeded generator) cover every image once an
    epoch, in a new order each epoch, the same for the same seed."""
    from edgekit.data.annotations import load_detection
    from edgekit.data.synthetic import make_shapes_detection
    from edgekit.training.classification import _batches as classification_batches
    from edgekit.training.detection import _batches as detection_batches
    from edgekit.training.detector_graph import DETECTORS

    streamed = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=True)
    in_memory = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=False)
    scene_root = make_shapes_detection(folder_with_corrupt_files.parent / "scenes", n_images=12, image_size=64, seed=0)
    scenes = load_detection(scene_root, image_size=64)
    detector_spec = DETECTORS.get("small_detector").preprocessing(scenes.geometry)
    inputs = {
        "streamed": streamed.pipeline(SPEC, 32, shuffle=True, flip=True),
        "in memory": classification_batches(in_memory, SPEC, 32, train=True, seed=3),
        "distributed": classification_batches(in_memory, SPEC, 32, train=True, seed=3, distributed=True),
        "detection": detection_batches(scenes, detector_spec, 4, train=True, seed=0)[0],
        "detection streamed": detection_batches(
            load_detection(scene_root, image_size=64, stream=True), detector_spec, 4, train=True, seed=0
        )[0],
    }
    for name, data in inputs.items():
        assert data.options().autotune.enabled is False, name

    def epoch_targets(data):
        return np.concatenate([y.numpy() for _, y in data])

    batches = inputs["in memory"]
    assert len(batches) == 12  # 360 images in batches of 32
    first, second = epoch_targets(batches), epoch_targets(batches)
    assert np.bincount(first).tolist() == np.bincount(second).tolist() == [120, 120, 120]
    assert not np.array_equal(first, second)  # reshuffled
    again = classification_batches(in_memory, SPEC, 32, train=True, seed=3)
    np.testing.assert_array_equal(epoch_targets(again), first)
    np.testing.assert_array_equal(
        epoch_targets(classification_batches(in_memory, SPEC, 32, train=False, seed=3)), in_memory.targets
    )  # evaluation keeps the dataset's order


def test_auto_streams_past_the_memory_threshold_and_says_so(folder_with_corrupt_files, monkeypatch, caplog):
    import edgekit.data.image_streaming

    assert isinstance(edgekit.ImageFolder(folder_with_corrupt_files, image_size=48), edgekit.ImageDataset)  # 2.5 MB
    monkeypatch.setattr(edgekit.data.image_streaming, "STREAM_ABOVE_BYTES", 1 << 20)
    with caplog.at_level(logging.INFO, logger="edgekit.data"):
        streamed = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48)
    assert isinstance(streamed, StreamingImageDataset)
    assert "streaming 362 images" in caplog.text and "stream=False" in caplog.text
    assert isinstance(edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=False), edgekit.ImageDataset)
    with pytest.raises(DatasetError, match=r"invalid stream='yes'; valid: True, False or 'auto'"):
        edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream="yes")


def test_the_cache_holds_decoded_pixels_so_epoch_two_decodes_nothing(folder_with_corrupt_files, tmp_path, monkeypatch):
    streamed = edgekit.ImageFolder(folder_with_corrupt_files, image_size=48, stream=True, cache_dir=tmp_path / "cache")
    reads = []
    original = StreamingImageDataset.read
    monkeypatch.setattr(StreamingImageDataset, "read", lambda self, index: reads.append(index) or original(self, index))
    pipeline = streamed.pipeline(SPEC, 32, shuffle=True, seed=3)
    first = [(x.numpy(), y.numpy()) for x, y in pipeline]
    assert len(reads) == 362 and any(tmp_path.joinpath("cache").iterdir())
    second = [(x.numpy(), y.numpy()) for x, y in pipeline]
    assert len(reads) == 362  # the second epoch read the cache, not the files
    x1, y1 = np.concatenate([x for x, _ in first]), np.concatenate([y for _, y in first])
    x2, y2 = np.concatenate([x for x, _ in second]), np.concatenate([y for _, y in second])
    assert len(x2) == 360 and not np.array_equal(y1, y2)  # reshuffled each epoch
    order1, order2 = np.lexsort(x1.reshape(360, -1).T[:64]), np.lexsort(x2.reshape(360, -1).T[:64])
    np.testing.assert_array_equal(x1[order1], x2[order2])  # the same images
    np.testing.assert_array_equal(y1[order1], y2[order2])


@pytest.fixture(scope="module")
def dark_and_light(tmp_path_factory):
    """Noise images, dark (0..110) or light (145..255): a small CNN separates them in a few epochs. One file is
    corrupt."""
    import cv2

    root = tmp_path_factory.mktemp("dark-light")
    rng = np.random.default_rng(0)
    for label, low in (("dark", 0), ("light", 145)):
        (root / label).mkdir()
        for i in range(60):
            cv2.imwrite(str(root / label / f"{i:03d}.png"), rng.integers(low, low + 111, (40, 40, 3), dtype=np.uint8))
    (root / "light" / "zz_truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return root


@pytest.mark.slow  # trains a model
def test_training_and_export_take_streamed_splits(dark_and_light, tmp_path):
    """small_cnn trains on streamed splits (shuffled, flipped), and export calibrates and checks on streamed splits."""
    train, val, test = edgekit.ImageFolder(dark_and_light, image_size=32, stream=True).split(val=0.2, test=0.2, seed=0)
    result = edgekit.train(
        train, val, "small_cnn", test=test, epochs=6, learning_rate=3e-3, out_dir=tmp_path / "train", verbose=0
    )
    assert len(result.history["val_loss"]) == result.metrics["epochs_run"] >= 3
    assert result.metrics["accuracy"]["test"] >= 0.95, result.metrics["accuracy"]
    assert [s.path.rsplit("/", 1)[-1] for s in train.skipped] == ["zz_truncated.png"]
    report = edgekit.export(
        result.model_path, ["tflite:int8"], calibration=train, check=test, out_dir=tmp_path / "export", progress=False
    )
    assert report.check_samples == len(test.load())  # the readable ones
    assert report.result("tflite:int8").status == "ok" and report.result("tflite:int8").accuracy >= 0.95
    with pytest.raises(TrainingError, match="distill.*stream=False"):
        edgekit.train(
            train, val, "small_cnn", epochs=1, teacher=result.model_path, out_dir=tmp_path / "student", verbose=0
        )


def _edgekit(*args, env=None, timeout=600):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow  # trains a model
@pytest.mark.parametrize("stream", ["no", "yes"])
def test_mirrored_training_on_two_logical_cpus_learns_and_writes_the_usual_files(dark_and_light, tmp_path, stream):
    """--devices 2 on a machine without GPUs: MirroredStrategy over two logical CPU devices (its own process: devices
    are fixed when TensorFlow starts), the same accuracy band as one device, the same files."""
    out = tmp_path / "mirrored"
    done = _edgekit(
        "train",
        dark_and_light,
        "--image-size",
        32,
        "--epochs",
        6,
        "--lr",
        3e-3,
        "--val",
        0.2,
        "--test",
        0.2,
        "--devices",
        2,
        "--stream",
        stream,
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MirroredStrategy" in done.stderr and "2 logical CPU devices" in done.stderr
    test_accuracy = float(
        next(line for line in done.stdout.splitlines() if "test accuracy" in line).split()[-1].rstrip("%")
    )
    assert test_accuracy >= 95.0, done.stdout
    assert sorted(p.name for p in out.iterdir()) == CLASSIFIER_RUN_FILES
    with edgekit.load(
        edgekit.export(out / "model.keras", ["tflite:fp32"], out_dir=tmp_path / "export", progress=False)
        .result("tflite:fp32")
        .path
    ) as model:
        assert model.predict(np.full((40, 40, 3), 230, np.uint8)).label == "light"
        assert model.predict(np.full((40, 40, 3), 20, np.uint8)).label == "dark"


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow  # trains a model
def test_two_workers_on_localhost_train_together_and_only_the_chief_writes(dark_and_light, tmp_path):
    """MultiWorkerMirroredStrategy from TF_CONFIG: two `edgekit train` processes on free localhost ports, killed if
    they outlive the timeout; both run the same synchronous epochs, and only worker 0 writes the model and its files."""
    import json
    import os
    import subprocess
    import sys

    ports = _free_ports(2)
    out = tmp_path / "multi"
    workers = []
    try:
        for index in range(2):
            config = {
                "cluster": {"worker": [f"localhost:{port}" for port in ports]},
                "task": {"type": "worker", "index": index},
            }
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "edgekit.cli",
                        "train",
                        str(dark_and_light),
                        "--image-size",
                        "32",
                        "--epochs",
                        "6",
                        "--lr",
                        "3e-3",
                        "--val",
                        "0.2",
                        "--test",
                        "0.2",
                        "--out",
                        str(out),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "TF_CONFIG": json.dumps(config)},
                )
            )
        logs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    for worker, (_stdout, stderr) in zip(workers, logs):
        assert worker.returncode == 0, stderr[-3000:]
        assert "training on 2 workers (TF_CONFIG) with MultiWorkerMirroredStrategy" in stderr
    epochs = [[line.split("(")[0] for line in stderr.splitlines() if line.startswith("epoch ")] for _, stderr in logs]
    assert epochs[0] and epochs[0] == epochs[1]  # one synchronous run: the same losses on both workers
    chief_accuracy = float(
        next(line for line in logs[0][0].splitlines() if "test accuracy" in line).split()[-1].rstrip("%")
    )
    assert chief_accuracy >= 95.0, logs[0][0]
    assert sorted(p.name for p in out.iterdir()) == CLASSIFIER_RUN_FILES
    assert str(out) in logs[0][0] and str(out) not in logs[1][0]  # worker 1 wrote to a scratch folder, since removed
    scratch = next(line for line in logs[1][0].splitlines() if line.startswith("wrote ")).rsplit(" to ", 1)[1]
    assert not os.path.exists(scratch)
