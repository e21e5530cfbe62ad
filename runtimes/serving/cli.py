"""`edgekit serve` / `python -m runtimes.serving`: one argument list for both (the Pi has no edgekit CLI)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from runtimes.serving.rest import Limits

TOKEN_VARIABLE = "EDGEKIT_SERVE_TOKEN"  # a token in the environment stays out of `ps` (systemd: EnvironmentFile)


def add_arguments(parser: argparse.ArgumentParser, default_model: str | None = None) -> None:
    parser.add_argument("model", type=Path, nargs="?" if default_model else None, default=default_model,
                        help="model file edgekit exported (.tflite, .onnx; a SavedModel folder on a host with TensorFlow)")
    parser.add_argument("--source", "-s", default=None,
                        help="live view source: video, webcam index (0), rtsp:// URL or picamera2 (default: none)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8500, help="port (default: 8500)")
    parser.add_argument("--token", default=None,
                        help=f"require this token on every request (default: ${TOKEN_VARIABLE}, or none)")
    parser.add_argument("--name", default=None, help="model name in the URLs (default: the contract's model name)")
    parser.add_argument("--max-body-mb", type=float, default=16, help="largest request body (default: 16 MB)")
    parser.add_argument("--max-images", type=int, default=32, help="most images in one request (default: 32)")
    parser.add_argument("--max-megapixels", type=float, default=16.8, help="largest image (default: 16.8, i.e. 4096x4096)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the runtime")


def run(args: argparse.Namespace) -> int:
    from runtimes.serving import serve

    limits = Limits(int(args.max_body_mb * 2**20), args.max_images, int(args.max_megapixels * 1e6))
    serve(args.model, args.source, args.host, args.port, name=args.name, token=args.token or os.environ.get(TOKEN_VARIABLE),
          limits=limits, num_threads=args.threads)
    return 0


def main(argv: list[str] | None = None, default_model: str | None = None, bundle: str | Path | None = None) -> int:
    """`python -m runtimes.serving` and a bundle's serve.py (which passes its folder: MANIFEST.sha256 is checked first)."""
    import logging
    import sys

    from runtimes.errors import EdgekitError

    parser = argparse.ArgumentParser(prog="serve", description="edgekit serve: TF Serving's REST API and a live view")
    add_arguments(parser, default_model)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if bundle is not None:
            from runtimes.integrity import verify_manifest

            verify_manifest(bundle)
        return run(args)
    except EdgekitError as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 2
