"""`edgekit doctor`: what this machine can run, and what to install (`runtimes.apps.doctor`)."""

from __future__ import annotations

import argparse

HELP = "what this machine can run, and what to install"
DESCRIPTION = "Python, CPU, installed runtimes and camera stacks, with install advice."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the report is the same for every machine."""


def run(args: argparse.Namespace) -> int:
    from runtimes.apps.doctor import main as doctor

    return doctor([])
