"""`edgekit doctor`: what this machine can run, and what to install when something is missing.

Runs with the standard library alone (it must work before anything is installed).
"""

from __future__ import annotations

import glob
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUNTIME_MODULES = {
    "ai_edge_litert": ("LiteRT (TFLite)", "pip install ai-edge-litert"),
    "tflite_runtime": ("tflite-runtime (older TFLite)", "pip install tflite-runtime  # Python <= 3.11, numpy < 2"),
    "onnxruntime": ("ONNX Runtime", "pip install onnxruntime"),
    "coremltools": ("CoreML (predicts on macOS only)", "pip install coremltools"),
}
BASE_MODULES = {
    "numpy": "pip install numpy",
    "cv2": "pip install opencv-python-headless",
}


@dataclass
class DoctorReport:
    python: str
    machine: str
    system: str
    cpu_model: str
    cpu_features: list[str]
    modules: dict[str, str | None]  # module -> version, or None when missing
    video_devices: list[str]
    advice: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        base = all(self.modules.get(m) for m in BASE_MODULES)
        return base and any(self.modules.get(m) for m in ("ai_edge_litert", "tflite_runtime", "onnxruntime"))


IMPORT_ONLY_TO_LOOK = {"coremltools"}  # importing it would pull in TensorFlow where installed


def _version(module: str) -> str | None:
    """The module's version if it imports (a broken install counts as missing)."""
    if module in IMPORT_ONLY_TO_LOOK:
        if importlib.util.find_spec(module) is None:
            return None
        try:
            return importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            return "installed"
    try:
        imported = importlib.import_module(module)
    except Exception:  # noqa: BLE001
        return None
    return str(getattr(imported, "__version__", "installed"))


def _cpu() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown", []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    model = next((fields[k] for k in ("model name", "hardware", "model") if fields.get(k)), "unknown")
    features = (fields.get("flags") or fields.get("features") or "").split()
    interesting = {"neon", "asimd", "asimddp", "fphp", "asimdhp", "sve", "avx2", "avx512f", "fma"}
    return model, sorted(set(features) & interesting)


def diagnose() -> DoctorReport:
    cpu_model, features = _cpu()
    modules = {m: _version(m) for m in [*BASE_MODULES, *RUNTIME_MODULES, "picamera2"]}
    report = DoctorReport(
        python=platform.python_version(),
        machine=platform.machine(),
        system=platform.system(),
        cpu_model=cpu_model,
        cpu_features=features,
        modules=modules,
        video_devices=sorted(glob.glob("/dev/video*")),
    )
    for module, install in BASE_MODULES.items():
        if not modules[module]:
            report.advice.append(f"{module} is missing: {install}")
    if not any(modules[m] for m in ("ai_edge_litert", "tflite_runtime", "onnxruntime")):
        report.advice.append("no inference runtime: pip install ai-edge-litert (TFLite) or onnxruntime (ONNX)")
    if sys.version_info < (3, 10):
        report.advice.append(f"Python {report.python} is too old: edgekit's runtime needs 3.10 or newer")
    if report.machine in ("aarch64", "arm64") and report.system == "Linux" and not modules["picamera2"]:
        report.advice.append(
            "picamera2 is not importable: for the Raspberry Pi camera, sudo apt install python3-picamera2 "
            "and create the venv with --system-site-packages"
        )
    return report


def render(report: DoctorReport) -> str:
    lines = [
        f"python:   {report.python} ({sys.executable})",
        f"machine:  {report.system} {report.machine}, {report.cpu_model}",
        f"cpu:      {', '.join(report.cpu_features) or 'no SIMD features reported'}",
    ]
    for module, version in report.modules.items():
        label = RUNTIME_MODULES.get(module, (module, ""))[0]
        lines.append(f"{'ok ' if version else '-- '} {module:<15} {version or 'missing':<12} {label}")
    lines.append(f"cameras:  {', '.join(report.video_devices) or 'no /dev/video* devices'}")
    lines.extend(f"advice:   {item}" for item in report.advice)
    lines.append("ready: yes" if report.ok else "ready: no (see advice)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    report = diagnose()
    print(json.dumps({**asdict(report), "ok": report.ok}, indent=2) if "--json" in args else render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
