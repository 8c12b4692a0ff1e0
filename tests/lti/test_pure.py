"""The pure LTI modules, without Django's database: claim rules, roles, messages, keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from lti import claims, keys, messages, picking
from lti.errors import LtiError

NOW = 1_800_000_000


def _claims(**changes: object) -> dict[str, Any]:
    base = {
        "iss": "https://lms", "aud": "tool", "sub": "u1", "exp": NOW + 60, "iat": NOW, "nonce": "n",
        claims.VERSION: "1.3.0", claims.MESSAGE_TYPE: "LtiResourceLinkRequest", claims.DEPLOYMENT_ID: "d1",
        claims.ROLES: [], claims.RESOURCE_LINK: {"id": "r1"},
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def _validate(value: dict[str, Any]) -> claims.LaunchMessage:
    return claims.validate_launch(
        value, issuer="https://lms", client_id="tool", deployment_ids={"d1"}, now=NOW, skew=60
    )


def test_a_valid_launch_with_empty_roles_passes() -> None:
    message = _validate(_claims())
    assert (message.sub, message.deployment_id, message.resource_link_id, message.roles) == ("u1", "d1", "r1", ())


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"exp": NOW - 61}, "expired"),
        ({"iat": NOW + 61}, "future"),
        ({"iat": NOW + 30, "exp": NOW + 20}, "after its expiry"),
        ({"aud": ["tool", "x"]}, "authorized party"),
        ({"aud": ["tool", "x"], "azp": "x"}, "authorized party"),
        ({"aud": "tool", "azp": "x"}, "authorized party"),
        ({"nonce": ""}, "no nonce"),
        ({claims.DEPLOYMENT_ID: "d2"}, "not registered"),
        ({claims.RESOURCE_LINK: {"id": ""}}, "resource link id"),
        ({claims.MESSAGE_TYPE: "LtiDeepLinkingRequest"}, "no return URL"),
    ],
)
def test_rules(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(LtiError, match=words):
        _validate(_claims(**changes))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://lms.example/deep_link_return?x=1", True),
        ("http://127.0.0.1:8123/deep_link_return", True),
        ("http://[::1]/return", True),
        ("http://lms.localhost/return", True),
        ("javascript:alert(document.cookie)", False),
        ("JavaScript://lms.example/%0aalert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("http://lms.example/return", False),
        ("//lms.example/return", False),
        ("/relative", False),
        ("https://", False),
        ("https://[::1/", False),
    ],
)
def test_deep_link_return_url_must_be_https_or_loopback_http(url: str, allowed: bool) -> None:
    dl = {claims.MESSAGE_TYPE: "LtiDeepLinkingRequest", claims.RESOURCE_LINK: None}
    value = _claims(**dl, **{claims.DL_SETTINGS: {"deep_link_return_url": url}})
    if allowed:
        assert _validate(value).deep_linking_settings["deep_link_return_url"] == url
    else:
        with pytest.raises(LtiError, match="return URL"):
            _validate(value)


def test_skew_is_tolerated() -> None:
    _validate(_claims(exp=NOW - 59, iat=NOW - 120))
    _validate(_claims(iat=NOW + 59, exp=NOW + 120))
    _validate(_claims(aud=["tool", "x"], azp="tool"))


LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
MEMBERSHIP, INSTITUTION, SYSTEM = LIS + "membership#", LIS + "institution/person#", LIS + "system/person#"
TA_SUB = LIS + "membership/Instructor#TeachingAssistant"


# (roles, instructor when TAs do not instruct, instructor when they do): one row per role.
@pytest.mark.parametrize(
    ("roles", "without_tas", "with_tas"),
    [
        ([MEMBERSHIP + "Instructor"], True, True),
        ([MEMBERSHIP + "Administrator"], True, True),
        ([INSTITUTION + "Instructor"], True, True),
        ([INSTITUTION + "Administrator"], True, True),
        ([MEMBERSHIP + "TeachingAssistant"], False, True),
        ([TA_SUB], False, True),
        # The spec says a sub-role comes with its principal role: still a TA, not an Instructor.
        ([MEMBERSHIP + "Instructor", TA_SUB], False, True),
        ([LIS + "membership/Instructor#TeachingAssistantSection"], False, True),
        ([LIS + "membership/Instructor#PrimaryInstructor"], True, True),
        ([MEMBERSHIP + "ContentDeveloper"], False, False),
        ([MEMBERSHIP + "Mentor"], False, False),
        ([MEMBERSHIP + "Learner"], False, False),
        ([SYSTEM + "Administrator"], False, False),
        ([SYSTEM + "SysAdmin"], False, False),
        # A teacher of the school taking this course as a learner: the context's role decides.
        ([INSTITUTION + "Instructor", MEMBERSHIP + "Learner"], False, False),
        ([INSTITUTION + "Administrator", MEMBERSHIP + "Learner"], False, False),
        # LTI 1.1 simple names are context roles (the spec lets tools accept them).
        (["Instructor"], True, True),
        (["Administrator"], True, True),
        (["TeachingAssistant"], False, True),
        (["Learner"], False, False),
        # Other vocabularies, lookalikes and garbage count for nothing.
        (["http://example.com/vocab#Instructor"], False, False),
        ([LIS + "membership#Instructor#x"], False, False),
        ([LIS + "membershipX#Instructor"], False, False),
        ([], False, False),
    ],
)
def test_who_instructs(roles: list[str], without_tas: bool, with_tas: bool) -> None:
    assert claims.is_educator(roles, teaching_assistants=False) is without_tas
    assert claims.is_educator(roles, teaching_assistants=True) is with_tas


def test_learners() -> None:
    assert claims.is_learner([MEMBERSHIP + "Learner"]) and claims.is_learner(["Learner"])
    assert claims.is_learner([LIS + "membership/Learner#NonCreditLearner"])
    assert not claims.is_learner([MEMBERSHIP + "Instructor"]) and not claims.is_learner([INSTITUTION + "Learner"])


def test_next_page_url_reads_link_headers() -> None:
    assert (
        messages.next_page_url('<https://lms/m?p=2>; rel="next", <https://lms/m?p=9>; rel="last"')
        == "https://lms/m?p=2"
    )
    assert messages.next_page_url('<https://lms/m?p=1>; rel="prev"') is None
    assert messages.next_page_url(None) is None
    assert messages.next_page_url("<https://lms/m?p=3>; rel=next") == "https://lms/m?p=3"


def test_scores_url_keeps_the_line_item_query() -> None:
    assert messages.scores_url("https://lms/li/7") == "https://lms/li/7/scores"
    assert messages.scores_url("https://lms/li/7?type_id=1") == "https://lms/li/7/scores?type_id=1"


def test_lineitems_query_url_filters_by_resource_link_and_keeps_the_container_query() -> None:
    assert (
        messages.lineitems_query_url("https://lms/ags/lineitems", resource_link_id="r 1")
        == "https://lms/ags/lineitems?resource_link_id=r+1"
    )
    assert (
        messages.lineitems_query_url("https://lms/li.php?type_id=2&resource_link_id=old", resource_link_id="r1")
        == "https://lms/li.php?type_id=2&resource_link_id=r1"
    )


def test_lineitem_pick_wants_the_link_id_and_prefers_our_resource_id() -> None:
    items = [
        {"id": "https://lms/li/1", "resourceLinkId": "other", "resourceId": "lesson-1"},
        {"id": "https://lms/li/2", "resourceLinkId": "r1", "resourceId": "quiz"},
        {"id": "https://lms/li/3", "resourceLinkId": "r1", "resourceId": "lesson-1"},
        {"id": "javascript:alert(1)", "resourceLinkId": "r1", "resourceId": "lesson-1"},
        "not an item",
    ]
    assert messages.lineitem_pick(items, resource_link_id="r1", resource_id="lesson-1") == "https://lms/li/3"
    assert messages.lineitem_pick(items[:2], resource_link_id="r1", resource_id="lesson-1") == "https://lms/li/2"
    assert messages.lineitem_pick(items[:1], resource_link_id="r1", resource_id="lesson-1") is None
    assert messages.lineitem_pick({"items": items}, resource_link_id="r1", resource_id="lesson-1") is None


def test_lineitem_payload() -> None:
    assert messages.lineitem_payload(score_maximum=10, label="Lenses", resource_id="u-1", resource_link_id="r1") == {
        "scoreMaximum": 10,
        "label": "Lenses",
        "resourceId": "u-1",
        "resourceLinkId": "r1",
    }


@pytest.mark.parametrize(
    ("scopes", "lineitem", "lineitems", "mode", "reason"),
    [
        ([messages.SCOPE_SCORE], "https://lms/li/1", "", "lineitem", ""),
        ([messages.SCOPE_SCORE, messages.SCOPE_LINEITEM], "", "https://lms/li", "find_or_create", ""),
        ([messages.SCOPE_SCORE, messages.SCOPE_LINEITEM_READONLY], "", "https://lms/li", "find", ""),
        ([messages.SCOPE_SCORE], "", "https://lms/li", "", "neither lineitem scope"),
        ([messages.SCOPE_SCORE, messages.SCOPE_LINEITEM], "", "", "", "neither a line item nor"),
        ([messages.SCOPE_LINEITEM], "https://lms/li/1", "https://lms/li", "", "score scope"),
    ],
)
def test_gradebook_access(scopes: list[str], lineitem: str, lineitems: str, mode: str, reason: str) -> None:
    access = messages.gradebook_access(scopes=scopes, lineitem_url=lineitem, lineitems_url=lineitems)
    assert access.mode == mode
    assert (reason in access.reason) if reason else access.reason == ""
    wanted = tuple(scope for scope in scopes if scope != messages.SCOPE_SCORE) if mode.startswith("find") else ()
    assert access.token_scopes == wanted


def test_gradebook_access_asks_a_token_for_the_lineitem_scopes_offered_and_no_more() -> None:
    both = [messages.SCOPE_LINEITEM_READONLY, messages.SCOPE_SCORE, messages.SCOPE_LINEITEM]
    access = messages.gradebook_access(scopes=both, lineitem_url="", lineitems_url="https://lms/li")
    assert (access.mode, access.token_scopes) == (
        "find_or_create",
        (messages.SCOPE_LINEITEM, messages.SCOPE_LINEITEM_READONLY),
    )


def test_score_payload_timestamp_is_iso8601_utc() -> None:
    payload = messages.score_payload(
        user_id="u", score_given=1, score_maximum=2, activity_progress="Completed", grading_progress="FullyGraded",
        timestamp=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    )  # fmt: skip
    assert payload["timestamp"] == "2026-01-02T03:04:05.678Z"


def test_keys_sign_and_publish() -> None:
    pair = keys.generate(passphrase=b"pass")
    private = keys.load_private(pair.private_key_encrypted, passphrase=b"pass")
    token = jwt.encode({"a": 1}, private, algorithm="RS256", headers={"kid": pair.kid})
    public = jwt.PyJWK(pair.public_jwk).key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"a": 1}
    assert pair.public_jwk["kid"] == pair.kid == keys.thumbprint(private.public_key())
    with pytest.raises((ValueError, TypeError)):
        keys.load_private(pair.private_key_encrypted, passphrase=b"wrong")


def test_auth_redirect_url() -> None:
    url = messages.auth_redirect_url(
        auth_login_url="https://lms/auth?x=1", client_id="c", redirect_uri="https://tool/lti/launch/",
        login_hint="h", lti_message_hint=None, state="s", nonce="n",
    )  # fmt: skip
    assert url.startswith(
        "https://lms/auth?x=1&scope=openid&response_type=id_token&response_mode=form_post&prompt=none"
    )
    assert "lti_message_hint" not in url


def test_a_platform_answer_that_is_not_json_is_a_permanent_error() -> None:
    from lti import http
    from lti.errors import PlatformPermanentError

    assert http.Reply(200, {}, b'{"ok": 1}').json() == {"ok": 1}
    with pytest.raises(PlatformPermanentError, match="not JSON"):
        http.Reply(200, {}, b"<html>maintenance</html>").json()


A, B, C, D = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))


@pytest.mark.parametrize(
    ("selected", "shown", "checked", "multiple", "expected"),
    [
        ([], [A, B], [B, A], True, [B, A]),  # ticked on one page: in page order (the form's order)
        ([C], [A, B], [B], True, [C, B]),  # earlier pages' choices come first
        ([A, C], [A, B], [B], True, [C, B]),  # shown here and not ticked any more: dropped
        ([A, C], [D], [], True, [A, C]),  # another page, nothing ticked: kept
        ([A, A, C], [], [C, D, D], True, [A, C, D]),  # no duplicates
        ([A], [B, C], [], False, [A]),  # single: kept until something is picked
        ([A], [B, C], [C], False, [C]),  # single: replaced
        ([A], [B, C], [B, C], False, [B, C]),  # single: a forged second value is left for the response to refuse
    ],
)
def test_the_selection_kept_across_picker_pages(
    selected: list[str], shown: list[str], checked: list[str], multiple: bool, expected: list[str]
) -> None:
    assert picking.selection_update(selected=selected, shown=shown, checked=checked, multiple=multiple) == expected


def test_lesson_ids_and_durations_as_the_picker_reads_and_shows_them() -> None:
    assert picking.lesson_id_parse(A.upper()) == A
    assert picking.lesson_id_parse("{" + A + "}") == A
    assert [picking.lesson_id_parse(value) for value in ("", "lesson-1", "1' OR 1=1")] == [None, None, None]
    assert [picking.duration_text(value) for value in (None, 0, 0.4, 59.5, 75.4, 3600, 3725)] == [
        "", "", "0:00", "1:00", "1:15", "1:00:00", "1:02:05",
    ]  # fmt: skip
