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


def _error_classes() -> dict[str, type]:
    """Every exception class defined in edgekit's three packages, by name."""
    import importlib
    import inspect
    import pkgutil

    from runtimes.errors import EdgekitError

    found: dict[str, type] = {}
    for package in ("runtimes", "converters", "edgekit"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.endswith(("__main__", "tflite_schema_py_generated")):
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if inspect.isclass(value) and issubclass(value, EdgekitError) and value.__module__ == info.name:
                    found[name] = value
    return found


def test_every_error_is_one_hierarchy_importable_from_edgekit_and_the_device_ones_from_runtimes():
    import edgekit
    import runtimes

    errors = _error_classes()
    assert len(errors) >= 20 and "ExportError" in errors and "SourceError" in errors
    for name, cls in errors.items():
        assert getattr(edgekit, name) is cls, f"edgekit.{name} is missing"
        assert cls.__module__ in ("runtimes.errors", "converters.errors", "edgekit.errors"), (name, cls.__module__)
        if cls.__module__ == "runtimes.errors":
            assert getattr(runtimes, name) is cls, f"runtimes.{name} is missing"


def test_image_folder_is_a_class_its_datasets_are_instances_of(tmp_path):
    import numpy as np

    import edgekit
    from edgekit.data.image_streaming import StreamingImageDataset

    root = edgekit.datasets.make_shapes(tmp_path / "shapes", n_per_class=2, image_size=24, seed=0)
    in_memory, streamed = edgekit.ImageFolder(root, image_size=24), edgekit.ImageFolder(root, 24, stream=True)
    assert isinstance(edgekit.ImageFolder, type)
    assert isinstance(in_memory, edgekit.ImageFolder) and isinstance(in_memory, edgekit.ImageDataset)
    assert isinstance(streamed, edgekit.ImageFolder) and isinstance(streamed, StreamingImageDataset)
    assert not isinstance(np.zeros(3), edgekit.ImageFolder)


def test_predict_is_typed_by_what_it_is_given():
    import typing

    import edgekit
    from runtimes.model import Model

    overloads = typing.get_overloads(Model.predict)
    returns = [typing.get_type_hints(fn, vars(__import__("runtimes.model").model))["return"] for fn in overloads]
    from runtimes.tasks.keypoints import KeypointObjects

    result = edgekit.Classification | edgekit.Detections | KeypointObjects | edgekit.Segmentation
    assert returns == [result, list[result]]


def test_options_dataclasses_take_the_old_keywords_and_name_a_wrong_one():
    import pytest

    import edgekit
    from edgekit.optimize.pruning import PruneOptions
    from edgekit.training.options import TrainOptions, options_from_call

    base = TrainOptions(epochs=3, seed=1)
    assert TrainOptions.from_call(base, {"seed": 7}) == TrainOptions(epochs=3, seed=7)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['epoch'\] for TrainOptions; valid: task, test, epochs"):
        edgekit.train(None, None, epoch=3)
    with pytest.raises(edgekit.TrainingError, match="sparsity must be between 0 and 1"):
        options_from_call(PruneOptions, None, {"sparsity": 1.5})
    with pytest.raises(edgekit.TrainingError, match="temperature must be > 0 and alpha in"):
        edgekit.distill("teacher.keras", "small_cnn", None, None, alpha=2.0)
