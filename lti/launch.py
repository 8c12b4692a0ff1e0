"""Resource link and deep linking launches: validate every rule, then provision in one transaction.

Validation writes nothing. Completing a launch (state and nonce consumed, user, course, enrolment,
links) happens in one transaction, so a launch refused at any step leaves nothing behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from lti import claims, provisioning, tokens
from lti.errors import LtiError, LtiRefused
from lti.models import LtiDeployment, LtiLoginState, LtiNonce, LtiPlatform
from lti.provisioning import LaunchResult


@dataclass(frozen=True)
class ValidatedLaunch:
    platform: LtiPlatform
    login_state: LtiLoginState
    message: claims.LaunchMessage
    # The browser that started the login could not be recognised by cookie: the launch page must
    # check the state in the platform's postMessage storage first (LTI client-side storage).
    needs_storage_check: bool = False


def lti_launch_validate(
    *, id_token: str, state: str, cookie_state: str | None, storage_state: str | None
) -> ValidatedLaunch:
    if not id_token:
        raise LtiError("the launch has no id_token")
    if not state:
        raise LtiError("the launch has no state")
    login_state = (
        LtiLoginState.objects.select_related("platform")
        .filter(state=state, used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if login_state is None:
        raise LtiError("the launch's state is unknown, used or expired; start it again from the course")
    header, unverified = tokens.unverified_parts(id_token)
    platform = tokens.platform_for(unverified)
    if platform.pk != login_state.platform_id:
        raise LtiError("the launch's state belongs to another platform")
    verified = tokens.verify(id_token, platform=platform, header=header)
    message = claims.validate_launch(
        verified,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=set(platform.deployments.values_list("deployment_id", flat=True)),
        now=time.time(),
        skew=settings.LTI_CLOCK_SKEW_SECONDS,
    )
    if message.nonce != login_state.nonce:
        raise LtiError("the launch's nonce does not match its login")
    target = message.claims.get(claims.TARGET_LINK_URI)
    if target is not None and target != login_state.target_link_uri:
        raise LtiError("the launch's target link URI is not the one its login asked for")
    educator = claims.is_educator(message.roles, teaching_assistants=platform.teaching_assistants_instruct)
    if message.message_type == claims.DEEP_LINKING_REQUEST and not educator:
        raise LtiRefused("only instructors can add lessons to the course")
    accept_types = message.deep_linking_settings.get("accept_types")
    if message.message_type == claims.DEEP_LINKING_REQUEST and isinstance(accept_types, list):
        if "ltiResourceLink" not in accept_types:
            raise LtiError("the platform does not accept LTI resource links here")
    if cookie_state == state:
        return ValidatedLaunch(platform=platform, login_state=login_state, message=message)
    if login_state.storage_target:
        if storage_state == state:
            return ValidatedLaunch(platform=platform, login_state=login_state, message=message)
        return ValidatedLaunch(platform=platform, login_state=login_state, message=message, needs_storage_check=True)
    raise LtiRefused(
        "this browser did not keep the launch's cookie (third-party cookies blocked?); open the tool in a new window",
    )


def _expiry(message: claims.LaunchMessage) -> datetime:
    exp = message.claims.get("exp", time.time())
    return datetime.fromtimestamp(float(exp), tz=UTC) + timedelta(seconds=settings.LTI_CLOCK_SKEW_SECONDS)


@transaction.atomic
def lti_launch_complete(*, validated: ValidatedLaunch) -> LaunchResult:
    """Consume state and nonce, then provision the user, course, enrolment and links."""
    if validated.needs_storage_check:
        raise LtiError("the launch's state has not been checked")
    message = validated.message
    used = LtiLoginState.objects.filter(pk=validated.login_state.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if used != 1:
        raise LtiError("the launch's state was already used; start it again from the course")
    try:
        with transaction.atomic():
            LtiNonce.objects.create(issuer=message.issuer, value=message.nonce, expires_at=_expiry(message))
    except IntegrityError as exc:
        raise LtiRefused("the launch's nonce was already used (replay)") from exc
    deployment = LtiDeployment.objects.get(platform=validated.platform, deployment_id=message.deployment_id)
    return provisioning.provision(platform=validated.platform, deployment=deployment, message=message)
