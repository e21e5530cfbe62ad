"""Builds (once) the MobileNetV2-class artifacts the benchmarks time, under runs/bench/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "runs" / "bench"


def _recipe() -> str:
    """What the cached MobileNetV2 files were built from: a changed architecture entry rebuilds them."""
    from edgekit.architectures import ARCHITECTURES

    spec = ARCHITECTURES.get("mobilenetv2")
    return f"{spec.description}; scale {spec.scale}; offset {spec.offset}"


def _cached(stamp: Path, *paths: Path) -> bool:
    """True when every path exists and `stamp` records the current recipe."""
    return stamp.exists() and stamp.read_text() == _recipe() and all(p.exists() for p in paths)


def mobilenetv2_artifacts(size: int = 224) -> dict[str, Path]:
    """mobilenetv2 at size x size (random weights, 3 classes) as TFLite fp32/int8 and ONNX fp32/int8."""
    paths = {target: CACHE / f"mobilenetv2_{size}_{target.replace(':', '_')}" for target in
             ("tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8")}
    paths = {t: p.with_suffix(".tflite" if t.startswith("tflite") else ".onnx") for t, p in paths.items()}
    stamp = CACHE / f"mobilenetv2_{size}.recipe"
    if _cached(stamp, *paths.values()):
        return paths
    import edgekit
    from converters import CONVERTERS, CalibrationData
    from edgekit.architectures import ARCHITECTURES
    from runtimes.contract import ModelContract

    spec = ARCHITECTURES.get("mobilenetv2")
    root = edgekit.datasets.make_shapes(CACHE / "shapes", n_per_class=40, image_size=64, seed=0)
    data = edgekit.ImageFolder(root, image_size=size)
    preprocessing = spec.preprocessing(data.geometry)
    model = spec.build((size, size, 3), len(data.labels), None)
    contract = ModelContract(preprocessing, data.labels, model_name=f"mobilenetv2_{size}")
    calibration = CalibrationData(data.sample(100).tensors(preprocessing))
    for target, path in paths.items():
        name, mode = target.split(":")
        entry = CONVERTERS.get(name)
        entry.convert(model, path, entry.modes[mode], contract=contract, calibration=calibration, progress=False)
    (CACHE / f"mobilenetv2_{size}.params").write_text(str(model.count_params()))
    stamp.write_text(_recipe())
    return paths


def parameter_count(size: int = 224) -> int:
    mobilenetv2_artifacts(size)
    return int((CACHE / f"mobilenetv2_{size}.params").read_text())


def trained_mobilenetv2_report(size: int = 96) -> dict:
    """Export report (as JSON) of MobileNetV2 trained from scratch at size x size on the shapes,
    checked on the test split. Built once under runs/bench/ (about 3.5 minutes at 96 on 2 cores).

    Same recipe as tests/test_quality.py: 1000 shapes per class, 10 epochs, learning rate 2e-3;
    from scratch MobileNetV2 takes off after 6-8 epochs and ends near 96%.
    """
    import json

    out = CACHE / f"mobilenetv2_{size}_trained"
    report_path, stamp = out / "export" / "export_report.json", out / "recipe"
    if not _cached(stamp, report_path):
        import edgekit

        root = edgekit.datasets.make_shapes(out / "shapes", n_per_class=1000, image_size=64, seed=0)
        train, val, test = edgekit.ImageFolder(root, image_size=size).split(val=0.15, test=0.15, seed=0)
        result = edgekit.train(train, val, "mobilenetv2", test=test, epochs=10, patience=10, learning_rate=2e-3,
                               out_dir=out / "train", seed=0, verbose=0)
        report = edgekit.export(result.model_path, ["tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8"],
                                out_dir=out / "export", calibration=train, check=test, progress=False)
        report.write(out / "export")
        stamp.write_text(_recipe())
    return json.loads(report_path.read_text())
