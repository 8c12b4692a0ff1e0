"""The Django origin as a signer (pure): ``<stream root><token>/<prefix>``, token from playback.tokens."""

from __future__ import annotations

from playback.binding import UNBOUND, Binding
from playback.tokens import token_issue


class OriginSigner:
    def __init__(self, *, secret: bytes, stream_root: str = "/stream/") -> None:
        if not stream_root.endswith("/"):
            raise ValueError("stream_root must end with a slash")
        self._secret = secret
        self._stream_root = stream_root

    def sign_prefix(self, *, prefix: str, expires_at: int, binding: Binding = UNBOUND) -> str:
        token = token_issue(secret=self._secret, prefix=prefix, expires_at=expires_at, binding=binding.token_value())
        return f"{self._stream_root}{token}/{prefix}"
