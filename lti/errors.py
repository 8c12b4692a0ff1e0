"""What the LTI tool refuses, as kinds of domain error (core/errors.py): the views give each its status."""

from __future__ import annotations

from core import errors


class LtiError(errors.DomainError):
    """A launch or message we refuse; ``str(exc)`` is shown to the person on the error page.

    Malformed (400) unless a subclass names another kind; it is not itself ``Invalid``, so that a
    subclass's kind comes first when the status is looked up (config/api_errors.status_for)."""

    @property
    def reason(self) -> str:
        return str(self)


class LtiRefused(LtiError, errors.NotAllowed):
    """Understood, but this person, deployment or link may not do it."""


class LtiNotFound(LtiError, errors.NotFound):
    """What the launch points to does not exist (any more)."""


class LtiConflict(LtiError, errors.Conflict):
    """It clashes with what is registered already."""


class PlatformAnswerUnusable(LtiError, errors.UpstreamFailed):
    """The platform could not be reached, or its answer cannot be used (configuration, keys)."""


class ToolMisconfigured(LtiError, errors.Misconfigured):
    """This tool's own set-up stops it (a signing key that cannot be read)."""


class PlatformTransientError(Exception):
    """The platform did not answer, or answered 5xx/429: retrying later may help."""


class PlatformPermanentError(Exception):
    """The platform refused what we sent (4xx): retrying the same request will not help."""
