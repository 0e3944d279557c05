"""Reading request bodies within limits: raw bytes or one multipart file field."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile

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


async def read_multipart_file(request: Request, field: str, limit: int) -> bytes:
    """The bytes of multipart field `field` (a file part)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _too_large(limit)
    try:
        form = await request.form(max_files=4, max_fields=32, max_part_size=1024 * 1024)
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
