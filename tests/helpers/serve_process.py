"""`edgekit serve` in a process of its own, as the network meets it: its memory measurable, its file descriptor limit
lowered, SIGTERM sent to it. `served(...)` starts one and waits until it answers; run as a script it is that process.

The script takes one JSON argument: the model, port, token, `Limits` fields, the fd limit, and the live source:
None, "camera" (a fake camera of moving bars) or "hung-camera" (one whose read never returns).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    host: str
    port: int
    process: subprocess.Popen
    log: Path

    def status(self, field: str) -> int:
        """A /proc/<pid>/status field in kB (VmRSS: memory now, VmHWM: its peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(
    model: str | Path,
    tmp_path: Path,
    *,
    token: str | None = None,
    limits: dict[str, Any] | None = None,
    source: str | None = None,
    nofile: int | None = None,
    wait: float = 60.0,
) -> Iterator[Served]:
    port = free_port()
    config = {
        "model": str(model),
        "port": port,
        "token": token,
        "limits": limits or {},
        "source": source,
        "nofile": nofile,
    }
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, json.dumps(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    running = Served(f"http://127.0.0.1:{port}", "127.0.0.1", port, process, log)
    try:
        deadline = time.monotonic() + wait
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{running.output()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not listen within {wait} s:\n{running.output()[-3000:]}")
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _main(config: dict[str, Any]) -> None:
    import logging
    import resource
    import threading

    import numpy as np

    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    if config["nofile"]:
        resource.setrlimit(resource.RLIMIT_NOFILE, (config["nofile"], config["nofile"]))
    import runtimes.sources
    from runtimes.serving import Limits, serve
    from runtimes.sources import LiveSource

    class Camera:
        name = "fake-camera"

        def __init__(self, hung: bool) -> None:
            self.hung, self.count = hung, 0

        def open(self) -> None:
            pass

        def read(self) -> np.ndarray:
            if self.hung and self.count >= 5:
                threading.Event().wait()  # a driver that never returns
            time.sleep(0.03)  # about 30 frames a second, as a camera gives
            self.count += 1
            frame = np.zeros((120, 160, 3), np.uint8)
            frame[:, (self.count * 4) % 160] = 255
            return frame

        def close(self) -> None:
            if self.hung:
                threading.Event().wait()
            print("fake camera released", flush=True)

    if config["source"]:
        hung = config["source"] == "hung-camera"
        runtimes.sources.open_source = lambda spec: LiveSource(str(spec), Camera(hung), frame_timeout=3600)
    serve(
        config["model"],
        config["source"],
        "127.0.0.1",
        config["port"],
        token=config["token"],
        limits=Limits(**config["limits"]),
    )
    print("serve returned", flush=True)


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
