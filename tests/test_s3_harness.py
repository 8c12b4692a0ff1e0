"""The S3 server the suite runs against really checks signatures (moto's server mode does not), so
the security tests that rely on it mean something: anonymous, tampered, expired and wrongly signed
requests are all refused, and a refused request changes nothing."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.harness import S3_ACCESS_KEY, S3_SECRET_KEY, s3_client

BODY = b"secret lesson"


def _status(url: str, *, method: str = "GET", data: bytes | None = None) -> int:
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def s3_object(s3: Any) -> Iterator[tuple[Any, str, str]]:
    bucket, key = os.environ["S3_BUCKET"], f"signature-check/{time.time_ns()}"
    s3.put_object(Bucket=bucket, Key=key, Body=BODY)
    yield s3, bucket, key
    s3.delete_object(Bucket=bucket, Key=key)


def _tamper(url: str) -> str:
    signature = url.split("X-Amz-Signature=")[1][:64]
    return url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])


def test_a_correctly_presigned_url_works(s3_object: tuple[Any, str, str]) -> None:
    client, bucket, key = s3_object
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert (response.status, response.read()) == (200, BODY)


def test_anonymous_requests_are_refused(s3_object: tuple[Any, str, str]) -> None:
    client, bucket, key = s3_object
    endpoint = os.environ["S3_ENDPOINT_URL"]
    assert _status(f"{endpoint}/{bucket}/{key}") == 403
    assert _status(f"{endpoint}/{bucket}?list-type=2") == 403
    assert _status(f"{endpoint}/{bucket}/{key}", method="PUT", data=b"overwritten") == 403
    assert _status(f"{endpoint}/{bucket}/{key}", method="DELETE") == 403
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY


def test_tampered_and_expired_presigned_urls_are_refused(s3_object: tuple[Any, str, str]) -> None:
    client, bucket, key = s3_object
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    assert _status(_tamper(url)) == 403
    # Pointing a valid signature at another key must not work either.
    assert _status(url.replace(f"/{key}?", f"/{key}-other?")) == 403

    put_url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    assert _status(_tamper(put_url), method="PUT", data=b"overwritten") == 403

    expired = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=1)
    time.sleep(2.1)
    assert _status(expired) == 403
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY


@pytest.mark.parametrize(
    ("access_key", "secret_key"),
    [
        (S3_ACCESS_KEY, "not-the-secret-key-at-all-000000"),
        ("someone-else", S3_SECRET_KEY),
    ],
    ids=["wrong-secret", "unknown-key"],
)
def test_wrong_credentials_are_refused(s3_object: tuple[Any, str, str], access_key: str, secret_key: str) -> None:
    client, bucket, key = s3_object
    impostor = s3_client(os.environ["S3_ENDPOINT_URL"], access_key=access_key, secret_key=secret_key)
    for attempt in (
        lambda: impostor.get_object(Bucket=bucket, Key=key),
        lambda: impostor.put_object(Bucket=bucket, Key=key, Body=b"overwritten"),
        lambda: impostor.delete_object(Bucket=bucket, Key=key),
    ):
        with pytest.raises(ClientError) as excinfo:
            attempt()
        refusals = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}
        assert excinfo.value.response["Error"]["Code"] in refusals
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY
