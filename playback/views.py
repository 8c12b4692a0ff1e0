"""The Django origin: check the path token, then stream the object with byte ranges."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_http_methods

from media_pipeline import storage
from playback.origin import RangeNotSatisfiable, cache_control_for, parse_range
from playback.tokens import TokenResult, token_verify


@require_http_methods(["GET", "HEAD"])
def stream(request: HttpRequest, token: str, key: str) -> HttpResponse:
    verdict = token_verify(secret=settings.PLAYBACK_TOKEN_SECRET.encode(), token=token, key=key, now=int(time.time()))
    # Refusals never reach storage.
    if verdict is TokenResult.BAD:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    if verdict is TokenResult.EXPIRED:
        return HttpResponse("playback token expired\n", status=410, content_type="text/plain")

    if not storage.exists(key):
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    size = storage.size(key)
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response

    start, end = byte_range if byte_range else (0, size - 1)
    length = max(0, end - start + 1)
    if request.method == "HEAD" or length == 0:
        response: HttpResponse = HttpResponse(status=206 if byte_range else 200)
    else:
        response = StreamingHttpResponse(
            storage.open_range(key=key, start=start, end=end), status=206 if byte_range else 200
        )
    response["Content-Type"] = storage.content_type_for(key)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = cache_control_for(key)
    response["Access-Control-Allow-Origin"] = "*"
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
