"""Storage regions from the environment.

One region (named by STORAGE_REGION_NAME, "default" unless set) is built from STORAGE_BACKEND and
the S3_* variables when STORAGE_REGIONS is unset: the embedded default and every single-region
deployment. With ``STORAGE_REGIONS=eu,us,ap`` each region is described by its own variables,
``REGION_<NAME>_...`` (name upper-cased, ``-`` as ``_``):

    BACKEND            s3 (default) or local
    S3_ENDPOINT_URL    any S3-compatible endpoint (empty: AWS)
    S3_BUCKET, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (each may be given as ..._FILE)
    S3_ADDRESSING_STYLE  path (default) or virtual
    S3_PUBLIC_ENDPOINT_URL  the endpoint browsers reach, when it differs from S3_ENDPOINT_URL (direct
                       uploads, docs/adr/0026; empty: the same endpoint)
    LOCAL_PATH         folder, for BACKEND=local
    BASE_URL           the CDN or edge serving this region's objects (empty: this site's origin)
    COUNTRIES          ISO country codes of viewers this region is nearest to (DE,FR,...)

The primary region (STORAGE_PRIMARY_REGION, the first listed by default) takes every write and
keeps the originals; it is also Django's default storage. A malformed value (a bad region name, an
unknown backend, a missing bucket) raises ImproperlyConfigured here; whether the regions fit together
is a system check (config/checks.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env_choice, env_list, env_str

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")


def _s3_region(prefix: str, *, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "backend": "s3",
        "endpoint_url": env_str(f"{prefix}S3_ENDPOINT_URL", "") or None,
        # Presigned part URLs for direct uploads name this endpoint: the one the browser reaches.
        "public_endpoint_url": env_str(f"{prefix}S3_PUBLIC_ENDPOINT_URL", "") or None,
        "bucket": env_str(f"{prefix}S3_BUCKET"),
        "region_name": env_str(f"{prefix}S3_REGION", "us-east-1"),
        "access_key": env_str(f"{prefix}S3_ACCESS_KEY_ID"),
        "secret_key": env_str(f"{prefix}S3_SECRET_ACCESS_KEY"),
        "addressing_style": env_choice(f"{prefix}S3_ADDRESSING_STYLE", "path", ("path", "virtual")),
    }


def storage_regions_from_env(*, default_local_path: Path) -> list[dict[str, Any]]:
    """Every region as a plain dict, the primary one first and marked ``primary``."""
    names = env_list("STORAGE_REGIONS", [])
    if not names:
        name = env_str("STORAGE_REGION_NAME", "default")
        backend = env_choice("STORAGE_BACKEND", "local", ("local", "s3"))
        region = (
            _s3_region("", name=name)
            if backend == "s3"
            else {"name": name, "backend": "local", "location": str(default_local_path)}
        )
        region.update(primary=True, base_url="", countries=[])
        return [region]

    regions = []
    for name in names:
        if not _NAME.fullmatch(name):
            raise ImproperlyConfigured(f"STORAGE_REGIONS: {name!r} is not a region name (a-z, 0-9, -)")
        prefix = f"REGION_{name.upper().replace('-', '_')}_"
        backend = env_choice(f"{prefix}BACKEND", "s3", ("local", "s3"))
        region = (
            _s3_region(prefix, name=name)
            if backend == "s3"
            else {"name": name, "backend": "local", "location": env_str(f"{prefix}LOCAL_PATH")}
        )
        region["base_url"] = env_str(f"{prefix}BASE_URL", "").rstrip("/")
        region["countries"] = [code.upper() for code in env_list(f"{prefix}COUNTRIES", [])]
        regions.append(region)
    # A name given twice, or a primary that is none of them, is reported by config/checks.py
    # (lessons.E005, lessons.E006): each value here is well-formed, they just do not fit together.
    primary = env_str("STORAGE_PRIMARY_REGION", names[0])
    for region in regions:
        region["primary"] = region["name"] == primary
    return sorted(regions, key=lambda region: not region["primary"])


def django_storage_for(region: dict[str, Any]) -> dict[str, Any]:
    """The STORAGES["default"] entry that reads and writes the given (primary) region."""
    if region["backend"] == "local":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": region["location"]}}
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": region["bucket"],
            "endpoint_url": region["endpoint_url"],
            "region_name": region["region_name"],
            "access_key": region["access_key"],
            "secret_key": region["secret_key"],
            "signature_version": "s3v4",
            "addressing_style": region["addressing_style"],
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
            # Every object is private; viewers reach media only through signed URLs.
            "object_parameters": {},
        },
    }
