"""Reading request bodies within limits: raw bytes or one multipart file field."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartParser

from service.errors import InvalidInput, PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is over the limit of {limit} bytes")


async def read_raw(request: Request, limit: int) -> bytes:
    """The raw body, refusing as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


async def _parse_form(request: Request, limit: int, max_files: int) -> FormData:
    """The multipart form, refused as soon as the body passes `limit` (plus room for part headers).

    `request.form()` has no total limit: a chunked body without Content-Length would be spooled
    to disk to its (endless) end (found by bench/fuzz_campaign.py).
    """
    stream = _limited_stream(request, limit + 64 * 1024)
    parser = MultiPartParser(request.headers, stream, max_files=max_files, max_fields=32, max_part_size=1024 * 1024)
    return await parser.parse()


async def read_multipart_file(request: Request, field: str, limit: int) -> bytes:
    """The bytes of multipart field `field` (a file part)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _too_large(limit)
    try:
        form = await _parse_form(request, limit, max_files=4)
    except PayloadTooLarge:
        raise
    except Exception as exc:  # the parser reports malformed bodies with its own exception types
        raise InvalidInput(f"the multipart body could not be parsed: {exc}") from None
    try:
        part = form.get(field)
        if part is None:
            raise InvalidInput(f"the multipart body has no field '{field}' (fields: {sorted(form.keys())})")
        if not isinstance(part, UploadFile):
            raise InvalidInput(f"multipart field '{field}' must be a file part, not a text field")
        if part.size is not None and part.size > limit:
            raise _too_large(limit)
        return await part.read()
    finally:
        await form.close()


async def read_image_body(request: Request, field: str, limit: int) -> bytes:
    """The image bytes, from the raw body or from multipart field `field`."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        data = await read_multipart_file(request, field, limit)
    else:
        data = await read_raw(request, limit)
    if not data:
        raise InvalidInput(f"the request has no body: send the image as the raw body or as multipart field '{field}'")
    return data


async def read_multipart_files(request: Request, fields: tuple[str, ...], limit: int) -> dict[str, bytes]:
    """The bytes of each multipart file field in `fields` (all required, together within `limit`)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput(f"send a multipart/form-data body with file fields {', '.join(repr(f) for f in fields)}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _too_large(limit)
    try:
        form = await _parse_form(request, limit, max_files=len(fields) + 2)
    except PayloadTooLarge:
        raise
    except Exception as exc:  # the parser reports malformed bodies with its own exception types
        raise InvalidInput(f"the multipart body could not be parsed: {exc}") from None
    try:
        found: dict[str, bytes] = {}
        for field in fields:
            part = form.get(field)
            if not isinstance(part, UploadFile):
                what = "no field" if part is None else "a text field, not a file part,"
                raise InvalidInput(f"the multipart body has {what} '{field}' (fields: {sorted(form.keys())})")
            found[field] = await part.read()
            if not found[field]:
                raise InvalidInput(f"multipart field '{field}' is empty")
            if sum(len(v) for v in found.values()) > limit:
                raise _too_large(limit)
        return found
    finally:
        await form.close()
