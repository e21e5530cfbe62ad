"""The web app of `edgekit serve`: TF Serving's REST API, a live page, server-sent results, a health check.

Starlette on uvicorn: small (a Pi installs it in seconds: pure Python, plus httptools' C parser and
uvloop, aarch64 wheels both, which uvicorn picks up when present), asynchronous, so a viewer that
reads slowly waits on its own socket and holds neither the camera loop (a thread of its own, see
live.py) nor the other clients.

The event loop only moves bytes. A prediction takes one of `max_predicts_in_flight` slots before its
body is read (the rest wait up to `queue_timeout_s`, then 503), and everything after the read runs on a
worker thread: JSON, base64, the header checks, reserving its pixels from the global budget, decoding,
preprocessing and inference (one at a time: a backend's interpreter is not re-entrant). So /healthz and
the live stream answer while the largest allowed request is worked on.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from runtimes.deps import require
from runtimes.errors import InputError, RequestError
from runtimes.serving.budget import Budget, BudgetExhausted
from runtimes.serving.gate import Gate
from runtimes.serving.limits import Limits
from runtimes.serving.live import LiveFeed
from runtimes.serving.page import live_page
from runtimes.serving.rest import model_metadata, model_status, predict_response, read_predict
from runtimes.vocabulary import predict_terms, rest_terms

FRAME_POLL_SECONDS = 0.01  # how often a viewer looks for a newer frame (no thread per viewer)
VERSION = 1


@dataclass
class ServeConfig:
    """What `edgekit serve` was told: the model's served name, the token (None: open), the request limits, and the
    Host header values it answers (None: any, as with a token)."""

    name: str
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    allowed_hosts: frozenset[bytes] | None = None
    predict_options: dict[str, Any] = field(default_factory=dict)  # serve's flags: the defaults of every request


class Draining:
    """Set once shutdown begins: waiting predictions get 503, live streams end, nothing new starts."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def begin(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()


async def _acquire(slots: asyncio.Semaphore, seconds: float) -> bool:
    """A slot within `seconds`, or False (asyncio.timeout where there is one: wait_for before 3.12 can lose a slot)."""
    try:
        if hasattr(asyncio, "timeout"):
            async with asyncio.timeout(seconds):
                await slots.acquire()
        else:  # Python 3.10
            await asyncio.wait_for(slots.acquire(), seconds)
    except (TimeoutError, asyncio.TimeoutError):
        return False
    return True


def error(status: int, message: str) -> Any:
    """A JSON error answer; a 503 asks the client to retry in a second."""
    responses = require("starlette.responses", extra="serve", package="starlette")
    return responses.JSONResponse(
        {"error": message}, status_code=status, headers={"retry-after": "1"} if status == 503 else None
    )


class ModelRoutes:
    """TensorFlow Serving's paths for one model: status, metadata and :predict (testable without a server)."""

    def __init__(
        self, model: Any, config: ServeConfig, draining: Draining, workers: ThreadPoolExecutor | None = None
    ) -> None:
        self.model, self.config, self.draining, self.limits = model, config, draining, config.limits
        limits = config.limits
        self.lock = threading.Lock()  # one inference at a time: a backend's interpreter is not re-entrant
        self.workers = workers or ThreadPoolExecutor(
            limits.max_predicts_in_flight, thread_name_prefix="edgekit-predict"
        )
        self.slots = asyncio.Semaphore(limits.max_predicts_in_flight)
        self.pixels = Budget(limits.max_pixels_in_flight)
        self.task, self.labels = model.task, model.labels
        self.head = model.contract.head if model.contract is not None else {}
        self.options = {**config.predict_options, **self.task.serving_options(self.labels)}
        self.parameters = set(predict_terms(self.task.name)) & set(rest_terms())
        self.contract = model.contract.to_dict() if model.contract is not None else None
        self.responses = require("starlette.responses", extra="serve", package="starlette")
        self.requests = require("starlette.requests", extra="serve", package="starlette")

    def predict(self, body: bytes) -> dict[str, Any]:
        """A worker thread's whole job for one request: check, decode within the pixel budget, infer, answer."""
        pending = read_predict(body, self.limits)
        del body
        options = {**self.options, **self._parameters(pending.parameters)}
        try:
            with self.pixels.take(pending.pixels, self.limits.queue_timeout_s):
                images, color = pending.for_model()
                with self.lock:
                    results = self.model.predict(images, color=color, **options)
        except BudgetExhausted as exc:
            raise RequestError(
                503, f"busy: the pixels being decoded for other requests leave no room ({exc}); retry"
            ) from None
        except InputError as exc:
            raise RequestError(400, str(exc)) from None
        answers = [self.task.serving_prediction(result, self.labels, self.head) for result in results]
        return predict_response(answers, pending.row_format)

    def _parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """A request's ``"parameters"`` that this model's task takes; another task's are refused (400)."""
        for name in parameters:
            if name not in self.parameters:
                raise RequestError(
                    400,
                    f'"parameters": {name!r} does not apply to a {self.task.role}; it takes '
                    f"{', '.join(sorted(self.parameters)) or 'none'}",
                )
        return parameters

    async def body_of(self, request: Any) -> bytes:
        """The request's body, refused (413) as soon as it passes the limit, declared or streamed."""
        limit = self.limits.max_body_bytes
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

    async def answer_predict(self, request: Any) -> Any:
        """POST :predict: a slot (or 503 after the queue timeout), the body, then the worker thread's answer."""
        limits = self.limits
        if self.draining:
            return error(503, "shutting down")
        if not await _acquire(self.slots, limits.queue_timeout_s):
            return error(
                503,
                f"busy: {limits.max_predicts_in_flight} predictions in flight for over "
                f"{limits.queue_timeout_s:g} s; retry",
            )
        try:
            if self.draining:
                return error(503, "shutting down")
            body = await self.body_of(request)
            answer = await asyncio.get_running_loop().run_in_executor(self.workers, self.predict, body)
            return self.responses.JSONResponse(answer)
        except RequestError as exc:
            return error(exc.status, exc.message)
        except self.requests.ClientDisconnect:
            return error(400, "the client closed the connection before sending the whole body")
        finally:
            self.slots.release()

    async def models(self, request: Any) -> Any:
        """/v1/models/<name>[/versions/<v>][/metadata | :predict], TensorFlow Serving's paths."""
        path, _, verb = request.path_params["rest"].partition(":")
        name, *rest = path.split("/")
        if len(rest) >= 2 and rest[0] == "versions":
            if rest[1] != str(VERSION):
                return error(
                    404,
                    f"Servable not found for request: Specific({name[:100]}, {rest[1][:20]}); "
                    f"this server has version {VERSION}",
                )
            rest = rest[2:]
        if name != self.config.name:
            return error(
                404, f"Servable not found for request: Latest({name[:100]}); this server serves {self.config.name!r}"
            )
        if verb:
            if verb != "predict" or rest or request.method != "POST":
                return error(
                    404 if verb != "predict" else 405, f"unsupported: {request.method} :{verb[:40]}; POST :predict"
                )
            return await self.answer_predict(request)
        if request.method not in ("GET", "HEAD"):
            return error(405, f"{request.method} is not served here; GET for status and metadata, POST :predict")
        if rest == ["metadata"]:
            spec = self.task.serving_spec(self.labels, self.head)
            return self.responses.JSONResponse(model_metadata(self.config.name, VERSION, spec, self.contract))
        if rest:
            return error(404, f"no such resource: /v1/models/{request.path_params['rest'][:100]}")
        return self.responses.JSONResponse(model_status(VERSION))


class LiveRoutes:
    """The live view (page, MJPEG stream, latest frame, server-sent results) and the health check."""

    def __init__(self, model: Any, config: ServeConfig, feed: LiveFeed | None, draining: Draining) -> None:
        self.model, self.config, self.feed, self.draining = model, config, feed, draining
        self.responses = require("starlette.responses", extra="serve", package="starlette")

    async def health(self, request: Any) -> Any:
        feed, draining = self.feed, self.draining
        live = None
        if feed is not None:
            live = {
                "running": feed.running,
                "frames": feed.latest().number,
                "fps": round(feed.fps, 2),
                "error": feed.error,
            }
        return self.responses.JSONResponse(
            {
                "status": "draining" if draining else "ok",
                "model": self.config.name,
                "backend": self.model.backend,
                "live": live,
            },
            status_code=503 if draining else 200,
        )

    async def page(self, request: Any) -> Any:
        return self.responses.HTMLResponse(live_page(self.config.name, self.model.task.name, self.feed is not None))

    async def frames(self) -> AsyncIterator[Any]:
        """Each newer published frame while the feed runs (a poll, not a thread per viewer)."""
        feed = self.feed
        assert feed is not None  # the routes that stream check it first
        last = 0
        while feed.running and not self.draining:
            published = feed.latest()
            if published.number > last and published.jpeg:
                last = published.number
                yield published
            else:
                await asyncio.sleep(FRAME_POLL_SECONDS)

    def streamed(self, request: Any, parts: Any, media_type: str) -> Any:
        if request.method == "HEAD":  # the headers a GET would get, and no endless body
            return self.responses.Response(media_type=media_type, headers={"cache-control": "no-store"})
        return self.responses.StreamingResponse(parts(), media_type=media_type, headers={"cache-control": "no-store"})

    async def mjpeg(self, request: Any) -> Any:
        if self.feed is None:
            return error(404, "no live source: start edgekit serve with --source")

        async def parts() -> AsyncIterator[bytes]:
            async for published in self.frames():
                length = str(len(published.jpeg)).encode()
                yield (
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + length
                    + b"\r\n\r\n"
                    + published.jpeg
                    + b"\r\n"
                )

        return self.streamed(request, parts, "multipart/x-mixed-replace; boundary=frame")

    async def frame(self, request: Any) -> Any:
        feed = self.feed
        if feed is None or not feed.latest().jpeg:
            return error(404 if feed is None else 503, "no live source" if feed is None else "no frame yet")
        return self.responses.Response(
            feed.latest().jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"}
        )

    async def results(self, request: Any) -> Any:
        if self.feed is None:
            return error(404, "no live source: start edgekit serve with --source")

        async def events() -> AsyncIterator[str]:
            async for published in self.frames():
                yield f"data: {json.dumps(published.record)}\n\n"

        return self.streamed(request, events, "text/event-stream")


def create_app(
    model: Any,
    config: ServeConfig,
    feed: LiveFeed | None = None,
    *,
    draining: Draining | None = None,
    workers: ThreadPoolExecutor | None = None,
) -> Any:
    """The ASGI app for `model` (a runtimes Model); `feed` is the live view's running stream, if any.

    `draining` is the shutdown flag the server sets; `workers` the threads predictions run on (by default a pool of
    `max_predicts_in_flight` that the caller need not close: idle workers end with the process)."""
    require("starlette", extra="serve")
    from starlette.applications import Starlette
    from starlette.routing import Route

    draining = draining if draining is not None else Draining()
    rest = ModelRoutes(model, config, draining, workers)
    live = LiveRoutes(model, config, feed, draining)
    app = Starlette(
        routes=[
            Route("/", live.page),
            Route("/healthz", live.health),
            Route("/stream.mjpg", live.mjpeg),
            Route("/frame.jpg", live.frame),
            Route("/results", live.results),
            Route("/v1/models/{rest:path}", rest.models, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
        ]
    )
    return Gate(app, config.token, config.allowed_hosts)
