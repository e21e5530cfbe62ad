"""edgekit serve against real clients: TensorFlow Serving's own request and response messages (tensorflow-serving-api),
and the live page in a real headless Chromium driven by Playwright, on a generated video. Both packages are installed
into cached folders (no network at run time after that); a test skips with the reason when that cannot be done
(fails in CI: tests/helpers/needs.py); `make warm` fills the caches ahead of time (tests/helpers/caches.py)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import caches
from helpers.needs import missing, need_module

from runtimes import open_model
from runtimes.serving import start

pytestmark = pytest.mark.installs  # fills a cache on first use (tests/helpers/caches.py)

httpx = need_module("httpx", extra="dev")
need_module("uvicorn", extra="serve")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "runs" / "test-artifacts"


@pytest.fixture(scope="module")
def serving_api():
    """tensorflow_serving.apis (its messages import TensorFlow's protos: the installed TensorFlow's, so no deps)."""
    tf = need_module("tensorflow", extra="train")
    try:
        site = caches.tf_serving_site()
    except caches.CacheUnavailable as exc:
        missing(str(exc))
    sys.path.insert(0, str(site))
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as exc:
        missing(f"tensorflow-serving-api does not import beside this TensorFlow: {exc}")
    finally:
        sys.path.remove(str(site))
    return tf, predict_pb2


def _to_rest(request, tf) -> dict:
    """A PredictRequest message as TF Serving's REST JSON (columnar): string tensors as {"b64": ...}, numbers as
    lists."""
    inputs = {}
    for name, proto in request.inputs.items():
        array = tf.make_ndarray(proto)
        inputs[name] = (
            [{"b64": base64.b64encode(v).decode()} for v in array.ravel()] if array.dtype == object else array.tolist()
        )
    return {"signature_name": request.model_spec.signature_name, "inputs": inputs}


def _from_rest(body: dict, predict_pb2, tf):
    """TF Serving's columnar REST answer as a PredictResponse message."""
    response = predict_pb2.PredictResponse()
    for name, values in body["outputs"].items():
        array = np.array(values, dtype=object if name.startswith("label") and name != "label_id" else None)
        response.outputs[name].CopyFrom(tf.make_tensor_proto(array.astype(bytes) if array.dtype == object else array))
    return response


def test_a_tf_serving_client_gets_model_predicts_answers(serving_api, exported, shapes_splits):
    tf, predict_pb2 = serving_api
    path = exported.result("tflite:int8").path
    test = shapes_splits[2]
    files = list(test.sources[:12])
    rgb = np.stack([cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB) for f in files])
    with open_model(path) as model:
        expected = [model.predict(f, top_k=len(model.labels)) for f in files]
        labels = model.labels
    with start(path, port=0) as server:
        name = httpx.get(server.url + "/healthz").json()["model"]
        for tensor in (
            tf.make_tensor_proto(rgb),  # pixels (DT_UINT8)
            tf.make_tensor_proto(np.array([open(f, "rb").read() for f in files], dtype=object)),
        ):  # encoded
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = name, "serving_default"
            request.inputs["images"].CopyFrom(tensor)
            answer = httpx.post(
                f"{server.url}/v1/models/{request.model_spec.name}:predict", json=_to_rest(request, tf), timeout=60
            )
            assert answer.status_code == 200, answer.text
            response = _from_rest(answer.json(), predict_pb2, tf)
            scores = tf.make_ndarray(response.outputs["scores"])
            assert scores.shape == (12, len(labels))
            assert tf.make_ndarray(response.outputs["label_id"]).tolist() == [r.index for r in expected]
            assert [v.decode() for v in tf.make_ndarray(response.outputs["label"])] == [r.label for r in expected]
            for row, result in zip(scores, expected):
                np.testing.assert_allclose(row, [dict(result.top_k)[label] for label in labels], atol=1e-6)


@pytest.fixture(scope="module")
def browser_site():
    try:
        caches.chromium()
        return caches.playwright_site()
    except caches.CacheUnavailable as exc:
        missing(str(exc))


BROWSE = r"""
import json, sys, time
from playwright.sync_api import sync_playwright
url, out, chromium = sys.argv[1], sys.argv[2], sys.argv[3]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(url)
    page.wait_for_function("document.getElementById('stats').textContent.includes('FPS')", timeout=60000)
    first = page.text_content("#stats")
    live = page.locator("#live")
    live.screenshot(path=out + "/live_1.png")
    records = []
    deadline = time.time() + 20
    while time.time() < deadline and not any(r.get("detections") for r in records):
        records.append(json.loads(page.text_content("#result") or "{}"))
        time.sleep(0.1)
    time.sleep(0.5)
    live.screenshot(path=out + "/live_2.png")
    page.screenshot(path=out + "/serve_live_page.png")
    size = page.evaluate("[document.getElementById('live').naturalWidth, "
                         "document.getElementById('live').naturalHeight]")
    print(json.dumps({"stats": [first, page.text_content("#stats")], "size": size,
                      "detections": max(len(r.get("detections", [])) for r in records)}))
    browser.close()
"""


@pytest.mark.slow
def test_the_live_page_in_a_headless_browser_shows_changing_annotated_frames(
    browser_site, detector_exported, tracking_clip, tmp_path
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "browse.py"
    script.write_text(BROWSE)
    with start(
        detector_exported.result("tflite:fp32").path, source=str(tracking_clip.path), port=0, token="page-token"
    ) as server:
        env = {**os.environ, "PYTHONPATH": str(browser_site)}
        done = subprocess.run(
            [sys.executable, str(script), f"{server.url}/?token=page-token", str(ARTIFACTS), shutil.which("chromium")],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"live page: {seen}; screenshots in {ARTIFACTS}")
    first_frame, last_frame = (int(text.split(",")[0].split()[-1]) for text in seen["stats"])
    assert last_frame > first_frame  # frames keep coming
    assert seen["size"] == [128, 128] and seen["detections"] >= 1  # the clip's frames, with boxes found on them
    one, two = (cv2.imread(str(ARTIFACTS / name)) for name in ("live_1.png", "live_2.png"))
    assert one is not None and two is not None and one.shape == two.shape
    assert np.abs(one.astype(int) - two.astype(int)).mean() > 1.0  # the picture moved
    height, width = one.shape[:2]
    corners = [
        one[rows, cols]
        for rows in (slice(None, height // 4), slice(-height // 4, None))
        for cols in (slice(None, width // 2), slice(-width // 2, None))
    ]
    # the overlay's text box (white text on black, thin on a small frame, blurred by the page's scaling) sits in
    # one corner, the one with the least drawn under it
    assert any((c.max(axis=2) < 40).mean() > 0.4 and (c.min(axis=2) > 150).mean() > 0.01 for c in corners)
