"""`edgekit serve`: a model over TF Serving's REST API, with a live view in the browser (`runtimes.serving`)."""

from __future__ import annotations

import argparse

HELP = "serve a model over TF Serving's REST API, with a live view in the browser"
DESCRIPTION = (
    "POST /v1/models/<name>:predict as TensorFlow Serving takes it; with --source, "
    "the annotated stream at / and results at /results. Device side: no TensorFlow."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from runtimes.serving.cli import add_arguments as add_serving_arguments

    add_serving_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from runtimes.serving.cli import run as serve

    return serve(args, process=args.own_process)
