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
