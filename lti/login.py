"""OIDC third-party login initiation: the first step of every LTI 1.3 launch."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from lti import messages
from lti.errors import LtiError, LtiRefused
from lti.models import LtiLoginState, LtiNonce, LtiPlatform

STATE_COOKIE_PREFIX = "lti_state_"


def state_cookie_name(state: str) -> str:
    # One cookie per login: two launches in two iframes of one LMS page must not overwrite each other.
    return STATE_COOKIE_PREFIX + state[:16]


@dataclass(frozen=True)
class LoginStart:
    platform: LtiPlatform
    state: str
    nonce: str
    redirect_url: str
    storage_target: str


def _is_our_launch_url(url: str) -> bool:
    ours = urlsplit(settings.SITE_URL)
    theirs = urlsplit(url)
    return (theirs.scheme, theirs.netloc.lower()) == (ours.scheme, ours.netloc.lower()) and theirs.path.startswith(
        "/lti/"
    )


def lti_login_start(
    *,
    issuer: str,
    login_hint: str,
    target_link_uri: str,
    client_id: str = "",
    lti_message_hint: str = "",
    lti_deployment_id: str = "",
    lti_storage_target: str = "",
) -> LoginStart:
    """Check the login request, remember its state and nonce, and say where to send the browser."""
    if not issuer or not login_hint or not target_link_uri:
        raise LtiError("the login request needs iss, login_hint and target_link_uri")
    platforms = LtiPlatform.objects.filter(issuer=issuer, active=True)
    if client_id:
        platforms = platforms.filter(client_id=client_id)
    found = list(platforms[:2])
    if not found:
        raise LtiRefused("this platform is not registered with the tool")
    if len(found) > 1:
        raise LtiError("the platform has several registrations here: the login request must name its client_id")
    platform = found[0]
    if lti_deployment_id and not platform.deployments.filter(deployment_id=lti_deployment_id).exists():
        raise LtiRefused("this deployment is not registered with the tool")
    if not _is_our_launch_url(target_link_uri):
        raise LtiError("the target link URI is not one of this tool's URLs")
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    LtiLoginState.objects.create(
        state=state,
        nonce=nonce,
        platform=platform,
        target_link_uri=target_link_uri,
        storage_target=lti_storage_target[:100],
        expires_at=timezone.now() + timedelta(seconds=settings.LTI_LOGIN_STATE_SECONDS),
    )
    redirect_url = messages.auth_redirect_url(
        auth_login_url=platform.auth_login_url,
        client_id=platform.client_id,
        redirect_uri=f"{settings.SITE_URL}/lti/launch/",
        login_hint=login_hint,
        lti_message_hint=lti_message_hint or None,
        state=state,
        nonce=nonce,
    )
    return LoginStart(
        platform=platform, state=state, nonce=nonce, redirect_url=redirect_url, storage_target=lti_storage_target
    )


def login_states_prune() -> int:
    """Delete expired login states and nonces (cron: `manage.py lti_prune`)."""
    now = timezone.now()
    deleted = LtiLoginState.objects.filter(expires_at__lt=now).delete()[0]
    return deleted + LtiNonce.objects.filter(expires_at__lt=now).delete()[0]
