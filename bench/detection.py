"""Detectors on the frame path: the default small detector and the MobileNetV2 detector, trained on
shapes-detection, exported to TFLite and ONNX (fp32, int8) and checked against Keras on the test split.

Per artifact it prints the mAP delta against Keras, the median time of `predict` on a 640x480 BGR
frame (preprocessing, inference, decoding, NMS, boxes mapped back to the frame) against `run_all`
on the prepared tensor (interleaved call by call, so each starts with the caches the other left),
predict's median stages, the same stages repeated with no inference between (their cost with this process's
caches kept), and the int8/fp32 latency and size ratios. Before and after, it prints how much a
small threshold costs after idling 0.5 to 5 ms: where other tenants share the CPU, they evict this
process's caches while it waits on an inference, and predict/run reads high (see overhead.cache_decay).
Exits 1 on a miss: predict/run above 1.10, TFLite int8/fp32 latency above 0.7, MobileNetV2 int8
size above 0.3x fp32, or a quantized artifact more than 1.5 mAP@.5 points from Keras.

Trains each detector once per recipe under runs/bench/ (the small one is bench/detection_quality.py's
model: 2000 scenes at 128 px, 30 epochs; the MobileNetV2 detector, width 1.0, from scratch on the same
scenes for 24 epochs). The generated scenes are shared by every recipe of the same count and size.

Where the int8 file's bytes go is printed for the MobileNetV2 detector: int8 weights, int32 biases,
float32 constants, per-channel scales, tensor names and the rest (tables, shapes, metadata), and
the floor the format sets (constants and scales alone, over the float file's constants). With
`--widths` the same int8/fp32 size ratio is printed for the backbone at width multipliers 0.35 to
1.0 (untrained: sizes do not depend on the weights' values).

    .venv/bin/python bench/detection.py [--runs 200] [--threads 1] [--widths] [--detectors small_detector]
    .venv/bin/python bench/detection.py --smoke   # the small detector, 60 scenes at 64 px, 1 epoch (make test)

A full run writes bench/records/detection.json (the benchmarks page's figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from _artifacts import CACHE
from overhead import cache_decay, interleaved_ratio

FRAME_TARGET, LATENCY_TARGET, SIZE_TARGET, MAP50_TARGET = 1.10, 0.7, 0.3, 1.5
TARGETS = ("tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8")
# (architecture, scenes, image size, epochs, cache folder): the small detector shares detection_quality.py's model
RECIPES = {
    "small_detector": ("small_detector", 2000, 128, 30, "detection"),
    "mobilenetv2_detector": ("mobilenetv2_detector", 2000, 128, 24, "detection-mobilenetv2-1.0-128"),
}


def int8_dot_product() -> str:
    """Which int8 dot-product instructions this CPU has: XNNPACK's int8 kernels gain over float32 with them."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    found = sorted(flags & {"avx512_vnni", "avx_vnni", "asimddp", "i8mm"})
    return ", ".join(found) if found else "none (int8 runs on AVX2 multiply-adds, about float32's speed)"


def trained(name: str) -> tuple[Path, object, object]:
    """(model.keras, train split, test split) of `name`, trained once per recipe."""
    import edgekit
    from edgekit.data.annotations import load_detection

    arch, images, size, epochs, folder = RECIPES[name]
    recipe = f"{arch}, {images} images at {size} px, {epochs} epochs, seed 0"
    work = CACHE / folder
    root = edgekit.datasets.make_shapes_detection(
        CACHE / "detection" / f"data_{images}_{size}", n_images=images, image_size=size, seed=0
    )
    train, val, test = load_detection(root, image_size=size).split(seed=0)
    model, stamp = work / "train" / "model.keras", work / "train" / "recipe.txt"
    if not (stamp.exists() and stamp.read_text() == recipe and model.exists()):
        edgekit.train(train, val, arch, task="detection", epochs=epochs, test=test, out_dir=work / "train", verbose=1)
        stamp.write_text(recipe)
    metrics = json.loads((work / "train" / "metrics.json").read_text())
    print(
        f"{recipe}: test mAP@[.5:.95] {metrics['map']['test']:.3f}, mAP@.5 {metrics['map50']['test']:.3f} "
        f"(trained in {metrics['training_seconds']:.0f} s)"
    )
    return model, train, test


def timed_stages(predict: Callable[[], Any], stages: list[tuple[float, float, float]]) -> Callable[[], None]:
    """`predict` that also records its stages per call (ms): preprocessing and inference as the result reports
    them, and the rest of the call (reading the outputs, thresholds, NMS, boxes mapped back, the result objects)."""

    def call() -> None:
        started = time.perf_counter()
        found = predict()
        total_ms = (time.perf_counter() - started) * 1000
        stages.append((found.preprocess_ms, found.latency_ms, total_ms - found.preprocess_ms - found.latency_ms))

    return call


def warm_stages(model: Any, frame: np.ndarray, runs: int) -> tuple[float, float]:
    """predict's preprocessing and its decoding, NMS and mapping back (ms, medians), repeated with no inference
    between: their floor, with nothing evicting this process's caches (between frames an inference streams its
    weights through them, and on a shared host other tenants evict them too)."""
    options = model.decoder.options({})
    raw = model._run_pixels(model._pixel_plan(frame, "bgr")(frame)[None])
    outputs = [np.array(output) for output in raw]  # copied: the backend reuses its own output memory
    pre, rest = [], []
    for _ in range(runs):
        started = time.perf_counter()
        model._pixel_plan(frame, "bgr")(frame)
        prepared = time.perf_counter()
        model.decoder.results(outputs, [frame.shape[:2]], 0.0, 0.0, options)
        pre.append(prepared - started)
        rest.append(time.perf_counter() - prepared)
    return statistics.median(pre) * 1000, statistics.median(rest) * 1000


def model_interpolation(model_path: Path) -> str:
    """The trained model's resize interpolation (the contract's), as predict applies it to the frame."""
    from edgekit.keras_io import read_keras_contract

    contract = read_keras_contract(model_path)
    return f"{contract.preprocessing.interpolation.value} resize" if contract is not None else "resize"


def size_breakdown(path: Path) -> dict[str, int]:
    """Bytes of a .tflite file by what they hold (constants by type, per-channel scales, names, the rest)."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    kinds = {
        schema.TensorType.INT8: "int8 weights",
        schema.TensorType.UINT8: "int8 weights",
        schema.TensorType.INT32: "int32 biases",
        schema.TensorType.FLOAT32: "float32 constants",
    }
    parts = dict.fromkeys(
        ("int8 weights", "int32 biases", "float32 constants", "other constants", "scales", "names"), 0
    )
    for tensor in model.subgraphs[0].tensors:
        buffer = model.buffers[tensor.buffer].data
        if buffer is not None and len(buffer):
            parts[kinds.get(tensor.type, "other constants")] += len(buffer)
        scales = tensor.quantization.scale if tensor.quantization is not None else None
        parts["scales"] += 4 * len(scales) if scales is not None else 0
        parts["names"] += len(tensor.name or b"")
    parts["rest"] = len(data) - sum(parts.values())
    return parts


def print_sizes(fp32: Path, int8: Path) -> float:
    """Print where the int8 file's bytes go; return the format's floor for int8/fp32 size."""
    parts, float_parts = size_breakdown(int8), size_breakdown(fp32)
    print("  int8 file: " + ", ".join(f"{name} {value / 1024:.1f} kB" for name, value in parts.items()))
    floor = sum(parts[k] for k in ("int8 weights", "int32 biases", "float32 constants", "other constants", "scales"))
    base = sum(float_parts[k] for k in ("int8 weights", "int32 biases", "float32 constants", "other constants"))
    print(
        f"  floor: constants and per-channel scales alone {floor / 1024:.1f} kB over the float file's constants "
        f"{base / 1024:.1f} kB = {floor / base:.3f} (per channel, TFLite stores a float32 scale for the weights and "
        "one for the int32 bias: beside a 3x3 depthwise filter's 9 bytes)"
    )
    return floor / base


def width_sweep(size: int = 160, classes: int = 3) -> None:
    """int8/fp32 size of the MobileNetV2 detector (untrained) at each width multiplier."""
    import tempfile

    import edgekit
    from converters import CalibrationData
    from converters.tflite import MODES, convert_tflite
    from edgekit.data.annotations import load_detection
    from edgekit.training.detector_graph import DETECTORS, build_mobilenetv2_detector, with_decoding
    from runtimes.contract import ModelContract
    from runtimes.heads.detection import DetectionHead

    root = edgekit.datasets.make_shapes_detection(
        CACHE / "detection-widths" / "data", n_images=60, image_size=size, seed=0
    )
    data = load_detection(root, image_size=size)
    spec = DETECTORS.get("mobilenetv2_detector").preprocessing(data.geometry)
    contract = ModelContract(
        spec, data.labels, model_name="mobilenetv2_detector", task="detection", head=DetectionHead().to_dict()
    )
    calibration = CalibrationData(data.tensors(spec))
    with tempfile.TemporaryDirectory() as folder:
        for alpha in (0.35, 0.5, 0.75, 1.0):
            model = with_decoding(
                build_mobilenetv2_detector((size, size, 3), classes, alpha=alpha), classes, DetectionHead()
            )
            fp32 = convert_tflite(model, Path(folder) / f"{alpha}_fp32.tflite", MODES["fp32"], contract=contract)
            int8 = convert_tflite(
                model,
                Path(folder) / f"{alpha}_int8.tflite",
                MODES["int8"],
                contract=contract,
                calibration=calibration,
                progress=False,
            )
            print(
                f"mobilenetv2_detector width {alpha:.2f} at {size} px (untrained): fp32 {fp32.size_bytes / 1024:.0f} "
                "kB, "
                f"int8 {int8.size_bytes / 1024:.0f} kB, int8/fp32 {int8.size_bytes / fp32.size_bytes:.3f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", action="store_true", help="also print int8/fp32 size per backbone width")
    parser.add_argument("--detectors", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    parser.add_argument("--smoke", action="store_true", help="the small detector, 1 epoch, 5 calls; no record")
    args = parser.parse_args(argv)
    if args.smoke:  # detection_quality.py --smoke's model: the same recipe and folder
        RECIPES["small_detector"] = ("small_detector", 60, 64, 1, "detection-smoke")
        args.runs, args.detectors = 5, "small_detector"
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # edgekit's per-epoch and per-target lines
    import edgekit

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    print(f"int8 dot-product instructions on this host: {int8_dot_product()}")
    print(
        f"caches on this host, before: {cache_decay()} (flat on a CPU of its own; rising where other tenants "
        "evict this process's caches while it waits, as during an inference: predict's work around it pays)"
    )
    misses: list[str] = []
    figures: dict[str, float] = {}
    chosen = args.detectors.split(",")
    unknown = set(chosen) - set(RECIPES)
    if unknown:
        parser.error(f"unknown detector(s) {sorted(unknown)}; valid: {', '.join(RECIPES)}")
    for name in chosen:
        model_path, train, test = trained(name)
        report = edgekit.export(
            model_path,
            TARGETS,
            out_dir=CACHE / RECIPES[name][4] / "export-bench",
            calibration=train,
            check=test,
            progress=False,
        )
        print(report.table())
        run_ms: dict[str, float] = {}
        for result in report.results:
            if result.status != "ok":
                misses.append(f"{name} {result.target}: {result.status} {result.error or ''}".strip())
                continue
            with edgekit.load(result.path, num_threads=args.threads) as model:
                tensor = model.preprocess(frame, "bgr")
                found = model.predict(frame, color="bgr")  # warm the frame's plan; boxes in 640x480 pixels
                stages: list[tuple[float, float, float]] = []
                predict = timed_stages(lambda: model.predict(frame, color="bgr"), stages)
                ratio, predict_ms, run_ms[result.target] = interleaved_ratio(
                    predict, lambda: model.run_all(tensor), args.runs
                )
                warm_pre_ms, warm_rest_ms = warm_stages(model, frame, args.runs)
            preprocess_ms, inference_ms, rest_ms = (statistics.median(column) for column in zip(*stages))
            print(
                f"{name:21} {result.target:12} predict(640x480) {predict_ms:7.2f} ms  run_all(tensor) "
                f"{run_ms[result.target]:7.2f} ms  ratio {ratio:.3f}  (predict's stages: preprocess "
                f"{preprocess_ms:.3f}, "
                f"inference {inference_ms:.3f}, decoding, NMS and mapping back {rest_ms:.3f} ms; "
                f"{model_interpolation(model_path)}; {len(found)} boxes on noise)  mAP@[.5:.95] "
                f"{result.accuracy_delta:+.1f} pts, mAP@.5 {result.details['map50_delta']:+.1f} pts"
            )
            print(
                f"{'':34} with caches kept (no inference between): preprocess {warm_pre_ms:.3f}, decoding, NMS and "
                f"mapping back {warm_rest_ms:.3f} ms: "
                f"{100 * (warm_pre_ms + warm_rest_ms) / run_ms[result.target]:.1f}% of run_all"
            )
            key = "worst predict(640x480)/run ratio"
            figures[key] = max(figures.get(key, 0.0), ratio)
            if result.target.endswith("int8"):
                key = "worst int8 mAP@.5 delta"
                figures[key] = max(figures.get(key, 0.0), abs(result.details["map50_delta"]))
            if ratio > FRAME_TARGET:
                misses.append(f"{name} {result.target}: predict/run {ratio:.3f} (target <= {FRAME_TARGET})")
            if result.target.endswith("int8") and abs(result.details["map50_delta"]) > MAP50_TARGET:
                misses.append(
                    f"{name} {result.target}: mAP@.5 {result.details['map50_delta']:+.1f} points "
                    f"(target within {MAP50_TARGET})"
                )
        if {"tflite:fp32", "tflite:int8"} <= run_ms.keys():
            latency = run_ms["tflite:int8"] / run_ms["tflite:fp32"]
            size = report.result("tflite:int8").size_bytes / report.result("tflite:fp32").size_bytes
            print(
                f"{name}: TFLite int8/fp32 latency {latency:.3f} (target <= {LATENCY_TARGET}), size {size:.3f}"
                + (f" (target <= {SIZE_TARGET})" if name == "mobilenetv2_detector" else "")
            )
            figures[f"{name}: TFLite int8/fp32 latency"] = latency
            if name == "mobilenetv2_detector":
                figures[f"{name}: TFLite int8/fp32 size"] = size
            if latency > LATENCY_TARGET:
                misses.append(f"{name}: TFLite int8/fp32 latency {latency:.3f} (target <= {LATENCY_TARGET})")
            if name == "mobilenetv2_detector":
                print_sizes(report.result("tflite:fp32").path, report.result("tflite:int8").path)
                if size > SIZE_TARGET:
                    misses.append(f"{name}: int8/fp32 size {size:.3f} (target <= {SIZE_TARGET})")
    print(f"caches on this host, after: {cache_decay()}")
    if args.widths:
        width_sweep()
    if args.smoke:
        print(f"smoke: worst predict/run ratio {figures.get('worst predict(640x480)/run ratio', 0):.3f}; {misses}")
        return 0
    if chosen == list(RECIPES):  # a record holds every detector's figures
        record(figures, args)
    print("misses: " + "; ".join(misses) if misses else "every target met")
    return 1 if misses else 0


def record(figures: dict[str, float], args: argparse.Namespace) -> None:
    """bench/records/detection.json: each figure against its target."""
    from records import Figure, write_record

    targets = {
        "worst predict(640x480)/run ratio": f"<= {FRAME_TARGET}",
        "worst int8 mAP@.5 delta": f"<= {MAP50_TARGET}",
    }
    write_record(
        "detection",
        [
            Figure(
                name,
                round(value, 3),
                "points" if "mAP" in name else "",
                targets.get(name, f"<= {SIZE_TARGET if name.endswith('size') else LATENCY_TARGET}"),
            )
            for name, value in figures.items()
        ],
        command=f"bench/detection.py --runs {args.runs} --threads {args.threads}",
        notes=[f"int8 dot-product instructions: {int8_dot_product()}"],
    )


if __name__ == "__main__":
    sys.exit(main())
