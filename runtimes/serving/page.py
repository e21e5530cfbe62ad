"""The live page of `edgekit serve` and the headers every response carries.

The page echoes nothing from the request: the model's name and task are HTML-escaped, the token never
appears in it (a browser presents it once as ``/?token=`` and is given a cookie instead, see gate.py),
and its one script and style are allowed by their hashes in the Content-Security-Policy, so no other
script can run on the device's origin.
"""

from __future__ import annotations

import base64
import hashlib
import html

STYLE = (
    "body{font-family:sans-serif;background:#111;color:#eee;margin:1em} "
    "img{width:min(100%,960px);border:1px solid #444}"
    " #result{font-family:monospace;white-space:pre-wrap}"
)
SCRIPT = """
const events = new EventSource("results");
events.onmessage = (event) => {
  const r = JSON.parse(event.data);
  const fps = (r.fps || 0).toFixed(1), latency = (r.latency_ms || 0).toFixed(1);
  const count = r.count ? `, crossed ${r.count.total} (in ${r.count.in}, out ${r.count.out})` : "";
  document.getElementById("stats").textContent = `frame ${r.sequence}, ${fps} FPS, ${latency} ms${count}`;
  document.getElementById("result").textContent = JSON.stringify(r, null, 1);
};
"""
LIVE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{name} - edgekit</title><style>{style}</style></head>
<body><h1>{name}</h1><p>{task}: <span id="stats">waiting for frames</span></p>
<img id="live" src="stream.mjpg" alt="live view">
<pre id="result"></pre>
<script>{script}</script></body></html>
"""
NO_SOURCE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{name} - edgekit</title><style>{style}</style></head>
<body><h1>{name}</h1><p>No --source: POST /v1/models/{name}:predict</p></body></html>
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; img-src 'self'; connect-src 'self'; script-src {_hash(SCRIPT)}; "
    f"style-src {_hash(STYLE)}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def live_page(name: str, task: str, live: bool) -> str:
    """The page at `/`: the annotated stream and the latest result when there is a live source."""
    template = LIVE_PAGE if live else NO_SOURCE_PAGE
    return template.format(name=html.escape(name), task=html.escape(task), style=STYLE, script=SCRIPT)
