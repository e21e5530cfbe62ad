"""python -m runtimes.serving MODEL [--source 0] [--host 0.0.0.0] [--token ...]: edgekit serve without edgekit's CLI."""

import sys

from runtimes.serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
