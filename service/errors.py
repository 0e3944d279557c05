"""The one error hierarchy of the service.

Every error a client can see is a `ServiceError` with an HTTP status, a gRPC status name and a
message a person can act on. The front ends map them once (`service/http/errors.py`); nothing
else formats errors. `UnrecoverableError` additionally marks the worker that raised it as broken.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error that is answered to a client."""

    http_status = 500
    grpc_code = "INTERNAL"
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request is malformed (bad parameter, unreadable image)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"
    code = "invalid_argument"


class UnsupportedMediaType(ServiceError):
    """The body is not a type this endpoint takes."""

    http_status = 415
    grpc_code = "INVALID_ARGUMENT"
    code = "unsupported_media_type"


class PayloadTooLarge(ServiceError):
    """Body bytes or declared pixels over a configured limit."""

    http_status = 413
    grpc_code = "INVALID_ARGUMENT"
    code = "payload_too_large"


class ModelNotFound(ServiceError):
    """No loaded model matches the name or scale asked for."""

    http_status = 404
    grpc_code = "NOT_FOUND"
    code = "model_not_found"


class NotFound(ServiceError):
    """No such resource (an asynchronous job that does not exist or has expired)."""

    http_status = 404
    grpc_code = "NOT_FOUND"
    code = "not_found"


class Conflict(ServiceError):
    """The resource is not in a state that allows this (the result of a job that failed)."""

    http_status = 409
    grpc_code = "FAILED_PRECONDITION"
    code = "conflict"


class Unprocessable(ServiceError):
    """Well-formed but not servable as asked (wrong task for the model, say)."""

    http_status = 422
    grpc_code = "INVALID_ARGUMENT"
    code = "unprocessable"


class Overloaded(ServiceError):
    """The model's queue is full; retry after `retry_after_s`."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"
    code = "overloaded"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(Overloaded):
    """This client sent more requests than its rate limit allows; retry after `retry_after_s`."""

    code = "rate_limited"


class Unauthenticated(ServiceError):
    """No API key or bearer token, or one this server does not accept."""

    http_status = 401
    grpc_code = "UNAUTHENTICATED"
    code = "unauthenticated"


class DeadlineExceeded(ServiceError):
    """The request's deadline passed before it could be answered."""

    http_status = 504
    grpc_code = "DEADLINE_EXCEEDED"
    code = "deadline_exceeded"


class NotReady(ServiceError):
    """Models are still loading, or the server is draining."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    code = "not_ready"


class Cancelled(ServiceError):
    """The client went away; nobody reads this answer."""

    http_status = 499
    grpc_code = "CANCELLED"
    code = "cancelled"


class InferenceFailed(ServiceError):
    """The runtime failed on this request's batch; other requests are unaffected."""

    http_status = 500
    grpc_code = "INTERNAL"
    code = "inference_failed"


class UnrecoverableError(ServiceError):
    """The execution slot is broken (CUDA error, corrupt engine): it must be restarted."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    code = "worker_failed"


class Unimplemented(ServiceError):
    """A task or protocol feature this server does not offer (yet)."""

    http_status = 501
    grpc_code = "UNIMPLEMENTED"
    code = "not_implemented"


class ConfigError(Exception):
    """Bad settings or model repository: start-up stops with this message."""
