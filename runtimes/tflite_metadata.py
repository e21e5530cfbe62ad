"""Read and write named metadata entries in a TFLite flatbuffer, without TensorFlow.

Reading is a few dozen lines of plain flatbuffer walking so that a device with only
tflite-runtime (no ai-edge-litert schema module) can still read the contract.
Writing uses ai-edge-litert's generated schema object API.
"""

from __future__ import annotations

import struct
from typing import Any

from runtimes._deps import require

TFLITE_IDENTIFIER = b"TFL3"
CONTRACT_METADATA_NAME = "edgekit.contract"

# Field indices of the TFLite schema tables we walk (schema.fbs).
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_METADATA_NAME, _METADATA_BUFFER = 0, 1


def is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_IDENTIFIER


class _Table:
    """Minimal read-only view of one flatbuffer table."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, index: int) -> int | None:
        voffset = 4 + 2 * index
        if voffset >= self.vtable_size:
            return None
        offset = struct.unpack_from("<H", self.buf, self.vtable + voffset)[0]
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return struct.unpack_from(fmt, self.buf, at)[0] if at is not None else default

    def _vector(self, index: int) -> tuple[int, int] | None:
        at = self._field(index)
        if at is None:
            return None
        start = at + struct.unpack_from("<I", self.buf, at)[0]
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def bytes_(self, index: int) -> bytes | None:
        vector = self._vector(index)
        return None if vector is None else bytes(self.buf[vector[0] : vector[0] + vector[1]])

    def tables(self, index: int) -> list["_Table"]:
        vector = self._vector(index)
        if vector is None:
            return []
        start, length = vector
        positions = (start + 4 * i for i in range(length))
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]) for p in positions]


def read_metadata(model: bytes, name: str = CONTRACT_METADATA_NAME) -> bytes | None:
    """Return the payload of metadata entry `name`, or None when the model has none."""
    root = _Table(model, struct.unpack_from("<I", model, 0)[0])
    buffers = root.tables(_MODEL_BUFFERS)
    for entry in root.tables(_MODEL_METADATA):
        if entry.bytes_(_METADATA_NAME) != name.encode():
            continue
        buffer = buffers[entry.scalar(_METADATA_BUFFER, "<I")]
        offset = buffer.scalar(_BUFFER_OFFSET, "<Q")
        if offset > 1:  # large models keep buffer data after the flatbuffer
            return bytes(model[offset : offset + buffer.scalar(_BUFFER_SIZE, "<Q")])
        return buffer.bytes_(_BUFFER_DATA) or b""
    return None


def _sharing_builder(flatbuffers: Any, size: int) -> Any:
    """A flatbuffers Builder that writes each distinct int64 vector once and shares it.

    int64 vectors in a TFLite model are quantization zero points: per-channel weights and
    biases carry one all-zero int64 per channel, 8 bytes each, which is about a tenth of
    an int8 MobileNet. Flatbuffers allow several tables to point at one vector (as shared
    strings do), so sharing them is lossless and invisible to every reader.
    """
    import numpy as np

    class SharingBuilder(flatbuffers.Builder):
        def __init__(self, initial_size: int) -> None:
            super().__init__(initial_size)
            self._shared: dict[bytes, int] = {}

        def CreateNumpyVector(self, x: Any) -> int:  # noqa: N802  (flatbuffers' name)
            if not (isinstance(x, np.ndarray) and x.dtype == np.int64):
                return super().CreateNumpyVector(x)
            key = x.astype("<i8").tobytes() + len(x).to_bytes(8, "little")
            if key not in self._shared:
                self._shared[key] = super().CreateNumpyVector(x)
            return self._shared[key]

    return SharingBuilder(size)


def write_metadata(model: bytes, payload: bytes, name: str = CONTRACT_METADATA_NAME) -> bytes:
    """Return a copy of `model` whose metadata entry `name` holds `payload` (replacing any)."""
    schema = require("ai_edge_litert.schema_py_generated", extra="tflite", package="ai-edge-litert")
    flatbuffers = require("flatbuffers", extra="tflite")
    import numpy as np

    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    data = np.frombuffer(payload, dtype=np.uint8)
    tree.metadata = tree.metadata or []
    existing = [m for m in tree.metadata if m.name in (name, name.encode())]
    if existing:  # rewrite in place: no orphaned buffer left behind
        tree.buffers[existing[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        tree.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(tree.buffers) - 1
        tree.metadata.append(entry)
    builder = _sharing_builder(flatbuffers, len(model) + len(payload) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())
