"""Live classifier: the camera (or any source) with label, score and FPS drawn on each frame.

Works with any artifact edgekit exports (.tflite, .onnx, .mlpackage on macOS). With a display
it shows a window (q or Esc quits); headless it writes an annotated video instead.

    python samples/camera_classifier.py model.tflite --source 0                   # webcam, window
    python samples/camera_classifier.py model.tflite --source rtsp://cam/live --save out.mp4
    python samples/camera_classifier.py model.tflite --source clip.mp4 --headless --save out.mp4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import runtimes
from runtimes.display import AnnotatedVideo, Window, present


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Live image classification with an edgekit model.")
    parser.add_argument("model", type=Path)
    parser.add_argument("--source", default="0", help="webcam index, video, folder, rtsp:// URL or picamera2")
    parser.add_argument("--headless", action="store_true", help="no window, even where a display exists")
    parser.add_argument("--save", type=Path, help="write the annotated frames to this video")
    parser.add_argument("--threshold", type=float, default=0.5, help="below this score the label shows as '?'")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args(argv)
    if args.headless and not args.save:
        parser.error("--headless needs --save out.mp4 (otherwise nothing would be produced)")

    with runtimes.open(args.model) as model, model.stream(args.source, max_frames=args.max_frames) as stream:
        window = None if args.headless else Window(f"edgekit: {args.model.name}")
        video = AnnotatedVideo(args.save) if args.save else None
        for _ in present(stream, threshold=args.threshold, window=window, video=video):
            pass  # each frame is drawn, saved and shown by present(); add your own logic here
        stats = stream.source.stats
        print(
            f"{stream.meter.fps:.1f} FPS, {stream.meter.latency_ms:.1f} ms per frame; "
            f"frames delivered {stats.delivered}, dropped {stats.dropped}, skipped {stats.skipped}"
            + (f"; wrote {video.frames} frames to {args.save}" if video else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
