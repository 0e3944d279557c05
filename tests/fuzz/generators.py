"""Hostile inputs, shared by the property tests (tests/fuzz) and the campaign (bench/fuzz_campaign.py).

Every generator takes a `random.Random`, so hypothesis can drive it (`st.randoms()`) and the
campaign can replay it from a seed. Seeds are small valid images made here; mutations truncate,
flip, splice, and rewrite the declared size in the header (with a correct PNG CRC, so the lie gets
past the checksum).
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable

import cv2
import numpy as np

Mutator = Callable[[bytes, random.Random], bytes]


def seed_images(side: int = 24) -> dict[str, bytes]:
    """One small valid image per input format the service reads (plus RGBA and 16-bit PNG)."""
    rng = np.random.default_rng(7)
    bgr = rng.integers(0, 256, (side, side + 5, 3), dtype=np.uint8)
    bgra = rng.integers(0, 256, (side, side + 5, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (side, side + 5, 3), dtype=np.uint16)
    seeds = {}
    for name, ext, pixels in [
        ("png", ".png", bgr),
        ("png-rgba", ".png", bgra),
        ("png-16bit", ".png", deep),
        ("jpeg", ".jpg", bgr),
        ("webp", ".webp", bgr),
        ("bmp", ".bmp", bgr),
        ("tiff", ".tiff", bgr),
    ]:
        ok, buf = cv2.imencode(ext, pixels)
        assert ok, name
        seeds[name] = buf.tobytes()
    return seeds


def _unchanged(data: bytes, rng: random.Random) -> bytes:
    return data


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def flip_header(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(min(64, len(out)))] = rng.randrange(256)
    return bytes(out)


def splice(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 256)) + data[at:]


def repeat_chunk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.randint(1, 64)]
    return data[:start] + chunk * rng.randint(2, 200) + data[start:]


def _huge_side(rng: random.Random) -> int:
    return rng.choice([0, 1, 65535, 65536, 2**31 - 1, 2**32 - 1, rng.randrange(1, 2**31)])


def lie_about_size(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the declared width/height (PNG IHDR with a valid CRC, JPEG SOF, BMP, WebP)."""
    out = bytearray(data)
    width, height = _huge_side(rng), _huge_side(rng)
    if len(data) < 40:
        return flip_header(data, rng)
    if data.startswith(b"\x89PNG"):
        struct.pack_into(">II", out, 16, width, height)
        struct.pack_into(">I", out, 29, zlib.crc32(bytes(out[12:29])))
    elif data.startswith(b"\xff\xd8"):
        for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
            at = data.find(marker)
            if 0 <= at < len(data) - 9:
                struct.pack_into(">HH", out, at + 5, height & 0xFFFF, width & 0xFFFF)
                break
    elif data.startswith(b"BM"):
        struct.pack_into("<ii", out, 18, width & 0x7FFFFFFF, height & 0x7FFFFFFF)
    elif data[8:12] == b"WEBP" and data[12:16] == b"VP8 ":
        struct.pack_into("<HH", out, 26, width & 0x3FFF, height & 0x3FFF)
    else:
        return flip_header(data, rng)
    return bytes(out)


def random_bytes(data: bytes, rng: random.Random) -> bytes:
    """Noise behind the seed's magic number: passes the type sniff, fails everywhere after."""
    return data[:8] + rng.randbytes(rng.randint(0, 2048))


MUTATORS: dict[str, Mutator] = {
    "truncate": truncate,
    "flip_bytes": flip_bytes,
    "flip_header": flip_header,
    "splice": splice,
    "repeat_chunk": repeat_chunk,
    "lie_about_size": lie_about_size,
    "random_bytes": random_bytes,
}


def mutated_image(seeds: dict[str, bytes], rng: random.Random) -> tuple[str, bytes]:
    """A seed image with 1-3 mutations; returns (description, bytes)."""
    name = rng.choice(sorted(seeds))
    data = seeds[name]
    steps = [rng.choice(sorted(MUTATORS)) for _ in range(rng.randint(1, 3))]
    for step in steps:
        data = MUTATORS[step](data, rng) if data else data
    return f"{name}:{'+'.join(steps)}", data


def png_declaring(width: int, height: int, rows: int = 1) -> bytes:
    """A valid-CRC PNG whose header declares width x height but whose data holds `rows` rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00" * (3 * min(width, 4096)) for _ in range(rows))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def multipart_body(image: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A multipart/form-data body, well-formed or broken in one of several ways; returns (content type, body)."""
    boundary = rng.choice(["b0undary", "x" * rng.randint(1, 200), "", "a b", "--", rng.randbytes(8).hex()])
    field = rng.choice(["image", "image", "picture", "", "image\x00", 'image"; filename="../../etc/passwd'])
    disposition = rng.choice(
        [
            f'form-data; name="{field}"; filename="a.png"',
            f'form-data; name="{field}"',
            "form-data",
            "attachment",
            "form-data; name=" + "x" * rng.randint(0, 5000),
        ]
    )
    part = f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode() + image
    parts = [part] * rng.choice([1, 1, 2, 40])
    body = b"\r\n".join(parts) + rng.choice([f"\r\n--{boundary}--\r\n".encode(), b"", b"\r\n--", b"\r\n"])
    body = rng.choice([_unchanged, truncate, flip_bytes, splice])(body, rng) if body else body
    header_boundary = rng.choice([boundary, boundary, "other", ""])
    content_type = rng.choice(
        [f"multipart/form-data; boundary={header_boundary}", "multipart/form-data", "multipart/form-data; boundary="]
    )
    return content_type, body


def query_params(rng: random.Random) -> dict[str, str]:
    """Superres query parameters, plausible and not."""
    wild = ["", "-1", "0", "1e309", "nan", "inf", "2" * 400, "\u00e9\u00e9", "%00", "[]", "{}", "null", "1.5"]
    values = {
        "scale": ["2", "4", "3", "16", "17", *wild],
        "model": ["tiny-x2", "tiny-x4", "../x", "a" * 300, *wild],
        "format": ["png", "jpeg", "webp", "gif", "PNG", *wild],
        "quality": ["1", "9", "100", "101", *wild],
        "tile": ["8", "9", "64", "4096", "4097", *wild],
    }
    return {k: rng.choice(v) for k, v in values.items() if rng.random() < 0.5}


def headers(rng: random.Random) -> dict[str, str]:
    """Request headers that parse oddly: timeouts, content types, request IDs."""
    timeout = ["0", "-1", "nan", "inf", "1e309", "3601", "0.000001", "5", "x" * 100]
    content_type = ["image/png", "text/plain", "application/json", "image/*", "multipart/form-data", "", "x/y; q=0.5"]
    request_id = ["abc", "x" * 500, "a b", "\u00e9", "../../etc"]
    chosen = {
        "x-request-timeout": rng.choice(timeout),
        "content-type": rng.choice(content_type),
        "x-request-id": rng.choice(request_id),
    }
    return {k: v for k, v in chosen.items() if rng.random() < 0.6}
