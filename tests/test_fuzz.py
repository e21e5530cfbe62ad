"""Fuzzing model files: every mutant is an edgekit error or a finite, well-formed result.

Truncations and byte flips of TFLite and ONNX artifacts (float and int8), in their structure,
their first bytes and their embedded contract, each opened and run in its own forked process
by tests/fuzz_artifacts.py. No other exception type, no signal, no hang. Bounded: about 300
cases in well under two minutes on 2 cores.
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent / "fuzz_artifacts.py"


@pytest.mark.skipif(sys.platform == "win32", reason="the harness forks one process per mutant")
def test_mutated_artifacts_give_edgekit_errors_or_valid_results(tiny_artifacts, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "files": [str(tiny_artifacts[k]) for k in ("tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8")],
        "seed": 14, "per_file": {"truncate": 12, "flip": 40, "header": 12, "metadata": 16}, "out": str(tmp_path / "out.json"),
    }))
    run = subprocess.run([sys.executable, str(HARNESS), str(job)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    outcomes = json.loads((tmp_path / "out.json").read_text())
    summary = Counter(o["outcome"].split(":")[0] + ":" + o["outcome"].split(":")[1] if ":" in o["outcome"] else o["outcome"]
                      for o in outcomes)
    print("\nfuzz outcomes:", dict(summary))
    detail = Counter((o["file"], o["mutation"].split(":")[0], o["outcome"][:60]) for o in outcomes)
    for key, n in sorted(detail.items()):
        print("DETAIL", key, n)
    bad = [o for o in outcomes if not (o["outcome"] == "ok" or o["outcome"].startswith("edgekit:"))]
    assert not bad, bad[:10]
    assert len(outcomes) == 4 * (12 + 40 + 12 + 16)
    # the mutants really were damaged: most truncations and contract flips are caught, not run
    by_kind = Counter((o["mutation"].split(":")[0], o["outcome"] == "ok") for o in outcomes)
    assert by_kind[("truncate", False)] >= 40
    contract_flips = [o for o in outcomes if o["mutation"].startswith("flip") and o["outcome"] == "edgekit:ContractError"]
    assert len(contract_flips) >= 40
