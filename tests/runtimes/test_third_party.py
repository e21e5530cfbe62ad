"""Open both ways: edgekit reads models it did not write, and writes metadata other tools read.

Third-party TFLite files carry TFLite Support metadata (normalization, colour space, a
labels.txt zipped after the flatbuffer) and no edgekit contract; multi-output models
(detectors, landmarks) have more than one output; some need custom ops.
"""

import numpy as np
import pytest

import edgekit
from converters.tflite import with_standard_metadata
from runtimes.contract import ModelContract, Preprocessing
from runtimes.errors import InputError, ModelLoadError
from runtimes.metadata.standard import STANDARD_METADATA_NAME, associated_files
from runtimes.metadata.tflite import read_metadata, write_metadata


@pytest.fixture(scope="module")
def plain_tflite(tiny_model):
    """The tiny model converted by plain TensorFlow: no metadata of any kind."""
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(tiny_model).convert()


@pytest.fixture(scope="module")
def two_output_model():
    """A 16x16x3 model with a (1, 3) score head and a (1, 2, 4) box-like head, as detectors have."""
    from edgekit._tf import keras

    k = keras()
    k.utils.set_random_seed(3)
    inputs = k.Input((16, 16, 3))
    features = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 3, activation="relu")(inputs))
    scores = k.layers.Dense(3, activation="softmax", name="scores")(features)
    boxes = k.layers.Reshape((2, 4), name="boxes")(k.layers.Dense(8, activation="sigmoid")(features))
    return k.Model(inputs, [scores, boxes])


def test_a_third_party_file_with_standard_metadata_loads_with_its_labels_and_normalization(
    plain_tflite, tiny_model, tmp_path
):
    spec = Preprocessing(16, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))  # per-channel: mean/std on raw pixels
    path = tmp_path / "third_party.tflite"
    path.write_bytes(
        with_standard_metadata(plain_tflite, ModelContract(spec, ("cat", "dog", "bird"), model_name="pets"))
    )
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    reference = np.asarray(tiny_model(((image[None] / 255.0 - (0.5, 0.25, 0.0)) / (0.5, 0.25, 1.0)).astype(np.float32)))
    with edgekit.load(path) as model:
        assert model.labels == ("cat", "dog", "bird") and model.contract.model_name == "pets"
        assert model.contract_sources["labels"] == "labels.txt (TENSOR_AXIS_LABELS associated file)"
        assert model.contract_sources["normalization"] == "standard metadata NormalizationOptions"
        result = model.predict(image)
    assert result.label == ("cat", "dog", "bird")[int(reference.argmax())]
    assert result.score == pytest.approx(float(reference.max()), abs=1e-5)


def test_writing_the_contract_keeps_standard_metadata_and_associated_files(plain_tflite, tiny_contract):
    other = ModelContract(
        Preprocessing(16, scale=1 / 127.5, offset=-1.0), ("x", "y", "z"), model_name="from another tool"
    )
    with_standard = with_standard_metadata(plain_tflite, other)
    rewritten = write_metadata(with_standard, tiny_contract.to_signed_json().encode())
    assert associated_files(rewritten) == {"labels.txt": b"x\ny\nz\n"}
    assert read_metadata(rewritten, STANDARD_METADATA_NAME) == read_metadata(with_standard, STANDARD_METADATA_NAME)
    assert ModelContract.from_json(read_metadata(rewritten)) == tiny_contract


def test_every_tflite_artifact_carries_standard_metadata(tiny_artifacts):
    from runtimes.metadata.standard import parse_metadata

    for kind in ("tflite_fp32", "tflite_int8"):
        data = tiny_artifacts[kind].read_bytes()
        metadata = parse_metadata(read_metadata(data, STANDARD_METADATA_NAME), associated_files(data))
        assert metadata.labels == ("a", "b", "c") and metadata.color_space == "RGB"
        assert metadata.mean == (0.0, 0.0, 0.0) and metadata.std == pytest.approx((255.0,) * 3)  # pixels / 255, exactly


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_run_all_returns_every_output_and_predict_names_them(two_output_model, tmp_path, fmt):
    path = tmp_path / f"two.{fmt}"
    if fmt == "tflite":
        import tensorflow as tf

        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(two_output_model).convert())
    else:
        two_output_model.export(str(path), format="onnx", verbose=False)
    batch = np.random.default_rng(1).random((2, 16, 16, 3), dtype=np.float32)
    expected = [np.asarray(o) for o in two_output_model(batch)]
    with edgekit.load(path, preprocessing=Preprocessing(16)) as model:
        outputs = model.run_all(batch)
        assert [spec.name for spec in model.output_specs] == list(outputs)
        shapes = sorted(array.shape for array in outputs.values())
        assert shapes == [(2, 2, 4), (2, 3)]
        by_shape = {array.shape: array for array in outputs.values()}
        np.testing.assert_allclose(by_shape[(2, 3)], expected[0], atol=1e-5)
        np.testing.assert_allclose(by_shape[(2, 2, 4)], expected[1], atol=1e-5)
        with pytest.raises(InputError, match=r"has 2 output\(s\) .*, 2, 4\].*use run_all\(batch\)"):
            model.predict(np.zeros((16, 16, 3), np.uint8))
        with pytest.raises(InputError, match="use run_all"):  # before any frame is read, not once per frame
            model.stream([np.zeros((16, 16, 3), np.uint8)])


def test_a_custom_op_is_named_not_called_corrupt(plain_tflite, tmp_path):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(bytearray(plain_tflite), 0)
    code = tree.operatorCodes[0]
    code.builtinCode, code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM, schema.BuiltinOperator.CUSTOM
    code.customCode = "Landmarks2TransformMatrix"  # a MediaPipe op that LiteRT does not register
    builder = flatbuffers.Builder(1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "custom.tflite"
    path.write_bytes(bytes(builder.Output()))
    with pytest.raises(
        ModelLoadError, match="valid TFLite model, but it needs the custom op 'Landmarks2TransformMatrix'"
    ) as error:
        edgekit.load(path, preprocessing=Preprocessing(16))
    assert "corrupt" not in str(error.value)


def _plain_onnx_reader(path, image_paths):
    """What a non-edgekit program does with an ONNX file: onnxruntime, OpenCV and the metadata_props, nothing else."""
    import json

    import cv2
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    height, width = json.loads(meta["image.size"])
    mean = np.asarray(json.loads(meta["image.normalization.mean"]), np.float32)
    std = np.asarray(json.loads(meta["image.normalization.std"]), np.float32)
    labels = json.loads(meta["labels"])
    assert meta["image.layout"] == "NHWC" and meta["image.resize"] == "stretch"
    answers = []
    for image_path in image_paths:
        image = cv2.imread(str(image_path))
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if meta["image.color_space"] == "RGB" else image
        pixels = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        if meta["input_kind"] == "pixels":
            feed = pixels[None].astype(np.uint8)
        else:
            assert meta["input_kind"] == "float"
            feed = ((pixels.astype(np.float32) - mean) / std)[None]
        scores = session.run(None, {session.get_inputs()[0].name: feed})[0][0]
        answers.append(labels[int(np.argmax(scores))])
    return answers, meta["input_kind"]


@pytest.mark.parametrize("target, kind", [("onnx:fp32", "float"), ("onnx:dynamic", "float"), ("onnx:int8", "pixels")])
def test_plain_onnxruntime_fed_from_the_metadata_alone_gives_edgekits_top1(exported, shapes_splits, target, kind):
    test = shapes_splits[2]
    path = exported.result(target).path
    answers, input_kind = _plain_onnx_reader(path, test.sources)
    with edgekit.load(path) as model:
        ours = [model.predict(source).label for source in test.sources]
    assert input_kind == kind
    assert answers == ours


@pytest.mark.parametrize(
    "spec, io_dtype, expected",
    [
        (Preprocessing(16), "float32", "MediaPipe Tasks: reads it"),
        (Preprocessing(16), "uint8", "MediaPipe Tasks: reads it"),
        (Preprocessing(16), "int8", "MediaPipe Tasks: refuses it (int8 input tensor"),
        (Preprocessing(16, color_order="bgr"), "float32", "MediaPipe Tasks: would mis-read it: BGR colour order"),
        (Preprocessing(16, resize="letterbox"), "float32", "MediaPipe Tasks: would mis-read it: letterbox resize"),
    ],
)
def test_the_report_says_which_consumers_read_each_tflite_artifact(spec, io_dtype, expected):
    from converters.base import ConversionConfig, Quantization
    from converters.tflite import consumer_notes

    config = ConversionConfig(Quantization.INT8 if io_dtype != "float32" else Quantization.FLOAT32, io_dtype=io_dtype)
    notes = consumer_notes(ModelContract(spec, ("a", "b", "c")), config)
    assert notes[0].startswith(expected)
    assert any("LiteRT alone" in note for note in notes) == (
        spec.color_order.value == "bgr" or spec.resize.value != "stretch"
    )
