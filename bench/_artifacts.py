"""Builds (once) the MobileNetV2-class artifacts the benchmarks time, under runs/bench/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "runs" / "bench"


TRAINING = (
    "batches of 16, learning rate 2e-3, until val accuracy >= 0.93 (at most 10 epochs), identity-started "
    "residual blocks"
)


def _recipe(training: str = "") -> str:
    """What the cached MobileNetV2 files were built from: a changed architecture entry or training recipe rebuilds
    them."""
    from edgekit.training.architectures import ARCHITECTURES

    spec = ARCHITECTURES.get("mobilenetv2")
    return f"{spec.description}; scale {spec.scale}; offset {spec.offset}" + (f"; {training}" if training else "")


def _cached(stamp: Path, *paths: Path, training: str = "") -> bool:
    """True when every path exists and `stamp` records the current recipe."""
    return stamp.exists() and stamp.read_text() == _recipe(training) and all(p.exists() for p in paths)


def mobilenetv2_artifacts(size: int = 224) -> dict[str, Path]:
    """mobilenetv2 at size x size (random weights, 3 classes) as TFLite fp32/int8 and ONNX fp32/int8."""
    paths = {
        target: CACHE / f"mobilenetv2_{size}_{target.replace(':', '_')}"
        for target in ("tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8")
    }
    paths = {t: p.with_suffix(".tflite" if t.startswith("tflite") else ".onnx") for t, p in paths.items()}
    stamp = CACHE / f"mobilenetv2_{size}.recipe"
    if _cached(stamp, *paths.values()):
        return paths
    import edgekit
    from converters import CONVERTERS, CalibrationData
    from edgekit.training.architectures import ARCHITECTURES, _scale_residual_branches
    from runtimes.contract import ModelContract

    spec = ARCHITECTURES.get("mobilenetv2")
    root = edgekit.datasets.make_shapes(CACHE / "shapes", n_per_class=40, image_size=64, seed=0)
    data = edgekit.ImageFolder(root, image_size=size)
    preprocessing = spec.preprocessing(data.geometry)
    model = spec.build((size, size, 3), len(data.labels), None)
    _scale_residual_branches(model, 1.0)  # from scratch they start at zero; a trained model's every op counts
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
    checked on the test split. Built once under runs/bench/ (about 14 minutes at 96 on 2 cores).

    The recipe of tests/integration/test_quality_mobilenetv2.py: 1000 shapes per class, `TRAINING`.
    """
    import json

    out = CACHE / f"mobilenetv2_{size}_trained"
    report_path, stamp = out / "export" / "export_report.json", out / "recipe"
    if not _cached(stamp, report_path, training=TRAINING):
        import edgekit
        from edgekit._tf import keras

        class StopWhenDecided(keras().callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if (logs or {}).get("val_accuracy", 0.0) >= 0.93:
                    self.model.stop_training = True

        root = edgekit.datasets.make_shapes(out / "shapes", n_per_class=1000, image_size=64, seed=0)
        train, val, test = edgekit.ImageFolder(root, image_size=size).split(val=0.15, test=0.15, seed=0)
        result = edgekit.train(
            train,
            val,
            "mobilenetv2",
            test=test,
            epochs=10,
            patience=10,
            batch_size=16,
            learning_rate=2e-3,
            out_dir=out / "train",
            seed=0,
            verbose=0,
            callbacks=[StopWhenDecided()],
        )
        report = edgekit.export(
            result.model_path,
            ["tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8"],
            out_dir=out / "export",
            calibration=train,
            check=test,
            progress=False,
        )
        report.write(out / "export")
        stamp.write_text(_recipe(TRAINING))
    return json.loads(report_path.read_text())
