"""What keeps a CoreML ML program off the Neural Engine, read from the package's ops.

The rules come from public documentation: the Neural Engine computes in float16 only
(coremltools, "Typed Execution"), so float32 programs run on the GPU or CPU; recurrent
layers, gather and dilated convolutions are known not to run on it (hollance/neural-engine,
docs/unsupported-layers.md, which itself warns the list is incomplete). A finding is a
likely fallback to GPU/CPU for that part of the model, not a certainty: CoreML decides at
load time.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from runtimes.reference.mil_program import MILProgram, Step, load_program

OFF_NEURAL_ENGINE = {
    "lstm": "recurrent layers",
    "gru": "recurrent layers",
    "rnn": "recurrent layers",
    "gather": "gather",
    "gather_nd": "gather",
    "gather_along_axis": "gather",
}


def _constants(program: MILProgram) -> dict[str, object]:
    return {step.outputs[0]: step.inputs["val"] for step in program.steps if step.op_type == "const"}


def _dilated(step: Step, constants: dict[str, object]) -> bool:
    ref = step.inputs.get("dilations")
    value = constants.get(getattr(ref, "name", None)) if ref is not None else None
    return value is not None and bool(np.any(np.asarray(value) > 1))


def neural_engine_lint(path: str | Path, compute_units: str | None = None) -> list[str]:
    """Findings (one line each) for ops, precision or settings that keep `path` off the Neural Engine."""
    program = load_program(path)
    findings = []
    if compute_units in ("CPU_ONLY", "CPU_AND_GPU"):
        findings.append(f"compute_units={compute_units} excludes the Neural Engine")
    float_types = Counter(
        str(dtype)
        for step in program.steps
        if step.op_type not in ("const", "cast")
        for dtype in step.output_dtypes
        if dtype is not None and np.issubdtype(dtype, np.floating)
    )
    if float_types.get("float32", 0) > float_types.get("float16", 0):
        findings.append(
            "the program computes in float32; the Neural Engine runs float16 only, so CoreML will use "
            "the GPU or CPU (export coreml:fp16 or a compressed mode for the Neural Engine)"
        )
    constants = _constants(program)
    flagged = Counter()
    for step in program.steps:
        if step.op_type in OFF_NEURAL_ENGINE:
            flagged[f"{step.op_type} ({OFF_NEURAL_ENGINE[step.op_type]})"] += 1
        elif step.op_type == "conv" and _dilated(step, constants):
            flagged["conv with dilation > 1 (dilated convolution)"] += 1
    findings.extend(f"{count} x {what}: known to run off the Neural Engine" for what, count in sorted(flagged.items()))
    return findings
