"""Base class for domain errors. Each feature defines its own; app.py maps them to HTTP once."""

from __future__ import annotations

__all__ = ["DomainError", "NotFound", "Conflict", "InvalidInput"]


class DomainError(Exception):
    """A rule of the shop said no. `code` is stable and machine-readable; the message is for humans."""

    code = "domain_error"

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"
