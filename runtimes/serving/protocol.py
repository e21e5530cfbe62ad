"""The HTTP connection of `edgekit serve`: uvicorn's httptools protocol with the limits a server on an open network
needs
before it knows who is asking.

uvicorn caps none of these with httptools (h11 caps the header size only): the request line and headers
are buffered without a cap or a deadline, a body may trickle forever, and a connection that never sends
a byte is kept. This protocol adds, per connection:

- a cap on the request line and headers (431 beyond it, counted as the bytes arrive, so a header that
  never ends is refused after `max_header_bytes`, not buffered);
- a deadline for them (408 and close; a connection that sent nothing is closed quietly), from the
  connection opening, or on a kept-alive connection from the next request's first byte (until then
  uvicorn's keep-alive timeout closes it);
- a deadline for the body, from its headers (408 and close);
- a cap on open connections: beyond it a new connection gets 503 and is closed, and the ones open are
  untouched. uvicorn's own keep-alive timeout closes idle connections between requests.

httptools (llhttp) is kept for its speed: the same parser the figures in bench/serve.py were measured on.
"""

from __future__ import annotations

import http
import json
import logging
import os
from typing import Any

from runtimes.serving.limits import Limits
from runtimes.serving.page import SECURITY_HEADERS

log = logging.getLogger("edgekit.serve")

HEADER_ENDS = (b"\r\n\r\n", b"\n\n")
FD_RESERVE = 24  # descriptors kept free beyond the connection cap: the camera, model files, the loop's own


def raw_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection (written straight to the socket)."""
    body = json.dumps({"error": message}).encode()
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name.decode()}: {value.decode()}" for name, value in SECURITY_HEADERS),
    ]
    if status == 503:
        lines.append("retry-after: 1")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def connection_cap(limits: Limits) -> int:
    """`limits.max_connections`, lowered to what the process's file descriptor limit leaves free now."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        open_now = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 32
    except (ImportError, OSError):  # no resource module (Windows) or no /proc: the configured cap
        return limits.max_connections
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    free = soft - open_now - FD_RESERVE
    if free < limits.max_connections:
        log.warning(
            "at most %d connections at once (file descriptor limit %d, %d in use): raise it with "
            "ulimit -n or LimitNOFILE= for more",
            max(free, 1),
            soft,
            open_now,
        )
    return max(1, min(limits.max_connections, free))


class GuardedConnection:
    """The limits of one HTTP connection, mixed into uvicorn's httptools protocol by `guarded_protocol` (which
    sets `_limits` and `_max_connections`): header bytes and deadlines, a body deadline, a connection cap, and
    no parser callback once this side has refused the connection."""

    _limits: Limits
    _max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: Any = None
        self._refused = False  # this side closed the connection: parser callbacks do nothing more
        self._over_cap = False  # refused at connection_made: uvicorn never saw it
        self._awaiting_headers = True  # the parser is between messages or in a request line and headers
        self._header_bytes = 0
        self._received_any = False
        self._tail = b""

    # -- connection ---------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        if len(self.connections) >= self._max_connections:
            self._refused = self._over_cap = True
            transport.write(
                raw_response(503, f"this server has its {self._max_connections} connections open: try again shortly")
            )
            transport.close()
            return
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._over_cap:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers:
            if not self._received_any and self._deadline is None:  # a kept-alive connection's next request begins
                self._arm(
                    self._limits.header_timeout_s,
                    408,
                    f"request headers not received within {self._limits.header_timeout_s:g} s",
                )
            self._received_any = True
            if not self._headers_fit(data):
                self._refuse(431, f"request line and headers over {self._limits.max_header_bytes} bytes")
                return
        super().data_received(data)

    # -- parser callbacks (none once this side has closed the connection) ---------------------
    def on_message_begin(self) -> None:
        if not self._refused:
            super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_headers = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self._limits.max_header_bytes:  # the byte count above misses a pipelined request's start
            self._refuse(431, f"request line and headers over {self._limits.max_header_bytes} bytes")
            return
        self._arm(
            self._limits.body_timeout_s, 408, f"request body not received within {self._limits.body_timeout_s:g} s"
        )
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The whole request is in (its body too, even after an early answer such as a 413): what comes next
        # is the next request's, timed from its first byte; until then uvicorn's keep-alive timeout applies.
        self._await_headers(deadline=False)
        if not self._refused:
            super().on_message_complete()

    # -- limits -------------------------------------------------------------------------------
    def _await_headers(self, deadline: bool = True) -> None:
        self._awaiting_headers, self._header_bytes, self._tail, self._received_any = True, 0, b"", False
        self._disarm()
        if deadline:
            self._arm(
                self._limits.header_timeout_s,
                408,
                f"request headers not received within {self._limits.header_timeout_s:g} s",
            )

    def _headers_fit(self, data: bytes) -> bool:
        """Whether the headers end within the cap, counting `data` as it arrives (a separator may straddle two)."""
        window, start = self._tail + data, self._header_bytes - len(self._tail)
        self._header_bytes += len(data)
        self._tail = window[-3:]
        if self._header_bytes <= self._limits.max_header_bytes:
            return True
        room = self._limits.max_header_bytes - start
        return any(window.find(end, 0, max(0, room)) >= 0 for end in HEADER_ENDS)

    def _arm(self, seconds: float, status: int, message: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, status, message)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, status: int, message: str) -> None:
        self._deadline = None
        if self._awaiting_headers and not self._received_any:
            self._close()  # an idle connection: nothing to answer
        else:
            self._refuse(status, message)

    def _refuse(self, status: int, message: str) -> None:
        answered = self.cycle is not None and self.cycle.response_started and not self._awaiting_headers
        if not self.transport.is_closing() and not answered:  # never a second answer to one request
            self.transport.write(raw_response(status, message))
        self._close()

    def _close(self) -> None:
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's receive() sees a disconnect; its answer goes nowhere
            self.cycle.message_event.set()
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: Limits, max_connections: int) -> type:
    """uvicorn's httptools protocol class with `limits`' header, deadline and connection caps (uvicorn's `http=`)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return type(
        "GuardedProtocol",
        (GuardedConnection, HttpToolsProtocol),
        {"_limits": limits, "_max_connections": max_connections},
    )
