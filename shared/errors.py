"""Every exception the service raises on purpose, and the HTTP status each one means.

This is the one place where errors become status codes. The codes follow the Knative
data-plane contract and the channel platforms' retry rules: 4xx means "never retry this
request as it is", 429/503 mean "retry later, nothing was lost".

    ChatServiceError (500)
    ├── BadRequest (400)             malformed JSON, wrong object type, missing field
    │   └── InvalidParameter (400)   a named parameter is not acceptable
    ├── Unauthorized (401)           bad/missing signature, stale timestamp, bad token
    ├── Forbidden (403)              unknown channel account, origin not allowed
    ├── NotFound (404)
    ├── Conflict (409)               the resource's state does not allow it
    ├── MethodNotAllowed (405)
    ├── PayloadTooLarge (413)
    ├── RateLimited (429)
    └── DependencyUnavailable (503)  Kafka (or another required dependency) is down
"""

from __future__ import annotations

# A message may quote what the caller sent (an unknown key, a bad value): never more than this,
# in the answer or in the log line.
MAX_MESSAGE_CHARS = 300
# What an anonymous caller learns of an outage: retry later. Which dependency, and why, goes
# to the log only (a broker address is nobody else's business).
UNAVAILABLE = "a dependency is unavailable; retry later"


class ChatServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class BadRequest(ChatServiceError):
    status = 400
    code = "bad_request"


class InvalidParameter(BadRequest):
    """A query or path parameter, or a body field, that is not acceptable: named in the answer."""

    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "parameter": self.parameter}


class Unauthorized(ChatServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ChatServiceError):
    status = 403
    code = "forbidden"


class NotFound(ChatServiceError):
    status = 404
    code = "not_found"


class Conflict(ChatServiceError):
    """The resource's state does not allow the request (a reply to a closed conversation)."""

    status = 409
    code = "conflict"


class MethodNotAllowed(ChatServiceError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class PayloadTooLarge(ChatServiceError):
    status = 413
    code = "payload_too_large"


class RateLimited(ChatServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(ChatServiceError):
    status = 503
    code = "dependency_unavailable"

    def __init__(self, message: str, *, dependency: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.dependency = dependency
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": UNAVAILABLE}


def describe(exc: BaseException) -> str:
    """A third-party error as ``TypeName: message`` for logs and wrapped errors."""
    return f"{type(exc).__name__}: {exc}"
