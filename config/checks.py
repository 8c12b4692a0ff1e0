"""System checks of settings that are each well-formed but do not fit together.

config/settings.py refuses a value it cannot read (ImproperlyConfigured at import); these checks
look at combinations, and run with every ``manage.py check`` (``--deploy`` included), ``migrate``
and ``runserver``. They are errors, not deploy-only checks: each combination is broken on any
machine, so ``manage.py check`` must report it without ``--deploy`` too. The web process and the
Dramatiq workers run no checks: run ``manage.py check --deploy`` (or ``migrate``) before starting them.

    lessons.E001  PLAYBACK_SIGNER is missing one of its settings
    lessons.E002  PLAYBACK_TOKEN_BINDING=session with an edge signer
    lessons.E003  PLAYBACK_CLIENT_IP_HEADER (the old name) without TRUSTED_PROXIES
    lessons.E004  DRM_PROVIDER=axinom without its communication key
    lessons.E005  STORAGE_REGIONS names a region twice
    lessons.E006  STORAGE_PRIMARY_REGION is none of STORAGE_REGIONS
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

TAG = "settings"
# What each CDN signer (playback/signers) needs besides PLAYBACK_SIGNER.
SIGNER_NEEDS = {
    "nginx": ("PLAYBACK_EDGE_URL", "PLAYBACK_NGINX_SECRET"),
    "cloudfront": ("PLAYBACK_EDGE_URL", "PLAYBACK_CLOUDFRONT_KEY_PAIR_ID", "PLAYBACK_CLOUDFRONT_PRIVATE_KEY"),
    "akamai": ("PLAYBACK_EDGE_URL", "PLAYBACK_AKAMAI_KEY"),
}


@register(TAG)
def playback_signer_complete(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    missing = [name for name in SIGNER_NEEDS.get(settings.PLAYBACK_SIGNER, ()) if not getattr(settings, name)]
    if not missing:
        return []
    return [
        Error(
            f"PLAYBACK_SIGNER={settings.PLAYBACK_SIGNER} needs {' and '.join(missing)}",
            hint="Set them (secrets may be given as NAME_FILE), or PLAYBACK_SIGNER=origin (README, Delivery).",
            id="lessons.E001",
        )
    ]


@register(TAG)
def session_binding_at_the_origin(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.PLAYBACK_TOKEN_BINDING != "session" or settings.PLAYBACK_SIGNER == "origin":
        return []
    return [
        Error(
            f"PLAYBACK_TOKEN_BINDING=session needs PLAYBACK_SIGNER=origin (edges cannot see sessions); "
            f"PLAYBACK_SIGNER is {settings.PLAYBACK_SIGNER}",
            hint="Use PLAYBACK_TOKEN_BINDING=ip with an edge signer.",
            id="lessons.E002",
        )
    ]


@register(TAG)
def client_ip_header_needs_proxies(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.PLAYBACK_CLIENT_IP_HEADER or settings.TRUSTED_PROXIES:
        return []
    return [
        Error(
            "PLAYBACK_CLIENT_IP_HEADER is now CLIENT_IP_HEADER and is believed only from TRUSTED_PROXIES: "
            "set TRUSTED_PROXIES to the networks of your proxies",
            hint="Until then no forwarded header is believed: every viewer has the proxy's address.",
            id="lessons.E003",
        )
    ]


@register(TAG)
def axinom_has_its_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DRM_PROVIDER != "axinom" or (settings.AXINOM_COM_KEY_ID and settings.AXINOM_COM_KEY):
        return []
    return [
        Error(
            "DRM_PROVIDER=axinom needs AXINOM_COM_KEY_ID and AXINOM_COM_KEY",
            hint="The communication key from the Axinom portal (the key base64; or as ..._FILE).",
            id="lessons.E004",
        )
    ]


@register(TAG)
def storage_regions_consistent(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    regions = settings.STORAGE_REGIONS
    messages: list[CheckMessage] = []
    twice = sorted(name for name, count in Counter(region["name"] for region in regions).items() if count > 1)
    if twice:
        messages.append(Error(f"STORAGE_REGIONS names a region twice: {', '.join(twice)}", id="lessons.E005"))
    if not any(region["primary"] for region in regions):
        names = ", ".join(region["name"] for region in regions)
        messages.append(
            Error(
                f"STORAGE_PRIMARY_REGION is not in STORAGE_REGIONS ({names})",
                hint="Name one of them, or leave it unset for the first one.",
                id="lessons.E006",
            )
        )
    return messages
