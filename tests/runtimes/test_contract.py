import json

import pytest

from runtimes.contract import ColorOrder, Layout, ModelContract, Preprocessing, ResizeMode
from runtimes.errors import ContractError


def test_defaults_and_parsing():
    spec = Preprocessing(input_size=(48, 64), color_order="bgr", resize="letterbox", layout="nchw")
    assert spec.input_size == (48, 64)
    assert spec.color_order is ColorOrder.BGR and spec.resize is ResizeMode.LETTERBOX and spec.layout is Layout.NCHW
    assert spec.input_shape == (3, 48, 64)
    assert Preprocessing(32, color_order="gray").input_shape == (32, 32, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_size=0), "invalid input_size 0"),
        (dict(input_size=(1, 2, 3)), "invalid input_size"),
        (dict(input_size=8, color_order="rgba"), "invalid color_order 'rgba'; valid values: 'rgb', 'bgr', 'gray'"),
        (
            dict(input_size=8, resize="fit"),
            "invalid resize mode 'fit'; valid values: 'stretch', 'letterbox', 'center_crop'",
        ),
        (dict(input_size=8, layout="hwc"), "invalid layout 'hwc'"),
        (dict(input_size=8, dtype="int8"), "invalid dtype 'int8'"),
        (dict(input_size=8, scale=0.0), "invalid scale 0.0"),
        (dict(input_size=8, offset=float("nan")), "invalid offset"),
        (dict(input_size=8, mean=(0.5, 0.5, 0.5)), "mean and std must be given together"),
        (dict(input_size=8, mean=(0.5,), std=(0.2,)), "mean and std need 3 value"),
        (dict(input_size=8, mean=(0.5, 0.5, 0.5), std=(0.2, 0.0, 0.2)), "every value must be positive"),
        (dict(input_size=8, pad_value=300), "pad_value"),
    ],
)
def test_invalid_preprocessing_is_named(kwargs, message):
    with pytest.raises(ContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Preprocessing(**kwargs)


def test_output_range_for_scaling_and_mean_std():
    assert Preprocessing(8, scale=1 / 127.5, offset=-1.0).output_range() == ((-1.0,) * 3, (1.0,) * 3)
    spec = Preprocessing(8, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    low, high = spec.output_range()
    assert low == pytest.approx((-1.0, -1.0, 0.0))
    assert high == pytest.approx((1.0, 3.0, 1.0))


def test_contract_json_round_trip():
    spec = Preprocessing((40, 30), "bgr", "center_crop", mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), layout="nchw")
    contract = ModelContract(spec, ("cat", "dog"), model_name="m", edgekit_version="0.1.0").with_quantization(
        mode="int8"
    )
    restored = ModelContract.from_json(contract.to_json())
    assert restored == contract
    assert json.loads(contract.to_json())["preprocessing"]["color_order"] == "bgr"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(schema=99), "schema 99 is newer"),
        (lambda d: d["preprocessing"].update(gamma=2.2), r"unknown field\(s\) \['gamma'\]"),
        (lambda d: d.pop("labels"), "missing 'labels'"),
        (lambda d: d.update(labels=[]), "at least one label"),
        (lambda d: d.update(labels=["a", "a"]), "labels must be unique"),
        (lambda d: d.update(task="depth"), "invalid task 'depth'"),
    ],
)
def test_bad_embedded_contract_is_refused(mutate, message):
    data = ModelContract(Preprocessing(8), ("a", "b")).to_dict()
    mutate(data)
    with pytest.raises(ContractError, match=message):
        ModelContract.from_dict(data)


def test_contract_json_garbage():
    with pytest.raises(ContractError, match="not valid JSON"):
        ModelContract.from_json(b"\xff{")
    with pytest.raises(ContractError, match="not a JSON object"):
        ModelContract.from_json("[1, 2]")
