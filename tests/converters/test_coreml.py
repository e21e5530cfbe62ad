"""CoreML packages: every mode written and reloaded with labels, contract and ImageType scaling intact."""

import sys

import numpy as np
import pytest
from helpers.needs import need_module

import edgekit
from converters.coreml import MODES, CoreMLConfig, convert_coreml, image_scale_and_bias
from runtimes.contract import ModelContract, Preprocessing
from runtimes.errors import BackendUnavailableError, ModelLoadError

need_module("coremltools", extra="coreml")


@pytest.fixture(scope="module")
def packages(tiny_model, tiny_contract, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml")
    return {
        mode: convert_coreml(tiny_model, out / f"tiny_{mode}.mlpackage", config, contract=tiny_contract)
        for mode, config in MODES.items()
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_is_written_and_reloads_with_its_contract(packages, tiny_contract, mode):
    artifact = packages[mode]
    assert (artifact.path / "Manifest.json").is_file() and artifact.size_bytes > 0
    with edgekit.load(artifact.path) as model:
        assert model.backend == "coreml"
        assert model.contract.labels == tiny_contract.labels
        assert model.preprocessing == tiny_contract.preprocessing
        assert model.contract.quantization["coreml_mode"] == mode
        assert model.input_spec.shape == (1, 16, 16, 3) and model.output_spec.shape == (1, 3)
        scale, bias = model.runtime.image_scale_and_bias()  # read from the program's own ops
        assert scale == pytest.approx(1 / 255) and bias == pytest.approx([0.0, 0.0, 0.0])
        assert model.runtime.compute_units == "ALL"


def test_compressed_packages_are_smaller(trained, tmp_path):
    sizes = {
        mode: convert_coreml(
            trained.model, tmp_path / f"{mode}.mlpackage", MODES[mode], contract=trained.contract
        ).size_bytes
        for mode in ("fp32", "fp16", "int8", "palettize4")
    }
    assert sizes["fp16"] < 0.6 * sizes["fp32"]
    assert sizes["int8"] < 0.6 * sizes["fp16"]
    assert sizes["palettize4"] < 0.75 * sizes["int8"]


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS CoreML predicts")
def test_prediction_off_macos_is_a_clear_error(packages, capsys):
    from edgekit.cli import main

    assert main(["info", str(packages["fp16"].path)]) == 0
    text = capsys.readouterr().out
    assert "runs here: no: CoreML prediction needs macOS" in text and "coreml_mode=fp16" in text
    with edgekit.load(packages["fp16"].path) as model:
        assert not model.can_run
        with pytest.raises(BackendUnavailableError, match="CoreML prediction needs macOS; this machine runs Linux"):
            model.predict(np.zeros((16, 16, 3), np.uint8))


def test_per_channel_std_is_folded_and_the_rest_goes_to_image_type(tiny_model, tmp_path):
    spec = Preprocessing(16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    contract = ModelContract(spec, ("a", "b", "c"))
    scale, bias, fold = image_scale_and_bias(contract)
    assert scale == pytest.approx(1 / 255) and bias == pytest.approx([-0.485, -0.456, -0.406])
    assert fold == pytest.approx([1 / 0.229, 1 / 0.224, 1 / 0.225])
    shared = ModelContract(
        Preprocessing(16, scale=1 / 255, offset=0.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)), ("a", "b", "c")
    )
    scale, bias, fold = image_scale_and_bias(shared)
    assert fold is None and scale == pytest.approx(2 / 255) and bias == pytest.approx([-1.0, -1.0, -1.0])
    artifact = convert_coreml(
        tiny_model, tmp_path / "folded.mlpackage", CoreMLConfig(compute_units="CPU_AND_NE"), contract=contract
    )
    with edgekit.load(artifact.path) as model:
        assert model.runtime.image_scale_and_bias()[1] == pytest.approx([-0.485, -0.456, -0.406], abs=1e-6)
        assert model.contract.quantization["folded_std"] is True
        assert model.runtime.compute_units == "CPU_AND_NE"
    with edgekit.load(artifact.path, compute_units="CPU_ONLY") as model:
        assert model.runtime.compute_units == "CPU_ONLY"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(compute_units="NPU"), "invalid compute_units 'NPU'; valid: ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY"),
        (dict(minimum_deployment_target="iOS9"), "invalid minimum_deployment_target 'iOS9'"),
        (dict(quantization="fp16", palettize_bits=3), "invalid palettize_bits 3; valid: 4, 6, 8"),
        (dict(quantization="fp32", palettize_bits=4), "palettized weights are applied to a float16 program"),
    ],
)
def test_bad_coreml_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CoreMLConfig(**kwargs)


def test_broken_package_is_named(tmp_path):
    fake = tmp_path / "fake.mlpackage"
    fake.mkdir()
    with pytest.raises(ModelLoadError, match="fake.mlpackage is not a CoreML package"):
        edgekit.load(fake)


def test_exporting_again_replaces_the_package_whole(tiny_model, tiny_contract, tmp_path):
    target = tmp_path / "m.mlpackage"
    convert_coreml(tiny_model, target, MODES["fp32"], contract=tiny_contract)
    convert_coreml(tiny_model, target, MODES["palettize4"], contract=tiny_contract)
    with edgekit.load(target) as model:
        assert model.contract.quantization["coreml_mode"] == "palettize4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlpackage"]


def _with_contract(package, target, text):
    """A copy of `package` whose user metadata holds `text` as edgekit's contract."""
    import shutil

    from coremltools.proto import Model_pb2

    shutil.copytree(package, target)
    spec_file = next(target.rglob("model.mlmodel"))
    spec = Model_pb2.Model()
    spec.ParseFromString(spec_file.read_bytes())
    spec.description.metadata.userDefined["edgekit.contract"] = text
    spec_file.write_bytes(spec.SerializeToString())
    return target


def _contract_dict(packages):
    import json

    with edgekit.load(packages["fp16"].path) as model:
        return json.loads(model.runtime.embedded_contract())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: "[1, 2]", "not a JSON object"),
        (
            lambda d: {**d, "quantization": {k: v for k, v in d["quantization"].items() if k != "image_scale"}},
            "image_scale None is missing or invalid",
        ),
        (
            lambda d: {**d, "quantization": {**d["quantization"], "image_bias": [0.0]}},
            "image_bias .* not 3 finite numbers",
        ),
        (
            lambda d: {**d, "labels": ["a", "b", "x"]},
            r"labels \['a', 'b', 'x'\] differ from the classifier's 3 \['a', 'b', 'c'\]",
        ),
        (lambda d: {**d, "labels": ["a", "b"]}, "contract's 2 labels"),
    ],
)
def test_a_bad_coreml_contract_fails_at_load_not_at_predict(packages, tmp_path, mutate, message):
    import json

    data = _contract_dict(packages)
    data.pop("sha256", None)
    changed = mutate(data)
    text = changed if isinstance(changed, str) else json.dumps(changed)
    package = _with_contract(packages["fp16"].path, tmp_path / "bad.mlpackage", text)
    from runtimes.errors import ContractError

    for backend in (None, "reference"):
        with pytest.raises(ContractError, match=message):
            edgekit.load(package, backend=backend)
