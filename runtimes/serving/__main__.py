"""python -m runtimes.serving MODEL [--source 0] [--host 0.0.0.0] [--token ...]: edgekit serve without edgekit's CLI."""

import argparse
import logging
import sys

from runtimes.serving.cli import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m runtimes.serving", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(run(parser.parse_args()))
