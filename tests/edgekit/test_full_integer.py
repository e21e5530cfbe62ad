"""The full-integer profile for accelerators (`tflite:int8_full`): no float tensor, int8 in and out, batch 1 and
static shapes, checked on the file; a detector's raw maps decoded in runtimes; the accelerator report; the
full-integer calibration check; and a quantization-aware detector, whose int8 file is all-integer too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgekit
from converters.accelerators import accelerator_fit
from converters.errors import ConversionError
from converters.onnx_integer import float_nodes
from converters.tflite_integer import _full_integer, float_tensors


def _static_int8(path: Path) -> None:
    from runtimes.backends.tflite import interpreter_class

    interpreter = interpreter_class()[0](model_path=str(path))
    assert float_tensors(path.read_bytes()) == []
    for detail in interpreter.get_input_details() + interpreter.get_output_details():
        assert detail["dtype"] == np.int8 and list(detail["shape_signature"])[0] in (1, -1)
        assert all(size > 0 for size in list(detail["shape_signature"])[1:])


@pytest.mark.slow
def test_a_classifier_in_the_full_integer_profile(trained, shapes_splits, tmp_path):
    train, _, test = shapes_splits
    by_class = [np.flatnonzero(train.targets == k) for k in range(len(train.labels))]
    few = train.subset([int(by_class[0][0]), *by_class[1][:20].tolist(), *by_class[2][:20].tolist()])
    report = edgekit.export(trained.model_path, ["tflite:int8_full"], calibration=few, check=test, out_dir=tmp_path)
    (result,) = report.results
    assert result.status == "ok" and result.target == "tflite:int8_full", result.error
    _static_int8(Path(result.path))
    assert result.agreement >= 0.98 and abs(result.accuracy_delta) <= 2.0
    label = trained.contract.labels[0]
    assert any(f"full integer: calibration images per class {label!r} 1 (of 41)" in note for note in result.notes)
    assert any(note.startswith("Coral Edge TPU: every operator maps") for note in result.notes), result.notes
    assert any(note.startswith("Hailo-8 / Hailo-8L: every operator maps") for note in result.notes)


@pytest.mark.slow
def test_a_detector_in_the_full_integer_profile_is_decoded_in_runtimes(trained_detector, tmp_path, monkeypatch):
    import onnx

    result, train, test = trained_detector
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # ONNX Runtime's quantization tools once left files in the working folder
    targets = ["tflite:int8_full", "onnx:int8_full"]
    report = edgekit.export(result.model_path, targets, calibration=train, check=test, out_dir=tmp_path / "out")
    assert list(workdir.iterdir()) == []
    tflite, onnx_file = report.results
    assert tflite.status == onnx_file.status == "ok", (tflite.error, onnx_file.error)
    _static_int8(Path(tflite.path))
    proto = onnx.load(str(onnx_file.path))
    assert float_nodes(proto) == [] and proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    for artifact in (tflite, onnx_file):
        with edgekit.load(artifact.path) as model:
            assert model.contract.head["layout"] == "maps" and not model.contract.head["decoding_in_graph"]
            assert [list(spec.shape[1:]) for spec in model.output_specs] == [[16, 16, 3], [16, 16, 4]]  # heat, sides
            assert len(model.predict(test.sources[0], threshold=0.0)) > 0  # decoded: boxes in the source's pixels
        assert artifact.agreement >= 0.8  # full integer after PTQ: its box sides lose precision (QAT's job)
    edgetpu = next(fit for fit in accelerator_fit(tflite.path) if fit.accelerator == "Coral Edge TPU")
    assert edgetpu.complete, edgetpu.line()  # no float op left for peaks and boxes; the FPN's resize maps too


def test_a_float_operator_fails_the_onnx_profile_with_its_name():
    """An ONNX QDQ graph is full integer when every operator sits between a DequantizeLinear and a
    QuantizeLinear; a Sigmoid on a float tensor is named."""
    import onnx
    from onnx import TensorProto, helper

    def graph(with_float_tail: bool) -> onnx.ModelProto:
        scale, zero = (
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z", TensorProto.UINT8, [], [0]),
        )
        nodes = [
            helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]),
            helper.make_node("Relu", ["xf"], ["r"], name="relu"),
            helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
            helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"]),
        ]
        if with_float_tail:
            nodes.append(helper.make_node("Sigmoid", ["y"], ["out"], name="heat/Sigmoid"))
        output = "out" if with_float_tail else "y"
        return helper.make_model(
            helper.make_graph(
                nodes,
                "g",
                [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
                [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 4])],
                [scale, zero],
            )
        )

    assert float_nodes(graph(False)) == []
    assert float_nodes(graph(True)) == ["Sigmoid heat/Sigmoid"]


@pytest.mark.slow
def test_a_quantization_aware_detector_exports_all_integer(trained_detector, tmp_path):
    result, train, test = trained_detector
    aware = edgekit.quantize_aware(result.model_path, train, test, epochs=2, out_dir=tmp_path / "qat", verbose=0)
    targets = ["tflite:int8", "onnx:int8", "coreml:int8"]
    report = edgekit.export(aware.model_path, targets, check=test, out_dir=tmp_path / "export")
    assert [artifact.status for artifact in report.results] == ["ok"] * 3, [a.error for a in report.results]
    _static_int8(Path(report.results[0].path))
    for artifact in report.results:
        # against its fake-quantized Keras model: a 1-step difference in an int8 heat plateau moves a peak; this
        # weak 64 px detector has many (bench/qat.py holds the default detector to 0.97)
        # CoreML computes between its int8 tensors in float16, which moves more of this weak model's near-tied peaks
        floor = 0.9 if artifact.target.startswith("coreml") else 0.93
        assert artifact.agreement >= floor, (artifact.target, artifact.agreement)
        # a peak that moves to the neighbouring cell gives its box a few pixels; most boxes are within one pixel
        assert artifact.details["within_1px"] >= 0.9, (artifact.target, artifact.details)
        assert (artifact.max_abs_error or 0.0) <= 4.0, (artifact.target, artifact.max_abs_error)
        assert any("quantization-aware training" in note for note in artifact.notes), artifact.notes
        assert not any("outside QuantizeLinear" in note for note in artifact.notes), artifact.notes
    for artifact in report.results[:2]:
        with edgekit.load(artifact.path) as model:
            assert model.contract.head["layout"] == "maps" and "aware_training" in model.contract.quantization


def test_a_float_tensor_fails_the_profile_with_its_name(tiny_tflite):
    with pytest.raises(ConversionError, match=r"not full integer: \d+ float tensor\(s\) left \(.+\); an accelerator"):
        _full_integer(Path(tiny_tflite).read_bytes())


def test_the_accelerator_report_names_float_ops_and_where_the_edge_tpu_cuts(tiny_tflite):
    fits = {fit.accelerator: fit for fit in accelerator_fit(tiny_tflite)}
    edgetpu, hailo = fits["Coral Edge TPU"], fits["Hailo-8 / Hailo-8L"]
    assert not edgetpu.mapped and edgetpu.first_fallback.endswith("(float)")  # float: nothing maps
    assert all(name.endswith("(float)") for name in hailo.fallback) and hailo.first_fallback == ""
    assert edgetpu.compile == f"edgetpu_compiler -s {Path(tiny_tflite).name}"
    assert "coral.ai" in edgetpu.source and "read 2026-12-07" in edgetpu.source


@pytest.mark.slow
def test_edgekit_info_shows_the_accelerator_report(trained, shapes_splits, tmp_path, capsys):
    from edgekit.cli import main

    train, _, _ = shapes_splits
    report = edgekit.export(trained.model_path, ["tflite:int8_full"], calibration=train, out_dir=tmp_path)
    assert main(["info", str(report.results[0].path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    index = lines.index(
        "accelerators (from their compilers' published operator tables; the compilers are not run here):"
    )
    assert lines[index + 1].startswith("  Coral Edge TPU: every operator maps")
    assert lines[index + 1].endswith("compile: edgetpu_compiler -s small_cnn_int8_full.tflite")


def test_detection_agreement_counts_the_boxes_within_a_pixel():
    """The QAT check's box figure: the share of reference detections matched with every side within 1 px, beside
    the largest error (a peak that moves to the neighbouring cell gives one large error, not a wrong file)."""
    from edgekit.metrics.detection import detection_agreement

    reference = [(np.array([[10, 10, 50, 50], [60, 60, 100, 100]], float), np.array([0, 1]))]
    artifact = [(np.array([[10.5, 10, 50, 49.2], [62, 60, 100, 103]], float), np.array([0, 1]))]
    agreement = detection_agreement(reference, artifact, iou=0.8)
    assert agreement.agreement == 1.0 and agreement.max_box_error_px == pytest.approx(3.0)
    assert agreement.within_1px == 0.5
