"""The W3C Encrypted Media Extensions ClearKey license format (pure: no Django).

Request (what the CDM generates, https://www.w3.org/TR/encrypted-media/#clear-key-request-format):
``{"kids": ["<base64url kid>", ...], "type": "temporary"}``. Response (a JSON Web Key Set):
``{"keys": [{"kty": "oct", "k": "<base64url key>", "kid": "<base64url kid>"}], "type": "temporary"}``.
base64url without padding throughout.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

MAX_REQUEST_BYTES = 4096
MAX_KIDS = 16
_B64URL = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 bytes, no padding


class MalformedLicenseRequest(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_request(body: bytes) -> list[str]:
    """The requested key ids as 32 hex digits, in request order without repeats."""
    if len(body) > MAX_REQUEST_BYTES:
        raise MalformedLicenseRequest("request too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedLicenseRequest("the body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("kids"), list):
        raise MalformedLicenseRequest('expected {"kids": [...], "type": "temporary"}')
    if data.get("type", "temporary") != "temporary":
        raise MalformedLicenseRequest("only temporary licenses are issued")
    kids = data["kids"]
    if not 1 <= len(kids) <= MAX_KIDS:
        raise MalformedLicenseRequest(f"between 1 and {MAX_KIDS} kids")
    parsed: list[str] = []
    for kid in kids:
        if not isinstance(kid, str) or not _B64URL.fullmatch(kid):
            raise MalformedLicenseRequest("each kid must be 16 bytes in base64url without padding")
        try:
            hex_kid = b64url_decode(kid).hex()
        except (binascii.Error, ValueError) as exc:
            raise MalformedLicenseRequest("bad base64url") from exc
        if hex_kid not in parsed:
            parsed.append(hex_kid)
    return parsed


def license_response(keys: list[tuple[str, bytes]]) -> dict[str, object]:
    """The JWK set for ``(kid hex, key bytes)`` pairs."""
    return {
        "keys": [{"kty": "oct", "k": b64url(key), "kid": b64url(bytes.fromhex(kid))} for kid, key in keys],
        "type": "temporary",
    }
