"""What a byte stream must offer to be read in chunks: a file, an HTTP request body, a hashing reader."""

from __future__ import annotations

from typing import Protocol


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
