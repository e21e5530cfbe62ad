"""The `edgekit` command line: one module per command, each with `HELP`, `DESCRIPTION`, `add_arguments(parser)`
and `run(args) -> exit status`. A new command is a module here and a line in `COMMANDS`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType
from typing import Sequence

from edgekit.cli.logs import logging_for_the_cli
from runtimes.errors import EdgekitError

log = logging.getLogger("edgekit")

# the commands in the order `edgekit --help` lists them; each is edgekit.cli.<name> (imported when the parser is built)
COMMANDS = ("demo", "train", "prune", "qat", "export", "predict", "info", "deploy", "bench", "serve", "doctor")


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"edgekit.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI's parser: the global options and one subparser per command module."""
    from edgekit._version import __version__

    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Train image classifiers and object detectors with Keras, export them to edge formats with "
        "their preprocessing embedded, check every artifact, and run them anywhere.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = command_module(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.own_process = argv is None  # the command line of this process, not a call from Python (`serve` may restart it)
    with logging_for_the_cli(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return command_module(args.command).run(args)
    except EdgekitError as exc:
        print(f"edgekit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an input edgekit does not yet name: one line, never a traceback
        log.debug("unexpected error", exc_info=True)
        subject = _subject(args)
        print(
            f"edgekit {args.command}: unexpected error{f' with {subject}' if subject else ''}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Please report it with the output "
            f"of the same command run with -v (edgekit -v {args.command} ...)",
            file=sys.stderr,
        )
        return 2


def _subject(args: argparse.Namespace) -> str:
    """The file a command was working on, for an unexpected error's one line."""
    for name in ("model", "data", "models", "images"):
        value = getattr(args, name, None)
        if value:
            return ", ".join(map(str, value[:3])) if isinstance(value, list) else str(value)
    return ""
