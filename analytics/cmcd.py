"""Common Media Client Data (CTA-5004) parsing (pure).

Players with CMCD on (hls.js, Shaka Player) add ``CMCD=<payload>`` to segment requests. The payload
is a comma-separated list of ``key=value`` pairs: strings are double-quoted (and may contain commas),
tokens and numbers are bare, and a boolean is true when its key stands alone (false is omitted).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

STRING_KEYS = {"cid", "sid", "nor", "nrr"}
TOKEN_KEYS = {"ot", "sf", "st"}
NUMBER_KEYS = {"br", "bl", "d", "dl", "mtp", "rtp", "tb", "v", "pr"}
BOOLEAN_KEYS = {"bs", "su"}
MAX_LENGTH = 2048


class CmcdError(ValueError):
    pass


def _split(payload: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in payload:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise CmcdError("unterminated string")
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_cmcd(payload: str) -> dict[str, Any]:
    """Parse one CMCD payload; unknown keys are kept as strings, malformed known keys are refused."""
    if len(payload) > MAX_LENGTH:
        raise CmcdError("payload too long")
    data: dict[str, Any] = {}
    for part in _split(payload):
        key, has_value, raw = part.partition("=")
        if not has_value:
            data[key] = True
            continue
        if key in STRING_KEYS:
            if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
                raise CmcdError(f"{key} must be a quoted string")
            data[key] = raw[1:-1].replace('\\"', '"')
        elif key in NUMBER_KEYS:
            try:
                data[key] = float(raw) if key == "pr" else int(raw)
            except ValueError as exc:
                raise CmcdError(f"{key} must be a number") from exc
        elif key in BOOLEAN_KEYS:
            data[key] = raw == "true"
        else:
            data[key] = raw.strip('"')
    return data


def cmcd_from_url(url: str) -> dict[str, Any] | None:
    """The CMCD data carried in a request URL's query string, or None if there is none."""
    values = parse_qs(urlsplit(url).query).get("CMCD")
    if not values:
        return None
    return parse_cmcd(unquote(values[0]) if "%" in values[0] else values[0])
