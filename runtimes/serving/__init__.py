"""`edgekit serve`: a model behind TensorFlow Serving's REST API, with a live view of a camera in the browser.

Device side: numpy, OpenCV, one runtime, Starlette and uvicorn (the `serve` extra); never TensorFlow.

    EDGEKIT_SERVE_TOKEN=... python -m runtimes.serving model.tflite --source 0 --host 0.0.0.0

Endpoints: ``POST /v1/models/<name>:predict`` and ``GET /v1/models/<name>[/metadata]`` as TF Serving
has them (rest.py), ``/`` the live page (annotated MJPEG, FPS, latency), ``/stream.mjpg``,
``/frame.jpg``, ``/results`` (server-sent events, one JSON record a frame) and ``/healthz``.

Safe to leave on a network: without a token it listens on loopback only and answers only loopback Host
names (gate.py); another address needs a non-empty token, or `insecure=True` said out loud. Every
connection is capped and timed before the token is checked (protocol.py), every request's images are
sized from their headers before decoding (image_headers.py, rest.py), and the event loop never decodes or
infers (app.py). SIGTERM drains: waiting predictions get 503, those in progress are answered, the camera
is released off the loop, the models are closed, and `serve` returns (exit status 0).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from runtimes.arguments import PREDICT_FLAGS, checked_options
from runtimes.deps import require
from runtimes.errors import RequestError, ServeConfigError
from runtimes.serving.app import Draining, ServeConfig, create_app
from runtimes.serving.gate import loopback_hosts
from runtimes.serving.limits import Limits
from runtimes.serving.live import LiveFeed
from runtimes.serving.protocol import connection_cap, guarded_protocol

log = logging.getLogger("edgekit.serve")

DEFAULT_PORT = 8500  # TensorFlow Serving's gRPC port is 8500 and REST 8501; edgekit serves REST only, on the first
GRACEFUL_SECONDS = 10  # how long shutdown waits for requests in progress (the systemd unit allows 20 s to stop)
CAMERA_RELEASE_SECONDS = 5  # how long shutdown waits for a camera that hangs before exiting without it
__all__ = [
    "DEFAULT_PORT",
    "Limits",
    "LiveFeed",
    "RequestError",
    "ServeConfig",
    "ServeConfigError",
    "Server",
    "create_app",
    "is_loopback",
    "serve",
    "start",
]


def is_loopback(host: str) -> bool:
    """Whether `host` is an address of this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Refuse what would serve a camera and a model to a network without a token (ServeConfigError says how)."""
    if token is not None and not token.strip():
        raise ServeConfigError(
            "the token is empty: an empty token would let anyone in; give a non-empty token "
            "(--token-file FILE or EDGEKIT_SERVE_TOKEN), or none to serve on 127.0.0.1 only"
        )
    if not token and not is_loopback(host) and not insecure:
        raise ServeConfigError(
            f"refusing to serve on {host} without a token: anyone who can reach this machine could use "
            "its camera and model. Give a token (--token-file FILE or EDGEKIT_SERVE_TOKEN), serve on "
            "127.0.0.1, or pass --insecure to serve openly anyway"
        )


@dataclass
class _Service:
    """Everything one server holds: models, the live feed, the app, its socket, and how to wind them down."""

    models: tuple[Any, ...]
    feed: LiveFeed | None
    config: ServeConfig
    app: Any
    sock: socket.socket
    draining: Draining
    workers: ThreadPoolExecutor
    _camera_release: threading.Thread | None = field(default=None)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def begin_shutdown(self) -> None:
        """Safe in a signal handler: flags the drain and releases the camera on a thread of its own."""
        if self.draining:
            return
        self.draining.begin()
        if self.feed is not None:
            self._camera_release = threading.Thread(target=self.feed.stop, name="edgekit-camera-release", daemon=True)
            self._camera_release.start()

    def close(self) -> None:
        """After the server has stopped: wait (bounded) for the camera, stop the workers, close the models."""
        self.begin_shutdown()
        if self._camera_release is not None:
            self._camera_release.join(CAMERA_RELEASE_SECONDS)
        self.workers.shutdown(wait=True, cancel_futures=True)
        camera_stuck = self.feed is not None and self.feed.running
        if camera_stuck:
            log.warning("the camera did not stop within %d s; exiting without waiting for it", CAMERA_RELEASE_SECONDS)
        for model in self.models[:1] if camera_stuck else self.models:  # a stuck camera thread still holds its model
            model.close()
        with contextlib.suppress(OSError):
            self.sock.close()
        log.info("edgekit serve stopped")


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the app is made (so its Host check knows the port, 0 included)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ServeConfigError(
            f"edgekit serve cannot listen on {host}:{port}: {exc.strerror or exc} (port in use, or "
            "not an address of this machine?)"
        ) from None
    sock.set_inheritable(True)
    return sock


def _prepare(
    model_path: str | Path,
    source: Any,
    host: str,
    port: int,
    name: str | None,
    token: str | None,
    insecure: bool,
    limits: Limits | None,
    stream_options: dict[str, Any] | None,
    realtime_files: bool,
    predict_options: dict[str, Any] | None = None,
    **load_options: Any,
) -> _Service:
    from runtimes.loading import open_model
    from runtimes.sources import open_source

    check_exposure(host, token, insecure)
    limits = limits or Limits()
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    models: tuple[Any, ...] = ()
    feed = None
    try:
        model = open_model(model_path, **load_options)
        models = (model,)
        model.require_preprocessing()
        allowed = loopback_hosts(host, bound) if not token and is_loopback(host) else None
        live = {key: value for key, value in (stream_options or {}).items() if key not in PREDICT_FLAGS}
        given = {**{k: v for k, v in (stream_options or {}).items() if k in PREDICT_FLAGS}, **(predict_options or {})}
        chosen = checked_options(given, model.task, Path(model_path).name)
        model.decoder.options(chosen)  # out-of-range values fail here, before anything listens
        config = ServeConfig(
            name or (model.contract.model_name if model.contract else Path(model_path).stem),
            token or None,
            limits,
            allowed,
            chosen,
        )
        if source is not None:
            live_model = open_model(model_path, **load_options)  # its own interpreter: requests never wait on frames
            models = (model, live_model)
            feed = LiveFeed(
                live_model,
                source,
                open_source,
                {**live, **chosen},
                threshold=chosen.get("threshold"),
                realtime_files=realtime_files,
            ).start()
        draining = Draining()
        workers = ThreadPoolExecutor(limits.max_predicts_in_flight, thread_name_prefix="edgekit-predict")
        app = create_app(model, config, feed, draining=draining, workers=workers)
    except BaseException:
        if feed is not None:
            feed.stop()
        for opened in models:
            opened.close()
        sock.close()
        raise
    return _Service(models, feed, config, app, sock, draining, workers)


def _uvicorn(service: _Service) -> Any:
    """A uvicorn server for `service`: the guarded protocol, no signal re-raised after a drain (exit status 0)."""
    uvicorn = require("uvicorn", extra="serve")
    require("httptools", extra="serve")
    limits = service.config.limits

    class Uvicorn(uvicorn.Server):  # type: ignore[misc,name-defined]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield  # start(): a thread of the caller's process, whose signals are the caller's
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig: int, frame: Any) -> None:
            service.begin_shutdown()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        service.app,
        http=guarded_protocol(limits, connection_cap(limits)),
        ws="none",
        lifespan="off",
        timeout_keep_alive=limits.keep_alive_timeout_s,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
        access_log=False,
        log_level="warning",
        log_config=None,
    )
    return Uvicorn(config)


@dataclass
class Server:
    """A running server (a uvicorn thread) and what it serves; `stop()` drains it and releases the camera."""

    url: str
    feed: LiveFeed | None
    _uvicorn: Any
    _thread: threading.Thread
    _service: _Service

    def stop(self, timeout: float = 15.0) -> None:
        self._service.begin_shutdown()
        self._uvicorn.should_exit = True
        self._thread.join(timeout)
        self._service.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    model_path: str | Path,
    source: Any = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    name: str | None = None,
    token: str | None = None,
    insecure: bool = False,
    limits: Limits | None = None,
    stream_options: dict[str, Any] | None = None,
    realtime_files: bool = True,
    predict_options: dict[str, Any] | None = None,
    **load_options: Any,
) -> Server:
    """Serve in a background thread and return once it listens (tests, notebooks, apps that do more); `port=0` picks a
    free port (`Server.url` says which). The arguments are `serve`'s."""
    service = _prepare(
        model_path,
        source,
        host,
        port,
        name,
        token,
        insecure,
        limits,
        stream_options,
        realtime_files,
        predict_options,
        **load_options,
    )
    server = _uvicorn(service)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [service.sock]}, name="edgekit-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            service.close()
            raise ServeConfigError(f"edgekit serve could not start on {service.url}")
        time.sleep(0.02)
    log.info("serving %s on %s", service.config.name, service.url)
    return Server(service.url, service.feed, server, thread, service)


def serve(
    model_path: str | Path,
    source: Any = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    name: str | None = None,
    token: str | None = None,
    insecure: bool = False,
    limits: Limits | None = None,
    stream_options: dict[str, Any] | None = None,
    realtime_files: bool = True,
    predict_options: dict[str, Any] | None = None,
    **load_options: Any,
) -> None:
    """Serve until Ctrl-C or SIGTERM (systemd's stop), then drain and return; the camera is released first.

    Args:
        model_path: a model file edgekit exported (.tflite, .onnx; a SavedModel folder where TensorFlow is).
        source: the live view's source (a camera index, a video, an rtsp:// URL, ``picamera2``), or None.
        host: the address to listen on; anything but loopback needs `token` (or `insecure`).
        port: the port (0: any free one).
        name: the model's name in the URLs (default: the contract's model name).
        token: required on every request (``Authorization: Bearer``); None serves loopback only.
        insecure: serve a non-loopback `host` without a token (anyone who reaches it may use it).
        limits: caps and deadlines (`Limits`).
        stream_options: the live stream's own options: ``track`` and ``count_line``.
        realtime_files: play a video file source at its own frame rate (False: as fast as it decodes).
        predict_options: predict()'s options for the live view and the defaults of ``:predict`` requests:
            ``threshold``, ``iou``, ``max_detections``, ``agnostic``, ``top_k`` (runtimes.vocabulary); a request's
            ``"parameters"`` override them.
        **load_options: `open_model`'s (``num_threads``).

    Raises:
        ServeConfigError: no token on an open address, an empty token, or the address cannot be used.

    Examples:
        >>> serve("shapes_int8.tflite", source=0, host="0.0.0.0", token=open("serve.token").read().strip())
    """
    service = _prepare(
        model_path,
        source,
        host,
        port,
        name,
        token,
        insecure,
        limits,
        stream_options,
        realtime_files,
        predict_options,
        **load_options,
    )
    if not token and insecure:
        log.warning("serving on %s without a token (--insecure): anyone who can reach it can use it", host)
    log.info("serving %s on %s (Ctrl-C to stop)", service.config.name, service.url)
    try:
        _uvicorn(service).run(sockets=[service.sock])
    finally:
        service.close()
