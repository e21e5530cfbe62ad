"""The device side must stay light: no TensorFlow (or other converters) on import."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "coremltools", "onnx", "tf2onnx")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_runtimes_and_edgekit_import_without_heavy_modules():
    assert _loaded_after("import runtimes, edgekit, converters") == []


def test_loading_and_running_a_tflite_model_needs_no_tensorflow(tiny_tflite):
    code = (
        "import numpy as np, runtimes\n"
        f"m = runtimes.open({str(tiny_tflite)!r})\n"
        "assert m.contract.labels == ('a', 'b', 'c'), m.contract\n"
        "assert m.predict(np.zeros((20, 30, 3), np.uint8)).label in ('a', 'b', 'c')\n"
    )
    assert _loaded_after(code) == []


def test_lazy_attribute_error_is_clear():
    import pytest

    import edgekit

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgekit.nope  # noqa: B018


def test_lazy_public_names_are_not_shadowed_by_submodules():
    """`edgekit.export` must stay the function even after `edgekit.exporter` etc. are imported."""
    import importlib
    import types

    import edgekit

    for name, module in edgekit._LAZY.items():
        importlib.import_module(module)
        assert not isinstance(getattr(edgekit, name), types.ModuleType), name
