"""Playback sessions: decide entitlement once, then sign URLs for the published version."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from analytics.selectors import viewer_start_estimate
from core import errors
from courses.models import Lesson
from courses.view_tokens import view_token_issue
from media_pipeline.content_keys import ContentKeyMaterial
from media_pipeline.packager import PROTECTION_SCHEME
from media_pipeline.regions import Region, regions_all
from media_pipeline.selectors import PlaybackInfo, asset_playback_info, content_key_get
from playback.access import NOT_READY_REASON, AccessDecision, Verdict, can_watch
from playback.binding import UNBOUND, Binding
from playback.drm.license_tokens import session_binding
from playback.drm.providers import DrmGrant, ProtectedContent, Viewer, provider_get
from playback.signers import SignedCookie, session_cookies, signer_get
from playback.tokens import token_issue


class PlaybackDenied(errors.NotAllowed):
    """The viewer is not entitled to this lesson."""

    def __init__(self, decision: AccessDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class PlaybackNotReady(errors.Conflict):
    """The viewer may watch, but no version of the video is published yet."""

    def __init__(self, decision: AccessDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


@dataclass(frozen=True)
class RegionUrls:
    name: str
    hls_url: str
    dash_url: str


@dataclass(frozen=True)
class CaptionUrl:
    language: str
    label: str
    url: str


@dataclass(frozen=True)
class PlaybackSession:
    hls_url: str
    dash_url: str
    poster_url: str
    expires_at: datetime
    duration: float | None
    region: str
    # Every region holding the whole version, the chosen one first: the pathways a player may use.
    regions: list[RegionUrls]
    # With several regions the manifests above are steered (playback/steering_views.py); this is
    # the steering server they name. Empty with one region.
    steering_url: str = ""
    # Cookie-based CDNs (CloudFront, Akamai): the credential the browser must hold for the URLs
    # above, set by the API response; the player then sends credentials with every request.
    cookies: tuple[SignedCookie, ...] = ()
    # For an encrypted version: where and how the player obtains licenses (docs/adr/0008).
    drm: DrmInfo | None = None
    # Scrub previews and chapters (WebVTT; empty when the version has none) and the caption files the
    # manifests also carry, for players that side-load them.
    storyboard_url: str = ""
    chapters_url: str = ""
    captions: tuple[CaptionUrl, ...] = ()
    # A provisional stream (the source repackaged, or one fast rung) while the full ladder is built.
    provisional: bool = False
    # This viewing, as the server issued it (courses/view_tokens.py): the QoE view id, and the token
    # that progress reports and beacons must carry.
    view_id: str = ""
    view_token: str = ""
    # The bandwidth estimate (kbit/s) the player starts from, and its basis: this learner's recent
    # sessions ("history") or the conservative default (analytics/throughput.py). A hint only.
    start_kbps: int = 0
    start_basis: str = ""

    @property
    def uses_cookies(self) -> bool:
        return bool(self.cookies)


@dataclass(frozen=True)
class DrmInfo:
    scheme: str
    key_ids: list[str]
    grant: DrmGrant


def regions_by_preference(*, complete: list[str], country: str) -> list[Region]:
    """Complete regions only; those listing the viewer's country first, then configuration order."""
    usable = [region for region in regions_all() if region.name in complete]
    return sorted(usable, key=lambda region: country.upper() not in region.countries if country else False)


def playback_session_create(
    *,
    user: AbstractBaseUser | AnonymousUser,
    lesson: Lesson,
    country: str = "",
    binding: Binding = UNBOUND,
    session_key: str | None = None,
) -> PlaybackSession:
    """Signed URLs for the lesson's published version; raises before anything is signed if refused.

    URLs point only at regions where the version is complete (see media_pipeline.replication).
    ``binding`` (playback.binding) ties every credential to the viewer when configured. An
    encrypted version also gets a license grant bound to this user and ``session_key``.
    """
    decision = can_watch(user=user, lesson=lesson)
    if decision.verdict is Verdict.NOT_READY:
        raise PlaybackNotReady(decision)
    if not decision.allowed:
        raise PlaybackDenied(decision)
    info = asset_playback_info(asset=lesson.asset)
    if info is None:  # unpublished between the decision and here
        raise PlaybackNotReady(AccessDecision(Verdict.NOT_READY, NOT_READY_REASON))
    regions = regions_by_preference(complete=info["regions"], country=country)
    if not regions:  # no region holds a verified copy (the primary was found damaged)
        raise PlaybackNotReady(AccessDecision(Verdict.NOT_READY, NOT_READY_REASON))
    expires_at = int(time.time()) + settings.PLAYBACK_TOKEN_TTL_SECONDS
    prefix = info["prefix"]
    bases = [
        signer_get(region).sign_prefix(prefix=prefix, expires_at=expires_at, binding=binding) for region in regions
    ]
    hls_url, dash_url, steering_url = bases[0] + info["hls"], bases[0] + info["dash"], ""
    if len(regions) > 1:
        steer_base = _steer_base(prefix=prefix, expires_at=expires_at, binding=binding)
        hls_url, dash_url = steer_base + info["hls"], steer_base + info["dash"]
        steering_url = steer_base + STEERING_NAME
    cookies = session_cookies(prefix=prefix, expires_at=expires_at, binding=binding, regions=regions)
    view_id = str(uuid.uuid4())
    view_token = view_token_issue(
        secret=settings.VIEW_TOKEN_SECRET.encode(),
        view_id=view_id,
        lesson=str(lesson.public_id),
        user_id=user.pk if user.is_authenticated else None,
        issued_at=int(time.time()),
    )
    estimate = viewer_start_estimate(user_id=user.pk if user.is_authenticated else None, now=time.time())
    drm = None
    if info["kid"]:
        drm = _drm_info(user=user, session_key=session_key, lesson=lesson, info=info, expires_at=expires_at)
    return PlaybackSession(
        cookies=tuple(cookies),
        drm=drm,
        hls_url=hls_url,
        dash_url=dash_url,
        steering_url=steering_url,
        poster_url=bases[0] + info["poster"],
        **_extras_urls(base=bases[0], extras=info["extras"]),
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
        duration=info["duration"],
        provisional=info["provisional"],
        view_id=view_id,
        view_token=view_token,
        start_kbps=estimate.kbps,
        start_basis=estimate.basis,
        region=regions[0].name,
        regions=[
            RegionUrls(name=region.name, hls_url=base + info["hls"], dash_url=base + info["dash"])
            for region, base in zip(regions, bases, strict=True)
        ],
    )


STEERING_NAME = "steering.json"


class _ExtrasUrls(TypedDict):
    storyboard_url: str
    chapters_url: str
    captions: tuple[CaptionUrl, ...]


def _extras_urls(*, base: str, extras: dict) -> _ExtrasUrls:
    return {
        "storyboard_url": base + extras["storyboard"] if extras.get("storyboard") else "",
        "chapters_url": base + extras["chapters"] if extras.get("chapters") else "",
        "captions": tuple(
            CaptionUrl(language=item["language"], label=item["label"], url=base + item["file"])
            for item in extras.get("captions", [])
        ),
    }


def _steer_base(*, prefix: str, expires_at: int, binding: Binding) -> str:
    token = token_issue(
        secret=settings.PLAYBACK_TOKEN_SECRET.encode(),
        prefix=prefix,
        expires_at=expires_at,
        binding=binding.token_value(),
    )
    root = reverse("steer:steer", kwargs={"token": "t", "key": "k"}).removesuffix("t/k")
    return f"{root}{token}/{prefix}"


def _drm_info(
    *,
    user: AbstractBaseUser | AnonymousUser,
    session_key: str | None,
    lesson: Lesson,
    info: PlaybackInfo,
    expires_at: int,
) -> DrmInfo:
    kid = info["kid"]
    assert kid is not None and lesson.asset is not None
    provider = provider_get()
    keys: tuple[ContentKeyMaterial, ...] = ()
    if provider.needs_keys:
        material = content_key_get(asset=lesson.asset, version=info["version"], kid=kid)
        keys = (material,) if material else ()
    now = int(time.time())
    grant = provider.grant(
        viewer=Viewer(user_id=str(user.pk), session=session_binding(session_key)),
        content=ProtectedContent(lesson=str(lesson.public_id), version=info["version"], kids=(kid,), keys=keys),
        # Short-lived: a player asks for its licence at the start; renewing the session renews it.
        expires_at=min(expires_at, now + settings.DRM_LICENSE_TOKEN_TTL_SECONDS),
        now=now,
    )
    return DrmInfo(scheme=PROTECTION_SCHEME, key_ids=[kid], grant=grant)
