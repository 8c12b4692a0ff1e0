"""The tus 1.0.0 wire format: header names, values and parsers. Pure functions, no I/O.

Protocol: https://tus.io/protocols/resumable-upload (core, creation, termination, checksum,
expiration). The HTTP view is courses/tus_views.py; upload state is media_pipeline/uploads.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

VERSION = "1.0.0"
EXTENSIONS = ("creation", "termination", "checksum", "expiration")
# hashlib names, as tus clients send them (tus-js-client and tuspy use sha1).
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# tus's own status for "the chunk's checksum does not match" (not in the HTTP registry).
CHECKSUM_MISMATCH = 460


class ProtocolError(ValueError):
    """A malformed tus header: the request is answered with 400 and this message."""


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def parse_checksum(value: str) -> Checksum:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ProtocolError(
            f"unsupported checksum algorithm {algorithm!r}; this server supports {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("the Upload-Checksum value is not base64") from exc
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise ProtocolError(f"a {algorithm} digest is {hashlib.new(algorithm).digest_size} bytes long")
    return Checksum(algorithm, digest)


def parse_metadata(value: str) -> dict[str, str]:
    """``Upload-Metadata: key base64value,key2,...``: keys unique, values base64 (may be absent)."""
    metadata: dict[str, str] = {}
    for pair in value.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        if not key or key in metadata or " " in encoded.strip():
            raise ProtocolError("Upload-Metadata must be comma-separated unique keys, each with a base64 value")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8") if encoded else ""
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"the Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from exc
    return metadata


def parse_non_negative(name: str, value: str | None) -> int:
    if value is None or not value.strip().isdigit():
        raise ProtocolError(f"{name} must be a non-negative integer")
    return int(value.strip())


def http_date(moment: datetime) -> str:
    """RFC 7231 date, as Upload-Expires wants it."""
    return format_datetime(moment, usegmt=True)


def display_name(name: str) -> str:
    """A client's file name made safe to show: last path component, printable, at most 255 characters.

    Only ever displayed: storage keys are generated (media_pipeline.layout.source_key).
    """
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "<>\"'`")
    name = " ".join(name.split()).lstrip(".")
    return name[:255] or "upload"
