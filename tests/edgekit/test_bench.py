"""edgekit bench: every model measured in its own process, side by side, honest about what cannot run."""

import json
import sys

import pytest

import edgekit
from edgekit.cli import main


def test_bench_measures_each_model_and_thread_count(exported, shapes_root):
    models = [exported.result("tflite:int8").path, exported.result("onnx:int8").path]
    report = edgekit.bench(models, runs=20, warmup=2, threads=[1, 2], data=shapes_root, progress=False)
    assert [(r.model, r.threads) for r in report.results] == [(m, t) for m in models for t in (1, 2)]
    for result in report.results:
        assert result.status == "ok" and result.runs == 20 and len(result.latencies_ms) == 20
        assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
        assert result.throughput_fps == pytest.approx(1000 / result.mean_ms)
        assert result.load_ms > 0 and result.peak_rss_mb > 20
        assert result.accuracy > 0.9  # the whole shapes folder, through each artifact's own contract
    assert report.results[0].backend == "tflite" and report.results[2].backend == "onnxruntime"
    assert report.results[0].size_bytes < exported.result("tflite:fp32").size_bytes


@pytest.mark.skipif(sys.platform == "darwin", reason="CoreML runs on macOS")
def test_bench_lists_models_that_cannot_run_here(trained, tmp_path, shapes_tenth):
    from converters.coreml import MODES, convert_coreml

    package = convert_coreml(trained.model, tmp_path / "m.mlpackage", MODES["fp16"], contract=trained.contract)
    (result,) = edgekit.bench([package.path], runs=5, progress=False).results
    assert result.status == "cannot run here: CoreML prediction needs macOS" and result.p50_ms is None
    assert result.size_bytes == package.size_bytes and result.accuracy is None
    # every tenth image: the numpy reference executor runs each one (the whole folder took 78 s)
    (with_data,) = edgekit.bench([package.path], runs=5, data=shapes_tenth, progress=False).results
    assert with_data.status == "cannot run here: CoreML prediction needs macOS; accuracy from the reference backend"
    assert with_data.p50_ms is None and with_data.accuracy == pytest.approx(
        trained.metrics["accuracy"]["test"], abs=0.05
    )


def test_bench_command_json_plot_and_errors(exported, tmp_path, capsys):
    plot = tmp_path / "latency.png"
    assert (
        main(
            [
                "bench",
                exported.result("tflite:fp32").path,
                "--runs",
                "10",
                "--warmup",
                "1",
                "--json",
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["results"][0]["runs"] == 10 and plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", exported.result("tflite:fp32").path, "--threads", "one"]) == 2
    assert "invalid --threads 'one'" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "none.tflite")]) == 2
    assert "model file(s) not found" in capsys.readouterr().err
    assert main(["bench", exported.result("tflite:fp32").path, "--seconds", "0.3", "--warmup", "0"]) == 0
    assert "small_cnn_fp32.tflite" in capsys.readouterr().out


def test_bench_measures_a_detector_and_its_map_on_annotated_data(detector_exported, tmp_path):
    from edgekit.data.annotations import load_detection
    from edgekit.data.synthetic import make_shapes_detection
    from edgekit.host_tasks import host_task

    root = make_shapes_detection(tmp_path / "scenes", n_images=24, image_size=64, seed=11)  # YOLO folders
    models = [detector_exported.result("tflite:int8").path, detector_exported.result("onnx:fp32").path]
    report = edgekit.bench(models, runs=10, warmup=1, data=root, progress=False)
    host = host_task("detection")
    for path, result in zip(models, report.results):
        assert result.status == "ok" and result.runs == 10 and result.p50_ms > 0
        assert result.metric == "mAP@[.5:.95]" and result.accuracy is None  # a detector's headline is mAP
        with edgekit.load(path) as model:  # the same number as evaluating in this process
            expected = host.evaluate(model, load_detection(root, image_size=64))
        assert result.quality == pytest.approx(expected.map, abs=1e-9) and 0 < result.quality <= 1
    assert "mAP@[.5:.95]" in report.table()
