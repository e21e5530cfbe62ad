"""Time to export MobileNetV2 at 96x96 to every registered target (target: under 60 s on 2 cores).

Conversion and checking are timed separately; the last line is the total conversion time.
Exits 1 above the target.

    .venv/bin/python bench/export_time.py
    .venv/bin/python bench/export_time.py --smoke     # 32 px, two targets: the harness works (make test)

A full run writes bench/records/export_time.json (the benchmarks page's figures).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="32 px and two targets; no record, no target")
    args = parser.parse_args(argv)
    size = 32 if args.smoke else 96
    import edgekit
    from converters import all_targets
    from edgekit.training.architectures import ARCHITECTURES
    from runtimes.contract import ModelContract

    with tempfile.TemporaryDirectory() as tmp:
        root = edgekit.datasets.make_shapes(Path(tmp) / "shapes", n_per_class=40, image_size=64, seed=0)
        data = edgekit.ImageFolder(root, image_size=size)
        spec = ARCHITECTURES.get("mobilenetv2")
        model = spec.build((size, size, 3), len(data.labels), None)
        contract = ModelContract(spec.preprocessing(data.geometry), data.labels, model_name=f"mobilenetv2_{size}")
        targets = ["tflite:fp32", "onnx:fp32"] if args.smoke else all_targets()
        started = time.perf_counter()
        report = edgekit.export(
            model, targets, contract=contract, calibration=data, out_dir=Path(tmp) / "out", progress=False
        )
        wall = time.perf_counter() - started
    for result in report.results:
        print(
            (
                f"{result.target:20} {result.status:10} {result.seconds or 0:6.1f} s  "
                f"{(result.size_bytes or 0) / 1024:8.1f} kB"
            )
        )
    converted = sum(r.seconds or 0 for r in report.results)
    failed = [r.target for r in report.results if r.status == "failed"]
    print(
        f"export of mobilenetv2 {size}x{size} to {len(targets)} targets: {converted:.1f} s converting, "
        f"{wall:.1f} s wall"
        f"{'; FAILED: ' + ', '.join(failed) if failed else ''} (target < {TARGET_SECONDS:.0f} s)"
    )
    if args.smoke:
        return 0 if not failed else 1
    from records import Figure, write_record

    write_record(
        "export_time",
        [
            Figure(
                f"export of MobileNetV2 96x96 to {len(targets)} targets, wall",
                round(wall, 1),
                "s",
                f"<= {TARGET_SECONDS:g}",
            ),
            Figure("of which converting", round(converted, 1), "s"),
            Figure("targets failed", len(failed), "", "<= 0"),
        ],
        command="bench/export_time.py",
    )
    return 0 if wall < TARGET_SECONDS and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
