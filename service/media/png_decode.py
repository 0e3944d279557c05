"""Fast decoding of the common PNG: 8-bit RGB, not interlaced, no transparency key.

OpenCV's libpng spends ~14 ms of one core on a 960x540 PNG (zlib's inflate ~6 ms, the row filters
most of the rest); under load on the H200's host that decode was the service's limit
(docs/performance.md). Here both halves run in faster code, with every pixel the same as libpng's:

- ISA-L inflates the image data (`png_rows.filtered_rows`: ~3 ms, chunk CRCs and damage checked);
- FFmpeg's PNG decoder (through PyAV, already the video dependency; SIMD row filters) decodes a
  copy of the image whose inflated rows are wrapped in stored (uncompressed) deflate blocks, so
  its own zlib only copies them: ~2.5 ms.

Both release the GIL, and the copy is made in a reused buffer, so the codec pool's threads decode
in parallel (a first version that concatenated bytes objects stopped scaling at ~4 threads on
the H200's host: bench/results/png_decode_h200.md). Any other PNG (palette, grey,
alpha, tRNS, 16-bit, interlaced) gives None and goes to OpenCV (`images.decode`).
"""

from __future__ import annotations

import struct
import threading
import zlib
from typing import cast

import av
import numpy as np

from service.errors import InvalidInput
from service.media.png import chunk_parts
from service.media.png_rows import RGB8, SIGNATURE, FilteredRows, filtered_rows

_BLOCK = 65535  # the largest stored deflate block
_scratch = threading.local()


def decode_rgb_png(data: bytes) -> np.ndarray | None:
    """HxWx3 uint8 RGB of a plain 8-bit RGB PNG; None for any other PNG.

    Raises InvalidInput for damaged chunks or image data (as OpenCV would fail to decode)."""
    scanlines = filtered_rows(data)
    if scanlines is None:
        return None
    context = av.CodecContext.create("png", "r")
    context.thread_count = 1  # one image: FFmpeg's default would start a thread per core for it
    try:
        # av.Packet copies any buffer (its stub says bytes only)
        frames = context.decode(av.Packet(cast(bytes, _stored_png(scanlines))))
    except av.FFmpegError as exc:  # not expected: the rows were checked already
        raise InvalidInput(f"the PNG image could not be decoded: {exc}") from None
    if len(frames) != 1 or frames[0].format.name != "rgb24":
        raise InvalidInput("the PNG image could not be decoded")
    return np.asarray(frames[0].to_ndarray())


def _stored_png(scanlines: FilteredRows) -> memoryview:
    """The image as a PNG whose one IDAT holds the rows in stored deflate blocks (zlib framed).

    Written into this thread's reusable buffer (valid until its next call; `av.Packet` copies it)
    by numpy copies and zlib checksums, which release the GIL: many threads decode at once, and
    no new megabyte-sized buffer is mapped (and page-faulted) for every image."""
    raw = scanlines.rows.reshape(-1)
    full, rest = divmod(raw.size, _BLOCK)
    blocks = full + (1 if rest or not full else 0)
    payload = 2 + blocks * 5 + raw.size + 4  # zlib header, block headers, rows, Adler-32
    size = len(SIGNATURE) + 25 + 12 + payload + 12  # signature, IHDR, IDAT, IEND
    out = _buffer(size)
    at = len(SIGNATURE)
    out[:at] = np.frombuffer(SIGNATURE, np.uint8)
    header = struct.pack(">IIBBBBB", scanlines.width, scanlines.height, *RGB8)
    out[at : at + 25] = np.frombuffer(b"".join(chunk_parts(b"IHDR", header)), np.uint8)
    at += 25
    out[at : at + 10] = np.frombuffer(struct.pack(">I4sBB", payload, b"IDAT", 0x78, 0x01), np.uint8)
    body = at + 4  # the CRC covers the chunk type and the payload
    at += 10
    if full:
        grid = out[at : at + full * (5 + _BLOCK)].reshape(full, 5 + _BLOCK)
        grid[:, :5] = np.frombuffer(struct.pack("<BHH", 0, _BLOCK, _BLOCK ^ 0xFFFF), np.uint8)
        grid[:, 5:] = raw[: full * _BLOCK].reshape(full, _BLOCK)
        at += full * (5 + _BLOCK)
    if rest or not full:
        out[at : at + 5] = np.frombuffer(struct.pack("<BHH", 1, rest, rest ^ 0xFFFF), np.uint8)
        out[at + 5 : at + 5 + rest] = raw[full * _BLOCK :]
        at += 5 + rest
    else:
        out[at - (5 + _BLOCK)] = 1  # the last full block is the final one
    out[at : at + 4] = np.frombuffer(struct.pack(">I", zlib.adler32(raw.data)), np.uint8)
    at += 4
    out[at : at + 4] = np.frombuffer(struct.pack(">I", zlib.crc32(out[body:at].data)), np.uint8)
    out[at + 4 : at + 16] = np.frombuffer(b"".join(chunk_parts(b"IEND", b"")), np.uint8)
    return out[:size].data


def _buffer(size: int) -> np.ndarray:
    """This thread's scratch buffer, at least `size` bytes."""
    buffer: np.ndarray | None = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _scratch.buffer = np.empty(size, np.uint8)
    return buffer
