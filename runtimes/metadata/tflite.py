"""Read and write named metadata entries in a TFLite flatbuffer, without TensorFlow.

Reading is a few dozen lines of plain flatbuffer walking so that a device with only
tflite-runtime (no ai-edge-litert schema module) can still read the contract.
Writing uses ai-edge-litert's generated schema object API.
"""

from __future__ import annotations

import struct
from typing import Any

from runtimes.deps import require
from runtimes.metadata.standard import associated_files, with_associated_files

TFLITE_IDENTIFIER = b"TFL3"
CONTRACT_METADATA_NAME = "edgekit.contract"

# Field indices of the TFLite schema tables we walk (schema.fbs).
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_METADATA_NAME, _METADATA_BUFFER = 0, 1


def is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_IDENTIFIER


def _read(fmt: str, buf: bytes, at: int) -> int:
    """One little-endian value at `at`; any offset outside the buffer is a ValueError (a damaged file)."""
    if at < 0 or at + struct.calcsize(fmt) > len(buf):
        raise ValueError(f"flatbuffer offset {at} is outside the {len(buf)}-byte model")
    return struct.unpack_from(fmt, buf, at)[0]


class _Table:
    """Minimal read-only view of one flatbuffer table; every offset is bounds-checked."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - _read("<i", buf, pos)
        self.vtable_size = _read("<H", buf, self.vtable)

    def _field(self, index: int) -> int | None:
        voffset = 4 + 2 * index
        if voffset >= self.vtable_size:
            return None
        offset = _read("<H", self.buf, self.vtable + voffset)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return _read(fmt, self.buf, at) if at is not None else default

    def _vector(self, index: int, item_size: int) -> tuple[int, int] | None:
        at = self._field(index)
        if at is None:
            return None
        start = at + _read("<I", self.buf, at)
        length = _read("<I", self.buf, start)
        if start + 4 + length * item_size > len(self.buf):
            raise ValueError(f"a flatbuffer vector of {length} items runs past the end of the model")
        return start + 4, length

    def bytes_(self, index: int) -> bytes | None:
        vector = self._vector(index, 1)
        return None if vector is None else bytes(self.buf[vector[0] : vector[0] + vector[1]])

    def tables(self, index: int) -> list["_Table"]:
        vector = self._vector(index, 4)
        if vector is None:
            return []
        start, length = vector
        positions = (start + 4 * i for i in range(length))
        return [_Table(self.buf, p + _read("<I", self.buf, p)) for p in positions]


def read_metadata(model: bytes, name: str = CONTRACT_METADATA_NAME) -> bytes | None:
    """Return the payload of metadata entry `name`, or None when the model has none.

    A damaged model (offsets outside the file, a metadata entry pointing at no buffer) is a
    ValueError naming what is wrong.
    """
    root = _Table(model, _read("<I", model, 0))
    entries = root.tables(_MODEL_METADATA)
    for entry in entries:
        if entry.bytes_(_METADATA_NAME) != name.encode():
            continue
        buffers = root.tables(_MODEL_BUFFERS)
        index = entry.scalar(_METADATA_BUFFER, "<I")
        if index >= len(buffers):
            raise ValueError(f"metadata {name!r} points at buffer {index} of {len(buffers)}")
        buffer = buffers[index]
        offset = buffer.scalar(_BUFFER_OFFSET, "<Q")
        if offset > 1:  # large models keep buffer data after the flatbuffer
            size = buffer.scalar(_BUFFER_SIZE, "<Q")
            if offset + size > len(model):
                raise ValueError(f"metadata {name!r} runs past the end of the model")
            return bytes(model[offset : offset + size])
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


def write_metadata(
    model: bytes, payload: bytes, name: str = CONTRACT_METADATA_NAME, signature_order: bool = False
) -> bytes:
    """Return a copy of `model` whose metadata entry `name` holds `payload` (replacing any).

    Every other metadata entry (standard TFLITE_METADATA included) and the associated files
    zipped after the flatbuffer are kept. With `signature_order` (edgekit's own conversions)
    the outputs are also put in the signature's order, in the same rewrite.
    """
    schema = require("ai_edge_litert.schema_py_generated", extra="tflite", package="ai-edge-litert")
    flatbuffers = require("flatbuffers", extra="tflite")
    import numpy as np

    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    if signature_order:
        _signature_order(tree)
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
    # files zipped after the flatbuffer (standard metadata's labels) belong to the model: keep them
    return with_associated_files(bytes(builder.Output()), associated_files(model))


def _signature_order(tree: Any) -> None:
    """Put the subgraph's outputs in the order of its signature (output_0, output_1, ...), in place.

    The TFLite converter lists a multi-output model's outputs in whatever order its graph
    ends up in (a detector's scores before its boxes); its signature keeps the Keras order.
    Readers that go by position (MediaPipe's detection layout, TFLite_Detection_PostProcess
    consumers) need the Keras order. Unchanged when the signature does not name outputs output_N.
    """
    import re

    signatures = tree.signatureDefs or []
    if len(signatures) != 1 or not tree.subgraphs:
        return
    names = [
        (m.name.decode() if isinstance(m.name, bytes) else m.name, m.tensorIndex) for m in signatures[0].outputs or []
    ]
    numbered = [(int(match.group(1)), index) for name, index in names if (match := re.fullmatch(r"output_(\d+)", name))]
    subgraph = tree.subgraphs[signatures[0].subgraphIndex]
    order = [index for _, index in sorted(numbered)]
    if len(numbered) == len(names) and sorted(order) == sorted(int(i) for i in subgraph.outputs):
        subgraph.outputs = order
