from __future__ import annotations

import uuid

from courses.view_tokens import ViewClaim, view_token_issue, view_token_read

SECRET = b"view-secret"
VIEW = "0b6f6a3e-9d1c-4c55-a1f1-3f2d7c9e8a10"
LESSON = "7d8f1a52-3c4b-4e6f-9a0b-1c2d3e4f5a6b"


def _issue(**overrides: object) -> str:
    values: dict = {"secret": SECRET, "view_id": VIEW, "lesson": LESSON, "user_id": 42, "issued_at": 1_000_000}
    values.update(overrides)
    return view_token_issue(**values)


def test_an_issued_token_reads_back_as_its_claim() -> None:
    claim = view_token_read(secret=SECRET, token=_issue(), now=1_000_010, max_age=3600)
    assert claim == ViewClaim(view_id=VIEW, lesson=LESSON, user_id=42, issued_at=1_000_000)


def test_an_anonymous_viewing_has_user_zero() -> None:
    claim = view_token_read(secret=SECRET, token=_issue(user_id=None), now=1_000_000, max_age=60)
    assert claim is not None and claim.user_id == 0


def test_every_field_is_covered_by_the_signature() -> None:
    token = _issue()
    body, signature = token.rsplit(".", 1)
    parts = body.split(".")
    forged = [
        ".".join([parts[0], uuid.uuid4().hex, *parts[2:]]),
        ".".join([*parts[:2], uuid.uuid4().hex, *parts[3:]]),
        ".".join([*parts[:3], "43", parts[4]]),
        ".".join([*parts[:4], "1000001"]),
    ]
    for changed in forged:
        assert view_token_read(secret=SECRET, token=f"{changed}.{signature}", now=1_000_010, max_age=3600) is None
    assert view_token_read(secret=b"other", token=token, now=1_000_010, max_age=3600) is None


def test_old_future_and_malformed_tokens_are_refused() -> None:
    token = _issue()
    assert view_token_read(secret=SECRET, token=token, now=1_003_601, max_age=3600) is None
    assert view_token_read(secret=SECRET, token=token, now=1_003_600, max_age=3600) is not None
    assert view_token_read(secret=SECRET, token=token, now=1_000_000 - 61, max_age=3600) is None
    for bad in (None, 12, "", "v1", token + "x", token.upper(), "v2" + token[2:], token[:-1] + "=", "x" * 500):
        assert view_token_read(secret=SECRET, token=bad, now=1_000_010, max_age=3600) is None
