"""Width and height from an encoded image's header, read the way its decoder reads it, before anything is decoded.

`edgekit serve` accepts the formats parsed here and no others (415 names them): a decompression bomb (a
few kilobytes that decode to gigabytes) is refused from its header, so the pixel budget holds for every
image the server decodes. Each parser follows its decoder's rules, and where a file could be read two
ways it takes the larger size:

- JPEG (libjpeg / libjpeg-turbo, which OpenCV uses): after SOI, bytes that are not a marker are skipped
  (libjpeg warns "extraneous bytes before marker" and goes on), 0xFF fill bytes are skipped, FF00 is no
  marker, RSTn and TEM carry no length, every other marker carries a length; the frame header (SOFn) before
  the first SOS gives the size. No SOF before SOS or the end is an error libjpeg makes too.
- PNG (libpng): the IHDR chunk must come first; its width and height are the image's.
- WebP (libwebp's WebPGetFeatures, which OpenCV calls before allocating): a VP8X canvas, a lossy VP8 frame
  header or a lossless VP8L header; where several are present, the largest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtimes.errors import RequestError

ACCEPTED = "JPEG, PNG or WebP"
JPEG_SIGNATURE = b"\xff\xd8\xff"  # what OpenCV's JPEG decoder checks
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
NO_LENGTH_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7
SOS, EOI, SOI = 0xDA, 0xD9, 0xD8
NOT_FILL = re.compile(rb"[^\xff]")
MAX_SEGMENTS = 4096  # markers or chunks walked before the image data: real files have tens


@dataclass(frozen=True)
class ImageHeader:
    """An encoded image's format and size as its header declares them."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes, where: str = "image") -> ImageHeader:
    """The format and size of an encoded image, or a RequestError: 415 for a format not accepted, 400 for a header
    that cannot be read."""
    if data.startswith(JPEG_SIGNATURE):
        header = _jpeg(data, where)
    elif data.startswith(PNG_SIGNATURE):
        header = _png(data, where)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        header = _webp(data, where)
    else:
        raise RequestError(
            415,
            f"{where}: not a {ACCEPTED} image (the only formats this server decodes: each is "
            "checked against the pixel limits from its header first); convert it to JPEG or PNG",
        )
    if header.width < 1 or header.height < 1:
        raise RequestError(
            400, f"{where}: its {header.format} header declares an empty image ({header.width}x{header.height})"
        )
    return header


def _jpeg(data: bytes, where: str) -> ImageHeader:
    size = None
    i, end = 2, len(data)
    for _ in range(MAX_SEGMENTS):
        i = data.find(b"\xff", i)  # libjpeg skips anything that is not a marker
        if i < 0:
            break
        found = NOT_FILL.search(data, i)  # 0xFF fill bytes before the marker code
        if found is None:
            break
        i = found.start()
        marker = data[i]
        i += 1
        if marker == 0x00 or marker in NO_LENGTH_MARKERS:
            continue
        if marker in (SOS, EOI):
            break
        if marker == SOI:
            raise RequestError(400, f"{where}: a JPEG with a second start-of-image marker")
        if i + 2 > end:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            raise RequestError(400, f"{where}: a JPEG marker segment of length {length}")
        if marker in SOF_MARKERS:
            if i + 7 > end:
                break
            height, width = int.from_bytes(data[i + 3 : i + 5], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            if size is None or width * height > size[0] * size[1]:
                size = (width, height)
        i += length
    else:
        raise RequestError(400, f"{where}: a JPEG with over {MAX_SEGMENTS} markers before its image data")
    if size is None:
        raise RequestError(400, f"{where}: a JPEG without a frame header (SOF) before its image data")
    return ImageHeader("JPEG", *size)


def _png(data: bytes, where: str) -> ImageHeader:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise RequestError(400, f"{where}: a PNG whose first chunk is not IHDR")
    return ImageHeader("PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))


def _webp(data: bytes, where: str) -> ImageHeader:
    sizes = []
    i, end = 12, len(data)
    for _ in range(MAX_SEGMENTS):
        if i + 8 > end:
            break
        kind, length = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        body = data[i + 8 : i + 8 + min(length, 32)]
        if kind == b"VP8X" and len(body) >= 10:
            sizes.append((1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")))
        elif kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
            sizes.append((int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF))
        elif kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
            bits = int.from_bytes(body[1:5], "little")
            sizes.append((1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)))
        elif kind in (b"VP8 ", b"VP8L", b"VP8X"):
            raise RequestError(400, f"{where}: a WebP whose {kind.decode().strip()} header is cut short or malformed")
        if kind in (b"VP8 ", b"VP8L"):
            break  # the image data: the header is read
        i += 8 + length + (length & 1)  # chunks are padded to an even length
    if not sizes:
        raise RequestError(400, f"{where}: a WebP without an image header (VP8, VP8L or VP8X)")
    return ImageHeader("WebP", *max(sizes, key=lambda s: s[0] * s[1]))
