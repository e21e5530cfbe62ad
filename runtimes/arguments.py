"""Command-line options the device's programs share (`edgekit predict`, a bundle's run.py and serve.py, `edgekit
serve`): one spelling and one help text per option, and a bundle's `config.json` as their defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from runtimes.errors import EdgekitError, InputError

BUNDLE_CONFIG = "config.json"  # a bundle's settings, edited in place: not in MANIFEST.sha256
# what a bundle's config.json may set: the options its run.py and serve.py both take, under their Python names
BUNDLE_KEYS = ("source", "threshold", "track", "count_line", "threads", "delegate", "provider")


def add_threshold_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="classifiers: scores below this are reported with label null ('?'); detectors: the minimum "
        "detection score (default: the model's)",
    )


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """--track and --count-line."""
    from runtimes.tracking import parse_line

    parser.add_argument("--track", action="store_true", help="detectors: give each object an id kept across frames")
    parser.add_argument(
        "--count-line",
        type=_argument(parse_line),
        default=None,
        metavar="X0,Y0,X1,Y1",
        help="detectors: count tracked objects whose centre crosses this line (source pixels; implies --track); "
        "'in' is the line's right-hand side going from (x0, y0) to (x1, y1), drawn as an arrow",
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--threads, --delegate and --provider: how the runtime runs the model."""
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the runtime")
    parser.add_argument(
        "--delegate",
        action="append",
        default=[],
        help="TFLite delegate: edgetpu, gpu, xnnpack[:num_threads=N] or a library path (repeatable)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        help="ONNX Runtime execution provider: cuda, tensorrt, openvino, coreml, cpu (repeatable, in order)",
    )


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """open_model's options from `add_backend_arguments`' (only those given, so every backend accepts them)."""
    return {
        "num_threads": args.threads,
        **({"delegates": list(args.delegate)} if args.delegate else {}),
        **({"providers": list(args.provider)} if args.provider else {}),
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


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` as an argparse type: edgekit's errors become argparse's, which print the usage line."""

    def parsed(text: str) -> Any:
        try:
            return parse(text)
        except EdgekitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed
