"""A CoreML ML program as a plain list of steps, evaluated in order with numpy (`mil_ops`).

coremltools reads a saved `.mlpackage` back into its Python MIL representation; `load_program`
turns that into `Step`s of names and constants, and `MILProgram.run` evaluates them. float16
ops are evaluated as a float16 device stores them: every input and output of an fp16 op is a
float16 value, the arithmetic inside one op is float32 (accumulation precision on Apple's
GPU/Neural Engine is not documented; the check's tolerance covers it).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.deps import require
from runtimes.errors import InputError, ModelLoadError, UnsupportedOpError
from runtimes.reference.mil_ops import MIL_OPS


@dataclass(frozen=True)
class Step:
    """One op: its type, inputs (a variable name, a list of names, or a constant) and outputs."""

    op_type: str
    name: str
    inputs: dict[str, Any]
    outputs: tuple[str, ...]
    output_dtypes: tuple[np.dtype | None, ...]


@dataclass
class MILProgram:
    """The main function of an ML program: its inputs, its steps and its outputs."""

    inputs: dict[str, tuple[tuple[int, ...], np.dtype]]
    steps: list[Step]
    outputs: list[str]
    op_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check_supported()
        self._fold_constants()

    def _fold_constants(self) -> None:
        """Evaluate steps that depend only on constants (weight decompression) once, at load."""
        known: dict[str, Any] = {}
        folded = []
        for step in self.steps:
            if step.op_type != "const" and all(name in known for name in _names(step.inputs)):
                results = _evaluate(step, known)
                step = (
                    Step(
                        "const",
                        step.name,
                        {"val": _cast(results[0], step.output_dtypes[0])},
                        step.outputs[:1],
                        step.output_dtypes[:1],
                    )
                    if len(step.outputs) == 1
                    else step
                )
            if step.op_type == "const":
                known[step.outputs[0]] = step.inputs["val"]
            folded.append(step)
        self.steps = folded

    def check_supported(self) -> None:
        unknown = sorted({s.op_type for s in self.steps if s.op_type not in MIL_OPS and s.op_type != "const"})
        if unknown:
            where = {op: next(s.name for s in self.steps if s.op_type == op) for op in unknown}
            raise UnsupportedOpError(
                "the reference executor does not implement MIL op(s) "
                + ", ".join(f"{op!r} (first at {where[op]!r})" for op in unknown)
                + f"; it implements: {', '.join(sorted(MIL_OPS.names()))}"
            )

    def run(self, feeds: dict[str, np.ndarray], keep: bool = False) -> dict[str, Any]:
        """Evaluate every step; returns the program outputs (every variable with `keep`)."""
        missing = set(self.inputs) - set(feeds)
        if missing:
            raise InputError(f"the program needs input(s) {sorted(missing)}; got {sorted(feeds)}")
        values: dict[str, Any] = {}
        for name, (_, dtype) in self.inputs.items():
            values[name] = np.asarray(feeds[name]).astype(dtype)
        for step in self.steps:
            results = _evaluate(step, values)
            for name, value, dtype in zip(step.outputs, results, step.output_dtypes):
                values[name] = _cast(value, dtype)
        return values if keep else {name: values[name] for name in self.outputs}


def _cast(value: Any, dtype: np.dtype | None) -> Any:
    return value.astype(dtype, copy=False) if dtype is not None and isinstance(value, np.ndarray) else value


def _names(inputs: dict[str, Any]) -> list[str]:
    names = []
    for value in inputs.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, _Ref):
                names.append(item.name)
    return names


def _evaluate(step: Step, values: dict[str, Any]) -> tuple[Any, ...]:
    if step.op_type == "const":
        return (step.inputs["val"],)
    args = {key: _resolve(value, values) for key, value in step.inputs.items()}
    low_precision = any(d == np.float16 for d in step.output_dtypes)
    if low_precision:  # fp16 op: inputs are fp16 values; compute in fp32
        args = {
            k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float16 else v
            for k, v in args.items()
        }
    try:
        result = MIL_OPS.get(step.op_type)(**args)
    except TypeError as exc:
        raise UnsupportedOpError(
            f"MIL op {step.op_type!r} ({step.name!r}) has inputs the reference executor does not take: {exc}"
        ) from None
    return result if isinstance(result, tuple) else (result,)


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, _Ref):
        return values[value.name]
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    return value


@dataclass(frozen=True)
class _Ref:
    name: str


def _numpy_dtype(mil_type: Any) -> np.dtype | None:
    types = require("coremltools.converters.mil.mil.types", extra="coreml", package="coremltools")
    if mil_type is None or not types.is_tensor(mil_type) and not types.is_scalar(mil_type):
        return None
    scalar = mil_type.get_primitive() if types.is_tensor(mil_type) else mil_type
    try:
        return np.dtype(types.nptype_from_builtin(scalar))
    except Exception:  # strings, lists, dicts: not numeric
        return None


def load_program(path: str | Path) -> MILProgram:
    """Read a saved .mlpackage into a `MILProgram` (needs coremltools; not CoreML itself)."""
    ct = require("coremltools", extra="coreml")
    milproto = require("coremltools.converters.mil.frontend.milproto.load", extra="coreml", package="coremltools")

    path = Path(path)
    try:
        mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
        spec = mlmodel.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            raise ModelLoadError(
                f"{path.name} is a {spec.WhichOneof('Type')} model; the reference executor runs ML programs only"
            )
        program = milproto.load(spec, spec.specificationVersion, mlmodel.weights_dir)
    except ModelLoadError:
        raise
    except Exception as exc:  # coremltools raises many types for unreadable packages
        raise ModelLoadError(f"cannot read the ML program in {path}: {exc}") from None
    function = program.functions["main"]
    inputs = {
        name: (tuple(int(d) for d in var.shape), _numpy_dtype(var.sym_type) or np.dtype(np.float32))
        for name, var in function.inputs.items()
    }
    steps, counts = [], {}
    for op in function.operations:
        counts[op.op_type] = counts.get(op.op_type, 0) + 1
        steps.append(_step(op))
    return MILProgram(inputs, steps, [var.name for var in function.outputs], counts)


def _step(op: Any) -> Step:
    outputs = tuple(var.name for var in op.outputs)
    dtypes = tuple(_numpy_dtype(var.sym_type) for var in op.outputs)
    if op.op_type == "const":
        return Step("const", op.name, {"val": _constant(op.outputs[0].val)}, outputs, dtypes)
    implementation = MIL_OPS.get(op.op_type) if op.op_type in MIL_OPS else None
    accepted = set(inspect.signature(implementation).parameters) if implementation else None
    inputs: dict[str, Any] = {}
    for key, var in op.inputs.items():
        if accepted is not None and key not in accepted:
            raise UnsupportedOpError(
                (
                    f"MIL op {op.op_type!r} ({op.name!r}) has input {key!r}, which the reference executor does not "
                    "implement"
                )
            )
        inputs[key] = [_Ref(v.name) for v in var] if isinstance(var, (list, tuple)) else _Ref(var.name)
    return Step(op.op_type, op.name, inputs, outputs, dtypes)


def _constant(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    return value
