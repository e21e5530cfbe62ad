"""edgekit serve: TF Serving's REST API (its own client's messages), every bad request with its status, the token,
the caps, a live view that a stalled viewer cannot hold up, and a clean shutdown that releases the camera."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from helpers.needs import need_module

from runtimes import open_model
from runtimes.serving import Limits, start
from runtimes.serving.rest import RequestError, parse_predict

httpx = need_module("httpx", extra="dev")
need_module("starlette", extra="serve")
need_module("uvicorn", extra="serve")

TOKEN = "s3cret-token"


def _png(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


@pytest.fixture(scope="module")
def images():
    """Six smooth random RGB images of assorted sizes."""
    rng = np.random.default_rng(3)
    return [
        cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        for h, w in ((16, 16), (24, 32), (48, 40), (16, 16), (100, 60), (20, 20))
    ]


@pytest.fixture(scope="module")
def server(tiny_artifacts):
    with start(tiny_artifacts["tflite_int8"], port=0, token=TOKEN) as running:
        yield running


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def _expected(path, images):
    with open_model(path) as model:
        labels, task = model.labels, model.task
        return [
            task.serving_prediction(model.predict(image, **task.serving_options(labels)), labels, {})
            for image in images
        ]


def test_row_and_columnar_requests_give_model_predict_answers(client, tiny_artifacts, images):
    expected = _expected(tiny_artifacts["tflite_int8"], images)
    rows = client.post(
        "/v1/models/tiny:predict",
        json={"instances": [{"b64": _png(cv2.cvtColor(i, cv2.COLOR_RGB2BGR))} for i in images]},
    )
    assert rows.status_code == 200, rows.text
    assert rows.json()["predictions"] == expected
    named = client.post(
        "/v1/models/tiny/versions/1:predict",
        json={"signature_name": "serving_default", "instances": [{"images": image.tolist()} for image in images[:1]]},
    )
    assert named.json()["predictions"] == expected[:1]
    columnar = client.post(
        "/v1/models/tiny:predict", json={"inputs": {"images": [images[0].tolist(), images[3].tolist()]}}
    )
    assert columnar.json()["outputs"] == {
        "scores": [expected[0]["scores"], expected[3]["scores"]],
        "label_id": [expected[0]["label_id"], expected[3]["label_id"]],
        "label": [expected[0]["label"], expected[3]["label"]],
    }


def test_status_metadata_and_health(client):
    assert client.get("/v1/models/tiny").json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    metadata = client.get("/v1/models/tiny/metadata").json()
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["images"]["dtype"] == "DT_UINT8"
    assert {name: out["dtype"] for name, out in signature["outputs"].items()} == {
        "scores": "DT_FLOAT",
        "label_id": "DT_INT32",
        "label": "DT_STRING",
    }
    assert metadata["edgekit_contract"]["labels"] == ["a", "b", "c"]
    assert client.get("/healthz").json() == {"status": "ok", "model": "tiny", "backend": "tflite", "live": None}


BAD = [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"instances": [], "inputs": []}', 400, "exactly one of"),
    (b'{"signature_name": "other", "instances": [[[[0, 0, 0]]]]}', 400, "unknown signature_name 'other'"),
    (b'{"instances": []}', 400, "non-empty list"),
    (b'{"instances": [{"b64": "not base64!"}]}', 400, "bad base64"),
    (b'{"instances": [{"b64": "aGVsbG8gd29ybGQ="}]}', 415, "not a JPEG, PNG or WebP image"),
    (b'{"instances": [{"b64": ""}]}', 400, "empty image"),
    (b'{"instances": [[[1, 2, 3]]]}', 400, "wrap it in a list"),
    (b'{"instances": [[[[1, 2]]]]}', 400, "H x W x 3"),
    (b'{"instances": [[[[1, 2, 300]]]]}', 400, "0..255"),
    (b'{"instances": [[[[1, 2, 3]], [[1, 2]]]]}', 400, "unequal lengths"),
    (b'{"instances": [{"pixels": [[[1, 2, 3]]]}]}', 400, "unknown input(s) ['pixels']"),
    (b'{"instances": ["a string"]}', 400, "expected"),
]


@pytest.mark.parametrize("body, status, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_requests_get_400_naming_the_problem(client, body, status, message):
    response = client.post("/v1/models/tiny:predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_caps_give_413(tiny_artifacts, images):
    limits = Limits(max_body_bytes=200_000, max_images=2, max_image_pixels=60 * 60)
    bomb = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # a header claiming 100000 x 100000 pixels: refused unread
    cases = [
        (json.dumps({"instances": [{"b64": _png(images[0])}] * 3}), "3 images in one request; at most 2"),
        (json.dumps({"instances": [{"b64": _png(images[4])}]}), "60x100 (6000 pixels) is over the 3600 pixel limit"),
        (json.dumps({"instances": [{"b64": base64.b64encode(bytes(bomb)).decode()}]}), "over the 3600 pixel limit"),
        (json.dumps({"instances": [images[4].tolist()]}), "60x100 is over the 3600 pixel limit"),
        ("x" * 210_000, "over the 200000 byte limit"),
    ]
    with start(tiny_artifacts["tflite_fp32"], port=0, limits=limits, name="capped") as running:
        with httpx.Client(base_url=running.url, timeout=30) as c:
            for body, message in cases:
                response = c.post("/v1/models/capped:predict", content=body.encode())
                assert response.status_code == 413 and message in response.json()["error"], (message, response.text)
            assert (
                c.post("/v1/models/capped:predict", json={"instances": [{"b64": _png(images[0])}]}).status_code == 200
            )


def test_the_token_is_needed_on_every_path_and_nothing_else_is_choosable(server):
    for path in ("/", "/healthz", "/v1/models/tiny", "/v1/models/tiny/metadata", "/stream.mjpg", "/results"):
        assert httpx.get(server.url + path).status_code == 401, path
        assert httpx.get(server.url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert httpx.post(server.url + "/v1/models/tiny:predict", json={"instances": []}).status_code == 401
    for path in ("/healthz", "/v1/models/tiny", "/stream.mjpg"):  # the query string is no way in, but for the page
        assert httpx.get(server.url + f"{path}?token={TOKEN}").status_code == 401, path
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        assert (
            c.get("/v1/models/other").status_code == 404
            and "Latest(other)" in c.get("/v1/models/other").json()["error"]
        )
        assert c.get("/v1/models/tiny/versions/2").status_code == 404
        assert c.get("/v1/models/tiny:predict").status_code == 405
        assert c.get("/v1/models/../../etc/passwd").status_code == 404
        assert c.get("/static/model.tflite").status_code == 404
        assert c.get("/stream.mjpg").status_code == 404  # no --source
        assert c.get("/v1/models/tiny/metadata").json()["edgekit_contract"]["model_name"] == "tiny"


def test_the_default_address_is_this_machine_only(tiny_artifacts):
    with start(tiny_artifacts["tflite_fp32"], port=0) as running:
        assert running.url.startswith("http://127.0.0.1:")


class FakeCamera:
    """A live camera (LiveSource's reader) of moving gradients that records whether it was released."""

    name = "fake-camera"

    def __init__(self) -> None:
        self.opened = self.closed = 0
        self.count = 0

    def open(self) -> None:
        self.opened += 1

    def read(self) -> np.ndarray | None:
        time.sleep(0.005)
        self.count += 1
        frame = np.zeros((96, 128, 3), np.uint8)
        frame[:, (self.count * 3) % 128] = 255
        return frame

    def close(self) -> None:
        self.closed += 1


def test_a_stalled_viewer_holds_up_neither_the_camera_loop_nor_other_viewers_and_stop_releases_the_camera(
    tiny_artifacts, monkeypatch
):
    import runtimes.sources
    from runtimes.sources import LiveSource

    camera = FakeCamera()
    monkeypatch.setattr(runtimes.sources, "open_source", lambda spec: LiveSource(str(spec), camera))
    running = start(tiny_artifacts["tflite_fp32"], source="fake", port=0)
    try:
        host, port = running.url.removeprefix("http://").split(":")
        stalled = socket.create_connection((host, int(port)))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
        time.sleep(1.0)
        before = running.feed.latest().number
        with httpx.Client(base_url=running.url, timeout=10) as c, c.stream("GET", "/stream.mjpg") as stream:
            got, started = 0, time.monotonic()
            for chunk in stream.iter_bytes():
                got += chunk.count(b"--frame")
                if got >= 20 or time.monotonic() - started > 20:
                    break
        after = running.feed.latest().number
        assert got >= 20  # another viewer kept getting frames
        assert after - before >= 20, (before, after)  # and the camera loop kept publishing
        with httpx.Client(base_url=running.url, timeout=10) as c:
            frame = cv2.imdecode(np.frombuffer(c.get("/frame.jpg").content, np.uint8), cv2.IMREAD_COLOR)
            assert frame.shape == (96, 128, 3)
            with c.stream("GET", "/results") as events:
                record = next(json.loads(line[5:]) for line in events.iter_lines() if line.startswith("data:"))
            assert record["best"] in ("a", "b", "c") and record["sequence"] >= 1 and "latency_ms" in record
            assert c.get("/healthz").json()["live"]["running"] is True
        stalled.close()
    finally:
        running.stop()
    assert camera.closed >= 1 and not running.feed.running  # released before stop() returned


def test_request_errors_are_typed_with_status():
    with pytest.raises(RequestError) as error:
        parse_predict(b'{"instances": [{"b64": "@"}]}', Limits())
    assert error.value.status == 400 and "bad base64" in error.value.message
    parsed = parse_predict(json.dumps({"instances": [[[[0, 128, 255]]]]}).encode(), Limits())
    assert parsed.row_format and parsed.images[0].tolist() == [[[0, 128, 255]]] and parsed.images[0].dtype == np.uint8


def test_concurrent_requests_all_get_their_own_answers(client, tiny_artifacts, images):
    expected = _expected(tiny_artifacts["tflite_int8"], images)
    answers: dict[int, dict] = {}

    def ask(i: int) -> None:
        body = {"instances": [{"b64": _png(cv2.cvtColor(images[i % len(images)], cv2.COLOR_RGB2BGR))}]}
        answers[i] = client.post("/v1/models/tiny:predict", json=body).json()["predictions"][0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answers[i] == expected[i % len(images)] for i in range(24))


def test_the_serve_command_names_a_missing_model_and_the_module_entry_point_exists(tmp_path, capsys):
    from edgekit.cli import main
    from runtimes.serving.cli import main as serve_main

    assert main(["serve", str(tmp_path / "missing.tflite")]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert serve_main([str(tmp_path / "missing.tflite")]) == 2
    assert "serve: error: model file not found" in capsys.readouterr().err


def _request(method: str, path: str, body: bytes = b"") -> object:
    """A Starlette request without a server: the ASGI scope and a receive that hands over `body`."""
    from starlette.requests import Request

    sent = []

    async def receive() -> dict:
        if sent:
            return {"type": "http.disconnect"}
        sent.append(True)
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": method, "path": path, "headers": headers, "query_string": b""}
    scope["path_params"] = {"rest": path.removeprefix("/v1/models/")}
    return Request(scope, receive)


def test_the_model_routes_answer_without_a_server(tiny_artifacts, images):
    """ModelRoutes alone: :predict, metadata, a wrong version and a wrong verb, each with its status and body."""
    import asyncio

    from runtimes.serving.app import Draining, ModelRoutes, ServeConfig

    with open_model(tiny_artifacts["tflite_int8"]) as model:
        routes = ModelRoutes(model, ServeConfig("tiny"), Draining())
        body = json.dumps({"instances": [{"b64": _png(cv2.cvtColor(images[1], cv2.COLOR_RGB2BGR))}]}).encode()
        expected = _expected(tiny_artifacts["tflite_int8"], images[1:2])

        def call(method: str, path: str, payload: bytes = b"") -> tuple[int, dict]:
            response = asyncio.run(routes.models(_request(method, path, payload)))
            return response.status_code, json.loads(response.body)

        assert call("POST", "/v1/models/tiny:predict", body) == (200, {"predictions": expected})
        status, metadata = call("GET", "/v1/models/tiny/metadata")
        assert status == 200 and metadata["model_spec"]["name"] == "tiny"
        assert call("GET", "/v1/models/tiny/versions/7")[0] == 404
        assert call("GET", "/v1/models/tiny:predict") == (405, {"error": "unsupported: GET :predict; POST :predict"})
        assert routes.predict(body) == {"predictions": expected}  # the worker thread's job, called directly
