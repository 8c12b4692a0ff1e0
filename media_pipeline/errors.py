from __future__ import annotations


class PermanentError(Exception):
    """The input or the content cannot be processed; retrying will not help."""


class InputRejected(PermanentError):
    """The upload is not a playable video; ``str(exc)`` is the reason shown to the educator."""
