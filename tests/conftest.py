"""Shared fixtures: the shapes data, one trained small CNN, its exported artifacts, tiny models.

`make test` runs the suite on every core with pytest-xdist, a whole module per worker
(`--dist loadfile`): the models that several modules share are trained once per run all
the same (`built_once`), and the longest modules start first (`LONGEST_FIRST`).
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _share_the_cores() -> None:
    """Under xdist each worker's TensorFlow (and the subprocesses it starts) gets its share of the cores.

    TensorFlow sizes its thread pools for the whole machine: two workers each running two
    threads on two cores made a training step 36% slower than one thread each (300 vs 220 ms,
    MobileNetV2 at 96 px). Set before TensorFlow is imported; a variable set by hand wins.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = str(max(1, len(os.sched_getaffinity(0)) // workers))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", share)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", share)


_share_the_cores()

from pathlib import Path

import numpy as np
import pytest
from helpers.needs import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401 (CI's skip policy: tests/helpers/needs.py)

import edgekit
from runtimes.contract import ModelContract, Preprocessing

IMAGE_SIZE = 64
TFLITE_TARGETS = ("tflite:fp32", "tflite:fp16", "tflite:dynamic", "tflite:int8", "tflite:uint8")
ONNX_TARGETS = ("onnx:fp32", "onnx:dynamic", "onnx:int8")

MAX_WORKERS = 4  # each worker holds TensorFlow (about 2 GB); the suite's longest module bounds the gain

# Seconds per test module, recorded by the last whole-suite run (`make test` rewrites it): workers take whole modules in
# collection order, so the longest are collected first; a long one started last would run on alone.
DURATIONS = Path(__file__).resolve().parent / "durations.json"
# Fixtures that train or export a model: a test that uses one is `slow` (left out of `make test-fast`).
TRAINING_FIXTURES = {"trained", "exported", "trained_detector", "detector_exported", "shapes_splits", "shapes_tenth"}
MARKED_BY_FOLDER = {"integration": "integration"}  # tests/<folder>/: the marker its every test carries
_DURATIONS_SEEN = pytest.StashKey[dict]()


def _module_of(item: pytest.Item) -> str:
    return item.path.relative_to(Path(__file__).resolve().parent).as_posix()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The markers a test's folder and fixtures imply; then modules by their recorded duration, longest first."""
    for item in items:
        folder = _module_of(item).split("/")[0]
        if folder in MARKED_BY_FOLDER:
            item.add_marker(MARKED_BY_FOLDER[folder])
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")
    recorded = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    items.sort(key=lambda item: -recorded.get(_module_of(item), 0.0))  # stable: unrecorded modules as collected


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum each module's setup, call and teardown time (on xdist's controller, from every worker's reports)."""
    seen = _CONFIG[0].stash.setdefault(_DURATIONS_SEEN, {}) if _CONFIG else None
    if seen is not None:
        module = report.nodeid.split("::")[0].removeprefix("tests/")
        seen[module] = seen.get(module, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After a whole-suite run (no -k, -m or paths narrower than tests/), record the modules' durations."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.keyword or config.option.markexpr:
        return
    if any(Path(str(arg).split("::")[0]).resolve() != DURATIONS.parent for arg in config.args):
        return
    seen = config.stash.get(_DURATIONS_SEEN, {})
    if len(seen) > 10:  # a run that collected the suite, not an early collection error
        DURATIONS.write_text(json.dumps({k: round(v, 1) for k, v in sorted(seen.items())}, indent=1) + "\n")


_CONFIG: list[pytest.Config] = []


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: pytest alone runs the suite too
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


ARM64_SETUP = Path(__file__).resolve().parent.parent / "scripts" / "arm64-sysroot.sh"
_ARM64_EARLY = pytest.StashKey[subprocess.Popen]()


def _runs_arm64_tests(config: pytest.Config) -> bool:
    """Whether this run's paths include test_arm64 (the whole suite, or that file named)."""
    tests = Path(__file__).resolve().parent
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path in (tests, tests / "integration", tests / "integration" / "test_arm64.py"):
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    """Keep the config for the duration hooks; start the emulated Pi's set-up (downloads, then unpacking) at once,
    in the background.

    Only the first run on a machine does real work, mostly waiting on the package
    registries: begun here it overlaps the shared models' training instead of following it.
    The arm64 fixture runs the script again, which waits for this one (a lock) and finds it done.
    """
    _CONFIG[:] = [config]
    if hasattr(config, "workerinput") or not sys.platform.startswith("linux") or shutil.which("apt-get") is None:
        return  # an xdist worker (the controller starts it), or a host the fixture skips
    if _runs_arm64_tests(config):
        config.stash[_ARM64_EARLY] = subprocess.Popen(
            ["bash", str(ARM64_SETUP)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Wait for the early set-up (when the arm64 tests were deselected it may still run: never cut apt short)."""
    early = config.stash.get(_ARM64_EARLY, None)
    if early is not None:
        try:
            early.wait(timeout=900)
        except subprocess.TimeoutExpired:
            early.kill()
            early.wait()


def _keras_model(saved: bytes) -> Any:
    """A Keras model from its .keras bytes, loaded as edgekit loads it (uncompiled: a detector's loss is a closure)."""
    from edgekit.keras_io import load_keras

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(saved)
        return load_keras(path)[0]


class _ModelPickler(pickle.Pickler):
    """Pickles Keras models as their .keras file (Keras' own pickling reloads compiled, which fails for closures)."""

    def reducer_override(self, obj: Any) -> Any:
        from edgekit._tf import keras

        if not isinstance(obj, keras().Model):
            return NotImplemented
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            obj.save(path)
            return _keras_model, (path.read_bytes(),)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[], Any]) -> Any:
    """`build()` once per test run, also when pytest-xdist runs the tests in several processes.

    Under xdist the first worker to ask builds it while holding a lock and pickles the result
    beside the workers' temporary folders (which they share); the others wait for it and load
    it, Keras models as edgekit loads them (uncompiled). Paths in the result point into the
    builder's folder, which stays.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build()
    folder = tmp_path_factory.getbasetemp().parent / "built-once"
    folder.mkdir(exist_ok=True)
    stored = folder / f"{name}.pickle"
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if build() raises
        if stored.exists():
            return pickle.loads(stored.read_bytes())
        value = build()
        partial = stored.with_suffix(".partial")
        with open(partial, "wb") as file:
            _ModelPickler(file).dump(value)
        partial.replace(stored)
        return value


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return edgekit.datasets.make_shapes(
        tmp_path_factory.mktemp("data") / "shapes", n_per_class=400, image_size=IMAGE_SIZE, seed=0
    )


@pytest.fixture(scope="session")
def shapes_tenth(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tenth shapes image (40 per class), in the same folders: for runs that only need to work end to end."""
    root = tmp_path_factory.mktemp("data") / "shapes_tenth"
    for folder in sorted(shapes_root.iterdir()):
        (root / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[::10]:
            shutil.copy(image, root / folder.name)
    return root


@pytest.fixture(scope="session")
def shapes_splits(shapes_root: Path):
    return edgekit.ImageFolder(shapes_root, image_size=IMAGE_SIZE).split(val=0.15, test=0.15, seed=0)


@pytest.fixture(scope="session")
def trained(shapes_splits, tmp_path_factory: pytest.TempPathFactory):
    """The demo's model: small_cnn trained on the shapes data (14 epochs, about two and a half minutes on a 2-core host;
    validation accuracy 0.989 at epoch 11 and 0.994 from 12 in a 20-epoch run, 2026-12-07)."""
    train, val, test = shapes_splits
    return built_once(
        tmp_path_factory,
        "trained",
        lambda: edgekit.train(
            train,
            val,
            "small_cnn",
            test=test,
            epochs=14,
            patience=6,
            out_dir=tmp_path_factory.mktemp("train"),
            seed=0,
            verbose=0,
        ),
    )


@pytest.fixture(scope="session")
def exported(trained, shapes_splits, tmp_path_factory: pytest.TempPathFactory):
    """Every TFLite and ONNX mode of the trained model, checked against Keras on the test split."""
    train, _, test = shapes_splits
    return built_once(
        tmp_path_factory,
        "exported",
        lambda: edgekit.export(
            trained.model_path,
            TFLITE_TARGETS + ONNX_TARGETS,
            out_dir=tmp_path_factory.mktemp("export"),
            calibration=train,
            check=test,
            progress=False,
        ),
    )


@pytest.fixture(scope="session")
def tiny_contract() -> ModelContract:
    return ModelContract(
        Preprocessing(input_size=16), labels=("a", "b", "c"), model_name="tiny", edgekit_version=edgekit.__version__
    )


@pytest.fixture(scope="session")
def tiny_model():
    """A 16x16x3 -> 3 class functional model; random weights are enough for format tests."""
    from edgekit._tf import keras

    k = keras()
    k.utils.set_random_seed(1)
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="session")
def tiny_calibration():
    import cv2

    from converters import CalibrationData

    rng = np.random.default_rng(0)  # smooth random images: image-like neighbour correlation
    coarse = rng.integers(0, 256, size=(40, 4, 4, 3), dtype=np.uint8)
    pixels = np.stack([cv2.resize(c, (16, 16), interpolation=cv2.INTER_LINEAR) for c in coarse])
    return CalibrationData(pixels.astype(np.float32) / 255.0)


@pytest.fixture(scope="session")
def tiny_tflite(tiny_model, tiny_contract, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from converters.tflite import MODES, convert_tflite

    path = tmp_path_factory.mktemp("tiny") / "tiny.tflite"
    convert_tflite(tiny_model, path, MODES["fp32"], contract=tiny_contract)
    return path


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_model, tiny_contract, tiny_calibration, tmp_path_factory):
    """fp32 and int8 TFLite and ONNX files of the tiny model."""
    from converters.onnx import MODES as ONNX_MODES
    from converters.onnx import convert_onnx
    from converters.tflite import MODES as TFLITE_MODES
    from converters.tflite import convert_tflite

    out = tmp_path_factory.mktemp("bad_inputs")
    files = {}
    for mode in ("fp32", "int8"):
        files[f"tflite_{mode}"] = convert_tflite(
            tiny_model,
            out / f"tiny_{mode}.tflite",
            TFLITE_MODES[mode],
            contract=tiny_contract,
            calibration=tiny_calibration,
        ).path
        files[f"onnx_{mode}"] = convert_onnx(
            tiny_model,
            out / f"tiny_{mode}.onnx",
            ONNX_MODES[mode],
            contract=tiny_contract,
            calibration=tiny_calibration,
        ).path
    return files


# -- one detector for the live, tracking, deploy and MediaPipe tests ---------------------------

DETECTOR_TARGETS = ("tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8")


@pytest.fixture(scope="session")
def trained_detector(tmp_path_factory: pytest.TempPathFactory):
    """small_detector at 64 px trained on 800 shapes scenes for 24 epochs (about a minute on 2 cores).

    Weak by the bench's standard (test mAP@.5 about 0.2), but its boxes are steady enough to
    track: objects of a fifth of the input side are found on nearly every frame of the tracking clip.
    """
    from edgekit.data.annotations import load_detection
    from edgekit.data.synthetic import make_shapes_detection

    def build() -> tuple[Any, Any, Any]:
        root = make_shapes_detection(
            tmp_path_factory.mktemp("detector-data") / "scenes", n_images=800, image_size=64, seed=1
        )
        train, val, test = load_detection(root, image_size=64).split(seed=0)
        result = edgekit.train(
            train,
            val,
            task="detection",
            epochs=24,
            test=test,
            out_dir=tmp_path_factory.mktemp("detector"),
            seed=0,
            verbose=0,
        )
        return result, train, test

    return built_once(tmp_path_factory, "trained_detector", build)


@pytest.fixture(scope="session")
def detector_exported(trained_detector, tmp_path_factory: pytest.TempPathFactory):
    """The detector in every format the Pi bundle takes, checked against Keras on its test split."""
    result, train, test = trained_detector
    return built_once(
        tmp_path_factory,
        "detector_exported",
        lambda: edgekit.export(
            result.model_path,
            DETECTOR_TARGETS,
            out_dir=tmp_path_factory.mktemp("detector-export"),
            calibration=train,
            check=test,
            progress=False,
        ),
    )


KEYPOINT_TARGETS = (
    "tflite:fp32",
    "tflite:fp16",
    "tflite:int8",
    "tflite:int8_full",
    "onnx:fp32",
    "onnx:int8",
    "coreml:fp32",
    "coreml:fp16",
    "coreml:int8",
    "savedmodel:fp32",
)


@pytest.fixture(scope="session")
def trained_keypoints(tmp_path_factory: pytest.TempPathFactory):
    """small_keypoint_detector at 96 px trained on 400 generated keypoint scenes for 25 epochs (under a minute on
    2 cores): the points within a tenth of their object's side for about 40% of them (PCK@0.1), 4-5 px off."""
    from edgekit.data.keypoints import load_keypoints
    from edgekit.data.synthetic import make_shapes_keypoints

    def build() -> tuple[Any, Any, Any]:
        root = make_shapes_keypoints(
            tmp_path_factory.mktemp("keypoint-data") / "scenes", n_images=400, image_size=96, seed=1
        )
        train, val, test = load_keypoints(root, image_size=96).split(seed=0)
        result = edgekit.train(
            train,
            val,
            task="keypoints",
            epochs=25,
            patience=25,
            test=test,
            out_dir=tmp_path_factory.mktemp("keypoints"),
            seed=0,
            verbose=0,
        )
        return result, train, test

    return built_once(tmp_path_factory, "trained_keypoints", build)


@pytest.fixture(scope="session")
def keypoints_exported(trained_keypoints, tmp_path_factory: pytest.TempPathFactory):
    """The keypoint model in every format, checked against Keras on its test split."""
    result, train, test = trained_keypoints
    return built_once(
        tmp_path_factory,
        "keypoints_exported",
        lambda: edgekit.export(
            result.model_path,
            KEYPOINT_TARGETS,
            out_dir=tmp_path_factory.mktemp("keypoints-export"),
            calibration=train,
            check=test,
            progress=False,
        ),
    )


SEGMENTATION_TARGETS = (
    "tflite:fp32",
    "tflite:int8",
    "onnx:fp32",
    "onnx:int8",
    "coreml:fp16",
    "savedmodel:fp32",
)


@pytest.fixture(scope="session")
def trained_segmenter(tmp_path_factory: pytest.TempPathFactory):
    """small_segmenter at 64 px trained on 300 generated segmentation scenes (about a minute on 2 cores)."""
    from edgekit.data.segmentation import load_segmentation
    from edgekit.data.synthetic_segmentation import make_shapes_segmentation

    def build() -> tuple[Any, Any, Any]:
        root = make_shapes_segmentation(
            tmp_path_factory.mktemp("segmentation-data") / "scenes", n_images=300, image_size=64, seed=1
        )
        train, val, test = load_segmentation(root, image_size=64).split(seed=0)
        result = edgekit.train(
            train,
            val,
            task="segmentation",
            epochs=30,
            patience=30,
            test=test,
            out_dir=tmp_path_factory.mktemp("segmenter"),
            seed=0,
            verbose=0,
        )
        return result, train, test

    return built_once(tmp_path_factory, "trained_segmenter", build)


@pytest.fixture(scope="session")
def segmenter_exported(trained_segmenter, tmp_path_factory: pytest.TempPathFactory):
    """The segmentation model in every format, checked against Keras on its test split."""
    result, train, test = trained_segmenter
    return built_once(
        tmp_path_factory,
        "segmenter_exported",
        lambda: edgekit.export(
            result.model_path,
            SEGMENTATION_TARGETS,
            out_dir=tmp_path_factory.mktemp("segmenter-export"),
            calibration=train,
            check=test,
            progress=False,
        ),
    )


@pytest.fixture(scope="session")
def tracking_clip(tmp_path_factory: pytest.TempPathFactory):
    """48 lossless 128x128 frames: a circle and a square cross the centre line in opposite directions, a
    triangle stops short of it (edgekit.datasets.make_tracking_video)."""
    from edgekit.data.synthetic import make_tracking_video

    return make_tracking_video(tmp_path_factory.mktemp("tracking") / "clip.avi", size=(128, 128))
