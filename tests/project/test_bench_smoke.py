"""Every bench with a smoke mode runs it here, so none rots between full runs (bench/mutation.py's smoke mode has its
own test: test_mutation_bench.py). A smoke run checks the harness, not the targets: it exits 0 when it ran."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKES = {
    name: ["--smoke"]
    for name in (
        "overhead",
        "frame_path",
        "data_scale",
        "quantization",
        "live_pipeline",
        "soak",
        "export_time",
        "detection_quality",
        "detection",
        "optimize",
        "serve",
        "qat",
        "keypoints",
        "segmentation",
    )
}


@pytest.mark.slow
@pytest.mark.parametrize("bench", list(SMOKES))
def test_the_bench_runs_in_smoke_mode(bench):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench}.py"), *SMOKES[bench]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    expected = {
        "overhead": "worst Model.run / raw runtime ratio:",
        "frame_path": "worst predict(640x480 frame) / run(tensor) ratio:",
        "data_scale": "every target met",
        "quantization": "smoke: worst int8/fp32 size ratio",
        "live_pipeline": "worst pipelined throughput ratio:",
        "soak": "worst RSS growth",
        "export_time": "export of mobilenetv2 32x32 to 2 targets",
        "detection_quality": "smoke: test mAP@.5",
        "detection": "smoke: worst predict/run ratio",
        "optimize": "smoke: 5 rows, 2 figures",
        "serve": "smoke: HTTP path adds",
        "qat": "smoke: 14 figures",
        "keypoints": "smoke: 26 figures",
        "segmentation": "smoke: 8 figures",
    }
    assert expected[bench] in last or (bench == "data_scale" and last.startswith("misses:")), last
