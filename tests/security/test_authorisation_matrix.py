"""Who may do what, over HTTP, on the production ASGI app (config.serve; the beacon app answers before
Django): every route of the URL configuration, for six principals, against the status in MATRIX.

The routes come from django.urls.get_resolver(); a route without an entry in MATRIX (or a MATRIX
entry whose route is gone) fails `test_every_route_has_an_entry`. The admin is covered by a
representative subset in MATRIX and by a rule over every admin route (`test_admin_rule`). The
websocket /ws/analytics/live/ has its own check. URL parameters are filled with the world's real
objects (tests/security/conftest.py): a published lesson of a published course, its educator's tus
uploads, a playback token a learner was given.

Logged-in principals send their Django session cookie, and every request carries a CSRF cookie and
header, as the site's own pages do: a refusal below is the authorisation's, not CSRF's.

To change an expectation, change its one line. Statuses, in PRINCIPALS order:
anonymous, stranger (logged in, not enrolled), learner (enrolled), other_educator (teaches another
course), educator (teaches this course), superuser.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.conftest import PRINCIPALS, TUS, Served

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

CSRF = "matrixcsrftoken0123456789abcdef0"  # 32 characters: a CSRF secret Django accepts as cookie and header

# (route as in the URL configuration, method[, variant]): what each principal gets, in order
#  anonymous, stranger, learner, other_educator, educator, superuser
# A number is the status; LOGIN is a redirect (302) to a login page (/accounts/login/ or /admin/login/).
# Variant "draft": the URL names a draft lesson of the course instead of the published one.
LOGIN = "login"
Expected = int | str
# fmt: off
MATRIX: dict[tuple[str, ...], tuple[Expected, Expected, Expected, Expected, Expected, Expected]] = {
    # learner site
    ("", "GET"):                                                  (200, 200, 200, 200, 200, 200),
    ("courses/<slug:slug>/", "GET"):                              (200, 200, 200, 200, 200, 200),
    ("courses/<slug:slug>/enroll/", "POST"):                      (LOGIN, 302, 302, 302, 302, 302),
    ("lessons/<uuid:public_id>/", "GET"):                         (200, 200, 200, 200, 200, 200),
    ("lessons/<uuid:public_id>/", "GET", "draft"):                (404, 404, 404, 404, 200, 200),
    ("accounts/login/", "GET"):                                   (200, 200, 200, 200, 200, 200),
    ("accounts/logout/", "GET"):                                  (405, 405, 405, 405, 405, 405),
    ("accounts/password_change/", "GET"):                         (LOGIN, 200, 200, 200, 200, 200),
    ("accounts/password_change/done/", "GET"):                    (LOGIN, 200, 200, 200, 200, 200),
    ("accounts/password_reset/", "GET"):                          (200, 200, 200, 200, 200, 200),
    ("accounts/password_reset/done/", "GET"):                     (200, 200, 200, 200, 200, 200),
    ("accounts/reset/<uidb64>/<token>/", "GET"):                  (200, 200, 200, 200, 200, 200),
    ("accounts/reset/done/", "GET"):                              (200, 200, 200, 200, 200, 200),
    # REST API
    ("api/v1/courses/", "GET"):                                   (200, 200, 200, 200, 200, 200),
    ("api/v1/courses/<slug:slug>/", "GET"):                       (200, 200, 200, 200, 200, 200),
    ("api/v1/lessons/<uuid:public_id>/", "GET"):                  (200, 200, 200, 200, 200, 200),
    ("api/v1/lessons/<uuid:public_id>/", "GET", "draft"):         (404, 404, 404, 404, 404, 404),
    ("api/v1/lessons/<uuid:public_id>/replicas/", "GET"):         (403, 403, 403, 403, 200, 200),
    ("api/v1/lessons/<uuid:public_id>/playback/", "POST"):        (403, 403, 200, 403, 200, 200),
    ("api/v1/lessons/<uuid:public_id>/playback/", "POST", "draft"): (403, 403, 403, 403, 409, 409),
    # with the principal's own view token, from a playback session when it may start one
    ("api/v1/lessons/<uuid:public_id>/progress/", "POST"):        (403, 403, 200, 403, 200, 200),
    ("api/v1/qoe/events/", "POST"):                               (202, 202, 202, 202, 202, 202),
    ("api/v1/qoe/events/", "GET"):                                (405, 405, 405, 405, 405, 405),
    ("api/v1/uploads/", "OPTIONS"):                               (204, 204, 204, 204, 204, 204),
    ("api/v1/uploads/", "POST"):                                  (403, 404, 404, 404, 201, 201),
    ("api/v1/uploads/<uuid:upload_id>", "OPTIONS"):               (204, 204, 204, 204, 204, 204),
    ("api/v1/uploads/<uuid:upload_id>", "HEAD"):                  (403, 404, 404, 404, 200, 404),
    ("api/v1/uploads/<uuid:upload_id>", "PATCH"):                 (403, 404, 404, 404, 204, 404),
    ("api/v1/uploads/<uuid:upload_id>", "DELETE"):                (403, 404, 404, 404, 204, 404),
    # direct uploads to S3 (the educator's own upload; 400 on completing it: no part is stored yet)
    ("api/v1/uploads/direct/", "GET"):                            (403, 200, 200, 200, 200, 200),
    ("api/v1/uploads/direct/", "POST"):                           (403, 404, 404, 404, 201, 201),
    ("api/v1/uploads/direct/<uuid:upload_id>/", "GET"):           (403, 404, 404, 404, 200, 404),
    ("api/v1/uploads/direct/<uuid:upload_id>/part-urls/", "POST"): (403, 404, 404, 404, 200, 404),
    ("api/v1/uploads/direct/<uuid:upload_id>/complete/", "POST"): (403, 404, 404, 404, 400, 404),
    ("api/v1/uploads/direct/<uuid:upload_id>/", "DELETE"):        (403, 404, 404, 404, 204, 404),
    ("api/schema/", "GET"):                                       (200, 200, 200, 200, 200, 200),
    ("api/docs/", "GET"):                                         (200, 200, 200, 200, 200, 200),
    # media delivery: the signed token in the path is the credential, whoever presents it
    ("stream/<str:token>/<path:key>", "GET"):                     (200, 200, 200, 200, 200, 200),
    ("region-stream/<str:region>/<str:token>/<path:key>", "GET"): (200, 200, 200, 200, 200, 200),
    ("steer/<str:token>/<path:key>", "GET"):                      (200, 200, 200, 200, 200, 200),
    ("edge-origin/<path:key>", "GET"):                            (403, 403, 403, 403, 403, 403),
    ("drm/clearkey/license", "POST"):                             (403, 403, 403, 403, 403, 403),
    ("drm/hls/key/<str:kid>", "GET"):                             (403, 403, 403, 403, 403, 403),
    # staff pages and reports (an educator's report and engagement cover only the courses they teach)
    ("analytics/live/", "GET"):                                   (LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("analytics/lessons/<uuid:public_id>/engagement.json", "GET"): (LOGIN, LOGIN, LOGIN, 404, 200, 200),
    ("analytics/report.json", "GET"):                             (LOGIN, LOGIN, LOGIN, 200, 200, 200),
    # LTI: the platform's requests carry their own proof (signed JWTs), checked before anything else
    ("lti/login/", "GET"):                                        (400, 400, 400, 400, 400, 400),
    ("lti/launch/", "POST"):                                      (400, 400, 400, 400, 400, 400),
    ("lti/jwks/", "GET"):                                         (200, 200, 200, 200, 200, 200),
    ("lti/config/", "GET"):                                       (200, 200, 200, 200, 200, 200),
    # registration only through a one-time link a superuser made (none here: refused for everyone)
    ("lti/register/", "GET"):                                     (403, 403, 403, 403, 403, 403),
    ("lti/register/<str:token>/", "GET"):                         (403, 403, 403, 403, 403, 403),
    # the LTI lesson page refuses whom playback/access.py refuses
    ("lti/lesson/<uuid:public_id>/", "GET"):                      (403, 403, 200, 403, 200, 200),
    ("lti/lesson/<uuid:public_id>/", "GET", "draft"):             (403, 403, 403, 403, 200, 200),
    ("lti/handoff/", "GET"):                                      (403, 403, 403, 403, 403, 403),
    ("lti/handoff/", "POST"):                                     (403, 403, 403, 403, 403, 403),
    ("lti/deep-link/", "GET"):                                    (403, 403, 403, 403, 403, 403),
    # picker uploads: the picker's session (none here), then an upload grant (none here: refused)
    ("lti/deep-link/upload/", "GET"):                             (403, 403, 403, 403, 403, 403),
    ("lti/deep-link/upload/done/", "POST"):                       (403, 403, 403, 403, 403, 403),
    # whether a lesson is ready: for whom the LTI lesson page shows it
    ("lti/lesson/<uuid:public_id>/status/", "GET"):               (403, 403, 200, 403, 200, 200),
    ("lti/lesson/<uuid:public_id>/status/", "GET", "draft"):      (403, 403, 403, 403, 200, 200),
    # the instructor page of an LMS context: only its instructors (nobody here is one of an LMS context)
    ("lti/instructor/<uuid:public_id>/", "GET"):                  (403, 403, 403, 403, 403, 403),
    ("lti/instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/details/", "POST"): (403, 403, 403, 403, 403, 403),
    ("lti/instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/move/", "POST"): (403, 403, 403, 403, 403, 403),
    ("lti/instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/captions/", "POST"): (403, 403, 403, 403, 403, 403),
    ("lti/instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/delete/", "POST"): (403, 403, 403, 403, 403, 403),
    ("lti/instructor/<uuid:public_id>/scores/<int:score_id>/resend/", "POST"): (403, 403, 403, 403, 403, 403),
    # account linking: a link token from an LMS launch (none here), unlinking only one's own identity
    ("lti/link/", "GET"):                                         (403, 403, 403, 403, 403, 403),
    ("lti/unlink/<int:identity_id>/", "POST"):                    (LOGIN, 403, 403, 403, 403, 403),
    # the account page
    ("account/", "GET"):                                          (LOGIN, 200, 200, 200, 200, 200),
    # operations
    ("healthz", "GET"):                                           (200, 200, 200, 200, 200, 200),
    ("readyz", "GET"):                                            (200, 200, 200, 200, 200, 200),
    ("metrics", "GET"):                                           (200, 200, 200, 200, 200, 200),
    # admin: a representative subset (every admin route also obeys test_admin_rule)
    ("admin/", "GET"):                                            (LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("admin/login/", "GET"):                                      (200, 200, 200, 302, 302, 302),
    ("admin/courses/course/", "GET"):                             (LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("admin/courses/course/<path:object_id>/change/", "GET"):     (LOGIN, LOGIN, LOGIN, 302, 200, 200),
    ("admin/courses/course/add/", "GET"):                         (LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("admin/auth/user/", "GET"):                                  (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/courses/lesson/", "GET"):                             (LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("admin/courses/lesson/<path:object_id>/change/", "GET"):     (LOGIN, LOGIN, LOGIN, 302, 200, 200),
    ("admin/courses/enrollment/", "GET"):                         (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/lti/ltiplatform/", "GET"):                        (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/lti/ltiregistrationlink/", "GET"):                (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/lti/ltiregistrationlink/add/", "GET"):            (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/authtoken/tokenproxy/", "GET"):                       (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/media_pipeline/resumableupload/", "GET"):             (LOGIN, LOGIN, LOGIN, 403, 403, 200),
    ("admin/django_dramatiq/task/", "GET"):                       (LOGIN, LOGIN, LOGIN, 403, 403, 200),
}
# fmt: on


def url_routes(patterns: Any = None, prefix: str = "") -> list[str]:
    """Every route of the URL configuration, as its pattern text ("api/v1/lessons/<uuid:public_id>/")."""
    routes: list[str] = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            routes += url_routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            routes.append(prefix + str(entry.pattern))
    return routes


def is_admin(route: str) -> bool:
    return route.startswith("admin/")


@pytest.fixture(scope="module")
def media(served: Served) -> dict[str, str]:
    """A playback token, region and key, as a learner's playback session hands them out."""
    answer = requests.post(
        f"{served.base}/api/v1/lessons/{served.lesson_id}/playback/", headers=served.headers("learner"), timeout=30
    )
    assert answer.status_code == 200, answer.text
    session = answer.json()
    token, key = urlsplit(session["hls"]).path.removeprefix("/stream/").split("/", 1)
    region = session["regions"][0]["name"]
    return {"token": token, "key": key, "region": region}


def fill(route: str, variant: str, served: Served, media: dict[str, str], pks: dict[str, str]) -> str:
    values = {
        "public_id": served.draft_lesson_id if variant == "draft" else served.lesson_id,
        "slug": served.open_course_slug if route.endswith("/enroll/") else served.course_slug,
        "upload_id": served.uploads["matrix-direct" if route.startswith("api/v1/uploads/direct/") else "matrix-delete"],
        "object_id": pks["lesson" if route.startswith("admin/courses/lesson/") else "course"],
        "lesson_id": served.lesson_id,
        "score_id": "1",
        "identity_id": "1",
        "uidb64": "MQ",
        "kid": "0" * 32,
        "token": media["token"],
        "key": media["key"],
        "region": media["region"],
    }
    if route.startswith("accounts/reset/"):
        values["token"] = "set-password"

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", value, route)


def view_token_of(served: Served, principal: str) -> str:
    """The view token of a playback session this principal starts, or a forged one if it may not."""
    started = call(served, principal, "POST", f"/api/v1/lessons/{served.lesson_id}/playback/")
    return started.json()["view_token"] if started.status_code == 200 else "v1.forged"


def request_for(route: str, method: str, served: Served, principal: str) -> dict[str, Any]:
    """Headers and body that make the request well-formed, so the status is the authorisation's."""
    if route == "api/v1/qoe/events/":
        from tests.analytics.test_beacons import body

        return {"data": body()}
    if route == "api/v1/lessons/<uuid:public_id>/progress/":
        return {"json": {"ranges": [[0, 1]], "view_token": view_token_of(served, principal)}}
    if route == "api/v1/uploads/direct/" and method == "POST":
        return {"json": {"lesson": served.lesson_id, "filename": "f.mp4", "size": 10}}
    if route.endswith("/part-urls/"):
        return {"json": {"parts": [{"number": 1, "md5": base64.b64encode(hashlib.md5(b"x").digest()).decode()}]}}  # noqa: S324
    if route.endswith("/complete/"):
        return {"json": {"parts": [{"number": 1, "etag": '"9dd4e461268c8034f5c8564e155c67a6"'}]}}
    if route.startswith("api/v1/uploads/direct/"):
        return {}
    if route == "api/v1/uploads/" and method == "POST":
        metadata = "lesson " + base64.b64encode(served.lesson_id.encode()).decode()
        return {"headers": {**TUS, "Upload-Length": "10", "Upload-Metadata": metadata}}
    if route.startswith("api/v1/uploads/") and method == "PATCH":
        content = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        return {"headers": {**TUS, **content}, "data": b"x"}
    if route.startswith("api/v1/uploads/"):
        return {"headers": dict(TUS)}
    if route == "drm/clearkey/license":
        return {"json": {"kids": ["AAAAAAAAAAAAAAAAAAAAAA"], "type": "temporary"}}
    return {}


def call(served: Served, principal: str, method: str, path: str, **extra: Any) -> requests.Response:
    cookies = {"csrftoken": CSRF}
    if principal in served.sessions:
        cookies["sessionid"] = served.sessions[principal]
    headers = {"X-CSRFToken": CSRF, **extra.pop("headers", {})}
    return requests.request(
        method, served.base + path, cookies=cookies, headers=headers, allow_redirects=False, timeout=60, **extra
    )


@pytest.fixture(scope="module")
def pks(served: Served, django_db_blocker: Any) -> dict[str, str]:
    """Primary keys for admin URLs: the course and its published lesson."""
    from courses.models import Lesson

    with django_db_blocker.unblock():
        lesson = Lesson.objects.select_related("course").get(public_id=served.lesson_id)
        return {"course": str(lesson.course.pk), "lesson": str(lesson.pk)}


def test_every_route_has_an_entry() -> None:
    routes = {route for route in url_routes() if not is_admin(route)}
    table = {key[0] for key in MATRIX if not is_admin(key[0])}
    assert routes - table == set(), "routes without an entry in MATRIX"
    assert table - routes == set(), "MATRIX entries for routes that no longer exist"
    admin = set(url_routes())
    assert {key[0] for key in MATRIX if is_admin(key[0])} <= admin


def outcome(response: requests.Response) -> Expected:
    if response.status_code == 302 and urlsplit(response.headers["Location"]).path in LOGIN_PAGES:
        return LOGIN
    return response.status_code


LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


def test_statuses(served: Served, media: dict[str, str], pks: dict[str, str]) -> None:
    seen: dict[tuple[str, ...], tuple[Expected, ...]] = {}
    for key in MATRIX:
        route, method, variant = (*key, "")[:3]
        path = fill(route, variant, served, media, pks)
        seen[key] = tuple(
            outcome(call(served, principal, method, path, **request_for(route, method, served, principal)))
            for principal in PRINCIPALS
        )
    wrong = {key: (MATRIX[key], got) for key, got in seen.items() if got != MATRIX[key]}
    if os.environ.get("MATRIX_PRINT"):
        print("\n" + "\n".join(f"    {key!r}: {got}," for key, got in seen.items()))
    assert wrong == {}, "\n".join(f"{key}: expected {want}, got {got}" for key, (want, got) in wrong.items())


def test_an_educators_admin_lists_hold_only_their_courses(served: Served) -> None:
    """The changelists answer 200 to every educator (MATRIX); the rows are the educator's own."""
    for principal, sees in (("other_educator", False), ("educator", True), ("superuser", True)):
        courses = call(served, principal, "GET", "/admin/courses/course/").text
        lessons = call(served, principal, "GET", "/admin/courses/lesson/").text
        assert ("Published lesson" in lessons, "Draft lesson" in lessons) == (sees, sees), principal
        assert ("/admin/courses/course/" in courses and "Proof course" in courses) == sees, principal


ADMIN_PARAMETERS = {"object_id": "1", "app_label": "courses", "content_type_id": "1", "id": "1"}


def test_admin_rule(served: Served) -> None:
    """Every admin route but the login page (and its static helpers) sends the anonymous and logged-in
    non-staff visitors to the login page, and never answers them with the page itself."""
    checked = 0
    for route in url_routes():
        if not is_admin(route) or route in ("admin/login/", "admin/logout/") or "(?P<" in route:
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ADMIN_PARAMETERS.get(m.group(1), "1"), route)
        for principal in ("anonymous", "stranger", "learner"):
            response = call(served, principal, "GET", path)
            assert outcome(response) == LOGIN, (route, principal, response.status_code)
        checked += 1
    assert checked >= 20


def websocket_status(served: Served, principal: str) -> int:
    """The HTTP status of a websocket handshake to /ws/analytics/live/ (101: accepted)."""
    host, port = urlsplit(served.base).hostname, urlsplit(served.base).port
    cookie = f"sessionid={served.sessions[principal]}" if principal in served.sessions else ""
    handshake = (
        "GET /ws/analytics/live/ HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    )
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.sendall(handshake.encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_live_dashboard_websocket_is_for_staff_only(served: Served) -> None:
    statuses = tuple(websocket_status(served, principal) for principal in PRINCIPALS)
    assert statuses == (403, 403, 403, 101, 101, 101)


def test_the_matrix_is_one_line_per_route_and_method() -> None:
    assert all(len(statuses) == len(PRINCIPALS) for statuses in MATRIX.values())
    assert all(key[1] in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS") for key in MATRIX)
    assert all(len(key) == 2 or key[2] == "draft" for key in MATRIX)
