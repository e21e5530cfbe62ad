"""edgekit.load / runtimes.open: backends by suffix, contract handling, predict and run."""

import cv2
import numpy as np
import pytest

import edgekit
import runtimes
from runtimes.errors import ContractError, InputError, ModelLoadError, UnknownNameError
from runtimes.tensors import QuantParams


@pytest.mark.parametrize(
    "content, name, message",
    [
        (None, "missing.tflite", "model file not found"),
        (b"", "empty.tflite", "is not a TFLite model"),
        (b"hello world, not a model at all", "garbage.tflite", "is not a TFLite model"),
        (b"x", "model.pt", r"unknown model file type '.pt'; supported: .mlmodel, .mlpackage, .onnx, .tflite"),
    ],
)
def test_bad_model_files_are_named(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as info:
        edgekit.load(path)
    assert name in str(info.value)


def test_truncated_model_is_a_clear_error(tiny_tflite, tmp_path):
    data = tiny_tflite.read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ModelLoadError, match=r"cannot load .*truncated.tflite: the TFLite model is corrupt or truncated"
    ):
        edgekit.load(truncated)


def test_unknown_backend_lists_valid_ones(tiny_tflite):
    with pytest.raises(
        UnknownNameError,
        match="unknown backend 'tensorrt'; valid backends: coreml, onnxruntime, reference, tensorflow, tflite",
    ):
        edgekit.load(tiny_tflite, backend="tensorrt")


def test_embedded_contract_is_read_and_tensors_described(tiny_tflite, tiny_contract):
    with edgekit.load(tiny_tflite, num_threads=1) as model:
        assert model.contract.labels == tiny_contract.labels
        assert model.preprocessing == tiny_contract.preprocessing
        assert model.contract.quantization == {"mode": "fp32", "io_dtype": "float32"}
        assert model.input_spec.shape == (1, 16, 16, 3) and model.input_spec.dtype == np.float32
        assert model.backend == "tflite"


def test_predict_accepts_paths_rgb_arrays_bgr_frames_gray_and_rgba(tiny_tflite, tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    path = tmp_path / "image.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    with edgekit.load(tiny_tflite) as model:
        from_rgb = model.predict(rgb)
        from_bgr = model.predict(np.ascontiguousarray(rgb[..., ::-1]), color="bgr")
        from_path = model.predict(path)
        assert from_rgb.label == from_bgr.label == from_path.label
        assert from_rgb.score == pytest.approx(from_path.score, abs=1e-6)
        assert from_rgb.top_k[0] == (from_rgb.label, from_rgb.score)
        assert len(from_rgb.top_k) == 3 and len(model.predict(rgb, top_k=2).top_k) == 2
        assert from_rgb.latency_ms > 0
        gray = model.predict(rgb[..., 0])  # grayscale: as the same gray in three channels
        assert gray.top_k == model.predict(np.repeat(rgb[..., :1], 3, axis=2)).top_k and gray.label in model.labels
        assert model.predict(np.dstack([rgb, rgb[..., :1]])).label == from_rgb.label  # RGBA
        batch = model.predict([rgb, path])
        assert [r.label for r in batch] == [from_rgb.label] * 2
        assert batch[1].score == pytest.approx(from_path.score, abs=1e-6)


def test_frames_of_many_sizes_keep_few_plans_and_the_slow_path_result(tiny_tflite):
    """predict() caches one PixelPlan (with its buffers) per frame shape, a bounded number of them."""
    from runtimes.model import MAX_PIXEL_PLANS

    rng = np.random.default_rng(2)
    with edgekit.load(tiny_tflite) as model:
        for size in [(48, 64), (30, 30), (17, 90), (120, 160), (16, 16), (48, 64), (33, 47)] * 2:
            frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            scores = [dict(model.predict(frame, color="bgr").top_k)[label] for label in model.labels]
            np.testing.assert_array_equal(scores, model.run(model.preprocess(frame, "bgr"))[0])
            assert 1 <= len(model._pixel_plans) <= MAX_PIXEL_PLANS


def test_run_checks_the_batch_shape(tiny_tflite):
    with edgekit.load(tiny_tflite) as model:
        scores = model.run(np.zeros((4, 16, 16, 3), np.float32))
        assert scores.shape == (4, 3) and scores.sum(axis=1) == pytest.approx(np.ones(4), abs=1e-5)
        with pytest.raises(InputError, match=r"expects a batch of shape \(N, 16, 16, 3\); got \(16, 16, 3\)"):
            model.run(np.zeros((16, 16, 3), np.float32))


def test_model_without_metadata_loads_and_takes_a_contract(tiny_model, tmp_path):
    import tensorflow as tf

    plain = tmp_path / "plain.tflite"
    plain.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny_model).convert())
    with edgekit.load(plain) as model:
        assert model.contract is None and model.labels == ("0", "1", "2")
        assert model.run(np.zeros((1, 16, 16, 3), np.float32)).shape == (1, 3)
        with pytest.raises(ContractError, match="carries no preprocessing contract; pass one when loading"):
            model.predict(np.zeros((16, 16, 3), np.uint8))
    with edgekit.load(plain, preprocessing=edgekit.Preprocessing(16), labels=["x", "y", "z"]) as model:
        assert model.predict(np.zeros((30, 30, 3), np.uint8)).label in ("x", "y", "z")
    with pytest.raises(
        ContractError, match=r"takes input of shape \(16, 16, 3\) but its preprocessing produces \(32, 32, 3\)"
    ):
        edgekit.load(plain, preprocessing=edgekit.Preprocessing(32))


def test_contradicting_the_embedded_contract_is_an_error(tiny_tflite):
    with pytest.raises(ContractError, match="embeds preprocessing .* but .* was passed"):
        edgekit.load(tiny_tflite, preprocessing=edgekit.Preprocessing(16, scale=1 / 127.5, offset=-1))
    with pytest.raises(ContractError, match=r"embeds labels \['a', 'b', 'c'\] but \['c', 'b', 'a'\]"):
        edgekit.load(tiny_tflite, labels=["c", "b", "a"])
    with edgekit.load(tiny_tflite, labels=["a", "b", "c"]) as model:  # agreeing is fine
        assert model.labels == ("a", "b", "c")


@pytest.mark.parametrize(
    "spec",
    [
        edgekit.Preprocessing(16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255),
        edgekit.Preprocessing(16, color_order="bgr", scale=1 / 127.5, offset=-1),
        edgekit.Preprocessing(16, layout="nchw"),
    ],
    ids=["per-channel", "bgr-shared", "nchw"],
)
def test_float_models_take_pixels_through_an_exact_table(tiny_model, tmp_path, spec):
    """predict() on float models looks pixels up in a table built by normalize(): the same floats, one pass."""
    import tensorflow as tf

    network = tiny_model
    if spec.layout.value == "nchw":  # a model that takes channels first
        from edgekit._tf import keras

        inputs = keras().Input((3, 16, 16))
        network = keras().Model(inputs, tiny_model(keras().ops.transpose(inputs, (0, 2, 3, 1))))
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(tf.lite.TFLiteConverter.from_keras_model(network).convert())
    with edgekit.load(plain, preprocessing=spec, labels=["x", "y", "z"]) as model:
        table = model._pixel_table
        assert model.pixel_path == ("normalize" if spec.layout.value == "nchw" else "lookup")
        if spec.layout.value == "nchw":
            assert table is None  # no table: normalize then transpose
        else:
            assert table.dtype == np.float32 and table.shape == ((1, 256, 3) if spec.mean else (256,))
        frames = np.random.default_rng(1).integers(0, 256, (3, 48, 40, 3), dtype=np.uint8)
        for frame in [*frames, *frames]:
            scores = [dict(model.predict(frame, color="bgr").top_k)[label] for label in model.labels]
            np.testing.assert_array_equal(scores, model.run(model.preprocess(frame, "bgr"))[0])


@pytest.mark.parametrize("target", ["tflite:int8", "onnx:int8", "tflite:fp32"])
def test_run_filled_writes_the_input_in_place_and_survives_a_failed_fill(exported, target):
    with edgekit.load(exported.result(target).path) as model:
        spec = model.input_spec
        shape = (2, *spec.shape[1:])
        feed = (
            np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8).view(np.int8)
            if spec.dtype == np.int8
            else np.random.default_rng(0).integers(0, 256, shape).astype(spec.dtype)
        )
        expected = model.runtime.run([feed])[0]

        def failing(buffer):
            raise ValueError("camera frame went away")

        with pytest.raises(ValueError, match="camera frame went away") as caught:
            model.runtime.run_filled(shape, failing)
        # the caught traceback keeps run_filled's frame alive: it must not hold a view of the input memory
        np.testing.assert_array_equal(
            model.runtime.run_filled(shape, lambda buffer: np.copyto(buffer, feed))[0], expected
        )
        assert caught.traceback


@pytest.mark.parametrize("dtype, zero_point", [(np.int8, -3), (np.uint8, 131)])
def test_predict_scores_are_run_scores_bit_for_bit(exported, dtype, zero_point):
    """predict() reads 8-bit scores from a table of dequantized values: exactly dequantize()'s float32."""
    from dataclasses import replace

    from runtimes.quantization import dequantize
    from runtimes.tasks.binding import ModelInfo
    from runtimes.tasks.classification import ClassificationDecoder

    with edgekit.load(exported.result("tflite:int8").path) as model:
        spec = replace(model.output_spec, dtype=np.dtype(dtype), quantization=QuantParams(0.0123, zero_point))
        decoder = ClassificationDecoder(ModelInfo(model.path.name, (spec,), model.labels, None, model.preprocessing))
        raw = np.random.default_rng(0).integers(0, 256, (5, 3)).astype(np.uint8).view(dtype)
        rows = decoder.rows(raw)
        assert rows == dequantize(raw, spec).tolist()
        assert rows[0][0] != (int(raw[0, 0]) - zero_point) * 0.0123  # float32 values, not float64 products


def test_runtimes_open_is_edgekit_load(tiny_tflite):
    with runtimes.open(tiny_tflite) as model:
        assert isinstance(model, edgekit.Model)


def test_interpreter_falls_back_in_order_and_names_the_extra(monkeypatch, tiny_tflite):
    import importlib

    from runtimes.backends import tflite as tflite
    from runtimes.errors import MissingDependencyError

    real_import = importlib.import_module
    missing = {"ai_edge_litert.interpreter", "tflite_runtime.interpreter"}

    def fake_import(name, *args):
        if name in missing:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    with edgekit.load(tiny_tflite) as model:
        expected = model.run(x)
    monkeypatch.setattr(tflite.importlib, "import_module", fake_import)
    assert tflite.interpreter_class()[1] == "tensorflow.lite.python.interpreter"
    with edgekit.load(tiny_tflite) as model:
        assert model.runtime.interpreter_module == "tensorflow.lite.python.interpreter"
        np.testing.assert_allclose(model.run(x), expected, atol=1e-6)
    missing.add("tensorflow.lite.python.interpreter")
    with pytest.raises(
        MissingDependencyError, match=r'no TFLite interpreter is installed .* pip install "edgekit\[runtime\]"'
    ):
        tflite.interpreter_class()


def test_a_closed_model_says_so(tiny_tflite):
    model = edgekit.load(tiny_tflite)
    model.close()
    with pytest.raises(InputError, match="tiny.tflite was closed"):
        model.run(np.zeros((1, 16, 16, 3), np.float32))


@pytest.mark.parametrize(
    "target, direct, shift",
    [
        ("tflite:uint8", True, 0),
        ("tflite:int8", True, 128),
        ("tflite:fp32", False, None),
        ("onnx:int8", True, 0),
        ("onnx:fp32", False, None),
    ],
)
def test_pixel_fast_path_gives_the_slow_path_result(exported, shapes_splits, target, direct, shift):
    """uint8/int8 inputs quantized exactly like the contract take camera pixels with no float round trip.

    The small CNN's pixels/255 contract quantizes to p (uint8) or p - 128 (int8): an 8-bit add, no lookup.
    """
    test = shapes_splits[2]
    with edgekit.load(exported.result(target).path) as model:
        assert model.direct_pixel_input is direct and model._pixel_shift == shift
        assert model.pixel_path == ("lookup" if shift is None else "add")
        frames = [cv2.imread(source) for source in test.sources[:12]]
        fast = model.predict(frames, color="bgr")
        slow = model.run(np.concatenate([model.preprocess(frame, "bgr") for frame in frames]))
        np.testing.assert_array_equal(
            np.array([[score for _, score in sorted(r.top_k, key=lambda t: model.labels.index(t[0]))] for r in fast]),
            slow,
        )
        big = [cv2.resize(frame, (640, 480)) for frame in frames[:4]]  # single frames: the reused-buffer path
        for frame in big + big[::-1]:
            single = model.predict(frame, color="bgr")
            expected = model.run(model.preprocess(frame, "bgr"))[0]
            np.testing.assert_array_equal([dict(single.top_k)[label] for label in model.labels], expected)
