"""The completion check of a direct upload (media_pipeline.direct_uploads.parts_problems): pure, no
storage. The same rules on real storage: tests/courses/test_direct_uploads.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django import Settings

from config.storage_regions import storage_regions_from_env
from media_pipeline.direct_uploads import StoredPart, md5_digest, normal_etag, parts_problems, presigning_client

E1, E2, E3 = '"' + "1" * 32 + '"', '"' + "2" * 32 + '"', '"' + "3" * 32 + '"'


def stored(*parts: tuple[int, int, str]) -> list[StoredPart]:
    return [StoredPart(number, size, normal_etag(etag)) for number, size, etag in parts]


def test_whole_parts_and_a_short_last_one_complete() -> None:
    have = stored((1, 10, E1), (2, 10, E2), (3, 5, E3))
    assert parts_problems(declared=[(3, E3), (1, E1), (2, E2)], stored=have, length=25, part_size=10) == []
    # One part exactly: the last is the first.
    assert parts_problems(declared=[(1, E1)], stored=stored((1, 7, E1)), length=7, part_size=10) == []


def test_missing_unlisted_short_long_and_foreign_parts_are_named() -> None:
    have = stored((1, 10, E1), (3, 5, E3))
    assert parts_problems(declared=[(1, E1), (2, E2), (3, E3)], stored=have, length=25, part_size=10) == [
        "part 2 is not in storage"
    ]
    assert parts_problems(declared=[(1, E1), (3, E3)], stored=have, length=25, part_size=10) == [
        "the parts listed must be 1 to 3, each once"
    ]
    twice = stored((1, 10, E1), (2, 10, E2))
    assert parts_problems(declared=[(1, E1), (1, E1)], stored=twice, length=20, part_size=10) == [
        "the parts listed must be 1 to 2, each once"
    ]
    short = stored((1, 9, E1), (2, 10, E2), (3, 5, E3))
    assert parts_problems(declared=[(1, E1), (2, E2), (3, E3)], stored=short, length=25, part_size=10) == [
        "part 1 holds 9 bytes, not 10"
    ]
    long_last = stored((1, 10, E1), (2, 10, E2), (3, 6, E3))
    assert parts_problems(declared=[(1, E1), (2, E2), (3, E3)], stored=long_last, length=25, part_size=10) == [
        "part 3 holds 6 bytes, not 5"
    ]
    have = stored((1, 10, E1), (2, 10, E2), (3, 5, E3))
    assert parts_problems(declared=[(1, E1), (2, E3), (3, E3)], stored=have, length=25, part_size=10) == [
        "part 2's ETag in storage is not the one listed"
    ]
    extra = stored((1, 10, E1), (2, 10, E2), (3, 5, E3), (4, 1, E1))
    assert parts_problems(declared=[(1, E1), (2, E2), (3, E3)], stored=extra, length=25, part_size=10) == [
        "storage holds parts beyond the last (4)"
    ]


def test_a_part_sent_twice_is_matched_by_its_etag() -> None:
    # SeaweedFS lists every version of a part sent again; completion names one by its ETag.
    have = stored((1, 9, E1), (1, 10, E2), (2, 5, E3))
    assert parts_problems(declared=[(1, E2), (2, E3)], stored=have, length=15, part_size=10) == []
    assert parts_problems(declared=[(1, E1), (2, E3)], stored=have, length=15, part_size=10) == [
        "part 1 holds 9 bytes, not 10"
    ]


def test_etags_and_md5s_are_read_as_storage_writes_them() -> None:
    assert normal_etag(' "ABCDEF" ') == "abcdef"
    assert md5_digest("1B2M2Y8AsgTpgAmY7PhCfg==") == bytes.fromhex("d41d8cd98f00b204e9800998ecf8427e")
    assert md5_digest("bm90IGFuIG1kNQ==") is None  # 10 bytes, not 16
    assert md5_digest("not base64!") is None


def test_part_urls_name_the_endpoint_browsers_reach(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """S3_PUBLIC_ENDPOINT_URL is the host signed into part URLs; the servers keep S3_ENDPOINT_URL."""
    for name, value in {"STORAGE_BACKEND": "s3", "S3_BUCKET": "media", "S3_ACCESS_KEY_ID": "key",
                        "S3_SECRET_ACCESS_KEY": "secret", "S3_ENDPOINT_URL": "http://seaweed.internal:8333",
                        "S3_PUBLIC_ENDPOINT_URL": "https://uploads.example.edu"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STORAGE_REGIONS", raising=False)
    [region] = storage_regions_from_env(default_local_path=Path("/unused"))
    assert (region["endpoint_url"], region["public_endpoint_url"]) == (
        "http://seaweed.internal:8333", "https://uploads.example.edu"
    )  # fmt: skip
    settings.STORAGE_REGIONS = [region]
    client, bucket = presigning_client()  # signing is local: no request is made
    url = client.generate_presigned_url(
        "upload_part",
        Params={
            "Bucket": bucket,
            "Key": "k",
            "UploadId": "u",
            "PartNumber": 1,
            "ContentMD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        },
    )
    assert url.startswith("https://uploads.example.edu/media/k?uploadId=u&partNumber=1&")
    assert "X-Amz-SignedHeaders=content-md5%3Bhost" in url
    monkeypatch.delenv("S3_PUBLIC_ENDPOINT_URL")
    [region] = storage_regions_from_env(default_local_path=Path("/unused"))
    settings.STORAGE_REGIONS = [region]
    assert presigning_client()[0].meta.endpoint_url == "http://seaweed.internal:8333"
