"""The ClearKey license server and the HLS key endpoint: thin views around drm/services.keys_release."""

from __future__ import annotations

import logging
import re

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.api_errors import status_for
from playback.binding import client_ip
from playback.drm import clearkey
from playback.drm.services import KeyRefused, Requester, bearer_token, keys_release
from playback.throttles import KeyThrottle, LicenseThrottle, throttle_refusal

logger = logging.getLogger(__name__)
_KID_HEX = re.compile(r"[0-9a-f]{32}")


def _requester(request: HttpRequest) -> Requester:
    return Requester(user=request.user, session_key=request.session.session_key, ip=client_ip(request) or None)


def _refusal(text: str, status: int) -> JsonResponse:
    response = JsonResponse({"detail": text}, status=status)
    response["Cache-Control"] = "no-store"
    return response


# No CSRF cookie check: the request must carry the license token in a header, which another site's
# page cannot read or send (no CORS here), and it changes nothing but the audit log.
@csrf_exempt
@require_http_methods(["POST"])
def clearkey_license(request: HttpRequest) -> HttpResponseBase:
    throttled = throttle_refusal(LicenseThrottle(), request)
    if throttled is not None:
        return throttled
    try:
        kids = clearkey.parse_request(request.body)
    except clearkey.MalformedLicenseRequest as exc:
        return _refusal(str(exc), 400)
    try:
        token = bearer_token(request.headers.get("Authorization", ""))
        keys = keys_release(requester=_requester(request), token=token, kids=kids, endpoint="license")
    except KeyRefused as refused:
        logger.info("license refused: %s", refused.reason)
        return _refusal(refused.reason, status_for(refused))
    response = JsonResponse(clearkey.license_response([(key.kid_hex, key.key) for key in keys]))
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET"])
def hls_key(request: HttpRequest, kid: str) -> HttpResponseBase:
    throttled = throttle_refusal(KeyThrottle(), request)
    if throttled is not None:
        return throttled
    if not _KID_HEX.fullmatch(kid):
        return _refusal("the key id must be 32 lowercase hex digits", 400)
    try:
        token = bearer_token(request.headers.get("Authorization", ""))
        (key,) = keys_release(requester=_requester(request), token=token, kids=[kid], endpoint="hls_key")
    except KeyRefused as refused:
        logger.info("HLS key refused: %s", refused.reason)
        return _refusal(refused.reason, status_for(refused))
    response = HttpResponse(key.key, content_type="application/octet-stream")
    response["Cache-Control"] = "no-store"
    return response
