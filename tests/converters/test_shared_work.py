"""Work shared between the targets of one export: made once, cleaned up, never stale."""

from contextlib import contextmanager

import numpy as np
import pytest

import edgekit
from converters.shared_work import intermediate, shared_work, sharing
from converters.tflite import MODES, convert_tflite


class _Maker:
    """Counts how often a value is made and released."""

    def __init__(self) -> None:
        self.made = self.released = 0

    @contextmanager
    def __call__(self):
        self.made += 1
        try:
            yield f"value-{self.made}"
        finally:
            self.released += 1


def test_outside_a_session_every_use_makes_and_releases_its_own_value():
    make, model = _Maker(), object()
    for expected in ("value-1", "value-2"):
        with intermediate(model, "key", make) as value:
            assert value == expected and make.released == make.made - 1
    assert (make.made, make.released, sharing()) == (2, 2, False)


def test_inside_a_session_one_value_per_model_and_key_released_at_the_end():
    make, first, second = _Maker(), object(), object()
    with shared_work():
        assert sharing()
        values = []
        for model, key in [(first, "a"), (first, "a"), (second, "a"), (first, "b"), (first, "a")]:
            with intermediate(model, key, make) as value:
                values.append(value)
        assert values == ["value-1", "value-1", "value-2", "value-3", "value-1"]
        with shared_work():  # nested: still the outer session
            with intermediate(first, "a", make) as value:
                assert value == "value-1"
        assert make.released == 0
    assert (make.made, make.released, sharing()) == (3, 3, False)


def test_a_failed_make_is_not_cached():
    calls = []

    @contextmanager
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        yield "ok"

    with shared_work():
        with pytest.raises(RuntimeError, match="first attempt"):
            with intermediate("m", "k", flaky):
                pass
        with intermediate("m", "k", flaky) as value:
            assert value == "ok"


def test_shared_savedmodel_gives_the_same_tflite_models(tiny_model, tiny_contract, tiny_calibration, tmp_path):
    x = tiny_calibration.samples[:8]
    scores = {}
    for shared in (False, True):
        with shared_work() if shared else _nothing():
            for mode in ("fp32", "dynamic", "int8"):
                path = tmp_path / f"{shared}_{mode}.tflite"
                convert_tflite(
                    tiny_model, path, MODES[mode], contract=tiny_contract, calibration=tiny_calibration, progress=False
                )
                with edgekit.load(path) as model:
                    scores[shared, mode] = model.run(x)
    for mode in ("fp32", "dynamic", "int8"):
        np.testing.assert_array_equal(scores[True, mode], scores[False, mode])


def test_a_second_export_sees_weights_changed_since_the_first(tiny_contract, tiny_calibration, tmp_path):
    from edgekit._tf import keras

    k = keras()
    inputs = k.Input((16, 16, 3))
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling2D()(inputs)))
    x = tiny_calibration.samples[:4]
    runs = []
    for step in range(2):
        report = edgekit.export(
            model, ["tflite:fp32", "onnx:fp32"], contract=tiny_contract, out_dir=tmp_path / str(step), progress=False
        )
        for result in report.results:
            with edgekit.load(result.path) as loaded:
                np.testing.assert_allclose(loaded.run(x), np.asarray(model(x)), atol=1e-5)
                runs.append(loaded.run(x))
        dense = model.layers[-1]
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel * 5.0, bias + np.arange(3, dtype=np.float32)])
    assert np.abs(runs[0] - runs[2]).max() > 1e-3  # the weights did change between the exports


@contextmanager
def _nothing():
    yield
