"""What a byte stream must offer to be read in chunks: a file, an HTTP request body, a hashing reader; and
a response body streamed chunk by chunk under ASGI as under WSGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TypeVar

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

Chunk = TypeVar("Chunk", str, bytes)


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def _next_chunk(chunks: Iterator[Chunk]) -> Chunk | None:
    return next(chunks, None)


async def async_chunks(chunks: Iterator[Chunk], *, thread_sensitive: bool = False) -> AsyncIterator[Chunk]:
    """Yield a blocking iterator's chunks one at a time, each read in a worker thread.

    `thread_sensitive=True` when the iterator queries the database: every chunk is then read in the same
    thread, on the request's connection (a pool thread would open a connection of its own and keep it)."""
    step = sync_to_async(_next_chunk, thread_sensitive=thread_sensitive)
    try:
        while (chunk := await step(chunks)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=thread_sensitive)()


def streaming_content(
    request: HttpRequest, chunks: Iterator[Chunk], *, thread_sensitive: bool = False
) -> Iterator[Chunk] | AsyncIterator[Chunk]:
    """What to give StreamingHttpResponse: under ASGI an async iterator, since Django's ASGI handler reads a
    synchronous one whole into memory before sending a byte; under WSGI the iterator itself."""
    if isinstance(request, ASGIRequest):
        return async_chunks(chunks, thread_sensitive=thread_sensitive)
    return chunks
