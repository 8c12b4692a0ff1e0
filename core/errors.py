"""What kind of refusal a domain error is. Services raise these; they know nothing of HTTP.

The API maps each kind to one HTTP status in one place (config/api_errors.py). A domain error's
message is written for the person who made the request and is returned to them as it is, so it
never holds a secret or another user's data.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a message safe to show to whoever made it."""


class Invalid(DomainError):
    """The request itself is malformed or out of range; sending it again will not help."""


class NotAllowed(DomainError):
    """This caller may not do this (not entitled, not the owner, a token for something else)."""


class NotFound(DomainError):
    """No such thing, or none this caller may know about."""


class Conflict(DomainError):
    """The thing is not in a state that allows this now (not ready yet, already finished)."""


class TooLarge(DomainError):
    """More than the caller may send or store."""


class UpstreamFailed(DomainError):
    """A system we called on the caller's behalf (an LMS, a key server) did not answer usefully."""


class Misconfigured(DomainError):
    """This server is not set up to do this; only its operator can fix it."""


class Unavailable(DomainError):
    """A component the request needs is down or full; the same request may succeed later."""

    def __init__(self, message: str, *, retry_after_seconds: int = 10) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
