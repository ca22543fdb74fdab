"""Domain errors; the API maps each to one HTTP status in one place."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Gone(DomainError):
    """Something that existed and can no longer be used: a used or expired link (410)."""

    code = "gone"


class Forbidden(DomainError):
    code = "forbidden"


class Unauthorized(DomainError):
    code = "unauthorized"


class Unavailable(DomainError):
    """A dependency cannot give a safe answer now (e.g. no fresh exchange rate); retry later."""

    code = "unavailable"


class InvalidInput(DomainError):
    """Input that is well-formed but breaks a rule; `errors` lists each field at fault."""

    code = "validation_error"

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class RateLimited(DomainError):
    """Too many requests in the window; `headers` say when to come back."""

    code = "rate_limited"

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers
