from __future__ import annotations


class LtiError(Exception):
    """A launch or message we refuse; ``str(exc)`` is shown to the person on the error page."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class PlatformTransientError(Exception):
    """The platform did not answer, or answered 5xx/429: retrying later may help."""


class PlatformPermanentError(Exception):
    """The platform refused what we sent (4xx): retrying the same request will not help."""
