"""Every exception the service raises on purpose, and the HTTP status each one means.

This is the one place where errors become status codes. The codes follow the Knative
data-plane contract and the channel platforms' retry rules: 4xx means "never retry this
request as it is", 429/503 mean "retry later, nothing was lost".

    ChatServiceError (500)
    ├── BadRequest (400)             malformed JSON, wrong object type, missing field
    ├── Unauthorized (401)           bad/missing signature, stale timestamp, bad token
    ├── Forbidden (403)              unknown channel account, origin not allowed
    ├── NotFound (404)
    ├── MethodNotAllowed (405)
    ├── PayloadTooLarge (413)
    ├── RateLimited (429)
    └── DependencyUnavailable (503)  Kafka (or another required dependency) is down
"""

from __future__ import annotations


class ChatServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class BadRequest(ChatServiceError):
    status = 400
    code = "bad_request"


class Unauthorized(ChatServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ChatServiceError):
    status = 403
    code = "forbidden"


class NotFound(ChatServiceError):
    status = 404
    code = "not_found"


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


def describe(exc: BaseException) -> str:
    """A third-party error as ``TypeName: message`` for logs and wrapped errors."""
    return f"{type(exc).__name__}: {exc}"
