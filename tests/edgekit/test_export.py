"""edgekit.export: targets, reports, and one failure not stopping the others."""

import json

import numpy as np
import pytest

import edgekit
from converters.base import CONVERTERS, ConversionConfig, ConverterEntry
from converters.errors import UnknownTargetError
from edgekit.errors import ContractError, DatasetError


def test_report_is_written_as_table_markdown_json_and_png(exported, tmp_path):
    paths = exported.write(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert [r["target"] for r in data["results"]] == [r.target for r in exported.results]
    assert data["keras_accuracy"] == exported.keras_accuracy
    markdown = paths["markdown"].read_text()
    assert "| tflite:int8 | ok |" in markdown and "top-1 agreement" in markdown
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    table = exported.table()
    # the shared model's run recorded its splits, and the check is its test split
    assert table.splitlines()[0] == f"check: {exported.check_samples} held-out images (none seen in training)"
    assert table.splitlines()[1].split()[:4] == ["target", "status", "size", "gzip"]
    notes = exported.note_lines()
    assert notes == [
        "onnx:fp32, onnx:dynamic, onnx:int8: float graph via keras-export",  # one line per distinct note
        "onnx:dynamic, onnx:int8: weights in 7 bits (reduce_range): uint8 x int8 products cannot saturate "
        "on x86 CPUs without VNNI",
    ]
    assert table.splitlines()[3 + 1 + len(exported.results) :] == ["notes:", *[f"  {n}" for n in notes]]
    assert all(0 < r.gzip_bytes < r.size_bytes for r in exported.results)
    assert "- onnx:fp32, onnx:dynamic, onnx:int8: float graph via keras-export" in markdown
    sums = {r.target: r.sha256 for r in exported.results}
    assert (
        all(len(value) == 64 for value in sums.values())
        and data["results"][0]["sha256"] == sums[data["results"][0]["target"]]
    )
    import hashlib

    int8 = exported.result("tflite:int8")
    assert int8.sha256 == hashlib.sha256(open(int8.path, "rb").read()).hexdigest()
    assert f"- `{int8.sha256}`  {int8.path.rsplit('/', 1)[-1]}" in markdown


def test_a_failing_target_does_not_stop_the_others(trained, shapes_splits, tmp_path, monkeypatch):
    def broken(model, path, config, **kwargs):
        raise RuntimeError("simulated converter bug")

    monkeypatch.setitem(
        CONVERTERS._entries, "broken", ConverterEntry("broken", ".bin", {"fp32": ConversionConfig()}, broken)
    )
    report = edgekit.export(
        trained.model_path, ["broken:fp32", "tflite:fp32"], out_dir=tmp_path, check=shapes_splits[2]
    )
    assert report.result("broken:fp32").status == "failed"
    assert report.result("broken:fp32").error == "RuntimeError: simulated converter bug"
    assert report.result("tflite:fp32").status == "ok" and report.result("tflite:fp32").agreement >= 0.99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small_cnn_fp32.tflite"]


def test_export_misuse_is_named(trained, tiny_model, shapes_root, tmp_path):
    with pytest.raises(
        UnknownTargetError, match="unknown target 'tflite:int3'; valid targets: coreml:fp32, .*, tflite:fp32"
    ):
        edgekit.export(trained.model_path, ["tflite:int3"], out_dir=tmp_path)
    with pytest.raises(ContractError, match="no preprocessing contract: export a .keras file written by edgekit.train"):
        edgekit.export(tiny_model, ["tflite:fp32"], out_dir=tmp_path)
    other = edgekit.ImageFolder(shapes_root, image_size=64).subset(range(0, 1200, 100))
    other.labels = ("a", "b", "c")
    with pytest.raises(DatasetError, match=r"check dataset's labels \['a', 'b', 'c'\] differ from the model's"):
        edgekit.export(trained.model_path, ["tflite:fp32"], out_dir=tmp_path, check=other)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_an_artifact(exported, shapes_splits):
    metrics = edgekit.evaluate(exported.result("tflite:fp32").path, shapes_splits[2])
    assert metrics.accuracy == pytest.approx(exported.result("tflite:fp32").accuracy)
    assert metrics.count == 180 and sum(map(sum, metrics.confusion)) == 180


def _lint(samples, labels=None):
    from converters import CalibrationData

    return CalibrationData(samples, labels=labels).check(edgekit.Preprocessing(64)).warnings


def test_calibration_lint_names_the_statistic(shapes_splits):
    train = shapes_splits[0]
    good = train.sample(120).tensors(edgekit.Preprocessing(64))
    assert _lint(good) == ()
    (twice,) = _lint(good / 255.0)  # normalized twice: a sliver of the [0, 1] range
    assert (
        "calibration values span only [0, 0.003922], 0.4% of the contract's range [0, 1]: were the images normalized "
        "twice?"
    ) == twice
    noise = np.random.default_rng(0).random(good.shape, dtype=np.float32)
    (noisy,) = _lint(noise)
    assert noisy.startswith("calibration images look like random noise: neighbouring-pixel correlation is 0.0")
    (one_class,) = _lint(good, labels=["circle"] * len(good))
    assert one_class == "all 120 calibration samples are of one class ('circle'); sample every class"
    assert _lint(good[:20])[0] == "only 20 calibration samples; 100 or more are recommended for stable int8 ranges"


def test_double_normalized_calibration_warns_in_the_export_report(trained, shapes_splits, tmp_path, caplog):
    from converters import CalibrationData

    calibration = CalibrationData(shapes_splits[0].sample(100).tensors(trained.preprocessing) / 255.0)
    report = edgekit.export(
        trained.model_path, ["tflite:int8"], out_dir=tmp_path, calibration=calibration, progress=False
    )
    assert any("normalized twice" in w for w in report.calibration_warnings)
    assert "normalized twice" in caplog.text
    assert "calibration warning: calibration values span only" in report.markdown()


def test_accuracy_gate_fails_and_fallback_picks_a_safer_mode(trained, shapes_splits, tmp_path):
    from converters import CalibrationData

    train, _, test = shapes_splits
    # Near-black images: int8 ranges learnt from them clip every real activation.
    dark = CalibrationData(train.sample(100).tensors(trained.preprocessing) * 0.05)
    gated = edgekit.export(
        trained.model_path,
        ["tflite:int8"],
        out_dir=tmp_path / "gate",
        calibration=dark,
        check=test,
        max_drop=0,
        progress=False,
    )
    (int8,) = gated.results
    assert int8.status == "failed" and int8.accuracy_delta < 0
    assert int8.error == f"accuracy dropped {-int8.accuracy_delta:.1f} points (max_drop 0); artifact removed"
    assert not (tmp_path / "gate" / "small_cnn_int8.tflite").exists() and not gated.ok
    rescued = edgekit.export(
        trained.model_path,
        ["tflite:int8"],
        out_dir=tmp_path / "fb",
        calibration=dark,
        check=test,
        max_drop=0,
        fallback=True,
        progress=False,
    )
    assert [r.target for r in rescued.results][0] == "tflite:int8" and rescued.results[0].status == "failed"
    final = rescued.results[-1]
    assert final.status == "ok" and final.fallback_for == "tflite:int8"
    assert final.target in ("tflite:dynamic", "tflite:fp16") and final.accuracy_delta >= 0
    assert rescued.ok and "(fallback for tflite:int8)" in rescued.table()


def test_gate_without_check_data_is_refused(trained, tmp_path):
    from edgekit.errors import ExportError

    with pytest.raises(ExportError, match="max_drop needs check= data"):
        edgekit.export(trained.model_path, ["tflite:fp32"], out_dir=tmp_path, max_drop=1.0)


def test_format_options_reach_the_converter_and_bad_ones_are_named(trained, tmp_path):
    from edgekit.errors import ExportError

    report = edgekit.export(
        trained.model_path,
        ["coreml:fp16"],
        out_dir=tmp_path,
        options={"coreml": {"compute_units": "CPU_AND_NE", "minimum_deployment_target": "iOS17"}},
    )
    with edgekit.load(report.result("coreml:fp16").path) as model:
        assert model.contract.quantization["compute_units"] == "CPU_AND_NE"
        assert model.contract.quantization["minimum_deployment_target"] == "iOS17"
        assert model.runtime.compute_units == "CPU_AND_NE"
    with pytest.raises(
        ExportError, match=r"unknown coreml option\(s\) \['speed'\]; valid: calibration_samples, compute_units"
    ):
        edgekit.export(trained.model_path, ["coreml:fp16"], out_dir=tmp_path, options={"coreml": {"speed": 1}})
    with pytest.raises(ExportError, match="coreml options: invalid compute_units 'GPU'"):
        edgekit.export(
            trained.model_path, ["coreml:fp16"], out_dir=tmp_path, options={"coreml": {"compute_units": "GPU"}}
        )
    with pytest.raises(ExportError, match=r"options for unknown format\(s\) \['tensorrt'\]"):
        edgekit.export(trained.model_path, ["coreml:fp16"], out_dir=tmp_path, options={"tensorrt": {}})
