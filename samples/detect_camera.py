"""Live object detection: the camera (or any source) with boxes, labels, scores and FPS on each frame.

Works with any detector edgekit exports (.tflite, .onnx, .mlpackage on macOS). With a display it
shows a window (q or Esc quits); headless it writes an annotated video instead. `--track` gives
each object an id kept across frames; `--count-line` counts the objects that cross a line.

    python samples/detect_camera.py detector.tflite --source 0                       # webcam, window
    python samples/detect_camera.py detector.tflite --source rtsp://cam/live --save out.mp4
    python samples/detect_camera.py detector.onnx --source clip.mp4 --headless --save out.mp4 \\
        --track --count-line 320,0,320,480
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import runtimes
from runtimes.display import AnnotatedVideo, Window, present
from runtimes.tracking import parse_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Live object detection with an edgekit model.")
    parser.add_argument("model", type=Path)
    parser.add_argument("--source", default="0", help="webcam index, video, folder, rtsp:// URL or picamera2")
    parser.add_argument("--headless", action="store_true", help="no window, even where a display exists")
    parser.add_argument("--save", type=Path, help="write the annotated frames to this video")
    parser.add_argument("--threshold", type=float, default=None, help="minimum detection score (default: the model's)")
    parser.add_argument("--track", action="store_true", help="give each object an id kept across frames")
    parser.add_argument(
        "--count-line", default=None, metavar="X0,Y0,X1,Y1", help="count tracked objects crossing this line"
    )
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args(argv)
    if args.headless and not args.save:
        parser.error("--headless needs --save out.mp4 (otherwise nothing would be produced)")
    line = parse_line(args.count_line) if args.count_line else None
    options = {} if args.threshold is None else {"threshold": args.threshold}

    with (
        runtimes.open(args.model) as model,
        model.stream(args.source, max_frames=args.max_frames, track=args.track, count_line=line, **options) as stream,
    ):
        window = None if args.headless else Window(f"edgekit: {args.model.name}")
        video = AnnotatedVideo(args.save) if args.save else None
        objects = 0
        for item in present(stream, window=window, video=video):
            objects += len(item.result)  # item.result is a Detections: boxes in the frame's pixels
        stats = stream.source.stats
        ids = f"; {stream.tracker.confirmed} tracked object(s)" if stream.tracker else ""
        counts = f"; {stream.counter.counts}" if stream.counter else ""
        print(
            f"{stream.meter.fps:.1f} FPS, {stream.meter.latency_ms:.1f} ms per frame; {objects} "
            f"detection(s){ids}{counts}; "
            f"frames delivered {stats.delivered}, dropped {stats.dropped}, skipped {stats.skipped}"
            + (f"; wrote {video.frames} frames to {args.save}" if video else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
