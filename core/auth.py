"""The logged-in user of a request, for the code that runs only behind a login check."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


def request_user(request: HttpRequest) -> User:
    """``request.user`` where it cannot be anonymous (behind ``login_required`` or in the admin site).

    Django types ``request.user`` as ``User | AnonymousUser`` whatever guards the view; this narrows it
    explicitly, refusing (PermissionDenied) an anonymous request that got this far anyway."""
    user = request.user
    if isinstance(user, AnonymousUser):
        raise PermissionDenied
    return user
