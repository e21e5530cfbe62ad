"""`edgekit serve`: a model behind TensorFlow Serving's REST API, with a live view of a camera in the browser.

Device side: numpy, OpenCV, one runtime, Starlette and uvicorn (the `serve` extra); never TensorFlow.

    python -m runtimes.serving model.tflite --source 0 --host 0.0.0.0 --token s3cret

Endpoints: ``POST /v1/models/<name>:predict`` and ``GET /v1/models/<name>[/metadata]`` as TF Serving
has them (rest.py), ``/`` the live page (annotated MJPEG, FPS, latency), ``/stream.mjpg``,
``/frame.jpg``, ``/results`` (server-sent events, one JSON record a frame) and ``/healthz``.
Listens on 127.0.0.1 unless told otherwise; with a token every request needs it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes._deps import require
from runtimes.serving.app import ServeConfig, create_app
from runtimes.serving.live import LiveFeed
from runtimes.serving.rest import Limits, RequestError

log = logging.getLogger("edgekit.serve")

DEFAULT_PORT = 8500  # TensorFlow Serving's gRPC port is 8500 and REST 8501; edgekit serves REST only, on the first
__all__ = ["DEFAULT_PORT", "Limits", "LiveFeed", "RequestError", "ServeConfig", "Server", "create_app", "serve"]


@dataclass
class Server:
    """A running server (a uvicorn thread) and what it serves; `stop()` shuts it down and releases the camera."""

    url: str
    feed: LiveFeed | None
    _uvicorn: Any
    _thread: threading.Thread
    _models: tuple[Any, ...]

    def stop(self, timeout: float = 15.0) -> None:
        if self.feed is not None:
            self.feed.stop()  # first: the live page's streams end, so the server can close them
        self._uvicorn.should_exit = True
        self._thread.join(timeout)
        for model in self._models:
            model.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _build(model_path: str | Path, source: Any, name: str | None, token: str | None, limits: Limits | None,
           stream_options: dict[str, Any] | None, **load_options: Any) -> tuple[Any, LiveFeed | None, ServeConfig, tuple]:
    from runtimes.model import open_model
    from runtimes.sources import open_source

    model = open_model(model_path, **load_options)
    model.require_preprocessing()
    config = ServeConfig(name or (model.contract.model_name if model.contract else Path(model_path).stem), token,
                         limits or Limits())
    feed, models = None, (model,)
    if source is not None:
        live_model = open_model(model_path, **load_options)  # its own interpreter: requests never wait on frames
        feed = LiveFeed(live_model, source, open_source, stream_options).start()
        models = (model, live_model)
    return create_app(model, config, feed), feed, config, models


def start(model_path: str | Path, source: Any = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
          name: str | None = None, token: str | None = None, limits: Limits | None = None,
          stream_options: dict[str, Any] | None = None, **load_options: Any) -> Server:
    """Serve in a background thread and return once it listens (tests, notebooks, apps that do more)."""
    uvicorn = require("uvicorn", extra="serve")
    app, feed, config, models = _build(model_path, source, name, token, limits, stream_options, **load_options)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3,
                                           access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=server.run, name="edgekit-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            if feed is not None:
                feed.stop()
            raise RuntimeError(f"edgekit serve could not listen on {host}:{port} (port in use?)")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1] if port == 0 else port
    log.info("serving %s on http://%s:%d", config.name, host, bound)
    return Server(f"http://{host}:{bound}", feed, server, thread, models)


def serve(model_path: str | Path, source: Any = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
          name: str | None = None, token: str | None = None, limits: Limits | None = None,
          stream_options: dict[str, Any] | None = None, **load_options: Any) -> None:
    """Serve until Ctrl-C or SIGTERM (systemd's stop); the camera is released before this returns.

    Example:
        >>> serve("shapes_int8.tflite", source=0, host="0.0.0.0", token="s3cret")
    """
    uvicorn = require("uvicorn", extra="serve")
    app, feed, config, models = _build(model_path, source, name, token, limits, stream_options, **load_options)

    class Uvicorn(uvicorn.Server):  # type: ignore[misc,name-defined]
        def handle_exit(self, sig: int, frame: Any) -> None:
            if feed is not None:
                feed.stop()  # first: the live page's endless responses end, so shutdown does not wait on them
            super().handle_exit(sig, frame)

    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        log.warning("serving on %s without a token: anyone on the network can use it (pass --token)", host)
    log.info("serving %s on http://%s:%d (Ctrl-C to stop)", config.name, host, port)
    try:
        Uvicorn(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3,
                               access_log=False, lifespan="off")).run()
    finally:
        if feed is not None:
            feed.stop()
        for model in models:
            model.close()
