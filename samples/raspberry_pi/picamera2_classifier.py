"""Live classification from the Raspberry Pi camera (picamera2), with the overlay on screen.

Runs inside a deploy bundle (it imports the bundle's `runtimes`), or anywhere edgekit is installed:

    .venv/bin/python picamera2_classifier.py small_cnn_int8.tflite [--camera 0] [--headless --save out.mp4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bundle folder, when copied there

import runtimes  # noqa: E402
from runtimes.display import AnnotatedVideo, Window, present  # noqa: E402
from runtimes.sources import LiveSource, Picamera2Reader  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--camera", type=int, default=0)
    parser.add_argument("--size", default="640x480", help="capture size WxH")
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--headless", action="store_true")
    parser.add_argument("--save", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    try:
        source = LiveSource(f"picamera2:{args.camera}", Picamera2Reader(args.camera, (width, height)))
    except runtimes.EdgekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with runtimes.open(args.model, num_threads=4) as model, model.stream(source) as stream:
        window = None if args.headless else Window("edgekit on Raspberry Pi")
        video = AnnotatedVideo(args.save) if args.save else None
        for _result in present(stream, threshold=args.threshold, window=window, video=video):
            pass  # result.classification.label, .score, result.age_ms: act on them here
    print(f"{stream.meter.fps:.1f} FPS; dropped {source.stats.dropped} stale frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
