"""LTI Dynamic Registration: an LMS admin pastes our URL; we read the platform's OpenID configuration,
register ourselves with its registration endpoint, and keep the platform and deployment it returns."""

from __future__ import annotations

from django.conf import settings

from courses.lti import http, messages
from courses.lti.errors import LtiError, PlatformPermanentError, PlatformTransientError
from courses.lti.models import LtiPlatform
from courses.lti.platforms import platform_register

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"


def lti_register(*, openid_configuration: str, registration_token: str) -> LtiPlatform:
    if not openid_configuration.lower().startswith(("https://", "http://")):
        raise LtiError("openid_configuration must be an http(s) URL")
    bearer = {"Authorization": f"Bearer {registration_token}"} if registration_token else {}
    try:
        config = http.get_json(openid_configuration, headers=bearer).json()
    except (PlatformTransientError, PlatformPermanentError) as exc:
        raise LtiError(f"the platform's configuration could not be read: {exc}", status=502) from exc
    if not isinstance(config, dict):
        raise LtiError("the platform's configuration is not a JSON object", status=502)
    issuer = config.get("issuer")
    if not isinstance(issuer, str) or messages.origin_of(issuer) != messages.origin_of(openid_configuration):
        raise LtiError("the platform's issuer does not match the address of its configuration", status=403)
    needed = ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
    endpoints = {name: config.get(name) for name in needed}
    for name, value in endpoints.items():
        if not isinstance(value, str) or not value.lower().startswith(("https://", "http://")):
            raise LtiError(f"the platform's configuration has no valid {name}", status=502)
    supported = config.get("scopes_supported")
    scopes = [s for s in messages.TOOL_SCOPES if not isinstance(supported, list) or s in supported]
    request = messages.registration_request(
        site_url=settings.SITE_URL,
        title=settings.LTI_TOOL_TITLE,
        description="Video lessons with adaptive streaming; completion flows back to the gradebook.",
        scopes=scopes,
    )
    try:
        reply = http.post_json(endpoints["registration_endpoint"], request, headers=bearer)
    except (PlatformTransientError, PlatformPermanentError) as exc:
        raise LtiError(f"the platform refused the registration: {exc}", status=502) from exc
    answer = reply.json()
    client_id = answer.get("client_id") if isinstance(answer, dict) else None
    if not isinstance(client_id, str) or not client_id:
        raise LtiError("the platform's registration answer has no client_id", status=502)
    tool_config = answer.get(messages.TOOL_CONFIGURATION) or {}
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    platform_name = config.get(PLATFORM_CONFIGURATION, {}).get("product_family_code", "")
    return platform_register(
        issuer=issuer,
        client_id=client_id,
        auth_login_url=endpoints["authorization_endpoint"],
        auth_token_url=endpoints["token_endpoint"],
        jwks_url=endpoints["jwks_uri"],
        deployment_ids=[deployment_id] if isinstance(deployment_id, str) and deployment_id else [],
        name=str(platform_name)[:200] if platform_name else "",
        auth_token_audience=str(config.get("authorization_server", ""))[:500],
        active=not settings.LTI_REGISTRATION_APPROVAL,
    )
