"""The contract's every limit at its edge, every error's exact words, defaults, and the canonical JSON the digest signs.

Fast and TensorFlow-free: bench/mutation.py runs this module (with test_contract and test_contract_validation)
against mutants of contract.py. A limit is tested on both sides: the last accepted value and the first refused.
"""

import json

import pytest

from runtimes.contract import (
    MAX_CONTRACT_BYTES,
    MAX_CONTRACT_DEPTH,
    MAX_INPUT_SIDE,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    ModelContract,
    Preprocessing,
    _depth,
)
from runtimes.errors import ContractError

LABELS = ("a", "b")


def _contract(**changes) -> ModelContract:
    return ModelContract(changes.pop("preprocessing", Preprocessing(8)), changes.pop("labels", LABELS), **changes)


def _refused(make, message: str) -> None:
    with pytest.raises(ContractError) as refused:
        make()
    assert str(refused.value) == message


def test_input_side_limits_on_both_sides():
    assert Preprocessing(1).input_size == (1, 1)
    assert Preprocessing((MAX_INPUT_SIDE, 1)).input_size == (MAX_INPUT_SIDE, 1)
    problem = "invalid input_size {!r}; give an int or (height, width) of positive ints up to 16384"
    for bad in (0, MAX_INPUT_SIDE + 1, (1, 0), (MAX_INPUT_SIDE + 1, 4), (4, 4, 4), "8", 8.0, (8, 8.0), True):
        _refused(lambda bad=bad: Preprocessing(bad), problem.format(bad))


def test_labels_count_and_length_on_both_sides():
    assert len(_contract(labels=[str(i) for i in range(MAX_LABELS)]).labels) == MAX_LABELS
    assert len(_contract(labels=["x" * MAX_LABEL_CHARS]).labels[0]) == MAX_LABEL_CHARS
    message = "labels too many or too long (at most 100000 of 1000 characters)"
    _refused(lambda: _contract(labels=[str(i) for i in range(MAX_LABELS + 1)]), message)
    _refused(lambda: _contract(labels=["x" * (MAX_LABEL_CHARS + 1)]), message)
    _refused(lambda: _contract(labels=[]), "a contract needs at least one label")
    _refused(lambda: _contract(preprocessing={"input_size": 8}), "preprocessing must be a Preprocessing, got dict")


def test_schema_zero_is_accepted_and_negative_or_newer_is_not():
    assert _contract(schema=0).schema == 0
    _refused(lambda: _contract(schema=-1), "invalid contract schema -1; it must be a non-negative integer")
    _refused(lambda: _contract(schema="1"), "invalid contract schema '1'; it must be a non-negative integer")
    data = _contract().to_dict()
    assert ModelContract.from_dict({**data, "schema": 0}).schema == 0
    del data["schema"]
    assert ModelContract.from_dict(data).schema == 0  # written before the field: schema 0
    _refused(
        lambda: ModelContract.from_dict({**data, "schema": -1}),
        "invalid contract schema -1; it must be a non-negative integer",
    )
    _refused(
        lambda: ModelContract.from_dict({**data, "schema": 2}),
        "contract schema 2 is newer than this edgekit understands (1); upgrade edgekit",
    )


def test_head_task_and_other_fields_are_checked_by_name():
    _refused(lambda: _contract(head=[1]), "head must be a JSON object, got [1]")
    _refused(
        lambda: _contract(task="pose"),
        "invalid task 'pose'; valid tasks: classification, detection, keypoints, segmentation",
    )
    _refused(lambda: _contract(model_name=3), "model_name must be a string, got 3")
    _refused(lambda: _contract(quantization=[]), "quantization must be a JSON object, got []")
    with pytest.raises(ContractError, match="detection thresholds out of range: score 2.0"):
        _contract(task="detection", head={"score_threshold": 2.0})  # the task checks its own head
    _refused(lambda: ModelContract.from_dict([]), "the contract must be a JSON object, got list")


def test_from_dict_defaults_for_fields_older_contracts_lack():
    data = {"preprocessing": {"input_size": [8, 8]}, "labels": ["a"]}
    contract = ModelContract.from_dict(data)
    assert (contract.model_name, contract.task, contract.edgekit_version) == ("model", "classification", "")
    assert contract.quantization == {} and contract.head == {} and contract.schema == 0
    head = {"score_threshold": 0.4}
    detector = ModelContract.from_dict({**data, "task": "detection", "head": head, "quantization": None})
    assert detector.head == head and detector.quantization == {}
    assert ModelContract.from_dict({**data, "quantization": {"mode": "int8"}}).quantization == {"mode": "int8"}
    _refused(lambda: ModelContract.from_dict({"labels": ["a"]}), "embedded contract is missing 'preprocessing'")


def test_to_dict_names_every_field_and_head_only_when_there_is_one():
    contract = _contract(model_name="m", task="classification", edgekit_version="9.9", quantization={"q": 1})
    assert contract.to_dict() == {
        "schema": 1,
        "edgekit_version": "9.9",
        "model_name": "m",
        "task": "classification",
        "labels": ["a", "b"],
        "preprocessing": Preprocessing(8).to_dict(),
        "quantization": {"q": 1},
    }
    detector = _contract(task="detection", head={"iou_threshold": 0.6})
    assert detector.to_dict()["head"] == {"iou_threshold": 0.6} and detector.to_dict()["task"] == "detection"
    assert contract.with_quantization(mode="int8", bits=8).quantization == {"mode": "int8", "bits": 8}


def test_the_json_is_canonical_and_signed_over_sorted_keys():
    contract = _contract(model_name="m")
    text = contract.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True) and list(json.loads(text)) == sorted(json.loads(text))
    signed = contract.to_signed_json()
    assert signed == json.dumps(json.loads(signed), sort_keys=True)
    data = json.loads(signed)
    digest = data.pop("sha256")
    assert digest == __import__("hashlib").sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    assert ModelContract.from_json(signed) == contract
    reordered = json.dumps({**dict(reversed(list(data.items()))), "sha256": digest})  # key order is not content
    assert ModelContract.from_json(reordered) == contract
    _refused(
        lambda: ModelContract.from_json(signed.replace('"a"', '"c"')),
        "embedded contract is damaged (its SHA-256 does not match its content): the file was corrupted in storage "
        "or transfer; copy or export it again",
    )


def test_from_json_limits_on_both_sides():
    _refused(lambda: ModelContract.from_json("[1]"), "embedded contract is not a JSON object")
    _refused(
        lambda: ModelContract.from_json("[" * 100_000 + "]" * 100_000),
        "embedded contract is not a contract: its JSON nests too deeply",
    )
    deep = _contract().to_dict()
    deep["quantization"] = {"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}  # contract 1, quantization 2, ... f 8
    assert _depth(deep) == MAX_CONTRACT_DEPTH
    assert ModelContract.from_json(json.dumps(deep)).quantization == deep["quantization"]
    deep["quantization"]["a"]["b"]["c"]["d"]["e"]["f"] = {"g": []}
    _refused(
        lambda: ModelContract.from_json(json.dumps(deep)),
        f"embedded contract nests deeper than {MAX_CONTRACT_DEPTH} levels; it is not a contract",
    )
    text = _contract().to_json()
    padded = text[:-1] + ', "pad": "' + "x" * (MAX_CONTRACT_BYTES - len(text) - 11) + '"}'
    assert len(padded) == MAX_CONTRACT_BYTES  # at the limit: read (a field it does not know is left aside)
    assert ModelContract.from_json(padded) == _contract()
    _refused(
        lambda: ModelContract.from_json(padded + " "),
        f"embedded contract is {MAX_CONTRACT_BYTES + 1} bytes, over the {MAX_CONTRACT_BYTES} a contract can be",
    )


def test_depth_counts_levels_of_objects_and_lists():
    assert _depth(1) == 1 and _depth({}) == 1 and _depth([]) == 1
    assert _depth({"a": [1, {"b": 2}]}) == 3 and _depth([[[[]]]]) == 4
    assert _depth({"a": "text", "b": [1, 2]}) == 2


@pytest.mark.parametrize("pad", [0, 255])
def test_pad_value_on_both_sides(pad):
    assert Preprocessing(8, pad_value=pad).pad_value == pad
    _refused(
        lambda: Preprocessing(8, pad_value=pad - 1 if pad == 0 else pad + 1),
        f"invalid pad_value {pad - 1 if pad == 0 else pad + 1}; it must be an integer in 0..255",
    )


def test_preprocessing_field_errors_word_for_word():
    _refused(
        lambda: Preprocessing(8, dtype="uint8"),
        "invalid dtype 'uint8'; the contract describes float32 input "
        "(quantized models are fed by the runtime, which quantizes for you)",
    )
    _refused(lambda: Preprocessing(8, mean=(0.5, 0.5, 0.5)), "mean and std must be given together (or neither)")
    _refused(lambda: Preprocessing(8, std=(0.5, 0.5, 0.5)), "mean and std must be given together (or neither)")
    _refused(
        lambda: Preprocessing(8, scale=1e38, offset=1e38),
        "scale 1e+38, offset 1e+38, mean and std map pixels outside the float range; the contract is damaged",
    )
    assert Preprocessing(8, scale=1e27).output_range()[1][0] == pytest.approx(2.55e29)  # under 1e30: accepted
    with pytest.raises(ContractError, match="outside the float range"):
        Preprocessing(8, scale=1e-300, offset=1e30)  # exactly 1e30 is already out
    _refused(lambda: Preprocessing.from_dict([8]), "preprocessing must be a JSON object, got list")
    _refused(lambda: Preprocessing.from_dict({"scale": 1.0}), "preprocessing is missing 'input_size'")
    _refused(
        lambda: Preprocessing.from_dict({"input_size": 8, "gamma": 2}),
        "preprocessing has unknown field(s) ['gamma']; it was written by a newer edgekit: upgrade edgekit to run "
        "this model with its exact preprocessing",
    )


def test_fields_are_normalized_to_their_types():
    import numpy as np

    spec = Preprocessing(8, scale=1, offset=2, pad_value=np.int64(7), mean=[0, 0, 0], std=[1, 2, 3])
    assert type(spec.scale) is float and type(spec.offset) is float and type(spec.pad_value) is int
    assert spec.mean == (0.0, 0.0, 0.0) and spec.std == (1.0, 2.0, 3.0)
    assert spec.with_size(16).input_size == (16, 16) and spec.with_size((4, 6)).input_size == (4, 6)
    assert spec.with_size(16).scale == 1.0 and spec.input_size == (8, 8)


@pytest.mark.parametrize(
    "spec, low, high",
    [
        (Preprocessing(8), 0.0, 1.0),
        (Preprocessing(8, scale=-1 / 255, offset=1.0), 0.0, 1.0),  # a negative scale: the ends swap
        (Preprocessing(8, scale=2.0, offset=-3.0), -3.0, 507.0),
        (
            Preprocessing(8, scale=1.0, mean=(10.0, 20.0, 30.0), std=(5.0, 10.0, 15.0)),
            (-2.0, -2.0, -2.0),
            (49.0, 23.5, 15.0),
        ),
    ],
)
def test_output_range_per_channel(spec, low, high):
    lows, highs = spec.output_range()
    assert lows == pytest.approx(low if isinstance(low, tuple) else (low,) * 3)
    assert highs == pytest.approx(high if isinstance(high, tuple) else (high,) * 3)
