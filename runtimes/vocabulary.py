"""The names users meet, defined once: each option's Python keyword, command-line flag, REST parameter and bundle
config key are one word (the flag is it with dashes), and `TERMS` says where each one is taken.

The CLI's shared flags (runtimes.arguments), the predict options each task accepts (runtimes.tasks), the server's
``"parameters"`` (runtimes.serving.rest) and a bundle's ``config.json`` keys are all read from here, and a test
compares every surface against this table; docs/reference/vocabulary.md is rendered from it
(scripts/docs_pages.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from runtimes.errors import InputError

# where a name is taken
PREDICT = "Model.predict"  # a keyword of predict() (and stream(), which passes it on)
STREAM = "Model.stream"  # a keyword of stream() only
EDGEKIT_PREDICT = "edgekit predict"
EDGEKIT_SERVE = "edgekit serve"
DEPLOY_RPI = "edgekit deploy rpi"
RUNNER = "run.py"  # a bundle's runner (python -m runtimes.apps.runner)
SURFACES = (PREDICT, STREAM, EDGEKIT_PREDICT, EDGEKIT_SERVE, DEPLOY_RPI, RUNNER)
DEVICE_COMMANDS = (EDGEKIT_PREDICT, EDGEKIT_SERVE, DEPLOY_RPI, RUNNER)


@dataclass(frozen=True)
class Term:
    """One option, under one name everywhere it is taken.

    Attributes:
        name: the Python keyword, the REST parameter, the config.json key; the flag is ``--`` + name with dashes.
        meaning: what it does, as the docs table and the help texts say it.
        tasks: the tasks it applies to (an option given to a model of another task is refused, never ignored).
        surfaces: the Python calls and commands that take it (`SURFACES`).
        rest: whether a ``:predict`` request's ``"parameters"`` takes it.
        config: whether a bundle's config.json takes it.
        python: the Python keyword where it differs from `name` (the backend options of `edgekit.load`).
    """

    name: str
    meaning: str
    tasks: tuple[str, ...]
    surfaces: tuple[str, ...]
    rest: bool = False
    config: bool = False
    python: str | None = None

    @property
    def flag(self) -> str:
        """The command-line flag: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")

    @property
    def keyword(self) -> str:
        """The Python keyword (the name, but for the backend options of `edgekit.load`)."""
        return self.python or self.name


BOTH = ("classification", "detection", "keypoints")  # the tasks whose results have scores to threshold
EVERY = (*BOTH, "segmentation")  # every task
DETECTION = ("detection",)
OBJECTS = ("detection", "keypoints")  # tasks whose results are boxed objects
EVERYWHERE = (PREDICT, *DEVICE_COMMANDS)

TERMS: tuple[Term, ...] = (
    Term(
        "threshold",
        "detectors: the minimum detection score (default: the model's); classifiers: a best score below it is "
        "reported with label null ('?')",
        BOTH,
        EVERYWHERE,
        rest=True,
        config=True,
    ),
    Term(
        "iou",
        "detectors: boxes of one class overlapping a better one by more than this IoU are suppressed "
        "(default: the model's)",
        OBJECTS,
        EVERYWHERE,
        rest=True,
        config=True,
    ),
    Term(
        "max_detections",
        "detectors: the most detections per image (default: the model's)",
        OBJECTS,
        EVERYWHERE,
        rest=True,
        config=True,
    ),
    Term(
        "agnostic",
        "detectors: suppress overlapping boxes across classes too (class-agnostic NMS); after the graph's own "
        "per-class NMS on models that run it in the graph",
        DETECTION,
        EVERYWHERE,
        rest=True,
        config=True,
    ),
    Term(
        "top_k",
        "classifiers: the best labels listed per result (Python: 5, the CLI: 3)",
        ("classification",),
        EVERYWHERE,
        config=True,
    ),
    Term(
        "track",
        "detectors: give each object an id kept across a stream's frames",
        DETECTION,
        (STREAM, *DEVICE_COMMANDS),
        config=True,
    ),
    Term(
        "count_line",
        "detectors: count tracked objects whose centre crosses this line, X0,Y0,X1,Y1 in source pixels (implies "
        "track); 'in' is the line's right-hand side going from (x0, y0) to (x1, y1), drawn as an arrow",
        DETECTION,
        (STREAM, *DEVICE_COMMANDS),
        config=True,
    ),
    Term(
        "source",
        "where frames come from: an image, folder, glob, video, webcam index, rtsp:// URL or picamera2; in JSON "
        "results, the file or stream a result came from (with 'frame', its index, for videos and cameras)",
        EVERY,
        (STREAM, *DEVICE_COMMANDS),
        config=True,
    ),
    Term("threads", "CPU threads for the runtime", EVERY, EVERYWHERE, config=True, python="num_threads"),
    Term(
        "delegate",
        "TFLite delegates: edgetpu, gpu, xnnpack[:num_threads=N] or a library path (repeatable)",
        EVERY,
        EVERYWHERE,
        config=True,
        python="delegates",
    ),
    Term(
        "contract",
        "the contract for a model file that carries none: a contract JSON file, or the name of one edgekit ships "
        "(mediapipe_face_detection_short_range: MediaPipe's BlazeFace)",
        EVERY,
        EVERYWHERE,
        config=True,
    ),
    Term(
        "provider",
        "ONNX Runtime execution providers in order: cuda, tensorrt, openvino, coreml, cpu (repeatable)",
        EVERY,
        EVERYWHERE,
        config=True,
        python="providers",
    ),
)

BY_NAME = {term.name: term for term in TERMS}
BACKEND_TERMS = (
    "threads",
    "delegate",
    "provider",
    "contract",
)  # options of edgekit.load / open_model, not of predict()


def predict_terms(task: str) -> tuple[str, ...]:
    """The predict() keywords a model of `task` takes (those of `TERMS` taken by `Model.predict`)."""
    return tuple(
        term.name
        for term in TERMS
        if PREDICT in term.surfaces and task in term.tasks and term.name not in BACKEND_TERMS
    )


def rest_terms() -> tuple[str, ...]:
    """The names a ``:predict`` request's ``"parameters"`` object takes."""
    return tuple(term.name for term in TERMS if term.rest)


def config_terms() -> tuple[str, ...]:
    """The keys a bundle's config.json takes."""
    return tuple(term.name for term in TERMS if term.config)


def help_text(name: str) -> str:
    """The help text of `name`'s flag (argparse's % signs escaped)."""
    return BY_NAME[name].meaning.replace("%", "%%")


RENAMED = {"score_threshold": "threshold", "iou_threshold": "iou"}  # predict()'s keywords before one vocabulary


def renamed_options(options: dict[str, Any], warn: bool = True) -> dict[str, Any]:
    """`options` with the keywords predict() took before one vocabulary under their names now, with a
    DeprecationWarning for each (both names at once are refused)."""
    if not RENAMED.keys() & options.keys():
        return options
    options = dict(options)
    for old, new in RENAMED.items():
        if old in options:
            if new in options:
                raise InputError(f"give {new}= only ({old}= is its old name)")
            if warn:
                warnings.warn(f"{old}= is now {new}=", DeprecationWarning, stacklevel=4)
            options[new] = options.pop(old)
    return options


def markdown_table() -> str:
    """The vocabulary as the docs show it: one row per option, one column per surface."""
    rows = [
        "| Name | Flag | Python | REST `parameters` | `config.json` | Tasks | Meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for term in TERMS:
        python = [f"`{surface}({term.keyword}=)`" for surface in (PREDICT, STREAM) if surface in term.surfaces]
        if term.python is not None:
            python = [f"`edgekit.load(path, {term.python}=)`"]
        commands = ", ".join(c.replace("edgekit ", "") for c in DEVICE_COMMANDS if c in term.surfaces)
        rows.append(
            f"| `{term.name}` | `{term.flag}` ({commands}) | {' '.join(python) or '-'} | "
            f"{'yes' if term.rest else '-'} | {'yes' if term.config else '-'} | {', '.join(term.tasks)} | "
            f"{term.meaning.replace('|', '/')} |"
        )
    return "\n".join(rows) + "\n"


PAGE = """# One vocabulary

An option has one name everywhere edgekit takes it: the Python keyword, the command-line flag (the name with
dashes), the server's REST `parameters` and a Raspberry Pi bundle's `config.json` key. An option given to a model of
a task it does not apply to is refused with its name, never ignored.

{table}
JSON results (`edgekit predict --json`, a bundle's `run.py`, the live view's `/results`) name where each result came
from the same way: `"source"` is the image file, or the video, camera or stream as given (a URL's password masked),
and `"frame"` is the frame's index within a video, camera or stream.

```bash
edgekit predict model.tflite photo.jpg --threshold 0.4 --iou 0.5 --max-detections 20 --agnostic --json
```

```python
import edgekit

with edgekit.load("small_detector_int8.tflite") as model:
    model.predict("photo.jpg", threshold=0.4, iou=0.5, max_detections=20, agnostic=True)
```

```json
{{"instances": [{{"b64": "..."}}],
 "parameters": {{"threshold": 0.4, "iou": 0.5, "max_detections": 20, "agnostic": true}}}}
```

Before this table, predict() took `score_threshold=` and `iou_threshold=`; both still work, with a
DeprecationWarning.
"""
