"""edgekit serve as an attacker and a sloppy client meet it, over real sockets to a server in its own process: header
floods, slow and idle connections, stalled bodies, a low file descriptor limit, image bombs, the memory they would
take, /healthz and the live stream during the heaviest allowed request, and SIGTERM with a camera that hangs.

Memory is the server process's own (/proc/<pid>/status: VmRSS now, VmHWM its peak); latencies are measured against
the same server's idle answers in the same test."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from helpers.needs import need_module
from helpers.serve_process import ROOT, free_port, served

need_module("uvicorn", extra="serve")
need_module("httptools", extra="serve")

NAME = "tiny"
PREDICT = f"/v1/models/{NAME}:predict"
SHORT = {"header_timeout_s": 1.5, "body_timeout_s": 1.5, "keep_alive_timeout_s": 1.0}
MB = 1024  # /proc figures are in kB


@pytest.fixture(scope="module")
def server(tiny_artifacts, tmp_path_factory):
    """The tiny int8 classifier served with a fake camera, no token (loopback), and deadlines of 1.5 s."""
    with served(
        tiny_artifacts["tflite_int8"], tmp_path_factory.mktemp("serve"), limits=SHORT, source="camera"
    ) as running:
        yield running


def _connect(server, timeout: float = 5.0) -> socket.socket:
    connection = socket.create_connection((server.host, server.port), timeout=timeout)
    return connection


def _answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes (or a reset after its answer)."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return received
        if not chunk:
            return received
        received += chunk


def _get(server, path: str, connection: http.client.HTTPConnection | None = None, **headers: str) -> tuple[int, bytes]:
    connection = connection or http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def _post(server, body: bytes, connection: http.client.HTTPConnection | None = None) -> tuple[int, dict]:
    connection = connection or http.client.HTTPConnection(server.host, server.port, timeout=60)
    connection.request("POST", PREDICT, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def _b64(data: bytes) -> bytes:
    return json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}]}).encode()


def test_a_header_that_never_ends_is_refused_at_16_kib_without_memory_growth(server):
    before = server.status("VmRSS")
    connection = _connect(server)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ")
    sent = 0
    try:
        while sent < 50 << 20:  # 50 MB, as the attack sent
            connection.sendall(b"a" * 65536)
            sent += 65536
    except OSError:  # the server closed the connection after answering
        pass
    answer = _answer(connection)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"request line and headers over 16384 bytes" in answer
    assert sent < 8 << 20, sent  # refused long before 50 MB (what is left is the kernel's socket buffers)
    assert server.status("VmRSS") - before < 8 * MB
    assert _get(server, "/healthz")[0] == 200


def test_slow_headers_stalled_bodies_and_idle_sockets_are_closed_at_their_deadlines(server):
    slow = _connect(server)
    started = time.monotonic()
    for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n":  # slowloris: a byte every 0.1 s, never the blank line
        try:
            slow.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
    answer = _answer(slow)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request headers not received within 1.5 s" in answer, answer[:200]
    assert 1.3 < time.monotonic() - started < 4.5

    stalled = _connect(server)
    started = time.monotonic()
    stalled.sendall(
        f'POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 100000\r\n\r\n{{"inst'.encode()
    )
    answer = _answer(stalled)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request body not received within 1.5 s" in answer, answer[:200]
    assert 1.3 < time.monotonic() - started < 4.5

    idle = _connect(server)
    started = time.monotonic()
    assert _answer(idle) == b""  # a connection that never sent a byte is closed quietly
    assert 1.3 < time.monotonic() - started < 4.5

    kept = http.client.HTTPConnection(server.host, server.port, timeout=5)
    assert _get(server, "/healthz", kept)[0] == 200
    time.sleep(2.0)  # idle keep-alive: closed after 1 s
    assert kept.sock is None or kept.sock.recv(1, socket.MSG_PEEK) == b""


def test_image_bombs_are_refused_from_their_headers_before_any_decode(server, tiny_artifacts):
    small = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()
    app0_end = 4 + int.from_bytes(small[4:6], "big")
    sof = small.index(b"\xff\xc0")
    stray = bytearray(small[:app0_end] + b"\x00" + small[app0_end:])  # one stray byte after APP0, which libjpeg skips
    sof += 1
    stray[sof + 5 : sof + 9] = (12000).to_bytes(2, "big") * 2  # SOF0: 12000 x 12000
    webp = cv2.imencode(".webp", np.full((10000, 10000, 3), (40, 90, 200), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 101])[
        1
    ]
    png = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    png[16:24] = (30000).to_bytes(4, "big") * 2
    assert len(stray) < 1000 and len(webp) < 8000
    peak = server.status("VmHWM")
    for bomb, size in ((bytes(stray), "12000x12000"), (webp.tobytes(), "10000x10000"), (bytes(png), "30000x30000")):
        status, answer = _post(server, _b64(bomb))
        assert status == 413 and f"{size} (" in answer["error"] and "pixel limit" in answer["error"], answer
    assert server.status("VmHWM") - peak < 20 * MB  # decoded, the three would have taken 3.8 GB
    image = cv2.imencode(".png", np.full((20, 20, 3), 200, np.uint8))[1].tobytes()
    assert _post(server, _b64(image))[0] == 200


def test_memory_is_bounded_by_the_request_and_global_budgets(server):
    """32 images at the pixel cap, 16 MB of nested-list pixels and 20 stalled uploads: refused or held to their
    budgets."""
    before = server.status("VmHWM")
    cap = cv2.imencode(".jpg", np.full((4096, 4096, 3), 90, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 30])[1].tobytes()
    many = json.dumps({"instances": [{"b64": base64.b64encode(cap).decode()}] * 32}).encode()
    assert len(many) < 16 << 20  # within the body limit (the attack sent 2.7 MB): decoded, 32 x 16.8 MP would be 1.6 GB
    status, answer = _post(server, many)
    assert status == 413 and "over the 16777216 pixel limit of one request" in answer["error"], answer
    side = 1440  # 16 MB of "[0,0,0]," pixels
    nested = json.dumps({"instances": [[[[0, 0, 0]] * side] * side]}, separators=(",", ":")).encode()
    assert 15 << 20 < len(nested) <= 16 << 20
    status, answer = _post(server, nested)
    assert status == 413 and "JSON values" in answer["error"] and '{"b64"' in answer["error"], answer
    uploads = []
    for _ in range(20):  # each announces 16 MB, sends 1 MB and stalls
        upload = _connect(server, timeout=10)
        upload.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: {16 << 20}\r\n\r\n".encode()
        )
        upload.sendall(b"{" + b" " * ((1 << 20) - 1))
        uploads.append(upload)
    time.sleep(0.5)
    held = server.status("VmRSS")
    answers = [_answer(upload) for upload in uploads]
    assert server.status("VmHWM") - before < 48 * MB, (before, held)
    assert all(a.startswith((b"HTTP/1.1 408 ", b"HTTP/1.1 503 ")) for a in answers), {a[:40] for a in answers}
    assert _get(server, "/healthz")[0] == 200


def test_healthz_and_the_live_stream_stay_responsive_during_the_heaviest_requests(server):
    """A request at the pixel cap (one 4096x4096 JPEG) and one at the JSON value cap, each twice, while /healthz is
    asked
    every 20 ms and a viewer reads the MJPEG stream: what they add to /healthz and to the gaps between frames."""
    rng = np.random.default_rng(0)
    jpeg = cv2.imencode(".jpg", cv2.resize(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (4096, 4096)))[
        1
    ].tobytes()
    side = 250  # 250 x 250 x 3 numbers and 62,751 lists: under the 262,144 JSON values a request may hold
    lists = json.dumps({"instances": [rng.integers(0, 256, (side, side, 3)).tolist()]}).encode()
    heavy = [_b64(jpeg), lists]

    def sample(stop: threading.Event, out: list[float]) -> None:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        while not stop.is_set():
            started = time.perf_counter()
            status, text = _get(server, "/healthz", connection)
            assert status == 200, text
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)

    def watch(stop: threading.Event, gaps: list[float]) -> None:
        connection = _connect(server, timeout=10)
        connection.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        last = None
        while not stop.is_set():
            if b"--frame" in connection.recv(1 << 20):
                now = time.perf_counter()
                if last is not None:
                    gaps.append((now - last) * 1000)
                last = now
        connection.close()

    def measure(requests: list[bytes]) -> tuple[list[float], list[float], float]:
        stop, latencies, gaps = threading.Event(), [], []
        threads = [
            threading.Thread(target=sample, args=(stop, latencies)),
            threading.Thread(target=watch, args=(stop, gaps)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        started = time.perf_counter()
        for body in requests:
            status, answer = _post(server, body)
            assert status == 200, answer
        busy = time.perf_counter() - started
        time.sleep(0.3 if requests else 1.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        return latencies, gaps, busy

    idle_latencies, idle_gaps, _ = measure([])
    latencies, gaps, busy = measure(heavy * 2)
    added = float(np.percentile(latencies, 95) - np.median(idle_latencies))
    gap_added = float(np.percentile(gaps, 95) - np.median(idle_gaps))
    print(
        f"\nheaviest requests {busy * 1000:.0f} ms; /healthz idle p50 {np.median(idle_latencies):.1f} ms, during p50 "
        f"{np.median(latencies):.1f} p95 {np.percentile(latencies, 95):.1f} max {max(latencies):.1f} ms; stream gaps "
        "idle "
        f"p50 {np.median(idle_gaps):.1f} ms, during p95 {np.percentile(gaps, 95):.1f} max {max(gaps):.1f} ms"
    )
    assert busy > 0.3 and len(latencies) >= 5  # the requests were heavy enough to sample during
    assert added < 100, latencies
    assert gap_added < 100, gaps


def test_a_low_file_descriptor_limit_refuses_new_connections_not_open_ones(tiny_artifacts, tmp_path):
    """At 64 descriptors, 60 idle sockets: the ones past the cap get 503 at once, a client already connected keeps being
    answered, and once the idle ones time out new clients are served again."""
    with served(
        tiny_artifacts["tflite_int8"],
        tmp_path,
        limits={"header_timeout_s": 2.0, "keep_alive_timeout_s": 10.0},
        nofile=64,
    ) as running:
        kept = http.client.HTTPConnection(running.host, running.port, timeout=10)
        assert _get(running, "/healthz", kept)[0] == 200
        idle = [_connect(running) for _ in range(60)]
        time.sleep(0.5)
        refused = 0
        for connection in idle:
            connection.settimeout(0.05)
            try:
                refused += connection.recv(200).startswith(b"HTTP/1.1 503 ")
            except TimeoutError:
                pass
        assert refused >= 20, refused
        for _ in range(5):
            assert _get(running, "/healthz", kept)[0] == 200  # the open connection is untouched
        time.sleep(2.5)
        assert _get(running, "/healthz")[0] == 200  # the idle ones timed out; room again
        for connection in idle:
            connection.close()
        assert running.process.poll() is None
        assert "Too many open files" not in running.output() and "out of system resource" not in running.output()


def test_sigterm_with_a_hung_camera_answers_every_request_and_exits_0(tiny_artifacts, tmp_path):
    rng = np.random.default_rng(1)
    jpeg = cv2.imencode(".jpg", cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (4000, 3000)))[
        1
    ].tobytes()
    with served(tiny_artifacts["tflite_int8"], tmp_path, source="hung-camera") as running:
        time.sleep(1.0)  # the camera has hung by now
        answers: list = []

        def ask() -> None:
            try:
                answers.append(_post(running, _b64(jpeg))[0])
            except OSError as exc:  # a reset: what must not happen
                answers.append(repr(exc))

        threads = [threading.Thread(target=ask) for _ in range(5)]
        for thread in threads:
            thread.start()
        time.sleep(0.15)
        stopped = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(30)
        code = running.process.wait(30)
        took = time.monotonic() - stopped
    output = running.output()
    assert sorted(set(answers)) <= [200, 503] and len(answers) == 5, answers
    assert code == 0, output[-2000:]
    assert took < 15, took  # within the unit's TimeoutStopSec (20 s), camera wait included
    assert "edgekit serve stopped" in output and "serve returned" in output  # serve()'s cleanup ran


def test_sigterm_releases_a_working_camera_and_exits_0(tiny_artifacts, tmp_path):
    with served(tiny_artifacts["tflite_int8"], tmp_path, source="camera") as running:
        assert _get(running, "/frame.jpg")[0] in (200, 503)
        running.process.send_signal(signal.SIGTERM)
        code = running.process.wait(20)
    assert code == 0 and "fake camera released" in running.output() and "edgekit serve stopped" in running.output()


def test_the_command_line_sets_opencvs_own_cap_and_refuses_unsafe_starts(tiny_artifacts, tmp_path):
    model = str(tiny_artifacts["tflite_int8"])
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("EDGEKIT_SERVE_TOKEN", "OPENCV_IO_MAX_IMAGE_PIXELS")
    }
    command = [sys.executable, "-m", "runtimes.serving", model]
    refusals = [
        ([*command, "--host", "0.0.0.0"], env, "refusing to serve on 0.0.0.0 without a token"),
        ([*command, "--host", "0.0.0.0", "--token", ""], env, "the token is empty"),
        ([*command, "--host", "0.0.0.0"], {**env, "EDGEKIT_SERVE_TOKEN": ""}, "EDGEKIT_SERVE_TOKEN is set but empty"),
        ([*command, "--token-file", str(tmp_path / "empty")], env, "is empty: put a token in it"),
    ]
    (tmp_path / "empty").write_text("\n")
    for argv, environment, message in refusals:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT, env=environment)
        assert done.returncode == 2 and message in done.stderr, (argv, done.stderr[-1000:])
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port), "--max-megapixels", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                assert connection.getresponse().status == 200
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        environment = open(f"/proc/{process.pid}/environ", "rb").read().split(b"\0")
        assert b"OPENCV_IO_MAX_IMAGE_PIXELS=2000000" in environment
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import cv2, numpy as np\n"
                "data = cv2.imencode('.png', np.zeros((1500, 1500, 3), np.uint8))[1]\n"
                "try:\n    print(cv2.imdecode(data, cv2.IMREAD_COLOR) is None)\n"
                "except cv2.error as exc:\n    print('CV_IO_MAX_IMAGE_PIXELS' in str(exc))",
            ],
            capture_output=True,
            text=True,
            env={**env, "OPENCV_IO_MAX_IMAGE_PIXELS": "2000000"},
        )
        assert probe.stdout.strip() == "True", (
            probe.stderr
        )  # OpenCV itself refuses 2.25 MP under that cap: the backstop
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0 and "edgekit serve stopped" in output, output[-2000:]
    finally:
        if process.poll() is None:
            process.kill()


def test_a_kept_alive_connection_serves_the_next_request_after_an_early_413(server):
    """The unread rest of a refused body is that request's, not the next one's headers (it was once counted as such)."""
    connection = _connect(server, timeout=10)
    host = f"127.0.0.1:{server.port}"
    body = b"x" * (17 << 20)  # over the 16 MB cap: answered 413 from its Content-Length, then read to its end
    connection.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    answer = b""
    while b"byte limit" not in answer:  # the headers and the body may come in separate packets
        chunk = connection.recv(65536)
        assert chunk, answer[-300:]
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and b"over the 16777216 byte limit" in answer, answer[:200]
    connection.sendall(body)
    image = json.dumps({"instances": [[[[0, 0, 0]]]]}).encode()
    connection.sendall(
        f"POST {PREDICT} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(image)}\r\n\r\n".encode() + image
    )
    received = b""
    while b'"predictions"' not in received:
        chunk = connection.recv(65536)
        assert chunk, received[-300:]
        received += chunk
    assert b"HTTP/1.1 200 " in received
