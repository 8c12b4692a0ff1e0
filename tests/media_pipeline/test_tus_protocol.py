"""The tus wire format (media_pipeline/tus.py): pure functions, no Django."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from media_pipeline import tus


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_checksum_header_is_parsed_into_algorithm_and_digest() -> None:
    digest = hashlib.sha1(b"abc").digest()
    assert tus.parse_checksum(f"sha1 {base64.b64encode(digest).decode()}") == tus.Checksum("sha1", digest)
    assert tus.parse_checksum(f"SHA1 {base64.b64encode(digest).decode()}").algorithm == "sha1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("crc32 AAAA", "unsupported checksum algorithm 'crc32'; this server supports sha1, sha256, md5"),
        ("sha1 not*base64", "the Upload-Checksum value is not base64"),
        (f"sha1 {base64.b64encode(b'short').decode()}", "a sha1 digest is 20 bytes long"),
        ("", "unsupported checksum algorithm ''; this server supports sha1, sha256, md5"),
    ],
)
def test_bad_checksum_headers_are_refused_with_a_reason(value: str, message: str) -> None:
    with pytest.raises(tus.ProtocolError) as refused:
        tus.parse_checksum(value)
    assert str(refused.value) == message


def test_metadata_pairs_are_decoded_and_a_key_may_have_no_value() -> None:
    header = f"lesson {b64('0b1e')},filename {b64('Wöche 1.mp4')},is_confidential"
    assert tus.parse_metadata(header) == {"lesson": "0b1e", "filename": "Wöche 1.mp4", "is_confidential": ""}
    assert tus.parse_metadata("") == {}


@pytest.mark.parametrize("header", ["a YQ==,a Yg==", "a not*base64", "a YQ== Yg==", f"a {b64('x')[:-1]}"])
def test_malformed_metadata_is_refused(header: str) -> None:
    with pytest.raises(tus.ProtocolError):
        tus.parse_metadata(header)


def test_offsets_and_lengths_must_be_non_negative_integers() -> None:
    assert tus.parse_non_negative("Upload-Offset", "42") == 42
    for bad in (None, "", "-1", "1.5", "0x10"):
        with pytest.raises(tus.ProtocolError):
            tus.parse_non_negative("Upload-Offset", bad)


def test_expiry_is_an_http_date() -> None:
    assert tus.http_date(datetime(2026, 11, 25, 16, 0, tzinfo=UTC)) == "Wed, 25 Nov 2026 16:00:00 GMT"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Lecture 1.mp4", "Lecture 1.mp4"),
        ('<b>Week" 1</b>.mp4', "b.mp4"),  # "/" in the tag: the last path component
        ("<b>Week 1.mp4", "bWeek 1.mp4"),
        ("..hidden", "hidden"),
        ("tab\tand\nnewline.mp4", "tabandnewline.mp4"),
        ("", "upload"),
        ("x" * 300, "x" * 255),
    ],
)
def test_client_file_names_are_made_safe_to_display(name: str, shown: str) -> None:
    assert tus.display_name(name) == shown
