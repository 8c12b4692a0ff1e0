"""The gradebook column (AGS line item) of a resource link launched without one.

A resource-link launch may carry only the context's line items service (`lineitems`) and scopes. Then,
in the worker that posts the first score, the column is looked up by resource link id (every page of
the container), or, when there is none and the `lineitem` scope was granted, created once: the link
row stays locked while this runs, so two workers never both create one. A retry after a lost answer
finds the column the platform did make instead of making a second.

A column the launch names (the `lineitem` claim) has its own scoreMaximum too: it is read once per
column URL (GET with a lineitem scope) before the first score goes there, and scores are scaled to it
(ags._claim). When it cannot be read (no lineitem scope, a refusal, no usable maximum) the link keeps
its own maximum and the reason is logged; a network failure tries again with the next score.
"""

from __future__ import annotations

import logging

from django.db import transaction

from lti import http, messages, oauth
from lti.errors import LtiError, PlatformPermanentError, PlatformTransientError
from lti.models import LtiResourceLink

MAX_PAGES = 100
logger = logging.getLogger(__name__)


def lineitem_resolve(*, link_id: int) -> str:
    """The URL of the link's line item: known already, found in the platform's line items service, or created.

    Raises PlatformTransientError (retry), PlatformPermanentError or LtiError (no grades for this link until
    a new launch or an instructor changes something; the reason is kept on the link).
    """
    link = LtiResourceLink.objects.select_related("deployment__platform", "lesson").get(pk=link_id)
    if link.lineitem_url:
        if link.score_maximum_read_from != link.lineitem_url:
            column_maximum_read(link=link)
        return link.lineitem_url
    platform = link.deployment.platform
    access = messages.gradebook_access(scopes=link.ags_scopes, lineitem_url="", lineitems_url=link.lineitems_url)
    try:
        if not access.mode:
            raise LtiError(access.reason)
        if link.lesson is None:
            raise LtiError("this link points at no lesson")
        # The token first, outside the lock: the platform checks our assertion against our /lti/jwks/,
        # which must not wait on a transaction of ours (the signing key may have just been made).
        grant = oauth.access_grant(platform=platform, scopes=access.token_scopes)
        if not {messages.SCOPE_LINEITEM, messages.SCOPE_LINEITEM_READONLY} & grant.scopes:
            raise LtiError("the platform's access token grants neither lineitem scope: no grades are sent")
        may_create = access.mode == "find_or_create" and messages.SCOPE_LINEITEM in grant.scopes
        with transaction.atomic():
            # The lock makes a second worker wait here, then find the column the first one stored.
            link = LtiResourceLink.objects.select_for_update(of=("self",)).select_related("lesson").get(pk=link_id)
            if link.lineitem_url:
                return link.lineitem_url
            url, maximum = _find_or_create(link, token=grant.token, may_create=may_create)
            link.lineitem_url, link.grades_blocked_reason = url, ""
            link.score_maximum_read_from = url  # found (its maximum read just now) or made with ours
            if maximum is not None:
                link.score_maximum = maximum  # scores are scaled to the column's own maximum (ags._claim)
            link.save(
                update_fields=["lineitem_url", "grades_blocked_reason", "score_maximum", "score_maximum_read_from"]
            )
            return url
    except PlatformPermanentError as exc:
        if " answered 401" in str(exc):  # token revoked early: forget it and try again with a new one
            oauth.access_token_forget(platform=platform, scopes=access.token_scopes)
            raise PlatformTransientError(str(exc)) from exc
        _blocked(link_id, f"the platform refused: {exc}")
        raise
    except LtiError as exc:
        _blocked(link_id, exc.reason)
        raise


def column_maximum_read(*, link: LtiResourceLink) -> float | None:
    """Read the column the launch named for its own scoreMaximum, once per column URL; the maximum, or None.

    Not reading it is never a reason to hold a score back: the link keeps its maximum, with the reason
    logged. Only a transient failure leaves the column unread, so that the next score tries again."""
    url, platform = link.lineitem_url, link.deployment.platform
    scopes = tuple(
        scope for scope in (messages.SCOPE_LINEITEM, messages.SCOPE_LINEITEM_READONLY) if scope in link.ags_scopes
    )
    maximum: float | None = None
    try:
        if not scopes:
            raise LtiError("the launch granted neither lineitem scope")
        grant = oauth.access_grant(platform=platform, scopes=scopes)
        reply = http.get_json(
            url, headers={"Accept": messages.LINEITEM_MEDIA_TYPE, "Authorization": f"Bearer {grant.token}"}
        )
        maximum = score_maximum_of(reply.json())
        if maximum is None:
            raise PlatformPermanentError("the line item has no usable scoreMaximum")
    except PlatformTransientError as exc:
        logger.warning(
            "line item %s of link %s not read yet (tried again with the next score): %s", url[:200], link.pk, exc
        )
        return None
    except (LtiError, PlatformPermanentError) as exc:
        if " answered 401" in str(exc):  # a revoked token: forget it, the next score tries with a new one
            oauth.access_token_forget(platform=platform, scopes=scopes)
            return None
        logger.warning(
            "line item %s of link %s: its scoreMaximum could not be read, scores keep %s: %s",
            url[:200], link.pk, link.score_maximum, exc,
        )  # fmt: skip
    updates: dict[str, object] = {"score_maximum_read_from": url}
    if maximum is not None:
        updates["score_maximum"] = link.score_maximum = maximum
    # Compare-and-set on the URL: a launch that named another column meanwhile gets that one read.
    LtiResourceLink.objects.filter(pk=link.pk, lineitem_url=url).update(**updates)
    link.score_maximum_read_from = url
    return maximum


def _blocked(link_id: int, reason: str) -> None:
    LtiResourceLink.objects.filter(pk=link_id, lineitem_url="").update(grades_blocked_reason=reason[:300])


def _find_or_create(link: LtiResourceLink, *, token: str, may_create: bool) -> tuple[str, float | None]:
    """The column's URL, and its scoreMaximum when it was found (None when we made it with ours)."""
    if link.lesson is None:
        raise LtiError("this link points at no lesson")
    auth = {"Authorization": f"Bearer {token}"}
    found = _find(link, auth, resource_id=str(link.lesson.public_id))
    if found:
        return found
    if not may_create:
        raise LtiError(
            "the platform has no gradebook column for this link and grants only read access to its "
            "columns (lineitem.readonly): no grades are sent until an instructor adds one"
        )
    payload = messages.lineitem_payload(
        score_maximum=link.score_maximum,
        label=link.lesson.title,
        resource_id=str(link.lesson.public_id),
        resource_link_id=link.resource_link_id,
    )
    reply = http.post_json(
        link.lineitems_url,
        payload,
        content_type=messages.LINEITEM_MEDIA_TYPE,
        headers={"Accept": messages.LINEITEM_MEDIA_TYPE, **auth},
    )
    created = reply.json()
    url = created.get("id") if isinstance(created, dict) else None
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        raise PlatformPermanentError("the platform created a line item but answered without its id")
    return url[:500], None


def score_maximum_of(item: object) -> float | None:
    """A line item's own scoreMaximum, when it is a usable one (a positive, finite number)."""
    value = item.get("scoreMaximum") if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        return None
    return float(value)


def _find(link: LtiResourceLink, auth: dict[str, str], *, resource_id: str) -> tuple[str, float | None] | None:
    """Every page of the container filtered to this link; None only once all of them were read."""
    url: str | None = messages.lineitems_query_url(link.lineitems_url, resource_link_id=link.resource_link_id)
    seen: set[str] = set()
    while url:
        if url in seen:
            raise PlatformPermanentError("the platform's line item pages link in a circle")
        if len(seen) >= MAX_PAGES:
            raise PlatformPermanentError(f"the platform's line items run past {MAX_PAGES} pages")
        seen.add(url)
        reply = http.get_json(url, headers={"Accept": messages.LINEITEMS_MEDIA_TYPE, **auth})
        items = reply.json()
        if not isinstance(items, list):  # not knowing what is there must never lead to a second column
            raise PlatformPermanentError("the platform's line items page is not a list of line items")
        found = messages.lineitem_pick(items, resource_link_id=link.resource_link_id, resource_id=resource_id)
        if found:
            item = next((item for item in items if isinstance(item, dict) and item.get("id") == found), None)
            return found[:500], score_maximum_of(item)
        url = messages.next_page_url(reply.headers.get("link"))
    return None
