"""Command-line options the device's programs share (`edgekit predict`, a bundle's run.py and serve.py, `edgekit
serve`): one spelling and one help text per option, and a bundle's `config.json` as their defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from runtimes.errors import EdgekitError, InputError
from runtimes.vocabulary import BY_NAME, config_terms, help_text, predict_terms

BUNDLE_CONFIG = "config.json"  # a bundle's settings, edited in place: not in MANIFEST.sha256
# what a bundle's config.json may set: the options its run.py and serve.py both take, under their Python names
BUNDLE_KEYS = config_terms()


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """--threshold, --iou, --max-detections, --agnostic and --top-k: predict()'s options, by their one name."""
    parser.add_argument("--threshold", type=_score("threshold"), default=None, help=help_text("threshold"))
    parser.add_argument("--iou", type=_score("iou"), default=None, help=help_text("iou"))
    parser.add_argument(
        "--max-detections", type=_whole("max-detections"), default=None, metavar="N", help=help_text("max_detections")
    )
    parser.add_argument("--agnostic", action="store_true", default=None, help=help_text("agnostic"))
    parser.add_argument("--top-k", type=_whole("top-k"), default=None, metavar="K", help=help_text("top_k"))


PREDICT_FLAGS = ("threshold", "iou", "max_detections", "agnostic", "top_k")


def predict_options(args: argparse.Namespace, task: Any, model_name: str = "the model") -> dict[str, Any]:
    """predict()'s options from `add_predict_arguments`' flags for a model of `task` (see `checked_options`)."""
    return checked_options({name: getattr(args, name, None) for name in PREDICT_FLAGS}, task, model_name)


def checked_options(given: dict[str, Any], task: Any, model_name: str = "the model") -> dict[str, Any]:
    """The predict() options `given` (unset: None or False) that a model of `task` takes, after the task's
    command-line defaults. An option for another task is refused (InputError naming its flag), never ignored."""
    given = {name: value for name, value in given.items() if value is not None and value is not False}
    taken = predict_terms(task.name)
    for name in given:
        if name not in taken:
            term = BY_NAME[name]
            raise InputError(
                f"{term.flag} applies to {' and '.join(t + ' models' for t in term.tasks)}; "
                f"{model_name} is a {task.role}"
            )
    return {**task.command_line_defaults, **given}


def add_output_arguments(parser: argparse.ArgumentParser, json_default: bool) -> None:
    """--json / --no-json and --output FILE: how and where results are written."""
    parser.add_argument(
        "--json",
        action=argparse.BooleanOptionalAction,
        default=json_default,
        help="one JSON object per image or frame (default: %s)" % ("on" if json_default else "readable lines"),
    )
    parser.add_argument(
        "--output", type=Path, default=None, metavar="FILE", help="append the results to FILE instead of stdout"
    )


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """--track and --count-line."""
    from runtimes.tracking import parse_line

    parser.add_argument("--track", action="store_true", help=help_text("track"))
    parser.add_argument(
        "--count-line", type=_argument(parse_line), default=None, metavar="X0,Y0,X1,Y1", help=help_text("count_line")
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--threads, --delegate and --provider: how the runtime runs the model; --contract for a file without one."""
    parser.add_argument("--threads", type=int, default=None, help=help_text("threads"))
    parser.add_argument("--delegate", action="append", default=[], help=help_text("delegate"))
    parser.add_argument("--provider", action="append", default=[], help=help_text("provider"))
    parser.add_argument("--contract", default=None, metavar="JSON|NAME", help=help_text("contract"))


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """open_model's options from `add_backend_arguments`' (only those given, so every backend accepts them)."""
    return {
        "num_threads": args.threads,
        **({"delegates": list(args.delegate)} if args.delegate else {}),
        **({"providers": list(args.provider)} if args.provider else {}),
        **({"contract": args.contract} if getattr(args, "contract", None) else {}),
    }


def apply_bundle_config(parser: argparse.ArgumentParser, bundle: str | Path | None) -> dict[str, Any]:
    """Make a bundle's `config.json` the defaults of `parser` (a flag on the command line still wins).

    Keys are `BUNDLE_KEYS`, the options' Python names (``source``, ``threshold``, ``track``, ``count_line``, ...),
    which both a bundle's run.py and serve.py take; each value is checked as its flag's would be.

    Raises:
        InputError: a file that is not a JSON object, a key no option has, or a value the option refuses.
    """
    path = Path(bundle) / BUNDLE_CONFIG if bundle is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix it or delete it for the built-in defaults") from None
    if not isinstance(config, dict):
        raise InputError(f"{path} must hold one JSON object of option: value")
    actions = {action.dest: action for action in parser._actions if action.dest in BUNDLE_KEYS}
    defaults = {}
    for key, value in config.items():
        if key not in actions:
            raise InputError(f"{path}: unknown option {key!r}; valid: {', '.join(BUNDLE_KEYS)}")
        defaults[key] = _checked(actions[key], value, f"{path}: {key}")
    parser.set_defaults(**defaults)
    return defaults


def _checked(action: argparse.Action, value: Any, where: str) -> Any:
    """`value` as `action` would parse it from the command line."""
    if value is None or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if value is not None and not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {value!r}")
        return value
    convert = action.type or str
    try:
        return convert(
            value if isinstance(value, str) else ",".join(map(str, value)) if isinstance(value, list) else str(value)
        )
    except (argparse.ArgumentTypeError, ValueError, TypeError, EdgekitError) as exc:
        raise InputError(f"{where}: {exc}") from None


def _score(flag: str) -> Callable[[str], float]:
    def score(text: str) -> float:
        value = float(text)
        if not 0 <= value <= 1:
            raise argparse.ArgumentTypeError(f"--{flag} is a score in 0..1, got {text}")
        return value

    score.__name__ = "score in 0..1"
    return score


def _whole(flag: str) -> Callable[[str], int]:
    def whole(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"--{flag} is a whole number >= 1, got {text}")
        return value

    whole.__name__ = "whole number >= 1"
    return whole


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` as an argparse type: edgekit's errors become argparse's, which print the usage line."""

    def parsed(text: str) -> Any:
        try:
            return parse(text)
        except EdgekitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed
