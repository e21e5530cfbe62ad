"""edgekit serve's checks one by one over HTTP (the parser's own cases: test_serve_requests): every malformed input a
4xx
naming the problem, the live page that echoes nothing, Host and Origin checks, where the token is taken, the starts it
refuses, HEAD wherever GET works, camera URLs masked, video files paced, and the bundle's token install."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from helpers.encoded import b64 as _b64
from helpers.encoded import encoded as _encoded
from helpers.needs import missing, need_module

from runtimes.serving import Limits, ServeConfigError, check_exposure, start

httpx = need_module("httpx", extra="dev")
need_module("uvicorn", extra="serve")

TOKEN = "a-long-enough-test-token-0123456789"


# -- malformed requests: a 4xx naming the problem, never a 500 ---------------------------------------------------------

MALFORMED = [
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deep"),
    (b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested too deep"),
    (json.dumps({"instances": [[[[10**400, 0, 0]]]]}).encode(), 400, "numbers in 0..255"),
    (b'{"instances": [[[[' + b"9" * 5000 + b", 0, 0]]]]}", 400, "malformed JSON"),
    (b'{"instances": [[[[1e400, 0, 0]]]]}', 400, "numbers in 0..255"),
    (b'{"instances": [[[["x", 0, 0]]]]}', 400, "non-numbers"),
    (b"\xff\xfe{}", 400, "malformed JSON"),
    (json.dumps({"instances": [{"b64": _b64(b"BM" + bytes(60))}]}).encode(), 415, "not a JPEG, PNG or WebP"),
    (
        json.dumps({"instances": [{"b64": _b64(b"\x59\xa6\x6a\x95" + bytes(40))}]}).encode(),
        415,
        "not a JPEG, PNG or WebP",
    ),
    (
        json.dumps({"instances": [{"b64": _b64(b"\xff\xd8\xff\xe0\x00\x01")}]}).encode(),
        400,
        "marker segment of length 1",
    ),
    (
        json.dumps({"instances": [{"b64": _b64(b"\x89PNG\r\n\x1a\n" + bytes(30))}]}).encode(),
        400,
        "first chunk is not IHDR",
    ),
    (
        json.dumps({"instances": [{"b64": _b64(b"RIFF\x00\x00\x00\x00WEBPVP8 \x04\x00\x00\x00abcd")}]}).encode(),
        400,
        "cut short or malformed",
    ),
    (json.dumps({"instances": [{"b64": "QUJD"}]}).encode(), 415, "not a JPEG"),
    (json.dumps({"instances": [{"b64": _b64(_encoded(".jpg", 20, 20)[:200])}]}).encode(), 400, "damaged JPEG"),
    (json.dumps({"instances": [{"b64": _b64(_encoded(".png", 20, 20)[:60])}]}).encode(), 400, "damaged PNG"),
    (
        json.dumps({"signature_name": {"a": [1] * 1000}, "instances": []}).encode(),
        400,
        "unknown signature_name {'a': [1, 1,",
    ),
    (json.dumps({"instances": [[[[0, 0, 0]] * 300] * 300]}).encode(), 413, "JSON values"),
]


@pytest.fixture(scope="module")
def open_server(tiny_artifacts):
    """The tiny classifier on loopback without a token: the Host check is on."""
    with start(tiny_artifacts["tflite_int8"], port=0, name="tiny") as running:
        yield running


@pytest.mark.parametrize("body, status, message", MALFORMED, ids=[m for _, _, m in MALFORMED])
def test_every_malformed_input_is_a_4xx_naming_the_problem(open_server, body, status, message):
    response = httpx.post(open_server.url + "/v1/models/tiny:predict", content=body, timeout=30)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


# -- the page, Host, Origin, the token ---------------------------------------------------------------------------------


def test_the_live_page_echoes_nothing_and_sends_the_security_headers(open_server):
    attack = '/?token="><script>alert(1)</script>&name=<img src=x onerror=alert(2)>'
    response = httpx.get(open_server.url + attack)
    assert response.status_code == 200
    assert "<script>alert" not in response.text and "onerror" not in response.text and "token" not in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    for path in ("/", "/healthz", "/v1/models/tiny", "/nowhere"):
        headers = httpx.get(open_server.url + path).headers
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY", path
        assert "server" not in headers, path


def test_a_hostile_model_name_is_escaped(tiny_artifacts):
    with start(tiny_artifacts["tflite_fp32"], port=0, name="<script>alert(3)</script>") as running:
        page = httpx.get(running.url + "/").text
    assert "<script>alert(3)" not in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page


def test_without_a_token_only_loopback_hosts_and_same_origin_browsers_are_answered(open_server):
    port = open_server.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert httpx.get(open_server.url + "/healthz", headers={"Host": host}).status_code == 200, host
    for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{int(port) + 1}", f"rebind.attacker.test:{port}"):
        refused = httpx.get(open_server.url + "/healthz", headers={"Host": host})
        assert refused.status_code == 421 and "loopback only without a token" in refused.json()["error"], host
    csrf = httpx.post(
        open_server.url + "/v1/models/tiny:predict",
        content=b'{"instances": [[[[0, 0, 0]]]]}',
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
    )
    assert csrf.status_code == 403 and "cross-origin request from 'http://evil.example' refused" in csrf.json()["error"]
    same = httpx.post(
        open_server.url + "/v1/models/tiny:predict",
        content=b'{"instances": [[[[0, 0, 0]]]]}',
        headers={"Origin": f"http://127.0.0.1:{port}"},
    )
    assert same.status_code == 200, same.text


def test_the_token_is_a_header_the_page_swaps_for_a_cookie_and_never_a_query_on_the_api(tiny_artifacts, monkeypatch):
    import runtimes.sources
    from runtimes.sources import ArraySource

    frames = (np.full((48, 64, 3), i % 255, np.uint8) for i in range(10**6))
    monkeypatch.setattr(runtimes.sources, "open_source", lambda spec: ArraySource(frames))
    with start(
        tiny_artifacts["tflite_fp32"], source="frames", port=0, token=TOKEN, name="tiny", realtime_files=False
    ) as running:
        url = running.url
        for path in ("/healthz", "/v1/models/tiny", "/v1/models/tiny/metadata", "/frame.jpg", "/results"):
            assert httpx.get(f"{url}{path}?token={TOKEN}").status_code == 401, path
        assert httpx.get(f"{url}/?token=wrong").status_code == 401
        swapped = httpx.get(f"{url}/?token={TOKEN}")
        assert swapped.status_code == 303 and swapped.headers["location"] == "/"
        cookie = swapped.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        with httpx.Client(
            base_url=url, cookies={"edgekit_live": cookie.split(";")[0].split("=", 1)[1]}, timeout=10
        ) as browser:
            assert browser.get("/").status_code == 200
            time.sleep(0.5)
            assert browser.get("/frame.jpg").status_code == 200
            with browser.stream("GET", "/results") as events:
                assert any(line.startswith("data:") for line in events.iter_lines())
            assert browser.get("/healthz").status_code == 401  # the cookie opens the live view, not the API
            assert browser.post("/v1/models/tiny:predict", json={"instances": [[[[0, 0, 0]]]]}).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/healthz", headers=bearer).status_code == 200
        assert httpx.get(f"{url}/healthz", headers={**bearer, "Host": "any.name.example"}).status_code == 200


def test_unsafe_starts_are_refused():
    for host in ("0.0.0.0", "::", "192.0.2.10", "edge.local"):
        with pytest.raises(ServeConfigError, match=f"refusing to serve on {host} without a token"):
            check_exposure(host, None, insecure=False)
        with pytest.raises(ServeConfigError, match="the token is empty"):
            check_exposure(host, "  ", insecure=True)
        check_exposure(host, TOKEN, insecure=False)
        check_exposure(host, None, insecure=True)
    for host in ("127.0.0.1", "127.3.2.1", "localhost", "::1"):
        check_exposure(host, None, insecure=False)
    with pytest.raises(ServeConfigError, match="refusing to serve on 0.0.0.0"):
        start("unused.tflite", host="0.0.0.0")


# -- HEAD, masked URLs, paced files ------------------------------------------------------------------------------------


def test_head_answers_wherever_get_does_and_ends(tiny_artifacts, monkeypatch):
    import runtimes.sources
    from runtimes.sources import ArraySource

    frames = (np.full((48, 64, 3), i % 255, np.uint8) for i in range(10**6))
    monkeypatch.setattr(runtimes.sources, "open_source", lambda spec: ArraySource(frames))
    with start(tiny_artifacts["tflite_fp32"], source="frames", port=0, name="tiny", realtime_files=False) as running:
        time.sleep(0.5)
        with httpx.Client(base_url=running.url, timeout=5) as client:
            for path in (
                "/",
                "/healthz",
                "/stream.mjpg",
                "/results",
                "/frame.jpg",
                "/v1/models/tiny",
                "/v1/models/tiny/metadata",
                "/v1/models/other",
                "/nowhere",
            ):
                head = client.head(path)
                if path in ("/stream.mjpg", "/results"):
                    expected = 200
                else:
                    expected = client.get(path).status_code
                assert head.status_code == expected and head.content == b"", path


def test_camera_urls_are_shown_with_credentials_masked(tiny_artifacts, caplog):
    source = "rtsp://admin:hunter2@127.0.0.1:9/stream"  # the discard port: nothing listens
    with (
        caplog.at_level("WARNING", logger="edgekit.serve"),
        start(tiny_artifacts["tflite_fp32"], source=source, port=0) as running,
    ):
        deadline = time.monotonic() + 20
        while running.feed.error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        health = httpx.get(running.url + "/healthz").text
    assert running.feed.error is not None and "rtsp://***@127.0.0.1:9/stream" in health
    assert "hunter2" not in health and "admin" not in health and "hunter2" not in caplog.text


def test_a_video_file_plays_at_its_own_frame_rate(tiny_artifacts, tmp_path):
    from edgekit.data.synthetic import make_tracking_video

    clip = make_tracking_video(tmp_path / "clip.avi", frames=30, size=(96, 128))
    fps = cv2.VideoCapture(str(clip.path)).get(cv2.CAP_PROP_FPS)
    with start(tiny_artifacts["tflite_fp32"], source=str(clip.path), port=0) as running:
        time.sleep(0.5)
        first, started = running.feed.latest().number, time.monotonic()
        time.sleep(2.0)
        rate = (running.feed.latest().number - first) / (time.monotonic() - started)
    assert 0.7 * fps < rate < 1.15 * fps, (rate, fps)


# -- the bundle's token ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serve_bundle(tiny_artifacts, tmp_path_factory):
    from edgekit.deploy import rpi

    return rpi(tiny_artifacts["tflite_int8"], tmp_path_factory.mktemp("dist") / "tiny", serve=True)


def _install(folder, tmp_path, python3: str) -> subprocess.CompletedProcess:
    """install.sh with `python3` replaced: its venv and pip steps faked, its token step real or failing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python3"
    fake.write_text("#!/bin/bash\n" + python3)
    fake.chmod(0o755)
    return subprocess.run(
        ["bash", str(folder / "install.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )


FAKE_VENV = (
    'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p .venv/bin; printf "#!/bin/sh\\nexit 0\\n" > '
    ".venv/bin/python;"
    " chmod +x .venv/bin/python; exit 0; fi\n"
)


def test_install_stops_when_the_token_cannot_be_made_and_never_prints_it(serve_bundle, tmp_path):
    if shutil.which("sha256sum") is None:
        missing("sha256sum (coreutils) is not installed")
    from edgekit.deploy import extract_bundle

    failing = extract_bundle(serve_bundle.archive, tmp_path / "failing")
    done = _install(failing, tmp_path, FAKE_VENV + "exit 1\n")  # python3 -c fails: the command substitution is empty
    assert done.returncode == 1 and "could not make the serve token" in done.stderr, done.stderr
    assert not (failing / "serve.env").exists() and not (failing / ".venv").exists()

    working = extract_bundle(serve_bundle.archive, tmp_path / "working")
    done = _install(working, tmp_path, FAKE_VENV + f'exec {sys.executable} "$@"\n')  # the token step: a real python3
    assert done.returncode == 0, done.stderr
    env_file = working / "serve.env"
    token = env_file.read_text().strip().removeprefix("EDGEKIT_SERVE_TOKEN=")
    assert len(token) >= 32 and token not in done.stdout + done.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "serve.env (readable by you only)" in done.stdout
    again = _install(working, tmp_path, FAKE_VENV + "exit 1\n")  # a good token is kept: python3 is not asked again
    assert again.returncode == 0 and env_file.read_text().strip().endswith(token)


# -- what waits, and for how long
# ---------------------------------------------------------------------------------------


def test_predictions_past_the_in_flight_cap_wait_then_get_503(tiny_artifacts):
    import socket

    limits = Limits(max_predicts_in_flight=1, queue_timeout_s=0.5, body_timeout_s=5)
    with start(tiny_artifacts["tflite_fp32"], port=0, name="tiny", limits=limits) as running:
        host, port = running.url.removeprefix("http://").split(":")
        holder = socket.create_connection((host, int(port)))  # takes the one slot and sends its body slowly
        holder.sendall(
            f"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100\r\n\r\n{{".encode()
        )
        time.sleep(0.2)
        started = time.monotonic()
        waited = httpx.post(running.url + "/v1/models/tiny:predict", json={"instances": [[[[0, 0, 0]]]]}, timeout=10)
        assert waited.status_code == 503 and "1 predictions in flight for over 0.5 s" in waited.json()["error"]
        assert waited.headers["retry-after"] == "1" and 0.4 < time.monotonic() - started < 3
        holder.close()
        time.sleep(0.3)
        assert (
            httpx.post(running.url + "/v1/models/tiny:predict", json={"instances": [[[[0, 0, 0]]]]}).status_code == 200
        )


def test_the_global_pixel_budget_makes_requests_wait_and_gives_up_at_its_deadline():
    import threading

    from runtimes.serving.budget import Budget, BudgetExhausted

    budget, order = Budget(100), []

    def hold(amount: int, seconds: float) -> None:
        with budget.take(amount, timeout=5):
            order.append(f"took {amount}")
            time.sleep(seconds)

    first = threading.Thread(target=hold, args=(80, 0.4))
    first.start()
    time.sleep(0.1)
    started = time.monotonic()
    hold(50, 0)  # waits for the first to give its 80 back
    assert order == ["took 80", "took 50"] and time.monotonic() - started > 0.2
    first.join()
    with budget.take(100, timeout=1), pytest.raises(BudgetExhausted, match="100 of 100 in use for over 0.2 s"):
        with budget.take(1, timeout=0.2):
            pass
    with pytest.raises(BudgetExhausted, match="over the whole budget"):
        with budget.take(101, timeout=1):
            pass
    assert budget.used == 0
