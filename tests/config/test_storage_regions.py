"""Storage regions from the environment (config/storage_regions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.storage_regions import django_storage_for, storage_regions_from_env

REGION_VARS = ("STORAGE_REGIONS", "STORAGE_PRIMARY_REGION", "STORAGE_REGION_NAME", "STORAGE_BACKEND")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in REGION_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_one_local_region_by_default(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert storage_regions_from_env(default_local_path=tmp_path) == [
        {"name": "default", "backend": "local", "location": str(tmp_path), "primary": True, "base_url": "",
         "countries": []}
    ]  # fmt: skip


def test_the_single_s3_region_comes_from_the_s3_variables(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("STORAGE_BACKEND", "s3")
    env.setenv("STORAGE_REGION_NAME", "eu-west")
    for name, value in {"S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s",
                        "S3_ENDPOINT_URL": "http://s3.example:9000"}.items():  # fmt: skip
        env.setenv(name, value)
    [region] = storage_regions_from_env(default_local_path=tmp_path)
    assert (region["name"], region["backend"], region["primary"]) == ("eu-west", "s3", True)
    assert (region["bucket"], region["endpoint_url"]) == ("b", "http://s3.example:9000")
    assert region["region_name"] == "us-east-1"
    assert django_storage_for(region)["OPTIONS"]["bucket_name"] == "b"


def test_several_regions_each_with_its_own_variables_and_secret_files(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "us-secret"
    secret.write_text("from-a-file\n")
    env.setenv("STORAGE_REGIONS", "eu, us-east")
    env.setenv("STORAGE_PRIMARY_REGION", "us-east")
    env.setenv("REGION_EU_BACKEND", "local")
    env.setenv("REGION_EU_LOCAL_PATH", str(tmp_path / "eu"))
    env.setenv("REGION_EU_COUNTRIES", "de,fr")
    env.setenv("REGION_EU_BASE_URL", "https://eu.cdn.example/")
    env.setenv("REGION_US_EAST_S3_BUCKET", "lessons-us")
    env.setenv("REGION_US_EAST_S3_ACCESS_KEY_ID", "AKIA")
    env.setenv("REGION_US_EAST_S3_SECRET_ACCESS_KEY_FILE", str(secret))
    us, eu = storage_regions_from_env(default_local_path=tmp_path)
    assert (us["name"], us["primary"], us["secret_key"], us["bucket"]) == ("us-east", True, "from-a-file", "lessons-us")
    assert (eu["name"], eu["primary"], eu["backend"]) == ("eu", False, "local")
    assert (eu["countries"], eu["base_url"]) == (["DE", "FR"], "https://eu.cdn.example")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"STORAGE_REGIONS": "EU"}, "'EU' is not a region name"),
        ({"STORAGE_REGIONS": "eu"}, "REGION_EU_S3_BUCKET must be set"),
        ({"STORAGE_REGIONS": "eu", "REGION_EU_BACKEND": "ftp"}, "REGION_EU_BACKEND='ftp' must be one of local, s3"),
    ],
    ids=["name", "missing", "backend"],
)  # fmt: skip
def test_a_bad_region_setting_names_the_variable(
    env: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(")):
        storage_regions_from_env(default_local_path=tmp_path)


def test_regions_that_do_not_fit_together_are_read_as_given(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A name twice, or a primary that is none of them: each value reads, and config/checks.py reports
    the combination (lessons.E005, lessons.E006; tests/config/test_checks.py)."""
    for name, value in {"STORAGE_REGIONS": "eu,eu", "REGION_EU_BACKEND": "local", "REGION_EU_LOCAL_PATH": "/x",
                        "STORAGE_PRIMARY_REGION": "us"}.items():  # fmt: skip
        env.setenv(name, value)
    regions = storage_regions_from_env(default_local_path=tmp_path)
    assert [(region["name"], region["primary"]) for region in regions] == [("eu", False), ("eu", False)]
