"""The web app of `edgekit serve`: TF Serving's REST API, a live page, server-sent results, a health check.

Starlette on uvicorn: small (a Pi installs it in seconds: pure Python, plus httptools' C parser and
uvloop, aarch64 wheels both, which uvicorn picks up when present),
asynchronous, so a viewer that reads slowly waits on its own socket and holds neither the camera
loop (a thread of its own, see live.py) nor the other clients. Predictions run one at a time on a
worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from runtimes._deps import require
from runtimes.serving.live import LiveFeed
from runtimes.serving.rest import Limits, RequestError, model_metadata, model_status, parse_predict, predict_response

FRAME_POLL_SECONDS = 0.01  # how often a viewer looks for a newer frame (no thread per viewer)
VERSION = 1


@dataclass
class ServeConfig:
    """What `edgekit serve` was told: the model's served name, the token (None: open), the request limits."""

    name: str
    token: str | None = None
    limits: Limits = field(default_factory=Limits)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{name} - edgekit</title>
<style>body{{font-family:sans-serif;background:#111;color:#eee;margin:1em}} img{{width:min(100%,960px);border:1px solid #444}}
#result{{font-family:monospace;white-space:pre-wrap}}</style></head>
<body><h1>{name}</h1><p>{task}: <span id="stats">waiting for frames</span></p>
<img id="live" src="stream.mjpg{query}" alt="live view">
<pre id="result"></pre>
<script>
const events = new EventSource("results{query}");
events.onmessage = (event) => {{
  const r = JSON.parse(event.data);
  document.getElementById("stats").textContent = `frame ${{r.frame}}, ${{(r.fps || 0).toFixed(1)}} FPS, ${{(r.latency_ms || 0).toFixed(1)}} ms`;
  document.getElementById("result").textContent = JSON.stringify(r, null, 1);
}};
</script></body></html>
"""


def create_app(model: Any, config: ServeConfig, feed: LiveFeed | None = None) -> Any:
    """The Starlette app for `model` (a runtimes Model); `feed` is the live view's running stream, if any."""
    require("starlette", extra="serve")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    lock = threading.Lock()  # one prediction at a time: a backend's interpreter is not re-entrant
    task, labels = model.task, model.labels
    head = model.contract.head if model.contract is not None else {}
    options = task.serving_options(labels)
    contract = model.contract.to_dict() if model.contract is not None else None

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def predictions(images: list[Any]) -> list[dict[str, Any]]:
        with lock:
            results = model.predict(images, **options)
        return [task.serving_prediction(result, labels, head) for result in results]

    async def body_of(request: Request) -> bytes:
        limit = config.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"request body of {declared} bytes is over the {limit} byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"request body over the {limit} byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def models(request: Request) -> Response:
        """/v1/models/<name>[/versions/<v>][/metadata | :predict], TensorFlow Serving's paths."""
        path = request.path_params["rest"]
        path, _, verb = path.partition(":")
        parts = path.split("/")
        name, rest = parts[0], parts[1:]
        if len(rest) >= 2 and rest[0] == "versions":
            if rest[1] != str(VERSION):
                return error(404, f"Servable not found for request: Specific({name}, {rest[1]}); this server has version {VERSION}")
            rest = rest[2:]
        if name != config.name:
            return error(404, f"Servable not found for request: Latest({name}); this server serves {config.name!r}")
        if verb:
            if verb != "predict" or rest or request.method != "POST":
                return error(404 if verb != "predict" else 405, f"unsupported: {request.method} :{verb}; POST :predict")
            try:
                parsed = parse_predict(await body_of(request), config.limits)
                found = await run_in_threadpool(predictions, parsed.images)
            except RequestError as exc:
                return error(exc.status, exc.message)
            return JSONResponse(predict_response(found, parsed.row_format))
        if request.method != "GET":
            return error(405, f"{request.method} is not served here; GET for status and metadata, POST :predict")
        if rest == ["metadata"]:
            return JSONResponse(model_metadata(config.name, VERSION, task.serving_spec(labels, head), contract))
        if rest:
            return error(404, f"no such resource: /v1/models/{request.path_params['rest']}")
        return JSONResponse(model_status(VERSION))

    async def health(request: Request) -> Response:
        live = None
        if feed is not None:
            live = {"running": feed.running, "frames": feed.latest().number, "fps": round(feed.fps, 2), "error": feed.error}
        return JSONResponse({"status": "ok", "model": config.name, "backend": model.backend, "live": live})

    def query(request: Request) -> str:
        token = request.query_params.get("token")
        return f"?token={token}" if token else ""

    async def page(request: Request) -> Response:
        if feed is None:
            return HTMLResponse(f"<!doctype html><title>{config.name}</title><h1>{config.name}</h1><p>No --source: "
                                f"POST /v1/models/{config.name}:predict</p>")
        return HTMLResponse(PAGE.format(name=config.name, task=task.name, query=query(request)))

    async def frames(last: int) -> AsyncIterator[Any]:
        assert feed is not None
        while feed.running:
            published = feed.latest()
            if published.number > last and published.jpeg:
                last = published.number
                yield published
            else:
                await asyncio.sleep(FRAME_POLL_SECONDS)

    async def mjpeg(request: Request) -> Response:
        if feed is None:
            return error(404, "no live source: start edgekit serve with --source")

        async def parts() -> AsyncIterator[bytes]:
            async for published in frames(0):
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(published.jpeg)).encode()
                       + b"\r\n\r\n" + published.jpeg + b"\r\n")

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    async def frame(request: Request) -> Response:
        if feed is None or not feed.latest().jpeg:
            return error(404 if feed is None else 503, "no live source" if feed is None else "no frame yet")
        return Response(feed.latest().jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def results(request: Request) -> Response:
        if feed is None:
            return error(404, "no live source: start edgekit serve with --source")

        async def events() -> AsyncIterator[str]:
            async for published in frames(0):
                yield f"data: {json.dumps(published.record)}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    app = Starlette(routes=[
        Route("/", page), Route("/healthz", health), Route("/stream.mjpg", mjpeg), Route("/frame.jpg", frame),
        Route("/results", results), Route("/v1/models/{rest:path}", models, methods=["GET", "POST", "PUT", "DELETE"]),
    ])
    return _guarded(app, config.token)


def _guarded(app: Any, token: str | None) -> Any:
    """Every request needs the token (Authorization: Bearer, or ?token= for a browser's page), when one is set."""
    if not token:
        return app
    expected = token.encode()

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        given = given[7:] if given.lower().startswith(b"bearer ") else b""
        if not given:
            from urllib.parse import parse_qs

            given = (parse_qs(scope.get("query_string", b"").decode()).get("token") or [""])[0].encode()
        if hmac.compare_digest(given, expected):
            await app(scope, receive, send)
            return
        body = json.dumps({"error": "missing or wrong token: send Authorization: Bearer <token> (or ?token= in a browser)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})

    return guarded
