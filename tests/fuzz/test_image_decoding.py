"""Property tests of image probing and decoding on hostile bytes (in-process, no server).

Whatever the bytes, `probe` + `decode` either give an image no larger than the pixel limit or
raise a 4xx `ServiceError` with a message; never another exception, and never a decode of more
pixels than the header promised. Derandomized so CI sees the same cases every run; the long,
random run is `bench/fuzz_campaign.py`.
"""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ImageFile

from service.errors import InvalidInput, PayloadTooLarge
from service.media.images import DecodedImage, decode, probe
from tests.fuzz.generators import MUTATORS, mutated_image, png_declaring, seed_images
from tests.fuzz.oracle import judge_exception

SEEDS = seed_images()
MAX_PIXELS = 1 << 20
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's warnings on corrupt EXIF/TIFF tags
PROPERTY = settings(derandomize=True, database=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def _outcome(data: bytes) -> DecodedImage | str:
    try:
        header = probe(data, MAX_PIXELS)
        image = decode(data, header)
    except Exception as exc:
        return judge_exception(exc)
    assert image.width * image.height <= MAX_PIXELS
    assert {image.width, image.height} == {header.width, header.height}, "decoded size differs from the header"
    return image


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_mutated_images_decode_or_answer_4xx(rng: random.Random) -> None:
    _, data = mutated_image(SEEDS, rng)
    _outcome(data)


@PROPERTY
@given(name=st.sampled_from(sorted(SEEDS)), mutator=st.sampled_from(sorted(MUTATORS)), rng=st.randoms())
def test_each_mutation_of_each_format(name: str, mutator: str, rng: random.Random) -> None:
    _outcome(MUTATORS[mutator](SEEDS[name], rng))


@PROPERTY
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    _outcome(data)


@settings(derandomize=True, database=None, max_examples=60)
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1))
def test_declared_size_over_the_limit_is_refused_from_the_header(width: int, height: int) -> None:
    """Decompression bombs: a hundred bytes declaring any size. Over the limit: 413 naming the size,
    from the header; within it: the missing rows make it a 400 (or it decodes)."""
    data = png_declaring(width, height)
    try:
        probe(data, MAX_PIXELS)
    except PayloadTooLarge as refused:
        assert width * height > MAX_PIXELS and f"{width}x{height}" in refused.message
        return
    assert width * height <= MAX_PIXELS
    _outcome(data)


def test_png_chunk_claiming_gigabytes_is_refused_without_allocating_them() -> None:
    """Found by the campaign: OpenCV allocated what an IDAT length claimed (1.2 GB for 2 KB)."""
    data = bytearray(SEEDS["png"])
    data[33] = 0x48  # the IDAT length's top byte: 0x0000084b -> 0x4800084b
    with pytest.raises(InvalidInput, match="claims 1207961675 bytes"):
        decode(bytes(data), probe(bytes(data), MAX_PIXELS))


def test_probing_never_decodes_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the campaign: Pillow's PNG getexif() decoded the whole image inside `probe`, before
    the pixel limit was checked (gigabytes for a 2 KB file declaring 65536x65536)."""
    decoded: list[str] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(str(self.format)))
    for name, data in SEEDS.items():
        assert probe(data, MAX_PIXELS).format, name
    with pytest.raises(PayloadTooLarge, match="65536x65536"):
        probe(lie_to(SEEDS["png"], 65536, 65536), MAX_PIXELS)
    assert decoded == [], f"probe decoded pixels of {decoded}"


def lie_to(png: bytes, width: int, height: int) -> bytes:
    """`png` with its IHDR declaring width x height (CRC fixed)."""
    out = bytearray(png)
    struct.pack_into(">II", out, 16, width, height)
    struct.pack_into(">I", out, 29, zlib.crc32(bytes(out[12:29])))
    return bytes(out)
