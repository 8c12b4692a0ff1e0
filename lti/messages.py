"""Messages the tool sends, built as plain data (pure): OIDC redirect, Deep Linking response claims,
AGS scores, the client assertion of the client-credentials grant, and the tool's configuration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from lti import claims as c

SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
NRPS_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL_SCOPES = (SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_NRPS)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def auth_redirect_url(
    *,
    auth_login_url: str,
    client_id: str,
    redirect_uri: str,
    login_hint: str,
    lti_message_hint: str | None,
    state: str,
    nonce: str,
) -> str:
    """The OIDC authentication request of LTI 1.3 (implicit flow, form_post, no prompt)."""
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if lti_message_hint:
        params["lti_message_hint"] = lti_message_hint
    separator = "&" if "?" in auth_login_url else "?"
    return auth_login_url + separator + urlencode(params)


@dataclass(frozen=True)
class PickedLesson:
    public_id: str
    title: str
    description: str
    url: str
    grant: str


def deep_linking_response_claims(
    *,
    client_id: str,
    issuer: str,
    deployment_id: str,
    lessons: Sequence[PickedLesson],
    data: str | None,
    now: int,
    lifetime: int,
    score_maximum: float = 100,
) -> dict[str, Any]:
    """The payload of an LtiDeepLinkingResponse: one ltiResourceLink per lesson, each with a line item."""
    items = [
        {
            "type": "ltiResourceLink",
            "title": lesson.title,
            "text": lesson.description[:500],
            "url": lesson.url,
            "custom": {"lesson": lesson.public_id, "lesson_grant": lesson.grant},
            "lineItem": {"scoreMaximum": score_maximum, "label": lesson.title, "resourceId": lesson.public_id},
        }
        for lesson in lessons
    ]
    payload: dict[str, Any] = {
        "iss": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + lifetime,
        "nonce": uuid.uuid4().hex,
        c.DEPLOYMENT_ID: deployment_id,
        c.MESSAGE_TYPE: "LtiDeepLinkingResponse",
        c.VERSION: c.LTI_VERSION,
        c.DL_CONTENT_ITEMS: items,
    }
    if data is not None:
        payload[c.DL_DATA] = data
    return payload


def client_assertion_claims(*, client_id: str, audience: str, now: int, lifetime: int) -> dict[str, Any]:
    """The JWT we sign to obtain an access token (RFC 7523, as LTI Advantage security requires)."""
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }


def score_payload(
    *,
    user_id: str,
    score_given: float,
    score_maximum: float,
    activity_progress: str,
    grading_progress: str,
    timestamp: datetime,
) -> dict[str, Any]:
    return {
        "userId": user_id,
        "scoreGiven": score_given,
        "scoreMaximum": score_maximum,
        "activityProgress": activity_progress,
        "gradingProgress": grading_progress,
        "timestamp": timestamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def scores_url(lineitem_url: str) -> str:
    """The scores service of a line item: `/scores` appended to its path, its query kept."""
    parts = urlsplit(lineitem_url)
    path = parts.path.rstrip("/") + "/scores"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{path}{query}"


def lineitems_query_url(lineitems_url: str, *, resource_link_id: str) -> str:
    """The line items container filtered to one resource link (AGS 2.0 container filters); the
    container's own query (Moodle's `?type_id=`) is kept."""
    parts = urlsplit(lineitems_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "resource_link_id"]
    query.append(("resource_link_id", resource_link_id))
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def lineitem_payload(*, score_maximum: float, label: str, resource_id: str, resource_link_id: str) -> dict[str, Any]:
    """A new line item (gradebook column) bound to one resource link."""
    return {
        "scoreMaximum": score_maximum,
        "label": label[:255] or "Lesson",
        "resourceId": resource_id,
        "resourceLinkId": resource_link_id,
    }


def lineitem_pick(items: Any, *, resource_link_id: str, resource_id: str) -> str | None:
    """The id (URL) of the line item of this resource link in one container page, if any.

    A platform may ignore the filter, so the link id is checked here too; among several columns of
    the link, the one we would have created (our resourceId) wins, then the first.
    """
    if not isinstance(items, list):
        return None
    ours = [
        item
        for item in items
        if isinstance(item, dict)
        and item.get("resourceLinkId") == resource_link_id
        and isinstance(item.get("id"), str)
        and item["id"].lower().startswith(("https://", "http://"))
    ]
    ours.sort(key=lambda item: item.get("resourceId") != resource_id)  # stable: ours first, then platform order
    return ours[0]["id"] if ours else None


@dataclass(frozen=True)
class GradebookAccess:
    """How scores reach a resource link's gradebook column, decided from the launch's AGS claim.

    mode: "lineitem" (the launch named the column), "find_or_create" or "find" (look it up in the line
    items service; create it only with the lineitem scope), or "" with `reason` when they cannot.
    token_scopes: the lineitem scopes to ask a token for: those the launch offered, no more (a platform
    may refuse a token for scopes it did not offer, or grant fewer than asked).
    """

    mode: str
    reason: str = ""
    token_scopes: tuple[str, ...] = ()


def gradebook_access(*, scopes: Sequence[str], lineitem_url: str, lineitems_url: str) -> GradebookAccess:
    if SCOPE_SCORE not in scopes:
        return GradebookAccess("", "the platform did not grant the score scope: no grades are sent")
    if lineitem_url:
        return GradebookAccess("lineitem")
    if not lineitems_url:
        return GradebookAccess("", "the platform gave neither a line item nor a line items service: no grades are sent")
    token_scopes = tuple(scope for scope in (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY) if scope in scopes)
    if SCOPE_LINEITEM in scopes:
        return GradebookAccess("find_or_create", token_scopes=token_scopes)
    if SCOPE_LINEITEM_READONLY in scopes:
        return GradebookAccess("find", token_scopes=token_scopes)
    return GradebookAccess(
        "",
        "the platform gave a line items service but neither lineitem scope, so the gradebook column "
        "can be neither found nor created: no grades are sent",
    )


def next_page_url(link_header: str | None) -> str | None:
    """The rel="next" URL of an RFC 8288 Link header, if any."""
    if not link_header:
        return None
    for part in link_header.split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0].startswith("<") or not pieces[0].endswith(">"):
            continue
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
                return pieces[0][1:-1]
    return None


def tool_configuration(*, site_url: str, title: str, description: str) -> dict[str, Any]:
    """The LTI part of a Dynamic Registration client: what the tool offers and needs."""
    return {
        "domain": urlsplit(site_url).netloc,
        "description": description,
        "target_link_uri": f"{site_url}/lti/launch/",
        "custom_parameters": {},
        "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
        "messages": [
            {"type": "LtiResourceLinkRequest", "target_link_uri": f"{site_url}/lti/launch/", "label": title},
            {
                "type": "LtiDeepLinkingRequest",
                "target_link_uri": f"{site_url}/lti/launch/",
                "label": f"{title}: add a lesson",
                "placements": ["ContentArea", "link_selection", "assignment_selection", "editor_button"],
                "supported_types": ["ltiResourceLink"],
            },
        ],
    }


def registration_request(*, site_url: str, title: str, description: str, scopes: Sequence[str]) -> dict[str, Any]:
    """The OpenID Connect client registration a tool POSTs in LTI Dynamic Registration."""
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": f"{site_url}/lti/login/",
        "redirect_uris": [f"{site_url}/lti/launch/"],
        "client_name": title,
        "jwks_uri": f"{site_url}/lti/jwks/",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: tool_configuration(site_url=site_url, title=title, description=description),
    }
