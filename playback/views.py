"""The Django origin: check the path token, then stream the object with byte ranges."""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.http import require_http_methods

from core import streams
from media_pipeline import storage
from media_pipeline.regions import ObjectStore, region_get, store_for
from playback.binding import binding_for
from playback.origin import RangeNotSatisfiable, cache_control_for, parse_range
from playback.tokens import TokenResult, prefix_of, token_verify


def text_refusal(text: str, status: int) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _verify(request: HttpRequest, token: str, key: str) -> TokenResult:
    return token_verify(
        secret=settings.PLAYBACK_TOKEN_SECRET.encode(),
        token=token,
        path_key=key,
        now=int(time.time()),
        binding=binding_for(request).token_value(),
    )


@require_http_methods(["GET", "HEAD"])
def stream(request: HttpRequest, token: str, key: str) -> HttpResponseBase:
    verdict = _verify(request, token, key)
    # Refusals never reach storage.
    if verdict is TokenResult.BAD:
        return text_refusal("forbidden", 403)
    if verdict is TokenResult.EXPIRED:
        return text_refusal("playback token expired", 410)
    return _serve(request, key)


@require_http_methods(["GET", "HEAD"])
def region_stream(request: HttpRequest, region: str, token: str, key: str) -> HttpResponseBase:
    """The same as ``stream``, reading a non-primary storage region."""
    verdict = _verify(request, token, key)
    if verdict is TokenResult.BAD:
        return text_refusal("forbidden", 403)
    if verdict is TokenResult.EXPIRED:
        return text_refusal("playback token expired", 410)
    found = region_get(region)
    if found is None:
        return text_refusal("not found", 404)
    return _serve(request, key, store=store_for(found))


@require_http_methods(["GET", "HEAD"])
def edge_fetch(request: HttpRequest, key: str) -> HttpResponseBase:
    """The object behind an edge (deploy/nginx): the edge checked the viewer's token and proves
    itself with a shared secret header, so it can cache one copy per object for every viewer."""
    secret = settings.EDGE_ORIGIN_SECRET
    offered = request.headers.get("X-Lessons-Edge-Secret", "")
    if not secret or not hmac.compare_digest(offered.encode(), secret.encode()) or prefix_of(key) is None:
        return text_refusal("forbidden", 403)
    # An edge in front of another storage region says which (deploy/nginx: $lessons_region).
    region_name = request.headers.get("X-Lessons-Region", "")
    if not region_name:
        return _serve(request, key)
    region = region_get(region_name)
    if region is None:
        return text_refusal("not found", 404)
    return _serve(request, key, store=None if region.primary else store_for(region))


def _serve(request: HttpRequest, key: str, *, store: ObjectStore | None = None) -> HttpResponseBase:
    if store is None:
        if not storage.exists(key):
            return text_refusal("not found", 404)
        size = storage.size(key)
    else:
        info = store.head(key)
        if info is None:
            return text_refusal("not found", 404)
        size = info.size
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        refusal = text_refusal("range not satisfiable", 416)
        refusal["Content-Range"] = f"bytes */{size}"
        return refusal

    start, end = byte_range if byte_range else (0, size - 1)
    length = end - start + 1
    status = 206 if byte_range else 200
    response: HttpResponseBase
    if request.method == "HEAD" or length == 0:
        response = HttpResponse(status=status)
    else:
        chunks = (
            storage.open_range(key=key, start=start, end=end)
            if store is None
            else store.read(key, start=start, end=end)
        )
        # Under ASGI a synchronous iterator would be read whole into memory before sending.
        response = StreamingHttpResponse(streams.streaming_content(request, chunks), status=status)
    response["Content-Type"] = storage.content_type_for(key)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = cache_control_for(key)
    response["Access-Control-Allow-Origin"] = "*"
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
