"""What a good answer to a hostile request looks like: the oracle of the tests and the campaign."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc

from service.errors import ServiceError
from tests.support.live_server import REPO_ROOT

LEAK_MARKERS = ("Traceback", "/work/", '.py"', str(REPO_ROOT), 'File "')


def leaks(text: str) -> list[str]:
    """The markers of a stack trace or a server path that `text` contains."""
    return [marker for marker in LEAK_MARKERS if marker in text]


def judge_http(status: int, body: bytes, content_type: str, empty_ok: bool = False) -> str:
    """The outcome's name (`200`, `413 payload_too_large`, ...); raises AssertionError if it is bad.

    Bad: any 5xx except 503/504 (not ready, deadline), an error that is not JSON with a message
    (ours: `{"error": {"code", "message"}}`; the Open Inference Protocol's: `{"error": "message"}`),
    or a body that shows a stack trace or a server path. `empty_ok`: an empty error body is the
    protocol's answer (the inference protocol's readiness endpoints answer 4xx without a body).
    """
    if status < 400:
        return str(status)
    text = body.decode("utf-8", "replace")
    assert status < 500 or status in (503, 504), f"server error {status}: {text[:300]}"
    assert not leaks(text), f"{status} answer leaks {leaks(text)}: {text[:300]}"
    if empty_ok and not body:
        return f"{status} (empty)"
    assert content_type.startswith("application/json"), f"{status} answer is {content_type!r}, not JSON: {text[:100]}"
    error = json.loads(text)["error"]
    if isinstance(error, str):  # the inference protocol's shape
        assert error, f"{status} answer with an empty error message"
        return f"{status} (inference protocol)"
    assert error["code"] and error["message"], f"{status} answer without code or message: {text[:300]}"
    return f"{status} {error['code']}"


def judge_exception(exc: BaseException) -> str:
    """In-process: a `ServiceError` with a 4xx status is the only acceptable failure."""
    if isinstance(exc, ServiceError) and 400 <= exc.http_status < 500 and exc.message:
        assert not leaks(exc.message), f"message leaks {leaks(exc.message)}: {exc.message}"
        return f"{exc.http_status} {exc.code}"
    raise AssertionError(f"{type(exc).__name__}: {exc}") from exc


CLIENT_STATUSES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


def judge_grpc(call: Callable[..., bytes], request: bytes, timeout: float = 60.0) -> str:
    """Send raw `request` bytes; the status name, or AssertionError for INTERNAL/UNKNOWN or a leak."""
    try:
        call(request, timeout=timeout)
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""  # type: ignore[attr-defined]
        assert code in CLIENT_STATUSES, f"{code}: {details[:300]}"
        assert details, f"{code} without a message"
        assert not leaks(details), f"{code} details leak {leaks(details)}: {details[:300]}"
        return str(code.name)
    return "OK"
