"""`edgekit serve` / `python -m runtimes.serving`: one argument list for both (the Pi has no edgekit CLI)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runtimes.arguments import (
    PREDICT_FLAGS,
    add_backend_arguments,
    add_predict_arguments,
    add_tracking_arguments,
    apply_bundle_config,
    backend_options,
)
from runtimes.errors import ServeConfigError
from runtimes.serving.limits import Limits

TOKEN_VARIABLE = "EDGEKIT_SERVE_TOKEN"  # a token in the environment stays out of `ps` (systemd: EnvironmentFile)
DECODER_LIMIT_VARIABLE = "OPENCV_IO_MAX_IMAGE_PIXELS"  # OpenCV's own cap on a decoded image, read once as cv2 loads


def add_arguments(parser: argparse.ArgumentParser, default_model: str | None = None) -> None:
    parser.add_argument(
        "model",
        type=Path,
        nargs="?" if default_model else None,
        default=default_model,
        help="model file edgekit exported (.tflite, .onnx; a SavedModel folder on a host with TensorFlow)",
    )
    parser.add_argument(
        "--source",
        "-s",
        default=None,
        help="live view source: video, webcam index (0), rtsp:// URL or picamera2 (default: none)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only); any other needs a token",
    )
    parser.add_argument("--port", type=int, default=8500, help="port (default: 8500)")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"file holding the token every request must carry (default: ${TOKEN_VARIABLE}, or none: loopback only)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"the token itself (visible to every user in `ps`: prefer --token-file or ${TOKEN_VARIABLE})",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve a non-loopback --host without a token: anyone who can reach it can use it",
    )
    parser.add_argument("--name", default=None, help="model name in the URLs (default: the contract's model name)")
    parser.add_argument("--max-body-mb", type=float, default=16, help="largest request body (default: 16 MB)")
    parser.add_argument("--max-images", type=int, default=32, help="most images in one request (default: 32)")
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=16.8,
        help="largest image, and all of one request's images together (default: 16.8, i.e. 4096x4096)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=256,
        help="open connections at most (default: 256, fewer where the file descriptor limit is lower)",
    )
    add_predict_arguments(parser)
    add_tracking_arguments(parser)
    add_backend_arguments(parser)


def token_of(args: argparse.Namespace) -> str | None:
    """The token from --token, --token-file or $EDGEKIT_SERVE_TOKEN (one of them); None when none is given."""
    given = [what for what, value in (("--token", args.token), ("--token-file", args.token_file)) if value is not None]
    if len(given) > 1:
        raise ServeConfigError("give the token one way: --token or --token-file, not both")
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ServeConfigError(f"cannot read the token file {args.token_file}: {exc}") from None
        if not token:
            raise ServeConfigError(
                f"the token file {args.token_file} is empty: put a token in it (e.g. python3 -c "
                "'import secrets; print(secrets.token_urlsafe(24))')"
            )
        return token
    if args.token is not None:
        return args.token
    from_environment = os.environ.get(TOKEN_VARIABLE)
    if from_environment is not None and not from_environment.strip():
        raise ServeConfigError(
            f"${TOKEN_VARIABLE} is set but empty: set a token, or unset it to serve on 127.0.0.1 only"
        )
    return from_environment


def limits_of(args: argparse.Namespace) -> Limits:
    pixels = int(args.max_megapixels * 1e6)
    try:
        return Limits(
            max_body_bytes=int(args.max_body_mb * 2**20),
            max_images=args.max_images,
            max_image_pixels=pixels,
            max_request_pixels=pixels,
            max_pixels_in_flight=2 * pixels,
            max_connections=args.max_connections,
        )
    except ValueError as exc:
        raise ServeConfigError(str(exc)) from None


def ensure_decoder_limit(pixels: int) -> None:
    """Put OpenCV's own pixel cap behind the header checks: it is read once, as cv2 loads, so a serving process whose
    environment lacks it is started again, the same command, with it set (POSIX; elsewhere nothing happens)."""
    if os.environ.get(DECODER_LIMIT_VARIABLE) == str(pixels) or os.name != "posix":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, DECODER_LIMIT_VARIABLE: str(pixels)})


def run(args: argparse.Namespace, process: bool = False) -> int:
    """Serve as `args` say; `process`: this is the serving process's own command line (OpenCV's cap may restart it)."""
    from runtimes.serving import check_exposure, serve

    token, limits = token_of(args), limits_of(args)
    check_exposure(args.host, token, args.insecure)
    if args.token is not None:
        import logging

        logging.getLogger("edgekit.serve").warning(
            "--token is visible to every user of this machine in `ps`: prefer --token-file or $%s", TOKEN_VARIABLE
        )
    if not args.model.exists():
        from runtimes.errors import ModelLoadError

        raise ModelLoadError(f"model file not found: {args.model}")
    if process:
        ensure_decoder_limit(limits.max_image_pixels)
    serve(
        args.model,
        args.source,
        args.host,
        args.port,
        name=args.name,
        token=token,
        insecure=args.insecure,
        limits=limits,
        stream_options=live_options(args),
        predict_options=served_options(args),
        **backend_options(args),
    )
    return 0


def live_options(args: argparse.Namespace) -> dict[str, object]:
    """The live view's own options from the command line: tracking and a counting line."""
    if (args.track or args.count_line) and args.source is None:
        raise ServeConfigError("--track and --count-line act on the live view: add --source (a camera or a video)")
    return {"track": args.track, "count_line": args.count_line}


def served_options(args: argparse.Namespace) -> dict[str, object]:
    """predict()'s options from the command line (the live view's and every request's defaults), as given."""
    return {name: getattr(args, name) for name in PREDICT_FLAGS if getattr(args, name) not in (None, False)}


def main(argv: list[str] | None = None, default_model: str | None = None, bundle: str | Path | None = None) -> int:
    """`python -m runtimes.serving` and a bundle's serve.py (which passes its folder: MANIFEST.sha256 is checked
    first)."""
    import logging

    from runtimes.errors import EdgekitError

    parser = argparse.ArgumentParser(prog="serve", description="edgekit serve: TF Serving's REST API and a live view")
    add_arguments(parser, default_model)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if bundle is not None:
            from runtimes.integrity import verify_manifest

            verify_manifest(bundle)
        apply_bundle_config(parser, bundle)  # the bundle's config.json: its settings, a flag still wins
        return run(parser.parse_args(argv), process=argv is None)
    except EdgekitError as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 2
