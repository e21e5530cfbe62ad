"""Fuzzing model files: every mutant is an edgekit error or a finite, well-formed result.

Truncations and byte flips of TFLite and ONNX artifacts (float and int8), in their structure,
their first bytes and their embedded contract, each opened and run in its own forked process
by tests/helpers/fuzz_artifacts.py. No other exception type, no signal, no hang. Bounded: about 300
cases in well under two minutes on 2 cores.
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "helpers" / "fuzz_artifacts.py"


@pytest.mark.skipif(sys.platform == "win32", reason="the harness forks one process per mutant")
def test_mutated_artifacts_give_edgekit_errors_or_valid_results(tiny_artifacts, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "files": [str(tiny_artifacts[k]) for k in ("tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8")],
                "seed": 14,
                "per_file": {"truncate": 12, "flip": 40, "header": 12, "metadata": 16},
                "out": str(tmp_path / "out.json"),
            }
        )
    )
    run = subprocess.run([sys.executable, str(HARNESS), str(job)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    outcomes = json.loads((tmp_path / "out.json").read_text())
    assert len(outcomes) == 4 * (12 + 40 + 12 + 16)
    for o in outcomes:  # "edgekit:Class: message" -> the class as the outcome, the message beside it
        if o["outcome"].startswith("edgekit:"):
            o["outcome"], _, o["message"] = o["outcome"].partition(": ")
    found = Counter((o["file"].rsplit(".", 1)[1], o["mutation"].split(":")[0], o["outcome"]) for o in outcomes)
    print("\nfuzz outcomes (format, mutation, outcome):", dict(sorted(found.items())))
    bad = [o for o in outcomes if not (o["outcome"] == "ok" or o["outcome"].startswith("edgekit:"))]
    assert not bad, bad[:10]
    # each kind of damage gives what it must: a count moves when a check is switched off
    for (fmt, kind, outcome), count in found.items():
        assert outcome in EXPECTED[fmt][kind], f"{count} {kind} mutant(s) of a .{fmt} file gave {outcome}"
    # a file that loads but cannot run, or runs into NaN, is refused as damaged, with what to do about it
    failed_runs = [o for o in outcomes if o["outcome"] == "edgekit:InferenceError"]
    assert all("damaged" in o.get("message", "") for o in failed_runs), failed_runs
    for fmt in ("tflite", "onnx"):
        assert found[(fmt, "truncate", "edgekit:ModelLoadError")] == 24  # every cut file, both models
        assert found[(fmt, "metadata", "edgekit:ContractError")] >= (32 if fmt == "tflite" else 8)  # the digest's work
    assert found[("tflite", "header", "edgekit:ModelLoadError")] >= 20  # the root offset and identifier: nearly all
    assert found[("tflite", "flip", "edgekit:ContractError")] >= 5  # random flips that landed in the contract


# What each mutation may give, per format. A cut file never loads. A flipped byte inside the embedded contract is a
# ContractError (its SHA-256 no longer matches); in ONNX, whose protobuf strings must be UTF-8, a flip that breaks
# the UTF-8 fails to parse first (ModelLoadError): never "ok". TFLite's first bytes are the root offset and the
# "TFL3" identifier, then the root table's vtable, where a flip can land on a field nothing reads (seen: 1 of 24 "ok");
# ONNX's first bytes are the ir_version and producer fields, some harmless. A flip
# anywhere may hit weights or structure: a weight's exponent byte can turn it into inf or NaN, and a structure byte
# can pass the loader's checks and fail only when the graph runs; both are an InferenceError that says the file is
# damaged (seen on CI: 1 of 160 ONNX flips; how many depends on the bytes of the model trained on that host).
LOADS_OR_NOT = {"ok", "edgekit:ModelLoadError", "edgekit:ContractError", "edgekit:InferenceError"}
EXPECTED = {
    "tflite": {
        "truncate": {"edgekit:ModelLoadError"},
        "metadata": {"edgekit:ContractError"},
        "header": {"edgekit:ModelLoadError", "ok"},
        "flip": LOADS_OR_NOT,
    },
    "onnx": {
        "truncate": {"edgekit:ModelLoadError"},
        "metadata": {"edgekit:ContractError", "edgekit:ModelLoadError"},
        "header": {"edgekit:ModelLoadError", "ok"},
        "flip": LOADS_OR_NOT,
    },
}
