from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from courses.services import lesson_set_protected
from courses.view_tokens import view_token_read
from media_pipeline import replication, storage
from media_pipeline.models import AssetStatus, MediaAsset, ReplicaState, VersionReplica
from playback.tokens import TokenResult, token_verify
from tests.pipeline_steps import record_sends
from tests.playback.conftest import World

TOKEN_SHAPED = re.compile(r"\d+\.[A-Za-z0-9_-]{43}")


def _url(public_id: object) -> str:
    return f"/api/v1/lessons/{public_id}/playback/"


def _post(world: World, user: User | None = None, lesson_id: uuid.UUID | str | None = None) -> HttpResponse:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.post(_url(lesson_id or world.lesson.public_id))


def test_enrolled_learner_gets_signed_urls_for_the_published_version(world: World, settings: Settings) -> None:
    before = int(time.time())
    response = _post(world, world.learner)
    after = int(time.time())
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "hls",
        "dash",
        "poster",
        "expires_at",
        "duration",
        "region",
        "regions",
        "steering",
        "credentials",
        "drm",
        "storyboard",
        "chapters",
        "captions",
        "provisional",
        "view_id",
        "view_token",
        "start_estimate",
    }
    # No beacons from this learner yet: the conservative default start (analytics/throughput.py).
    assert body["start_estimate"] == {"kbps": 1000, "basis": "default"}
    assert body["provisional"] is False  # the full ladder is what is published
    # The viewing the server started: its token names this view, this lesson and this learner.
    claim = view_token_read(
        secret=settings.VIEW_TOKEN_SECRET.encode(), token=body["view_token"], now=int(time.time()), max_age=60
    )
    assert claim is not None
    assert (claim.view_id, claim.lesson, claim.user_id) == (
        body["view_id"],
        str(world.lesson.public_id),
        world.learner.pk,
    )
    # A version published before storyboards (no extras recorded) still plays, without them.
    assert (body["storyboard"], body["chapters"], body["captions"]) == ("", "", [])
    assert body["credentials"] is False  # path tokens: no cookies to send
    token = body["hls"].split("/")[2]
    # One storage region (the default): the version is served from it and nowhere else.
    assert body["region"] == "default"
    assert body["regions"] == [{"name": "default", "hls": body["hls"], "dash": body["dash"]}]
    assert body["hls"] == f"/stream/{token}/{world.prefix}master.m3u8"
    assert body["dash"] == f"/stream/{token}/{world.prefix}manifest.mpd"
    assert body["poster"] == f"/stream/{token}/{world.prefix}poster.jpg"
    assert body["duration"] == 6.0
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.utcoffset() is not None
    expires = int(expires_at.timestamp())
    assert before + settings.PLAYBACK_TOKEN_TTL_SECONDS <= expires <= after + settings.PLAYBACK_TOKEN_TTL_SECONDS
    secret = settings.PLAYBACK_TOKEN_SECRET.encode()
    segment = world.prefix + "video_360p/1.m4s"
    assert token_verify(secret=secret, token=token, path_key=segment, now=before) is TokenResult.OK


def test_storyboard_chapters_and_captions_of_the_published_version_are_signed_like_the_manifests(
    world: World,
) -> None:
    world.asset.published_extras = {
        "storyboard": "storyboard.vtt",
        "chapters": "chapters.vtt",
        "captions": [{"language": "pt-BR", "label": "Portugu\u00eas", "file": "subs_pt-br.vtt"}],
    }
    world.asset.save(update_fields=["published_extras"])
    body = _post(world, world.learner).json()
    base = body["hls"].removesuffix("master.m3u8")
    assert base.endswith(f"/{world.prefix}")
    assert body["storyboard"] == base + "storyboard.vtt"
    assert body["chapters"] == base + "chapters.vtt"
    assert body["captions"] == [{"language": "pt-BR", "label": "Portugu\u00eas", "url": base + "subs_pt-br.vtt"}]


@pytest.mark.parametrize("role", ["educator", "admin"])
def test_educator_and_superuser_get_urls(world: World, role: str) -> None:
    assert _post(world, getattr(world, role)).status_code == 200


def test_token_authentication_works_for_lms_and_apps(world: World) -> None:
    token = Token.objects.create(user=world.learner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.post(_url(world.lesson.public_id)).status_code == 200


def test_session_login_with_csrf_token_works(world: World) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.learner)
    client.get("/")  # sets the csrftoken cookie
    csrf = client.cookies["csrftoken"].value
    assert client.post(_url(world.lesson.public_id), HTTP_X_CSRFTOKEN=csrf).status_code == 200


@pytest.mark.parametrize("role", ["stranger", "staff"])
def test_not_entitled_user_is_refused_and_nothing_is_issued_or_written(world: World, role: str) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = _post(world, getattr(world, role))
    assert response.status_code == 403
    assert response.json() == {"detail": "enrol in the course to watch this lesson"}
    assert TOKEN_SHAPED.search(response.content.decode()) is None
    assert [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")] == []


def test_learner_is_refused_a_draft_lesson(world: World) -> None:
    world.lesson.state = "draft"
    world.lesson.save()
    response = _post(world, world.learner)
    assert response.status_code == 403
    assert response.json() == {"detail": "this lesson is not published"}


def test_anonymous_is_refused(world: World) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = _post(world)
    assert response.status_code == 403
    assert response.json() == {"detail": "log in to watch this lesson"}
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)


def test_anyone_may_watch_a_public_lesson(world: World) -> None:
    world.lesson.public = True
    world.lesson.save()
    response = _post(world)
    assert response.status_code == 200
    assert response.json()["hls"].endswith(f"/{world.prefix}master.m3u8")
    world.course.published = False  # a free preview of a withdrawn course is withdrawn too
    world.course.save()
    assert _post(world).status_code == 403


def test_session_post_without_csrf_is_refused(world: World) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.learner)
    response = client.post(_url(world.lesson.public_id))
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF Failed: CSRF cookie not set."}


def test_unknown_lesson_is_404(world: World) -> None:
    response = _post(world, world.learner, lesson_id=uuid.uuid4())
    assert response.status_code == 404
    assert response.json() == {"detail": "no such lesson"}


def test_malformed_lesson_id_is_404(world: World) -> None:
    client = APIClient()
    client.force_authenticate(world.learner)
    assert client.post("/api/v1/lessons/42/playback/").status_code == 404


def test_video_not_ready_is_409(world: World) -> None:
    world.asset.published_version = None
    world.asset.status = "transcoding"
    world.asset.save()
    response = _post(world, world.learner)
    assert response.status_code == 409
    assert response.json() == {"detail": "the video is still being processed"}


def test_a_stranger_learns_nothing_about_readiness(world: World) -> None:
    world.asset.published_version = None
    world.asset.status = "transcoding"
    world.asset.save()
    assert _post(world, world.stranger).status_code == 403


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_only_post_starts_a_session(world: World, method: str) -> None:
    client = APIClient()
    client.force_authenticate(world.learner)
    response = getattr(client, method)(_url(world.lesson.public_id))
    assert response.status_code == 405


def test_openapi_schema_describes_the_endpoint(db: None) -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/lessons/{public_id}/playback/"]["post"]
    assert sorted(operation["responses"]) == ["200", "403", "404", "409", "429"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/PlaybackSession"}
    session = schema["components"]["schemas"]["PlaybackSession"]
    assert sorted(session["properties"]) == [
        "captions", "chapters", "credentials", "dash", "drm", "duration", "expires_at", "hls", "poster",
        "provisional", "region", "regions", "start_estimate", "steering", "storyboard", "view_id", "view_token",
    ]  # fmt: skip
    assert session["properties"]["start_estimate"]["allOf"] == [{"$ref": "#/components/schemas/PlaybackStartEstimate"}]
    estimate = schema["components"]["schemas"]["PlaybackStartEstimate"]
    assert estimate["properties"]["basis"]["allOf"] == [{"$ref": "#/components/schemas/PlaybackStartBasisEnum"}]
    assert schema["components"]["schemas"]["PlaybackStartBasisEnum"]["enum"] == ["history", "default"]
    assert estimate["required"] == ["basis", "kbps"]
    assert sorted(schema["components"]["schemas"]["PlaybackDrm"]["properties"]) == [
        "expires_at", "headers", "hls_key_url", "key_ids", "provider", "scheme", "servers"
    ]  # fmt: skip
    assert session["properties"]["credentials"]["type"] == "boolean"


def test_a_playback_session_costs_two_database_queries_within_the_target_of_three(world: World) -> None:
    """Token auth, then the lesson with the viewer's entitlement facts and the version's regions
    (issue 5 allows three)."""
    token = Token.objects.create(user=world.learner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(_url(world.lesson.public_id))
    assert response.status_code == 200
    assert len(queries) == 2, [query["sql"][:80] for query in queries]
    # The same facts decide for someone else on the same lesson: a stranger is still refused.
    stranger = Token.objects.create(user=world.stranger)
    client.credentials(HTTP_AUTHORIZATION=f"Token {stranger.key}")
    assert client.post(_url(world.lesson.public_id)).status_code == 403


@pytest.mark.parametrize("with_drm", [False, True])
def test_the_session_json_is_what_the_schema_serializer_gives(with_drm: bool) -> None:
    """PlaybackApi answers with session_as_json (fast); the OpenAPI schema comes from OutputSerializer.
    Both must give the same JSON, DRM or not, one region or several, cookies or not."""
    from datetime import UTC

    from rest_framework.renderers import JSONRenderer

    from playback.apis import PlaybackApi, session_as_json
    from playback.drm.providers.base import DrmGrant
    from playback.services import CaptionUrl, DrmInfo, PlaybackSession, RegionUrls
    from playback.signers import SignedCookie

    grant = DrmGrant(
        provider="clearkey",
        servers={"org.w3.clearkey": "https://example.org/drm/clearkey/license"},
        headers={"Authorization": "Bearer x.y.z"},
        expires_at=1_900_000_123,
        hls_key_url="https://example.org/drm/hls/key",
    )
    session = PlaybackSession(
        hls_url="/o/t/lessons/a/v2/master.m3u8",
        dash_url="/o/t/lessons/a/v2/manifest.mpd",
        poster_url="/o/t/lessons/a/v2/poster.jpg",
        expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        duration=612.5,
        region="eu",
        regions=[RegionUrls("eu", "/eu/master.m3u8", "/eu/manifest.mpd"), RegionUrls("us", "/us/m.m3u8", "/us/m.mpd")],
        steering_url="/steer/t/lessons/a/v2/steering.json",
        cookies=(SignedCookie("CloudFront-Policy", "abc", "/"),),
        drm=DrmInfo(scheme="cbcs", key_ids=["0" * 32], grant=grant) if with_drm else None,
        storyboard_url="/o/t/lessons/a/v2/storyboard.vtt" if with_drm else "",
        chapters_url="/o/t/lessons/a/v2/chapters.vtt" if with_drm else "",
        captions=(CaptionUrl("en", "English", "/o/t/lessons/a/v2/subs_en.vtt"),) if with_drm else (),
        provisional=not with_drm,
        start_kbps=2400 if with_drm else 1000,
        start_basis="history" if with_drm else "default",
    )
    fast = JSONRenderer().render(session_as_json(session))
    reference = JSONRenderer().render(PlaybackApi.OutputSerializer(session).data)
    assert fast == reference


def test_a_provisional_stream_is_served_while_the_full_ladder_is_built_in_two_queries(world: World) -> None:
    """Published provisional v1, full ladder being encoded as v2: the session signs v1 and says it
    is provisional, at the same two queries (the flag comes with the lesson row)."""
    MediaAsset.objects.filter(pk=world.asset.pk).update(
        status="transcoding", progress=40, building_version=2, published_provisional=True
    )
    token = Token.objects.create(user=world.learner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(_url(world.lesson.public_id))
    assert response.status_code == 200
    assert len(queries) == 2, [query["sql"][:80] for query in queries]
    body = response.json()
    assert body["provisional"] is True
    assert body["hls"].endswith(f"/{world.prefix}master.m3u8")


def test_a_lesson_switched_to_protected_stops_serving_its_clear_quick_first_stream(
    world: World, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 13, finding 6: the clear provisional version published before the switch.
    sent = record_sends(monkeypatch)
    monkeypatch.setattr(replication, "_send_collect", lambda ids, delay_ms=None: None)
    world.asset.published_provisional = True
    world.asset.probe = {"duration": 6.0, "has_audio": True}
    world.asset.save()
    before = _post(world, world.learner).json()
    assert before["provisional"] is True
    old_segment = before["hls"].removesuffix("master.m3u8") + "video_360p/1.m4s"
    assert Client().get(old_segment).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        assert lesson_set_protected(lesson=world.lesson, protected=True) is True

    asset = MediaAsset.objects.get(pk=world.asset.pk)
    assert (asset.protected, asset.published_version, asset.published_provisional) == (True, None, False)
    assert (asset.status, asset.building_version) == (AssetStatus.PROBED, 2)
    assert sent == [("transcode_asset", asset.pk)]  # the encrypted version is built from the original
    # No new session gets any URL until the encrypted version is published.
    response = _post(world, world.learner)
    assert response.status_code == 409
    assert response.json() == {"detail": "the video is still being processed"}
    # The clear version is deleted now, not after the token lifetime: an old, still valid token
    # names objects that are gone.
    rows = VersionReplica.objects.filter(prefix=world.prefix)
    assert [row.state for row in rows] == [ReplicaState.DELETING]
    for row in rows:
        replication.replica_collect(replica_id=row.pk)
    assert storage.list_keys(world.prefix) == []
    assert Client().get(old_segment).status_code == 404
    assert Client().get(before["hls"]).status_code == 404


def test_a_clear_version_is_never_issued_for_a_protected_lesson(world: World) -> None:
    # Whatever the row says was published: protected and no key id means no URL (asset_playback_info).
    MediaAsset.objects.filter(pk=world.asset.pk).update(protected=True, published_kid=None)
    response = _post(world, world.learner)
    assert response.status_code == 409
    assert "hls" not in response.json()
