"""Who may ask `edgekit serve` anything: the ASGI layer in front of the app, before any handler runs.

- Host: without a token the server listens on loopback only and answers only requests addressed to it by
  a loopback name (127.0.0.1, localhost, [::1]) and its port, so a web page whose DNS name is rebound to
  127.0.0.1 cannot read the camera or results.
- Origin: a browser's request from another origin (another site's page POSTing a prediction, or reading
  the stream with fetch) is refused, token or not.
- Token: every request needs ``Authorization: Bearer <token>``. A browser cannot send that header for the
  live page's image and event stream, so ``/?token=<token>`` (the live page only, never the API) answers
  with a redirect to ``/`` and an HttpOnly, SameSite=Strict cookie that the live view's paths accept.
  Comparisons are constant-time.
- Every response carries the security headers of page.py (CSP, X-Frame-Options, nosniff, no referrer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from runtimes.serving.page import SECURITY_HEADERS

COOKIE = "edgekit_live"
VIEWER_PATHS = frozenset({"/", "/stream.mjpg", "/frame.jpg", "/results"})  # the cookie is good here, not on the API
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

Send = Callable[[dict], Awaitable[None]]


def loopback_hosts(host: str, port: int) -> frozenset[bytes]:
    """The Host header values a loopback server answers: its loopback names with its port (and without, on 80)."""
    names = {*LOOPBACK_NAMES, f"[{host}]" if ":" in host else host}
    values = {f"{name}:{port}" for name in names} | ({*names} if port == 80 else set())
    return frozenset(value.lower().encode() for value in values)


def _cookie_value(token: bytes) -> bytes:
    """What the browser keeps: derived from the token (not the token itself), so the cookie opens the live view only."""
    return hmac.new(token, b"edgekit live view", hashlib.sha256).hexdigest().encode()


def _cookies(header: bytes) -> dict[bytes, bytes]:
    cookies = {}
    for part in header.split(b";"):
        name, _, value = part.strip().partition(b"=")
        cookies.setdefault(name, value)
    return cookies


async def _answer(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Gate:
    """Wraps the app: Host and Origin checks, the token, and the security headers on every response."""

    def __init__(self, app: Any, token: str | None, allowed_hosts: frozenset[bytes] | None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.cookie = _cookie_value(self.token) if self.token else None
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: dict, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        host = hosts[0].lower() if len(hosts) == 1 else b""
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            shown = host.decode("latin-1")[:100] if len(hosts) == 1 else f"{len(hosts)} Host headers"
            await _answer(
                send,
                421,
                f"this server answers requests for {sorted(h.decode() for h in self.allowed_hosts)[0]} "
                f"(loopback only without a token), not {shown!r}: a page whose address points here "
                "cannot use it",
            )
            return
        origin = next((value for name, value in scope["headers"] if name == b"origin"), None)
        if origin is not None and origin.lower() not in (b"http://" + host, b"https://" + host):
            await _answer(
                send,
                403,
                f"cross-origin request from {origin.decode('latin-1')[:100]!r} refused: "
                "only this server's own page and non-browser clients may call it",
            )
            return
        if self.token is None or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/" and scope.get("query_string"):
            given = (parse_qs(scope["query_string"].decode("latin-1")).get("token") or [""])[0].encode("latin-1")
            if hmac.compare_digest(given, self.token):
                cookie = COOKIE.encode() + b"=" + self.cookie + b"; Path=/; HttpOnly; SameSite=Strict"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", b"/"), (b"set-cookie", cookie), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        await _answer(
            send,
            401,
            "missing or wrong token: send Authorization: Bearer <token> (in a browser, open /?token=<token> once)",
            [(b"www-authenticate", b"Bearer")],
        )

    def _authorized(self, scope: dict) -> bool:
        bearer = cookie = b""
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                bearer = value[7:].strip()
            elif name == b"cookie":
                cookie = _cookies(value).get(COOKIE.encode(), b"")
        if bearer:
            return hmac.compare_digest(bearer, self.token or b"")
        return bool(cookie) and scope["path"] in VIEWER_PATHS and hmac.compare_digest(cookie, self.cookie or b"")


def _with_security_headers(send: Send) -> Send:
    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            names = {name for name, _ in message.get("headers", [])}
            extra = [header for header in SECURITY_HEADERS if header[0] not in names]
            if b"cache-control" not in names:
                extra.append((b"cache-control", b"no-store"))
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
