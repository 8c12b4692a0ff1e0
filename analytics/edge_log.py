"""CMCD from the edge's JSON access log (deploy/nginx/log-format.conf), one object per line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from analytics.middleware import record_cmcd


def cmcd_payloads(lines: Iterable[str]) -> Iterable[str]:
    """The CMCD payload of every media request line that carries one; other lines are skipped."""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        uri = entry.get("request_uri", "") if isinstance(entry, dict) else ""
        if not isinstance(uri, str) or "CMCD=" not in uri:
            continue
        values = parse_qs(urlsplit(uri).query).get("CMCD")
        if values:
            yield values[0]


def ingest_edge_log(lines: Iterable[str]) -> int:
    """Count the CMCD of every line into the same metrics the origin feeds; returns how many."""
    count = 0
    for payload in cmcd_payloads(lines):
        record_cmcd(payload)
        count += 1
    return count
