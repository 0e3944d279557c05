"""Large request bodies: streamed to disk (videos) or split into parts (frame batches), within limits.

Multipart bodies are parsed as they arrive (python-multipart's streaming parser), so a video in
a multipart field goes to the spool file piece by piece like a raw one, never whole in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Message

from service.errors import InvalidInput, PayloadTooLarge
from service.media.spool import SpooledFile

PEEK_LIMIT = 64 * 1024
DataSink = Callable[[bytes], None]
PartRoute = Callable[[str, dict[str, str]], DataSink | None]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the upload is over the limit of {limit} bytes (FILTERS_VIDEO__MAX_UPLOAD_BYTES)")


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def body_chunks(request: Request, limit: int, error: Callable[[int], Exception]) -> AsyncIterator[bytes]:
    """The raw body in pieces, refusing as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise error(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise error(limit)
        yield chunk


async def spool_upload(request: Request, field_name: str, folder: Path, limit: int) -> SpooledFile:
    """The upload, raw body or multipart file field `field_name`, streamed to a file in `folder`."""
    fd, name = tempfile.mkstemp(dir=folder, suffix=".upload")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:

            def write(data: bytes) -> None:
                file.write(data)

            if is_multipart(request):
                router = PartRouter(_boundary(request), lambda part, _: write if part == field_name else None)
                async for chunk in body_chunks(request, limit, _too_large):
                    router.feed(chunk)
                router.finish(field_name)
            else:
                async for chunk in body_chunks(request, limit, _too_large):
                    write(chunk)
            size = file.tell()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise InvalidInput(f"the request has no video: send it as the raw body or as multipart field '{field_name}'")
    return SpooledFile(path, size)


async def read_parts(request: Request, field_name: str, limit: int, max_parts: int) -> list[bytes]:
    """Every multipart file part named `field_name`, in order (a frame batch), within `limit` bytes."""
    if not is_multipart(request):
        raise InvalidInput(f"send the frames as a multipart/form-data body with one '{field_name}' part per frame")
    parts: list[bytearray] = []

    def route(name: str, _: dict[str, str]) -> DataSink | None:
        if name != field_name:
            return None
        if len(parts) >= max_parts:
            raise PayloadTooLarge(f"the request has more than {max_parts} frames (FILTERS_VIDEO__MAX_BATCH_FRAMES)")
        parts.append(bytearray())
        return parts[-1].extend

    router = PartRouter(_boundary(request), route)

    def too_large(size: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is over the limit of {size} bytes (FILTERS_LIMITS__MAX_BODY_BYTES)")

    async for chunk in body_chunks(request, limit, too_large):
        router.feed(chunk)
    router.finish(field_name)
    return [bytes(p) for p in parts]


async def peek_file_field(request: Request) -> tuple[Request, str | None]:
    """The name of the first file part of a multipart body, and a request that still reads the
    whole body (what was read to find it is replayed). Reads at most `PEEK_LIMIT` bytes."""
    router = PartRouter(_boundary(request), lambda name, headers: None)
    seen: list[bytes] = []
    more = True
    while more and router.first_file is None and sum(map(len, seen)) < PEEK_LIMIT:
        message = await request.receive()
        if message["type"] != "http.request":
            break
        seen.append(message.get("body", b""))
        more = bool(message.get("more_body", False))
        with contextlib.suppress(InvalidInput):  # a malformed body is reported by whoever reads it
            router.feed(seen[-1])
    return _replaying(request, b"".join(seen), more), router.first_file


def _replaying(request: Request, prefix: bytes, more: bool) -> Request:
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": prefix, "more_body": more}
        return await request.receive()

    return Request(request.scope, receive)


def _boundary(request: Request) -> bytes:
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart body has no boundary in its Content-Type header")
    return boundary


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    sink: DataSink | None = None


class PartRouter:
    """Feeds a multipart/form-data body to python-multipart; each part's data goes where
    `route(name, headers)` says (a sink, or None to drop it)."""

    def __init__(self, boundary: bytes, route: PartRoute) -> None:
        self._route = route
        self._part = _Part()
        self.names: list[str] = []
        self.first_file: str | None = None
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": lambda d, s, e: self._add("header_name", d[s:e]),
                "on_header_value": lambda d, s, e: self._add("header_value", d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._begin,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidInput(f"the multipart body could not be parsed: {exc}") from None

    def finish(self, wanted: str) -> None:
        """After the last chunk: the body must have held part `wanted`."""
        self._parser.finalize()
        if wanted not in self.names:
            raise InvalidInput(f"the multipart body has no field '{wanted}' (fields: {sorted(set(self.names))})")

    def _begin(self) -> None:
        self._part = _Part()

    def _add(self, attribute: str, data: bytes) -> None:
        setattr(self._part, attribute, getattr(self._part, attribute) + data)

    def _header_end(self) -> None:
        name = self._part.header_name.decode("latin-1").strip().lower()
        self._part.headers[name] = self._part.header_value.decode("latin-1").strip()
        self._part.header_name = self._part.header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._part.headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self.names.append(name)
        if self.first_file is None and (b"filename" in params or "content-type" in self._part.headers):
            self.first_file = name
        self._part.sink = self._route(name, self._part.headers)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part.sink is not None:
            self._part.sink(data[start:end])
