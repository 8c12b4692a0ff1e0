"""The S3 server the suite runs against really checks signatures (moto's server mode does not)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

import pytest

from tests.harness import s3_client

pytestmark = pytest.mark.skipif(os.environ.get("STORAGE_BACKEND") != "s3", reason="runs under the test harness")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def s3_object() -> tuple[object, str, str]:
    client = s3_client(os.environ["S3_ENDPOINT_URL"])
    bucket, key = os.environ["S3_BUCKET"], f"signature-check/{time.time_ns()}"
    client.put_object(Bucket=bucket, Key=key, Body=b"secret lesson")
    yield client, bucket, key
    client.delete_object(Bucket=bucket, Key=key)


def test_signed_request_works(s3_object) -> None:  # type: ignore[no-untyped-def]
    client, bucket, key = s3_object
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    assert _status(url) == 200


def test_anonymous_tampered_expired_and_wrong_secret_are_refused(s3_object) -> None:  # type: ignore[no-untyped-def]
    client, bucket, key = s3_object
    endpoint = os.environ["S3_ENDPOINT_URL"]
    assert _status(f"{endpoint}/{bucket}/{key}") == 403

    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    signature = url.split("X-Amz-Signature=")[1][:64]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert _status(tampered) == 403

    expired = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=1)
    time.sleep(2.1)
    assert _status(expired) == 403

    impostor = s3_client(endpoint, secret_key="not-the-secret-key-at-all-000000")
    with pytest.raises(Exception) as excinfo:
        impostor.get_object(Bucket=bucket, Key=key)
    assert "SignatureDoesNotMatch" in str(excinfo.value) or "AccessDenied" in str(excinfo.value)
