"""Outbound HTTP to platforms: urllib with a timeout on every call, errors sorted into retryable or not."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from courses.lti.errors import PlatformPermanentError, PlatformTransientError

MAX_BODY = 5 * 1024 * 1024  # a roster page or a configuration is far smaller


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise PlatformPermanentError(f"the platform answered with something that is not JSON: {exc}") from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A platform endpoint that redirects is misconfigured; following it could carry a bearer token elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def request(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None) -> Reply:
    if not url.lower().startswith(("https://", "http://")):
        raise PlatformPermanentError(f"not an http(s) URL: {url[:100]}")
    outgoing = urllib.request.Request(
        url, data=body, method=method, headers={"User-Agent": "lessons-lti/1", **(headers or {})}
    )
    try:
        with _opener.open(outgoing, timeout=settings.LTI_HTTP_TIMEOUT_SECONDS) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode(errors="replace")
        exc.close()
        if exc.code >= 500 or exc.code in (408, 429):
            raise PlatformTransientError(f"{method} {url} answered {exc.code}: {detail[:200]}") from exc
        raise PlatformPermanentError(f"{method} {url} answered {exc.code}: {detail[:200]}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise PlatformTransientError(f"{method} {url} failed: {exc}") from exc


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
