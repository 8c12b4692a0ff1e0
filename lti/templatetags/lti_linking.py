"""{% lti_account_link %}: the account-linking offer or notice on pages an LMS launch shows (lti/account.py)."""

from __future__ import annotations

from typing import Any

from django import template

from courses.models import Course
from lti.account import launch_account_context

register = template.Library()


@register.inclusion_tag("lti/_account_link.html", takes_context=True)
def lti_account_link(context: dict[str, Any], course: Course | None = None) -> dict[str, Any]:
    request = context.get("request")
    return launch_account_context(request=request, course=course) if request is not None else {}
