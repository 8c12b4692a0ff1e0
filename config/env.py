"""Typed helpers that read the environment and fail loudly on bad values.

Every secret may also be given as ``NAME_FILE``: the path of a file holding it
(the way Docker and Kubernetes mount secrets).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from outbound.addresses import parse_networks

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return os.environ.get(name)


def env_str(name: str, default: str | None = None) -> str:
    value = _raw(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None, multiple_of: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    if multiple_of is not None and number % multiple_of:
        raise ImproperlyConfigured(f"{name}={number} must be a multiple of {multiple_of}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


RATE_PERIODS = {"s": 1, "sec": 1, "min": 60, "m": 60, "hour": 3600, "h": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """``"30/min"`` -> (30 requests, 60 seconds). Raises ValueError on anything else."""
    count, _, period = value.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        raise ValueError(f"{value!r} is not a rate like 30/min (periods: s, min, hour)")
    return int(count), RATE_PERIODS[period]


def env_rate(name: str, default: str) -> str:
    value = env_str(name, default)
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from exc
    return value


def env_networks(name: str) -> list[str]:
    """A comma-separated list of IP addresses or networks (CIDR); empty by default."""
    values = env_list(name, [])
    try:
        parse_networks(values)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from exc
    return values


def env_hex(name: str, *, what: str) -> str:
    """A hex string (whole bytes), or "" when unset; ``what`` says where the value comes from."""
    value = env_str(name, "")
    if value and not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", value):
        raise ImproperlyConfigured(f"{name} must be {what}")
    return value


def env_rsa_private_key(name: str, *, why: str) -> str:
    """An unencrypted PEM RSA private key (best as NAME_FILE), or "" when unset."""
    value = env_str(name, "")
    if not value:
        return value
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(value.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} is not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured(f"{name} must be an RSA key ({why})")
    return value
