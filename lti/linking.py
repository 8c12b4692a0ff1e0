"""Account linking: an LMS identity (LtiUser: issuer + sub) lands in an existing account of this site.

Until linked, a launch lands in a placeholder account, ``lti-<digest>`` (provisioning.py). Pages shown
after a launch offer "Link to your account on this site": a first-party window at /lti/link/?token=...
(the LMS's iframe may keep no cookie, and must never see the site's own sign-in). The token is signed,
lives LINK_SECONDS, names the identity and the placeholder it was made for, and is consumed through
the nonce table when a link is made, so it links once. The person proves the target account with its
password (Django's authenticate) or with a first-party session already signed in to it; then what the
placeholder had moves to the target and the placeholder is deactivated (kept, so that unlinking can
give the identity its old placeholder back, and so rows that name it keep a user). docs/adr/0032.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from courses import services as course_services
from lti.errors import LtiError, LtiRefused
from lti.models import LtiLaunchGrant, LtiNonce, LtiPlatform, LtiUser

LINK_SECONDS = 15 * 60  # time to find and type a password in the new window
_SALT = "lti-account-link"
_NONCE_ISSUER = "account-link"
PLACEHOLDER_PREFIX = "lti-"

METHOD_PASSWORD = "password"
METHOD_SESSION = "session"
METHOD_EMAIL = "email"

# Wrong passwords on the link page: at most this many per target username, and per LMS identity, in
# ATTEMPT_WINDOW_SECONDS (fixed windows in the shared "lti" cache, so every web process counts).
ATTEMPTS_PER_WINDOW = 10
ATTEMPT_WINDOW_SECONDS = 15 * 60

SUPERUSER_REFUSED = (
    "a superuser account cannot be linked to an LMS identity: whoever controls that LMS account, or the "
    "LMS itself, would then control this whole site. Link an ordinary educator account"
)


@dataclass(frozen=True)
class LinkRequest:
    """A link token's identity, still valid (not expired, not used, the identity not re-pointed)."""

    identity: LtiUser
    platform_name: str
    nonce: str


def placeholder_username(*, issuer: str, sub: str) -> str:
    return PLACEHOLDER_PREFIX + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:24]


def placeholder_q() -> Q:
    """Accounts a launch made for an LMS identity: an identity not linked lands in it, or it is named
    lti-<digest> and has no password (one a link deactivated)."""
    unlinked = LtiUser.objects.filter(linked_at__isnull=True).values("user_id")
    return Q(pk__in=unlinked) | (Q(username__startswith=PLACEHOLDER_PREFIX) & Q(password__startswith="!"))


def is_placeholder(user: User) -> bool:
    return get_user_model().objects.filter(placeholder_q(), pk=user.pk).exists()


def link_target_refusal(user: User) -> str | None:
    """Why ``user`` cannot be a link's target, or None when it can."""
    if not user.is_active:
        return "this account is not active"
    if user.is_superuser:
        return SUPERUSER_REFUSED
    if is_placeholder(user):
        return "this account was made by an LMS launch; link to an account you sign in to on this site"
    return None


def email_link_target(*, email: object) -> User | None:
    """The one active, non-superuser, non-placeholder account with this email (case-insensitive), or None
    (no email, none, or several: an ambiguous email links nobody)."""
    if not isinstance(email, str) or "@" not in email.strip():
        return None
    found = list(
        get_user_model()
        .objects.filter(email__iexact=email.strip(), is_active=True, is_superuser=False)
        .exclude(placeholder_q())[:2]
    )
    return found[0] if len(found) == 1 else None


def platform_name_of(identity: LtiUser) -> str:
    platform = LtiPlatform.objects.filter(issuer=identity.issuer).order_by("pk").first()
    return str(platform) if platform is not None else identity.issuer


# --- Tokens ------------------------------------------------------------------------------------------


def link_token_create(*, identity: LtiUser) -> str:
    """A token for /lti/link/: names the identity and the account it lands in now (a token made before
    that changes is worth nothing), with a nonce that makes it single-use."""
    return signing.dumps({"i": identity.pk, "u": identity.user_id, "n": secrets.token_urlsafe(16)}, salt=_SALT)


def link_offer_url(*, user: User) -> str | None:
    """The link page's URL with a fresh token, for a signed-in placeholder account; else None."""
    if not user.is_authenticated:
        return None
    identity = LtiUser.objects.filter(user=user, linked_at__isnull=True).first()
    if identity is None:
        return None
    return f"{reverse('lti:link')}?{urlencode({'token': link_token_create(identity=identity)})}"


def link_request_read(*, token: str) -> LinkRequest:
    """The still-valid request a token carries (nothing is consumed); raises LtiRefused."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=LINK_SECONDS)
        identity_id, user_id, nonce = int(data["i"]), int(data["u"]), str(data["n"])
    except signing.SignatureExpired as exc:
        raise LtiRefused("this link has expired; open the tool again from the LMS and start over") from exc
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise LtiRefused("this link is not valid") from exc
    if LtiNonce.objects.filter(issuer=_NONCE_ISSUER, value=nonce).exists():
        raise LtiRefused("this link was already used; open the tool again from the LMS to start over")
    identity = LtiUser.objects.select_related("user").filter(pk=identity_id).first()
    if identity is None:
        raise LtiRefused("this link is not valid")
    if identity.linked_at is not None:
        raise LtiRefused(
            "this LMS account is already linked to an account of this site; unlink it first on that account's page"
        )
    if identity.user_id != user_id:
        raise LtiRefused("this link is out of date; open the tool again from the LMS and start over")
    return LinkRequest(identity=identity, platform_name=platform_name_of(identity), nonce=nonce)


# --- Linking -----------------------------------------------------------------------------------------


@transaction.atomic
def identity_link(*, token: str, target: User, method: str) -> LtiUser:
    """Link the token's identity to ``target``, whose password or session the caller has checked.

    One transaction: the token's nonce is consumed, the identity re-pointed, the placeholder's
    courses, enrolments, progress and launch grants moved, the placeholder deactivated. Any refusal
    (LtiRefused) rolls all of it back, the nonce included."""
    if method not in (METHOD_PASSWORD, METHOD_SESSION):
        raise LtiError("unknown link method")
    request = link_request_read(token=token)
    refusal = link_target_refusal(target)
    if refusal:
        raise LtiRefused(refusal)
    # Row locks: two link pages for one identity, or a launch provisioning it, take turns.
    identity = LtiUser.objects.select_for_update().get(pk=request.identity.pk)
    if identity.linked_at is not None or identity.user_id != request.identity.user_id:
        raise LtiRefused("this LMS account was linked meanwhile; open the tool again from the LMS")
    try:
        with transaction.atomic():
            LtiNonce.objects.create(
                issuer=_NONCE_ISSUER, value=request.nonce, expires_at=timezone.now() + timedelta(seconds=LINK_SECONDS)
            )
    except IntegrityError as exc:
        raise LtiRefused("this link was already used; open the tool again from the LMS to start over") from exc
    placeholder = get_user_model().objects.select_for_update().get(pk=identity.user_id)
    _records_move(placeholder=placeholder, target=target)
    identity.user = target
    identity.linked_at = timezone.now()
    identity.link_method = method
    identity.save(update_fields=["user", "linked_at", "link_method"])
    # Deactivated, not deleted: its sessions (the LMS iframe's) stop working, and unlinking brings it back.
    placeholder.is_active = False
    placeholder.set_unusable_password()
    placeholder.save(update_fields=["is_active", "password"])
    return identity


def _records_move(*, placeholder: User, target: User) -> None:
    course_services.user_records_move(source=placeholder, target=target)
    # Scores (LtiScore) are keyed by the identity, so they follow it without a write.
    LtiLaunchGrant.objects.filter(user=placeholder).update(user=target)


@transaction.atomic
def identity_unlink(*, identity_id: int, owner: User) -> LtiUser:
    """Give one of ``owner``'s linked identities back a placeholder (its old one when it still exists):
    the next launch from that LMS lands there, not in ``owner``. What was moved at linking stays with
    ``owner``; the identity's launch grants follow the identity back."""
    identity = LtiUser.objects.select_for_update().filter(pk=identity_id, user=owner).first()
    if identity is None or identity.linked_at is None:
        raise LtiRefused("this LMS account is not linked to your account")
    username = placeholder_username(issuer=identity.issuer, sub=identity.sub)
    user_model = get_user_model()
    placeholder = user_model.objects.select_for_update().filter(username=username).first()
    if placeholder is None:
        placeholder = user_model.objects.create_user(username=username, password=None)
    elif placeholder.is_superuser or placeholder.is_staff or placeholder.has_usable_password():
        # Someone made the old placeholder a real account meanwhile: it is not ours to hand out.
        raise LtiRefused("this LMS account's former placeholder account is in use; ask an administrator")
    else:
        placeholder.is_active = True
        placeholder.save(update_fields=["is_active"])
    identity.user = placeholder
    identity.linked_at = None
    identity.link_method = ""
    identity.save(update_fields=["user", "linked_at", "link_method"])
    LtiLaunchGrant.objects.filter(lti_user=identity).update(user=placeholder)
    return identity


def identities_linked_to(*, user: User) -> list[tuple[LtiUser, str]]:
    """The user's linked LMS identities, with each one's platform name, newest link first."""
    identities = LtiUser.objects.filter(user_id=user.pk, linked_at__isnull=False).order_by("-linked_at", "pk")
    return [(identity, platform_name_of(identity)) for identity in identities]


# --- Wrong passwords ---------------------------------------------------------------------------------


def _attempt_keys(*, username: str, identity_id: int) -> list[str]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"link-attempts:user:{digest}", f"link-attempts:identity:{identity_id}"]


def attempts_exhausted(*, username: str, identity_id: int) -> bool:
    keys = _attempt_keys(username=username, identity_id=identity_id)
    return any(count >= ATTEMPTS_PER_WINDOW for count in caches["lti"].get_many(keys).values())


def attempt_failed(*, username: str, identity_id: int) -> None:
    cache = caches["lti"]
    for key in _attempt_keys(username=username, identity_id=identity_id):
        cache.add(key, 0, timeout=ATTEMPT_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # the window ended between the two calls: this failure opens the next one
            cache.add(key, 1, timeout=ATTEMPT_WINDOW_SECONDS)


def attempts_forget(*, username: str, identity_id: int) -> None:
    """Forget the counts (a successful link, tests, an operator lifting a lock-out)."""
    caches["lti"].delete_many(_attempt_keys(username=username, identity_id=identity_id))
