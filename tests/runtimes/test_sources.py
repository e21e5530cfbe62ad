"""Sources and streaming: files in order, live frames fresh, failures counted or named, resources released."""

import threading
import time

import cv2
import numpy as np
import pytest

import edgekit
from runtimes.sources import LiveSource, OpenCVReader, SourceError, open_source


def _write_video(path, frames=24, size=(96, 72), fps=12.0):
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    for i in range(frames):
        image = np.full((size[1], size[0], 3), (i * 10) % 256, np.uint8)
        cv2.circle(image, (size[0] // 2, size[1] // 2), 20, (255, 255, 255), -1)
        writer.write(image)
    writer.release()
    return path


class FakeCamera:
    """A FrameReader producing numbered frames every `interval` seconds, failing on request."""

    name = "fake camera"

    def __init__(self, interval=0.01, fail_after=None, recover=True):
        self.interval, self.fail_after, self.recover = interval, fail_after, recover
        self.produced, self.opens, self.closed = 0, 0, 0

    def open(self):
        if self.opens and not self.recover:
            raise SourceError("fake camera is gone")
        self.opens += 1

    def read(self):
        time.sleep(self.interval)
        if self.fail_after is not None and self.produced >= self.fail_after and (self.opens == 1 or not self.recover):
            return None
        self.produced += 1
        image = np.zeros((32, 32, 3), np.uint8)
        image[0, 0, 0] = self.produced % 256
        return image

    def close(self):
        self.closed += 1


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_delivers_every_frame_in_order_and_ends_at_eof(tmp_path, suffix):
    path = _write_video(tmp_path / f"clip{suffix}")
    with open_source(path) as source:
        positions = [frame.position for frame in source]
    assert positions == list(range(24))
    assert source.stats.delivered == 24 and source.capture is None


def test_closing_a_video_from_another_thread_waits_for_the_read_in_flight(tmp_path):
    """A live server stops its stream from the request thread; freeing OpenCV's decoder under a read aborted the
    process."""
    source = open_source(_write_video(tmp_path / "clip.avi"))
    decoder, events = source.capture, []

    class SlowDecoder:  # the real capture, with a read long enough to close during
        def read(self):
            events.append("read")
            time.sleep(0.3)
            events.append("read done")
            return decoder.read()

        def release(self):
            events.append("release")
            decoder.release()

    source.capture = SlowDecoder()
    frames = iter(source)
    assert next(frames).position == 0
    second = threading.Thread(target=lambda: next(frames, None))
    second.start()
    time.sleep(0.1)  # the second read is in flight
    source.close()
    second.join(5)
    assert events == ["read", "read done", "read", "read done", "release"]
    assert source.capture is None and list(frames) == []


def test_folder_and_glob_skip_unreadable_images(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((10, 10, 3), i * 50, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(tmp_path)
    assert [f.position for f in source] == ["0.png", "1.png", "2.png"]
    assert source.stats.skipped == 1 and source.stats.skipped_items[0].endswith("broken.jpg")
    assert [f.position for f in open_source(str(tmp_path / "[12].png"))] == ["1.png", "2.png"]
    assert [f.position for f in open_source(tmp_path / "1.png")] == ["1.png"]


def test_array_frames_and_bad_entries(tmp_path):
    frames = [np.zeros((8, 8, 3), np.uint8), "nope", np.ones((8, 8), np.uint8)]
    source = open_source(iter(frames))
    assert [f.position for f in source] == [0, 2] and source.stats.skipped == 1


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing.png", "image file not found: missing.png"),
        ("missing.mp4", "video file not found: missing.mp4"),
        ("nothing-here", "cannot open source 'nothing-here': not an existing image, folder, glob or video"),
        ("99", "cannot open camera 99: check the index"),
    ],
)
def test_sources_that_cannot_open_are_named(spec, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_picamera2_missing_says_how_to_install():
    with pytest.raises(
        SourceError, match="picamera2 is not importable .*apt install python3-picamera2.*--system-site-packages"
    ):
        open_source("picamera2")


def test_live_source_keeps_only_the_newest_frame():
    """Frames arrive every 10 ms, the consumer takes 40 ms: results stay fresh and in order."""
    camera = FakeCamera(interval=0.01)
    interval_ms = 10
    with LiveSource("fake", camera) as source:
        seen = []
        for frame in source:
            age_ms = (time.monotonic() - frame.timestamp) * 1000
            seen.append((frame.position, frame.timestamp, age_ms))
            time.sleep(0.04)  # a slow model
            if len(seen) == 15:
                break
    positions = [p for p, _, _ in seen]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)  # never backwards
    assert all(b[1] > a[1] for a, b in zip(seen, seen[1:]))
    ages = sorted(age for _, _, age in seen)
    assert ages[len(ages) * 3 // 4] < 2 * interval_ms  # three in four frames are fresher than two intervals
    assert source.stats.dropped >= 15  # about three frames are replaced for every one consumed
    assert source.stats.delivered + source.stats.dropped <= camera.produced
    assert camera.closed >= 1 and not source._thread.is_alive()


def test_live_source_reopens_with_backoff_then_gives_up():
    recovering = FakeCamera(interval=0.001, fail_after=5, recover=True)
    with LiveSource("fake", recovering, backoff=0.01) as source:
        frames = [frame for _, frame in zip(range(10), source)]
    assert len(frames) == 10 and source.stats.reopened == 1 and recovering.opens == 2
    dead = FakeCamera(interval=0.001, fail_after=3, recover=False)
    source = LiveSource("fake", dead, max_reopens=3, backoff=0.01)
    with pytest.raises(SourceError, match="fake camera stopped delivering frames; gave up after 3 reopen attempts"):
        for _ in source:
            pass
    source.close()


def test_stream_results_and_release(exported, tmp_path):
    path = _write_video(tmp_path / "clip.mp4", frames=20)
    model = edgekit.load(exported.result("tflite:int8").path)
    with model.stream(path, every=3) as stream:
        results = list(stream)
    assert [r.frame.position for r in results] == [0, 3, 6, 9, 12, 15, 18]
    assert all(r.classification.label in model.labels and r.latency_ms > 0 and r.age_ms >= 0 for r in results)
    assert stream.source.capture is None  # released at the end
    limited = list(model.stream(path, max_frames=4))
    assert len(limited) == 4
    stream = model.stream(path)
    with pytest.raises(KeyboardInterrupt):
        for _ in stream:
            raise KeyboardInterrupt  # Ctrl-C in the user's loop
    assert stream.source.capture is None
    with pytest.raises(ValueError, match="every must be >= 1"):
        model.stream(path, every=0)


def test_stream_from_a_live_source_releases_the_thread_on_exception(exported):
    camera = FakeCamera(interval=0.005)
    source = LiveSource("fake", camera)
    model = edgekit.load(exported.result("tflite:fp32").path)
    with pytest.raises(RuntimeError, match="user code failed"):
        with model.stream(source) as stream:
            for result in stream:
                assert result.age_ms < 1000
                raise RuntimeError("user code failed")
    assert not source._thread.is_alive() and camera.closed >= 1
    assert threading.active_count() < 50


def test_rate_meter_and_overlay():
    from runtimes.display import draw_overlay
    from runtimes.model import Classification
    from runtimes.stream import RateMeter

    meter = RateMeter(window=5)
    for i in range(10):
        meter.tick(latency_ms=2.0 + i, now=i * 0.1)
    assert meter.fps == pytest.approx(10.0) and meter.latency_ms == pytest.approx(9.0)
    frame = np.zeros((120, 160, 3), np.uint8)
    result = Classification("circle", 0, 0.9, (("circle", 0.9),), 1.0, 0.1)
    annotated = draw_overlay(frame, result, fps=12.5)
    assert annotated.shape == frame.shape and annotated[:40, :80].max() == 255 and frame.max() == 0


def test_opencv_reader_names_streams():
    assert OpenCVReader("rtsp://cam.local/live").name == "stream rtsp://cam.local/live"
