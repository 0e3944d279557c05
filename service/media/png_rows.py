"""PNG scanlines without libpng: the inflated, still filtered rows of a plain PNG, and the filters.

Decoding a 960x540 PNG takes libpng ~12 ms of one core (inflate ~6 ms, unfiltering the rest); under
load on the H200's host it was the service's limit (docs/performance.md). For GPU models the work is
split (`device_png.py`): ISA-L inflates here (~3 ms for the same image), the GPU undoes the row
filters; on the host `png_decode.py` undoes them with FFmpeg's. Only the common case takes this
path: 8-bit RGB, not interlaced, no transparency key; everything else (palette, grey, alpha, tRNS,
16-bit, interlaced) returns None and goes to OpenCV.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from isal import isal_zlib

from service.errors import InvalidInput

SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGB8 = (8, 2, 0, 0, 0)  # bit depth, colour type (truecolour), compression, filter method, interlace


@dataclass(frozen=True)
class FilteredRows:
    """Inflated scanlines: `rows` is height x (1 + width * 3) uint8, each row's filter type first."""

    width: int
    height: int
    rows: np.ndarray


def filtered_rows(data: bytes) -> FilteredRows | None:
    """The scanlines of an 8-bit RGB non-interlaced PNG without a transparency key (tRNS: libpng
    would give it an alpha channel), CRCs checked; None for any other PNG.

    Raises InvalidInput for a PNG whose chunks or image data are damaged (as the host decoder would)."""
    if not data.startswith(SIGNATURE):
        return None
    header, idat, keyed = _chunks(data)
    if header is None:
        raise InvalidInput("the PNG image could not be decoded: no IHDR chunk")
    width, height, *layout = struct.unpack(">IIBBBBB", header)
    if tuple(layout) != RGB8 or width < 1 or height < 1 or keyed:
        return None
    stride = 1 + width * 3
    try:
        raw = isal_zlib.decompress(b"".join(idat), bufsize=stride * height + 1)  # one allocation, no regrowing
    except Exception as exc:  # isal_zlib.error (IsalError), untyped in the stubs
        raise InvalidInput(f"the PNG image could not be decoded (corrupt image data: {exc})") from None
    if len(raw) < stride * height:
        raise InvalidInput(
            f"the PNG image could not be decoded: its image data holds {len(raw)} bytes of the "
            f"{stride * height} a {width}x{height} image needs (truncated?)"
        )
    rows = np.frombuffer(raw, np.uint8, count=stride * height).reshape(height, stride)
    if int(rows[:, 0].max()) > 4:
        raise InvalidInput("the PNG image could not be decoded: a row names an unknown filter type")
    return FilteredRows(width, height, rows)


def _chunks(data: bytes) -> tuple[bytes | None, list[bytes], bool]:
    """IHDR's payload, the IDAT payloads and whether there is a tRNS chunk; every chunk's CRC checked."""
    at, header, idat, keyed = len(SIGNATURE), None, [], False
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 12 + length
        if end > len(data):
            raise InvalidInput(f"the PNG image could not be decoded: chunk {kind!r} at byte {at} is truncated")
        payload = data[at + 8 : end - 4]
        if isal_zlib.crc32(payload, isal_zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            raise InvalidInput(f"the PNG image could not be decoded: chunk {kind!r} at byte {at} fails its CRC")
        if kind == b"IHDR" and length == 13:
            header = payload
        elif kind == b"IDAT":
            idat.append(payload)
        elif kind == b"tRNS":
            keyed = True
        elif kind == b"IEND":
            break
        at = end
    return header, idat, keyed


def filter_rows_by_type(pixels: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The PNG encoder's side: HxWx3 uint8 pixels -> H x (1 + W*3) rows, row y filtered with
    `types[y]` (0 none, 1 sub, 2 up, 3 average, 4 Paeth). Checks the GPU unfiltering (`device_png`)."""
    height, width, channels = pixels.shape
    x = pixels.reshape(height, width * channels).astype(np.int16)
    a = np.zeros_like(x)
    a[:, channels:] = x[:, :-channels]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, channels:] = x[:-1, :-channels]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    predictions = np.stack([np.zeros_like(x), a, b, (a + b) // 2, paeth])
    chosen = predictions[types.astype(np.intp), np.arange(height)]
    out = np.empty((height, 1 + width * channels), np.uint8)
    out[:, 0] = types
    out[:, 1:] = ((x - chosen) % 256).astype(np.uint8)
    return out
