"""Outbound HTTP to platforms, through the one guarded client (outbound/client.py), with its errors
sorted into retryable or not for the LTI workers."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from lti.errors import PlatformPermanentError, PlatformTransientError
from outbound import client

MAX_BODY = 5 * 1024 * 1024  # a roster page or a configuration is far smaller
logger = logging.getLogger(__name__)


class Reply(client.Reply):
    """The outbound client's reply, whose JSON errors are the platform's (not retried)."""

    def json(self) -> Any:
        try:
            return super().json()
        except client.RemoteRefused as exc:
            raise PlatformPermanentError("the platform answered with something that is not JSON") from exc


def request(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None) -> Reply:
    try:
        reply = client.request(
            method,
            url,
            headers=headers,
            body=body,
            timeout=settings.LTI_HTTP_TIMEOUT_SECONDS,
            max_bytes=MAX_BODY,
            allow=settings.OUTBOUND_HTTP_ALLOW_NETWORKS,
        )
    except client.OutboundError as exc:
        if exc.detail:
            logger.info("platform answer to %s %s: %r", method, url[:200], exc.detail)
        if exc.transient:
            raise PlatformTransientError(str(exc)) from exc
        raise PlatformPermanentError(str(exc)) from exc
    return Reply(reply.status, reply.headers, reply.body)


def get_json(url: str, *, headers: dict[str, str] | None = None) -> Reply:
    return request("GET", url, headers={"Accept": "application/json", **(headers or {})})


def post_json(
    url: str, payload: Any, *, content_type: str = "application/json", headers: dict[str, str] | None = None
) -> Reply:
    body = json.dumps(payload).encode()
    return request("POST", url, headers={"Content-Type": content_type, **(headers or {})}, body=body)


def post_form(url: str, fields: dict[str, str]) -> Reply:
    body = urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    return request("POST", url, headers=headers, body=body)
