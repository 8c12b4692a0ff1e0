"""Claim names of LTI 1.3 and the checks an id_token must pass once its signature is verified (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lti.errors import LtiError, LtiRefused

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
ROLES = LTI + "roles"
RESOURCE_LINK = LTI + "resource_link"
CONTEXT = LTI + "context"
CUSTOM = LTI + "custom"
TARGET_LINK_URI = LTI + "target_link_uri"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DL_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
DL_MESSAGE = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)
LTI_VERSION = "1.3.0"

# LTI roles (LTI 1.3 core, appendix A.2). A role is a full URI: a context (membership) role of the
# course launched from, e.g. ".../membership#Instructor", or a sub-role ".../membership/Instructor#
# TeachingAssistant"; an institution role ".../institution/person#Instructor" (the person's role in the
# school); a system role ".../system/person#Administrator" (their role in the LMS software). The spec
# lets platforms send context roles by their simple LTI 1.1 name ("Instructor"), deprecated: tools MAY
# accept them, and we do (as context roles), since some platforms still send them; any other URI
# (another vocabulary, a misspelt one) counts for nothing.
LIS = ("http://purl.imsglobal.org/vocab/lis/v2/", "https://purl.imsglobal.org/vocab/lis/v2/")
CONTEXT_ROLE_NAMES = frozenset(
    {"Administrator", "ContentDeveloper", "Instructor", "Learner", "Mentor", "Manager", "Member", "Officer",
     "TeachingAssistant"}
)  # fmt: skip
INSTRUCTOR = "Instructor"
ADMINISTRATOR = "Administrator"
TEACHING_ASSISTANT = "TeachingAssistant"
LEARNER = "Learner"


@dataclass(frozen=True)
class Role:
    """One role of a launch: its vocabulary (membership, institution, system), principal role and sub-role."""

    vocabulary: str
    name: str
    sub: str = ""


def roles_parse(roles: Collection[str]) -> list[Role]:
    """The roles we understand, parsed; anything else is left out."""
    parsed: list[Role] = []
    for role in roles:
        if role in CONTEXT_ROLE_NAMES:
            parsed.append(Role("membership", role))
            continue
        rest = next((role[len(prefix) :] for prefix in LIS if role.startswith(prefix)), None)
        if rest is None or rest.count("#") != 1:
            continue
        path, fragment = rest.split("#")
        if path == "membership":
            parsed.append(Role("membership", fragment))
        elif path.startswith("membership/") and path.count("/") == 1:
            parsed.append(Role("membership", path.split("/")[1], sub=fragment))
        elif path in ("institution/person", "system/person"):
            parsed.append(Role(path.split("/")[0], fragment))
    return parsed


def role_names(roles: Collection[str]) -> set[str]:
    """Principal context (membership) roles of a launch: ".../membership/Instructor#Grader" -> "Instructor".

    Institution and system roles are left out (see is_educator for where institution roles count)."""
    return {role.name for role in roles_parse(roles) if role.vocabulary == "membership"}


def is_teaching_assistant_role(role: Role) -> bool:
    """membership#TeachingAssistant, or a TeachingAssistant sub-role of Instructor (TeachingAssistant,
    TeachingAssistantSection, ...): under Instructor by its path, but not an Instructor for us."""
    if role.vocabulary != "membership":
        return False
    return role.name == TEACHING_ASSISTANT or (role.name == INSTRUCTOR and role.sub.startswith(TEACHING_ASSISTANT))


def is_educator(roles: Collection[str], *, teaching_assistants: bool) -> bool:
    """Whether the launch's user instructs the context (picks lessons, teaches its course, sees its
    instructor page).

    Instructors and Administrators do. Teaching Assistants only when ``teaching_assistants`` (the
    platform's LtiPlatform.teaching_assistants_instruct): a TA sub-role's path names Instructor and a
    platform SHOULD send the principal role "Instructor" with it, so both are read as "a TA".
    Institution Instructor and Administrator count when the launch carries no context role: the
    context's own roles decide otherwise, so a teacher of the school who takes a course as a learner
    there (Canvas sends them institution#Instructor and membership#Learner) is a learner in it.
    ContentDeveloper, Mentor, Learner and every system role (an LMS's own administrator) are not."""
    parsed = roles_parse(roles)
    context = [role for role in parsed if role.vocabulary == "membership"]
    teaching_assistant = any(is_teaching_assistant_role(role) for role in context)
    if any(role.name == ADMINISTRATOR for role in context):
        return True
    if teaching_assistant:
        return teaching_assistants
    if any(role.name == INSTRUCTOR for role in context):
        return True
    if context:
        return False
    return any(role.vocabulary == "institution" and role.name in (INSTRUCTOR, ADMINISTRATOR) for role in parsed)


def is_learner(roles: Collection[str]) -> bool:
    """Learner of the context (membership#Learner or one of its sub-roles)."""
    return LEARNER in role_names(roles)


@dataclass(frozen=True)
class LaunchMessage:
    """An id_token's claims once every rule has passed."""

    message_type: str
    issuer: str
    sub: str
    deployment_id: str
    nonce: str
    roles: tuple[str, ...]
    claims: dict[str, Any] = field(repr=False)

    @property
    def resource_link_id(self) -> str:
        return str(self.claims.get(RESOURCE_LINK, {}).get("id", ""))

    @property
    def context(self) -> dict[str, Any]:
        value = self.claims.get(CONTEXT)
        return value if isinstance(value, dict) else {}

    @property
    def custom(self) -> dict[str, Any]:
        value = self.claims.get(CUSTOM)
        return value if isinstance(value, dict) else {}

    @property
    def ags(self) -> dict[str, Any]:
        value = self.claims.get(AGS_ENDPOINT)
        return value if isinstance(value, dict) else {}

    @property
    def nrps(self) -> dict[str, Any]:
        value = self.claims.get(NRPS)
        return value if isinstance(value, dict) else {}

    @property
    def deep_linking_settings(self) -> dict[str, Any]:
        value = self.claims.get(DL_SETTINGS)
        return value if isinstance(value, dict) else {}


def _require_str(claims: dict[str, Any], name: str, label: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise LtiError(f"the launch has no {label}")
    return value


def check_audience(claims: dict[str, Any], *, client_id: str) -> None:
    """`aud` contains our client id; with several audiences, `azp` must be our client id."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or client_id not in audiences:
        raise LtiError("the launch is not addressed to this tool (aud)")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise LtiError("the launch has several audiences and its authorized party (azp) is not this tool")
    if "azp" in claims and claims["azp"] != client_id:
        raise LtiError("the launch's authorized party (azp) is not this tool")


def check_times(claims: dict[str, Any], *, now: float, skew: int) -> None:
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise LtiError("the launch has no expiry time (exp)")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise LtiError("the launch has no issue time (iat)")
    if exp + skew < now:
        raise LtiError("the launch has expired (exp); start it again from the course")
    if iat - skew > now:
        raise LtiError("the launch was issued in the future (iat); check the platform's clock")
    if iat > exp:
        raise LtiError("the launch's issue time is after its expiry")


def is_loopback_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_return_url(url: str) -> None:
    """The deep-link return URL becomes our page's form action: https only (http for loopback, in dev
    and tests), so a `javascript:` or `data:` URL from a platform never runs in our origin."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise LtiError("the deep linking return URL is malformed") from exc
    if not host or (parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(host))):
        raise LtiError("the deep linking return URL must be an https URL")


def validate_launch(
    claims: dict[str, Any], *, issuer: str, client_id: str, deployment_ids: Collection[str], now: float, skew: int
) -> LaunchMessage:
    """Every LTI 1.3 rule that the claims of a signature-checked id_token must pass; raises LtiError."""
    if claims.get("iss") != issuer:
        raise LtiError("the launch's issuer (iss) is not registered")
    check_audience(claims, client_id=client_id)
    check_times(claims, now=now, skew=skew)
    nonce = _require_str(claims, "nonce", "nonce")
    version = claims.get(VERSION)
    if version is None:
        raise LtiError("the launch has no LTI version")
    if version != LTI_VERSION:
        raise LtiError(f"the launch's LTI version {str(version)[:20]!r} is not supported (1.3.0 is)")
    message_type = claims.get(MESSAGE_TYPE)
    if message_type is None:
        raise LtiError("the launch has no message type")
    if message_type not in MESSAGE_TYPES:
        raise LtiError(f"the message type {str(message_type)[:40]!r} is not supported")
    deployment_id = _require_str(claims, DEPLOYMENT_ID, "deployment id")
    if deployment_id not in deployment_ids:
        raise LtiRefused("the launch's deployment is not registered for this platform")
    sub = _require_str(claims, "sub", "user (sub)")
    roles = claims.get(ROLES)
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise LtiError("the launch has no roles claim")
    if message_type == RESOURCE_LINK_REQUEST:
        link = claims.get(RESOURCE_LINK)
        if not isinstance(link, dict) or not isinstance(link.get("id"), str) or not link["id"]:
            raise LtiError("the launch has no resource link id")
    else:
        settings = claims.get(DL_SETTINGS)
        if not isinstance(settings, dict) or not isinstance(settings.get("deep_link_return_url"), str):
            raise LtiError("the deep linking request has no return URL")
        check_return_url(settings["deep_link_return_url"])
    for name in (CONTEXT, CUSTOM, AGS_ENDPOINT, NRPS):
        if name in claims and not isinstance(claims[name], dict):
            raise LtiError(f"the launch's {name.rsplit('/', 1)[-1]} claim is malformed")
    if CONTEXT in claims and not isinstance(claims[CONTEXT].get("id"), str):
        raise LtiError("the launch's context has no id")
    return LaunchMessage(
        message_type=message_type,
        issuer=issuer,
        sub=sub,
        deployment_id=deployment_id,
        nonce=nonce,
        roles=tuple(roles),
        claims=claims,
    )
