"""edgekit.export: targets, reports, and one failure not stopping the others."""

import json

import pytest

import edgekit
from converters.base import CONVERTERS, ConverterEntry, ConversionConfig, UnknownTargetError
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
    assert table.splitlines()[0].split()[:3] == ["target", "status", "size"]
    assert len(table.splitlines()) == 2 + 1 + len(exported.results)


def test_a_failing_target_does_not_stop_the_others(trained, shapes_splits, tmp_path, monkeypatch):
    def broken(model, path, config, **kwargs):
        raise RuntimeError("simulated converter bug")

    monkeypatch.setitem(CONVERTERS._entries, "broken", ConverterEntry("broken", ".bin", {"fp32": ConversionConfig()}, broken))
    report = edgekit.export(trained.model_path, ["broken:fp32", "tflite:fp32"], out_dir=tmp_path, check=shapes_splits[2])
    assert report.result("broken:fp32").status == "failed"
    assert report.result("broken:fp32").error == "RuntimeError: simulated converter bug"
    assert report.result("tflite:fp32").status == "ok" and report.result("tflite:fp32").agreement >= 0.99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small_cnn_fp32.tflite"]


def test_export_misuse_is_named(trained, tiny_model, shapes_root, tmp_path):
    with pytest.raises(UnknownTargetError, match="unknown target 'tflite:int3'; valid targets: tflite:fp32"):
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
