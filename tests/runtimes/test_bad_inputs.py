"""Every bad file, frame and batch is an edgekit error that names the problem; no wrong answer is quiet.

Cases from a fault-injection pass over the landed code: each raised a raw Python or
runtime exception, or returned a wrong answer without a word.
"""

import json
import math
import shutil

import cv2
import numpy as np
import pytest
from helpers.needs import need_module

import runtimes
from runtimes.errors import ContractError, InferenceError, InputError, ModelLoadError
from runtimes.metadata.onnx import CONTRACT_METADATA_KEY, INPUT_QUANTIZATION_KEY
from runtimes.sources import SourceError, open_source

onnx = need_module("onnx", extra="onnx")


@pytest.fixture(scope="module")
def nan_tflite(tiny_model, tiny_contract, tmp_path_factory):
    """The tiny model with one NaN bias: every score comes out NaN."""
    from converters.tflite import MODES, convert_tflite
    from edgekit._tf import keras

    broken = keras().models.clone_model(tiny_model)
    weights = [w.copy() for w in tiny_model.get_weights()]
    weights[1][0] = np.nan
    broken.set_weights(weights)
    return convert_tflite(
        broken, tmp_path_factory.mktemp("nan") / "nan.tflite", MODES["fp32"], contract=tiny_contract
    ).path


def _with_metadata(source, target, **props):
    proto = onnx.load(str(source))
    for key, value in props.items():
        kept = [p for p in proto.metadata_props if p.key != key]
        del proto.metadata_props[:]
        proto.metadata_props.extend(kept)
        if value is not None:
            proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(target))
    return target


# -- loading ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_directory_with_a_model_suffix_is_named(tmp_path, suffix):
    folder = tmp_path / f"x{suffix}"
    folder.mkdir()
    with pytest.raises(ModelLoadError, match=f"x{suffix}: it is a folder, but a {suffix} model is a single file"):
        runtimes.open(folder)


@pytest.mark.parametrize("kind", ["tflite_fp32", "onnx_fp32"])
@pytest.mark.parametrize("keep", [0, 8, 0.5])
def test_empty_and_truncated_files_are_model_load_errors(tiny_artifacts, tmp_path, kind, keep):
    data = tiny_artifacts[kind].read_bytes()
    cut = tmp_path / tiny_artifacts[kind].name
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ModelLoadError, match=cut.name):
        runtimes.open(cut)


def test_tflite_metadata_offsets_outside_the_file_are_named(tiny_artifacts):
    from runtimes.metadata.tflite import read_metadata

    data = bytearray(tiny_artifacts["tflite_fp32"].read_bytes())
    data[0:4] = (len(data) + 100).to_bytes(4, "little")  # the root table offset points past the end
    with pytest.raises(ValueError, match="outside the"):
        read_metadata(bytes(data))


@pytest.mark.parametrize(
    "stored, message",
    [
        ("{not json", "input quantization metadata is not valid JSON"),
        (json.dumps({"scale": 0.0, "zero_point": 0}), "invalid input quantization .*finite scale > 0"),
        (json.dumps({"scale": float("nan"), "zero_point": 0}), "invalid input quantization"),
        (json.dumps({"scale": 0.1, "zero_point": 1000}), "8-bit integer zero_point"),
        (json.dumps([1, 2]), "invalid input quantization"),
    ],
)
def test_bad_onnx_input_quantization_is_a_contract_error(tiny_artifacts, tmp_path, stored, message):
    path = _with_metadata(tiny_artifacts["onnx_int8"], tmp_path / "q.onnx", **{INPUT_QUANTIZATION_KEY: stored})
    with pytest.raises(ContractError, match=message):
        runtimes.open(path)


@pytest.mark.parametrize(
    "contract, error, message",
    [
        ("{broken", ContractError, "not valid JSON"),
        (json.dumps({"schema": 1}), ContractError, "missing 'preprocessing'"),
    ],
)
def test_bad_onnx_contract_is_a_contract_error(tiny_artifacts, tmp_path, contract, error, message):
    path = _with_metadata(tiny_artifacts["onnx_fp32"], tmp_path / "c.onnx", **{CONTRACT_METADATA_KEY: contract})
    with pytest.raises(error, match=message):
        runtimes.open(path)


def test_label_count_must_match_the_outputs(tiny_artifacts, tmp_path, tiny_contract):
    from dataclasses import replace

    wrong = replace(tiny_contract, labels=("a", "b"))
    path = _with_metadata(
        tiny_artifacts["onnx_fp32"], tmp_path / "l.onnx", **{CONTRACT_METADATA_KEY: wrong.to_signed_json()}
    )
    with pytest.raises(ContractError, match="outputs 3 scores but 2 labels were given"):
        runtimes.open(path)


def test_a_damaged_contract_is_caught_by_its_digest(tiny_artifacts, tmp_path):
    data = tiny_artifacts["tflite_fp32"].read_bytes()
    assert data.count(b'"b"') == 1
    damaged = tmp_path / "damaged.tflite"
    damaged.write_bytes(data.replace(b'"b"', b'"+"'))  # one flipped label byte: still valid JSON
    with pytest.raises(ContractError, match="embedded contract is damaged"):
        runtimes.open(damaged)


# -- inputs ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8"])
@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 10, 3), (10, 0, 3), (0,), (4, 4, 2, 1)])
def test_empty_and_malformed_frames_are_input_errors(tiny_artifacts, kind, shape):
    with runtimes.open(tiny_artifacts[kind]) as model:
        with pytest.raises(InputError, match="expected a non-empty image|expected an image of shape"):
            model.predict(np.zeros(shape, np.uint8), color="bgr")


@pytest.mark.parametrize("kind", ["tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8"])
def test_empty_batch_and_use_after_close_are_input_errors(tiny_artifacts, kind):
    model = runtimes.open(tiny_artifacts[kind])
    with pytest.raises(InputError, match="empty batch"):
        model.run(np.zeros((0, 16, 16, 3), np.float32))
    assert model.run(np.zeros((2, 16, 16, 3), np.float32)).shape == (2, 3)
    model.close()
    with pytest.raises(InputError, match="was closed; open it again"):
        model.run(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(InputError, match="was closed"):
        model.predict(np.zeros((16, 16, 3), np.uint8))


def test_nan_scores_are_never_a_result(nan_tflite):
    frame = np.full((20, 20, 3), 128, np.uint8)
    with runtimes.open(nan_tflite) as model:
        assert np.isnan(model.run(model.preprocess(frame))).all()  # run() gives the raw tensor
        with pytest.raises(InferenceError, match="produced non-finite scores \\(nan, nan, nan\\).*SHA-256"):
            model.predict(frame)
        with model.stream([frame, frame]) as results:
            assert list(results) == []
            assert results.source.stats.skipped == 2 and results.source.stats.skipped_items == ["frame 0", "frame 1"]


def test_stream_skips_and_counts_empty_and_two_channel_frames(tiny_artifacts):
    good = np.full((20, 20, 3), 90, np.uint8)
    frames = [
        good,
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((20, 20, 2), np.uint8),
        good,
        np.zeros((5,), np.uint8),
        good,
    ]
    with runtimes.open(tiny_artifacts["tflite_int8"]) as model, model.stream(frames) as results:
        positions = [r.frame.position for r in results]
        stats = results.source.stats
    assert positions == [0, 3, 5]
    assert stats.skipped == 3 and stats.delivered == 3
    assert stats.skipped_items == ["frame 1", "frame 2", "frame 4"]


def test_plan_cache_is_bounded_by_bytes(tiny_artifacts, monkeypatch):
    import runtimes.model as model_module

    monkeypatch.setattr(model_module, "MAX_PLAN_BYTES", 1_000_000)
    with runtimes.open(tiny_artifacts["tflite_int8"]) as model:
        small = model.predict(np.full((400, 400, 3), 50, np.uint8))  # 480 kB: kept
        assert model._plan_bytes == 480_000 and len(model._pixel_plans) == 1
        huge = model.predict(np.full((700, 700, 3), 50, np.uint8))  # 1.47 MB: planned once, not kept
        assert model._plan_bytes == 480_000 and len(model._pixel_plans) == 1
        model.predict(np.full((500, 500, 3), 50, np.uint8))  # 750 kB would pass the cap: the cache starts over
        assert model._plan_bytes == 750_000 and len(model._pixel_plans) == 1
    assert small.label == huge.label


# -- video -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def avi_files(tmp_path_factory):
    """A 60-frame MJPG AVI, a copy with one corrupt frame in the middle, and one cut in half."""
    folder = tmp_path_factory.mktemp("avi")
    good = folder / "good.avi"
    writer = cv2.VideoWriter(str(good), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    for i in range(60):
        image = np.full((48, 64, 3), i * 4, np.uint8)
        cv2.putText(image, str(i), (5, 30), 0, 0.8, (255, 255, 255))
        writer.write(image)
    writer.release()
    data = bytearray(good.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]  # each frame is one JPEG
    assert len(starts) == 60
    corrupt = bytearray(data)
    for k in range(starts[30] + 100, starts[30] + 400):
        corrupt[k] ^= 0x5A
    (folder / "corrupt.avi").write_bytes(bytes(corrupt))
    (folder / "truncated.avi").write_bytes(bytes(data[: len(data) // 2]))
    return folder


def test_a_corrupt_frame_mid_video_is_skipped_and_counted(avi_files):
    with open_source(avi_files / "corrupt.avi") as source:
        positions = [frame.position for frame in source]
    assert len(positions) == 59 and 30 not in positions and positions[-1] == 59
    assert source.stats.skipped == 1 and source.stats.skipped_items == ["frame 30"]


def test_a_truncated_video_is_a_source_error_that_says_how_far_it_got(avi_files):
    with open_source(avi_files / "truncated.avi") as source:
        delivered = []
        with pytest.raises(SourceError, match=r"truncated.avi stopped decoding after 2\d of 60 frames"):
            for frame in source:
                delivered.append(frame.position)
    assert 20 <= len(delivered) < 30


def test_a_clean_video_ends_at_its_frame_count(avi_files):
    with open_source(avi_files / "good.avi") as source:
        assert sum(1 for _ in source) == 60
    assert source.stats.skipped == 0


def test_an_undamaged_copy_still_loads_and_predicts_finite_scores(tiny_artifacts, tmp_path):
    """The control for the damage cases above: the same bytes, copied intact, load and give a valid result."""
    copy = tmp_path / "copy.tflite"
    shutil.copy(tiny_artifacts["tflite_fp32"], copy)
    with runtimes.open(copy) as model:
        result = model.predict(np.full((16, 16, 3), 30, np.uint8))
    assert result.label in ("a", "b", "c") and math.isfinite(result.score)
