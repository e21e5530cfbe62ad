"""Mutate model files and open each mutant in its own forked process: the fuzz harness of test_fuzz.py.

Usage: python tests/helpers/fuzz_artifacts.py JOB.json  (writes one JSON list of outcomes to JOB's "out")

JOB: {"files": [paths], "seed": int, "per_file": {"truncate": n, "flip": n, "header": n, "metadata": n}, "out": path}.
Mutations per file, named by kind: truncations ("truncate"), single-byte flips anywhere ("flip": structure
and weights), in the first 64 bytes ("header": root offsets, identifiers) and inside the embedded contract's
JSON ("metadata"). Each mutant is
opened with `runtimes.open` and asked to `predict` one image in a child forked for it, so a
crash or a hang is seen as a signal or a timeout instead of killing the run. Outcomes:
"ok" (finite, well-formed result), "edgekit:<ErrorClass>", "other:<Type>: ...", "signal:<n>",
"timeout". Imports no TensorFlow: this is what a device runs.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import runtimes  # noqa: E402
from runtimes.errors import EdgekitError  # noqa: E402

CASE_TIMEOUT = 20.0


def mutations(data: bytes, rng: random.Random, per_file: dict[str, int]) -> list[tuple[str, bytes]]:
    cases = []
    for i in range(per_file["truncate"]):
        keep = int(len(data) * (i + 0.5) / per_file["truncate"])
        cases.append((f"truncate:{keep}", data[:keep]))

    def flipped(kind: str, position: int) -> tuple[str, bytes]:
        mutant = bytearray(data)
        mask = rng.choice((0x01, 0x80, 0xFF, rng.randrange(1, 256)))
        mutant[position] ^= mask
        return f"{kind}:{position}:{mask:#04x}", bytes(mutant)

    cases += [flipped("flip", rng.randrange(len(data))) for _ in range(per_file["flip"])]
    cases += [flipped("header", rng.randrange(min(64, len(data)))) for _ in range(per_file["header"])]
    start = data.find(b'{"edgekit_version"')
    end = data.find(b"}", data.find(b'"sha256"', start)) + 1 if start >= 0 else -1
    if start >= 0 and end > start:
        cases += [flipped("metadata", rng.randrange(start, end)) for _ in range(per_file["metadata"])]
    return cases


def probe(path: str) -> str:
    """Open and predict; the outcome as a short string."""
    frame = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    try:
        with runtimes.open(path) as model:
            result = model.predict(frame, color="bgr", top_k=3)
            well_formed = (
                result.label in model.labels
                and math.isfinite(result.score)
                and all(math.isfinite(score) and label in model.labels for label, score in result.top_k)
            )
            return "ok" if well_formed else f"bad-result:{result!r}"
    except EdgekitError as error:
        return f"edgekit:{type(error).__name__}: {str(error)[:300]}"
    except BaseException as error:  # noqa: BLE001  (what the fuzz test exists to find)
        return f"other:{type(error).__name__}: {str(error)[:200]}"


def run_case(path: str) -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: one mutant, then exit without cleanup handlers
        os.close(read)
        try:
            outcome = probe(path)
        except BaseException as error:  # noqa: BLE001
            outcome = f"other:{type(error).__name__}"
        os.write(write, outcome.encode()[:4000])
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + CASE_TIMEOUT
    chunks = []
    while True:
        ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            return "timeout"
        chunk = os.read(read, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"signal:{os.WTERMSIG(status)}"
    return b"".join(chunks).decode() or "other:no outcome"


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    rng = random.Random(job["seed"])
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="edgekit-fuzz-") as tmp:
        for original in job["files"]:
            source = Path(original)
            for name, mutant in mutations(source.read_bytes(), rng, job["per_file"]):
                path = Path(tmp) / source.name  # same suffix: the backend is chosen as for the original
                path.write_bytes(mutant)
                outcomes.append({"file": source.name, "mutation": name, "outcome": run_case(str(path))})
    Path(job["out"]).write_text(json.dumps(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
