"""The contract is validated completely where it is read: nothing invalid reaches predict.

Each case is one a fault-injection pass found accepted (or crashing with a raw exception);
every one must be a ContractError whose message names the field. A hypothesis property
covers the rest: any JSON-shaped mutation of a valid contract parses to a valid contract or
raises ContractError, nothing else.
"""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtimes.contract import DIGEST_KEY, ModelContract, Preprocessing
from runtimes.errors import ContractError


def _valid() -> dict:
    return ModelContract(
        Preprocessing(16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
        ("circle", "square", "triangle"),
        model_name="m",
        edgekit_version="0.3",
    ).to_dict()


def _set(path, value):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_set(("preprocessing", "input_size"), "abc"), "invalid input_size 'abc'"),
        (_set(("preprocessing", "input_size"), [16, True]), "invalid input_size"),
        (_set(("preprocessing", "input_size"), [16, 10**9]), "invalid input_size"),
        (_set(("preprocessing", "mean"), ["0.5", "0.5", "0.5"]), "invalid mean '0.5'; it must be a number"),
        (_set(("preprocessing", "mean"), [math.nan, 0.5, 0.5]), "invalid mean nan; it must be finite"),
        (_set(("preprocessing", "std"), [math.inf, 0.5, 0.5]), "invalid std inf; it must be finite"),
        (_set(("preprocessing", "mean"), "abc"), "invalid mean 'abc'; give one number per channel"),
        (_set(("preprocessing", "pad_value"), math.nan), "invalid pad_value nan"),
        (_set(("preprocessing", "pad_value"), math.inf), "invalid pad_value inf"),
        (_set(("preprocessing", "pad_value"), 1.5), "invalid pad_value 1.5"),
        (_set(("preprocessing", "scale"), True), "invalid scale True; it must be a number"),
        (_set(("preprocessing", "scale"), "1/255"), "invalid scale '1/255'"),
        (_set(("preprocessing", "offset"), None), "invalid offset None"),
        (_set(("preprocessing",), "abc"), "preprocessing must be a JSON object"),
        (_set(("schema",), "abc"), "invalid contract schema 'abc'"),
        (_set(("schema",), None), "invalid contract schema None"),
        (_set(("schema",), True), "invalid contract schema True"),
        (_set(("quantization",), "abc"), "quantization must be a JSON object"),
        (_set(("labels",), "abc"), "labels must be a list of strings, got str 'abc'"),
        (_set(("labels",), {"a": 1, "b": 2, "c": 3}), "labels must be a list of strings, got dict"),
        (_set(("labels",), [0, 1, 2]), r"labels must be strings; got 0 \(int\)"),
        (_set(("labels",), ["a", None, "c"]), r"labels must be strings; got None \(NoneType\)"),
        (_set(("model_name",), 5), "model_name must be a string"),
        (_set(("task",), None), "task must be a string"),
    ],
)
def test_each_invalid_field_is_a_named_contract_error(mutate, message):
    data = _valid()
    mutate(data)
    with pytest.raises(ContractError, match=message):
        ModelContract.from_json(json.dumps(data))


def test_json_nested_100000_deep_is_refused_without_recursion_error():
    with pytest.raises(ContractError, match="nests too deeply"):
        ModelContract.from_json("[" * 100_000 + "]" * 100_000)
    deep = _valid()
    deep["quantization"] = {"a": [[[[[[[[1]]]]]]]]}
    with pytest.raises(ContractError, match="nests deeper than 8 levels"):
        ModelContract.from_json(json.dumps(deep))


def test_oversized_contract_is_refused():
    data = _valid()
    data["quantization"] = {"padding": "x" * (1 << 20)}
    with pytest.raises(ContractError, match="over the 1048576 a contract can be"):
        ModelContract.from_json(json.dumps(data))


def test_signed_contract_round_trips_and_a_flipped_label_byte_is_caught():
    contract = ModelContract.from_dict(_valid())
    signed = contract.to_signed_json()
    assert json.loads(signed)[DIGEST_KEY] and ModelContract.from_json(signed) == contract
    damaged = signed.replace('"square"', '"squar+"')
    assert json.loads(damaged)  # still valid JSON with a plausible label: only the digest tells
    with pytest.raises(ContractError, match="embedded contract is damaged .*SHA-256"):
        ModelContract.from_json(damaged)


def test_constructor_refuses_what_the_parser_refuses():
    with pytest.raises(ContractError, match="labels must be a list of strings"):
        ModelContract(Preprocessing(8), "abc")
    with pytest.raises(ContractError, match="invalid scale True"):
        Preprocessing(8, scale=True)
    with pytest.raises(ContractError, match="invalid mean nan"):
        Preprocessing(8, mean=(math.nan, 0.0, 0.0), std=(1.0, 1.0, 1.0))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
FIELDS = [
    ("schema",),
    ("labels",),
    ("model_name",),
    ("task",),
    ("quantization",),
    ("edgekit_version",),
    ("preprocessing",),
] + [("preprocessing", name) for name in Preprocessing(8).to_dict()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=4))
def test_any_mutated_contract_parses_valid_or_raises_contract_error(mutations):
    data = _valid()
    for path, value in mutations:
        if path[0] == "preprocessing" and not isinstance(data["preprocessing"], dict):
            continue
        _set(path, value)(data)
    try:
        text = json.dumps(data)
    except (TypeError, ValueError):
        return
    try:
        contract = ModelContract.from_json(text)
    except ContractError:
        return
    # accepted: then it must be a contract the runtime can use as is
    spec = contract.preprocessing
    assert all(isinstance(label, str) for label in contract.labels) and contract.labels
    assert all(1 <= side for side in spec.input_size) and math.isfinite(spec.scale) and spec.scale != 0
    assert 0 <= spec.pad_value <= 255 and isinstance(contract.quantization, dict)
    low, high = spec.output_range()
    assert all(math.isfinite(v) for v in low + high)
