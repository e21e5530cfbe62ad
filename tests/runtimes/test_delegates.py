"""Hardware delegates and execution providers: by name, with errors that name what is missing."""

import pytest

import edgekit
from runtimes.backends.tflite_delegates import parse_delegate
from runtimes.errors import BackendUnavailableError, InputError, ModelLoadError, UnknownNameError


def test_delegate_specs_parse_names_options_and_paths():
    assert parse_delegate("edgetpu") == ("edgetpu", {})
    assert parse_delegate("edgetpu:device=usb:0") == ("edgetpu", {"device": "usb:0"})
    assert parse_delegate("/opt/lib/libmydelegate.so") == ("/opt/lib/libmydelegate.so", {})
    with pytest.raises(
        InputError, match="unknown TFLite delegate 'npu'; valid: edgetpu, gpu, xnnpack, or a library path"
    ):
        parse_delegate("npu")


@pytest.mark.parametrize(
    "name, library", [("edgetpu", "libedgetpu.so.1"), ("gpu", "libtensorflowlite_gpu_delegate.so")]
)
def test_missing_delegate_library_is_named_with_what_to_install(tiny_tflite, name, library):
    with pytest.raises(
        BackendUnavailableError, match=rf"TFLite delegate '{name}' could not be loaded \({library}.*Install "
    ):
        edgekit.load(tiny_tflite, delegates=[name])


@pytest.mark.parametrize("threads", [1, 3])
def test_xnnpack_options_set_its_threads(tiny_tflite, threads):
    """XNNPACK's pool runs num_threads - 1 workers beside the caller: counted in /proc, not read back from our own
    state."""
    import os

    import numpy as np

    tasks = lambda: len(os.listdir("/proc/self/task"))  # noqa: E731
    before = tasks()
    with edgekit.load(tiny_tflite, delegates=[f"xnnpack:num_threads={threads}"]) as model:
        assert model.runtime.delegates == ["xnnpack"]
        assert model.run(model.preprocess(np.zeros((16, 16, 3), np.uint8))).shape == (1, 3)
        assert tasks() - before == threads - 1


def test_a_model_compiled_for_the_edge_tpu_names_its_delegate(tiny_tflite, tmp_path):
    compiled = tmp_path / "tiny_edgetpu.tflite"
    compiled.write_bytes(tiny_tflite.read_bytes() + b"edgetpu-custom-op")  # what edgetpu_compiler leaves in a model
    with pytest.raises(ModelLoadError, match=r"compiled for the Edge TPU .* delegates=\['edgetpu'\].*libedgetpu.so.1"):
        edgekit.load(compiled)


def test_onnx_providers_by_name_fallback_only_when_allowed(tiny_onnx_path):
    with pytest.raises(
        UnknownNameError, match=r"\['CUDAExecutionProvider'\] are not available.*pip install onnxruntime-gpu"
    ):
        edgekit.load(tiny_onnx_path, providers=["cuda"])
    with edgekit.load(tiny_onnx_path, providers=["cuda", "cpu"], allow_fallback=True) as model:
        assert model.runtime.providers == ["CPUExecutionProvider"]  # what actually ran


@pytest.fixture
def tiny_onnx_path(tiny_model, tiny_contract, tmp_path):
    from converters.onnx import MODES, convert_onnx

    return convert_onnx(tiny_model, tmp_path / "tiny.onnx", MODES["fp32"], contract=tiny_contract).path
