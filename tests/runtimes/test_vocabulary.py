"""One vocabulary: every surface (Python keywords, CLI flags, the server's REST parameters, a bundle's config.json)
takes the options of runtimes.vocabulary under their one name, and nothing else under another."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtimes.arguments import BUNDLE_CONFIG, apply_bundle_config, checked_options
from runtimes.contract import Preprocessing
from runtimes.errors import InputError, RequestError
from runtimes.serving.limits import Limits
from runtimes.serving.rest import _PARAMETER_TYPES, read_predict
from runtimes.sources.base import Frame
from runtimes.tasks import task_for
from runtimes.tasks.binding import ModelInfo
from runtimes.tensors import TensorSpec
from runtimes.vocabulary import (
    DEPLOY_RPI,
    EDGEKIT_PREDICT,
    EDGEKIT_SERVE,
    PREDICT,
    RUNNER,
    STREAM,
    TERMS,
    config_terms,
    predict_terms,
    rest_terms,
)

ROOT = Path(__file__).resolve().parents[2]
# names other tools use for these options: none of them may appear as a flag beside ours
FOREIGN_FLAGS = {"--conf", "--score-threshold", "--iou-threshold", "--max-det", "--agnostic-nms", "--top", "--topk"}


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from edgekit.cli import build_parser
    from runtimes.apps.runner import build_parser as runner_parser

    cli = build_parser()
    commands = next(a for a in cli._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {
        EDGEKIT_PREDICT: commands["predict"],
        EDGEKIT_SERVE: commands["serve"],
        DEPLOY_RPI: commands["deploy"],
        RUNNER: runner_parser("model.tflite"),
    }


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}


@pytest.mark.parametrize("command", [EDGEKIT_PREDICT, EDGEKIT_SERVE, DEPLOY_RPI, RUNNER])
def test_each_command_takes_the_tables_flags_and_no_other_name_for_them(command):
    flags = _flags(_parsers()[command])
    expected = {term.flag for term in TERMS if command in term.surfaces}
    assert expected <= flags, f"{command} lacks {sorted(expected - flags)}"
    # a flag naming a shared option that the table does not give this command would be a second vocabulary
    shared = {term.flag for term in TERMS}
    assert (flags & shared) == expected, f"{command} has {sorted((flags & shared) - expected)} beyond the table"
    assert not flags & FOREIGN_FLAGS


def _specs(task: str) -> tuple[TensorSpec, ...]:
    if task == "classification":
        return (TensorSpec("scores", (1, 3), np.dtype(np.float32)),)
    return (
        TensorSpec("boxes", (1, 8, 4), np.dtype(np.float32)),
        TensorSpec("scores", (1, 8), np.dtype(np.float32)),
        TensorSpec("classes", (1, 8), np.dtype(np.int32)),
    )


def _decoder(task: str):
    info = ModelInfo(
        "m.tflite", _specs(task), ("a", "b", "c"), {} if task == "detection" else None, Preprocessing(input_size=100)
    )
    return task_for(task).bind(info)


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_predict_takes_the_tables_keywords_per_task_and_names_them_when_refusing(task):
    decoder = _decoder(task)
    names = predict_terms(task)
    assert set(names) == {t.name for t in TERMS if PREDICT in t.surfaces and task in t.tasks} - {
        "threads",
        "delegate",
        "provider",
        "contract",
    }
    values = {"threshold": 0.4, "iou": 0.6, "max_detections": 7, "agnostic": True, "top_k": 2}
    for name in names:
        decoder.options({name: values[name]})  # accepted
    with pytest.raises(InputError) as refused:
        decoder.options({"conf": 0.5})
    assert f"valid: {', '.join(sorted(names) if task == 'detection' else names)}" in str(refused.value)


def test_stream_takes_the_tables_stream_keywords():
    import inspect

    from runtimes.model import Model

    stream = inspect.signature(Model.stream).parameters
    for term in TERMS:
        if STREAM in term.surfaces:
            assert term.keyword in stream, term.name


def test_load_takes_the_backend_options_under_their_python_names():
    import inspect

    from runtimes.loading import open_model

    taken = set(inspect.signature(open_model).parameters)
    from runtimes.backends.onnxruntime import OnnxRuntime
    from runtimes.backends.tflite import TFLiteRuntime

    taken |= set(inspect.signature(TFLiteRuntime.__init__).parameters)
    taken |= set(inspect.signature(OnnxRuntime.__init__).parameters)
    for term in TERMS:
        if term.python is not None:
            assert term.python in taken, term.name


def test_detection_options_apply_as_named():
    """threshold, iou, max_detections and agnostic each change the result the way they say."""
    decoder = _decoder("detection")
    boxes = np.zeros((1, 8, 4), np.float32)
    boxes[0, :4] = [[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9], [0.11, 0.1, 0.5, 0.5]]
    scores = np.array([[0.9, 0.8, 0.7, 0.35, 0, 0, 0, 0]], np.float32)
    classes = np.array([[0, 1, 0, 0, 0, 0, 0, 0]], np.int32)

    def found(**options):
        result = decoder.results([boxes, scores, classes], [(100, 200)], 0.0, 0.0, decoder.options(options))[0]
        return [(d.label, round(d.score, 2)) for d in result]

    assert found() == [("a", 0.9), ("b", 0.8), ("a", 0.7)]  # the defaults: threshold 0.3, iou 0.5
    assert found(threshold=0.75) == [("a", 0.9), ("b", 0.8)]
    assert found(agnostic=True) == [("a", 0.9), ("a", 0.7)]  # b overlaps a: suppressed across classes
    assert found(max_detections=1) == [("a", 0.9)]
    assert found(iou=0.99, threshold=0.3) == [("a", 0.9), ("b", 0.8), ("a", 0.7), ("a", 0.35)]
    with pytest.raises(InputError, match="agnostic must be true or false"):
        found(agnostic="yes")
    with pytest.raises(InputError, match="out of range"):
        found(iou=1.5)


def test_a_classifiers_threshold_gives_label_none_below_it_as_the_json_does():
    decoder = _decoder("classification")
    scores = np.array([[0.2, 0.5, 0.3]], np.float32)
    sure = decoder.results([scores], [(10, 20)], 0.0, 0.0, decoder.options({"threshold": 0.4}))[0]
    unsure = decoder.results([scores], [(10, 20)], 0.0, 0.0, decoder.options({"threshold": 0.6, "top_k": 2}))[0]
    assert (sure.label, sure.best) == ("b", "b") and (unsure.label, unsure.best, len(unsure.top_k)) == (None, "b", 2)
    record = task_for("classification").record({"source": "x.jpg"}, unsure, None)
    assert record["label"] is None and record["best"] == "b"
    with pytest.raises(InputError, match="threshold must be a score in 0..1"):
        decoder.options({"threshold": 2})


def test_the_old_keywords_still_work_with_a_deprecation_warning():
    decoder = _decoder("detection")
    with pytest.warns(DeprecationWarning, match="score_threshold= is now threshold="):
        assert decoder.options({"score_threshold": 0.7}).threshold == 0.7
    with pytest.warns(DeprecationWarning, match="iou_threshold= is now iou="):
        assert decoder.options({"iou_threshold": 0.2}).iou == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(InputError, match="give threshold= only"):
            decoder.options({"score_threshold": 0.7, "threshold": 0.5})


def test_an_option_for_another_task_is_refused_with_its_flag():
    classifier, detector = task_for("classification"), task_for("detection")
    with pytest.raises(
        InputError, match="--iou applies to detection models and keypoints models; m.tflite is a classifier"
    ):
        checked_options({"iou": 0.4}, classifier, "m.tflite")
    with pytest.raises(InputError, match="--top-k applies to classification models; m.onnx is a detector"):
        checked_options({"top_k": 2}, detector, "m.onnx")
    assert checked_options({"threshold": 0.5, "agnostic": False}, classifier) == {"top_k": 3, "threshold": 0.5}


def test_rest_parameters_are_the_tables_and_checked_before_any_decode():
    assert set(_PARAMETER_TYPES) == set(rest_terms())
    image = {"b64": "iVBORw0KGgo="}  # a PNG signature and no more: never decoded here

    def read(extra):
        return read_predict(json.dumps({"instances": [image], **extra}).encode(), Limits())

    with pytest.raises(RequestError, match="unknown parameter 'conf'; valid: threshold, iou, max_detections"):
        read({"parameters": {"conf": 0.5}})
    with pytest.raises(RequestError, match='parameter "max_detections" must be a whole number, got 2.5'):
        read({"parameters": {"max_detections": 2.5}})
    with pytest.raises(RequestError, match='parameter "agnostic" must be true or false'):
        read({"parameters": {"agnostic": 1}})
    with pytest.raises(RequestError, match=r"unknown field\(s\) \['threshold'\]"):
        read({"threshold": 0.5})  # a misplaced option is refused, never ignored
    with pytest.raises(RequestError, match='"parameters" must be an object'):
        read({"parameters": [0.5]})


def test_a_bundles_config_takes_every_config_key_in_both_programs(tmp_path):
    from runtimes.apps.runner import build_parser as runner_parser
    from runtimes.serving.cli import add_arguments

    values = {
        "source": "clip.mp4",
        "threshold": 0.4,
        "iou": 0.45,
        "max_detections": 9,
        "agnostic": True,
        "top_k": 2,
        "track": True,
        "count_line": "1,2,3,4",
        "threads": 2,
        "delegate": ["xnnpack"],
        "provider": ["cpu"],
        "contract": "mediapipe_face_detection_short_range",
    }
    assert set(values) == set(config_terms())
    (tmp_path / BUNDLE_CONFIG).write_text(json.dumps(values))
    serve = argparse.ArgumentParser()
    add_arguments(serve, "model.onnx")
    for parser in (runner_parser("model.onnx"), serve):
        apply_bundle_config(parser, tmp_path)
        args = parser.parse_args([])
        assert (args.iou, args.max_detections, args.agnostic, args.top_k) == (0.45, 9, True, 2)
        assert args.count_line == (1.0, 2.0, 3.0, 4.0) and args.source == "clip.mp4"
        assert args.contract == "mediapipe_face_detection_short_range"
    (tmp_path / BUNDLE_CONFIG).write_text(json.dumps({"iou": 3}))
    with pytest.raises(InputError, match="config.json: iou: --iou is a score in 0..1, got 3"):
        apply_bundle_config(runner_parser("model.onnx"), tmp_path)


def test_results_name_their_source_one_way():
    image = np.zeros((2, 2, 3), np.uint8)
    assert Frame(image, 0.0, "a.jpg", "photos/a.jpg").origin() == {"source": "photos/a.jpg"}
    assert Frame(image, 0.0, 12, "clip.mp4").origin() == {"source": "clip.mp4", "frame": 12}
    from runtimes.sources.base import Source

    assert Source("rtsp://admin:secret@camera.local/stream").shown == "rtsp://***@camera.local/stream"


def test_the_docs_table_is_the_vocabulary():
    from runtimes.vocabulary import markdown_table

    page = (ROOT / "docs" / "reference" / "vocabulary.md").read_text(encoding="utf-8")
    assert markdown_table() in page, "docs/reference/vocabulary.md is stale: run python scripts/docs_pages.py"
