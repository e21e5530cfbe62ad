"""Samples are run the way a user runs them, and must work without TensorFlow."""

import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_classify_folder_sample(exported, shapes_root, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(10):
        (folder / f"{i}.png").write_bytes((shapes_root / "triangle" / f"{i:04d}.png").read_bytes())
    (folder / "broken.jpg").write_bytes(b"broken")
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['classify_folder.py', {exported.result('tflite:int8').path!r}, {str(folder)!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(SAMPLES / 'classify_folder.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert 'tensorflow' not in sys.modules\n"
        "    raise\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("10 classified (triangle ") and "1 skipped" in summary
    assert "broken.jpg: skipped (cannot decode image" in result.stderr
