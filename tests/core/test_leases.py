"""core.leases on real rows in PostgreSQL: VersionReplica (a state and an attempts counter) and
ResumableUpload (a holder token)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from core.leases import lapsed, lease_release, lease_remaining, lease_renew, lease_take
from media_pipeline.models import ReplicaState, ResumableUpload, UploadStatus, VersionReplica


def _replica(**fields: object) -> VersionReplica:
    fields.setdefault("region", "eu")
    return VersionReplica.objects.create(prefix="lessons/x/v1/", available_at=timezone.now(), **fields)


def _upload(**fields: object) -> ResumableUpload:
    return ResumableUpload.objects.create(
        storage_key="sources/x/y", length=100, part_size=10, expires_at=timezone.now() + timedelta(hours=1), **fields
    )


def _take_copy(pk: int) -> bool:
    """The replica claim as replication does it: waiting, or COPYING under a lease that lapsed."""
    now = timezone.now()
    when = Q(state=ReplicaState.PENDING) | (Q(state=ReplicaState.COPYING) & lapsed(now))
    return lease_take(
        VersionReplica, pk, when=when, seconds=60, now=now, state=ReplicaState.COPYING, attempts=F("attempts") + 1
    )


@pytest.mark.django_db(transaction=True)
def test_of_two_workers_taking_one_row_at_once_exactly_one_wins() -> None:
    row = _replica()
    start = threading.Barrier(2)
    results: list[bool] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            results.append(_take_copy(row.pk))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False, True]
    row.refresh_from_db()
    assert (row.state, row.attempts) == (ReplicaState.COPYING, 1)


@pytest.mark.django_db
def test_a_second_take_loses_while_the_lease_runs_and_changes_nothing() -> None:
    row = _replica()
    assert _take_copy(row.pk) is True
    row.refresh_from_db()
    held = (row.state, row.attempts, row.lease_until, row.updated_at)

    assert _take_copy(row.pk) is False
    row.refresh_from_db()
    assert (row.state, row.attempts, row.lease_until, row.updated_at) == held
    assert held[:2] == (ReplicaState.COPYING, 1)


@pytest.mark.django_db
def test_a_lapsed_lease_may_be_taken() -> None:
    now = timezone.now()
    row = _replica(state=ReplicaState.COPYING, attempts=1, lease_until=now - timedelta(seconds=1))

    assert _take_copy(row.pk) is True
    row.refresh_from_db()
    assert row.attempts == 2
    assert row.lease_until is not None and row.lease_until > now + timedelta(seconds=50)


@pytest.mark.django_db
def test_take_with_a_fixed_now_sets_the_lease_and_updated_at_from_it() -> None:
    row = _replica()
    now = timezone.now() - timedelta(minutes=5)
    assert lease_take(VersionReplica, row.pk, when=lapsed(now), seconds=90, now=now) is True
    row.refresh_from_db()
    assert (row.lease_until, row.updated_at) == (now + timedelta(seconds=90), now)


@pytest.mark.django_db
def test_take_of_a_row_that_is_gone_is_refused() -> None:
    assert lease_take(VersionReplica, 987654321, when=Q(), seconds=60) is False


@pytest.mark.django_db
def test_only_the_holder_renews() -> None:
    upload = _upload()
    assert lease_take(ResumableUpload, upload.pk, when=lapsed(timezone.now()), seconds=5, lease_token="a" * 32)
    upload.refresh_from_db()
    first = upload.lease_until

    assert lease_renew(ResumableUpload, upload.pk, seconds=600, when=Q(lease_token="b" * 32)) is False
    upload.refresh_from_db()
    assert (upload.lease_token, upload.lease_until) == ("a" * 32, first)

    assert lease_renew(ResumableUpload, upload.pk, seconds=600, when=Q(lease_token="a" * 32)) is True
    upload.refresh_from_db()
    assert upload.lease_token == "a" * 32
    assert upload.lease_until > first + timedelta(seconds=500)


@pytest.mark.django_db
def test_renew_applies_changes_only_while_its_condition_holds() -> None:
    upload = _upload(status=UploadStatus.TERMINATED, lease_token="a" * 32)
    assert lease_renew(ResumableUpload, upload.pk, seconds=60, when=Q(status=UploadStatus.ACTIVE), offset=10) is False
    upload.refresh_from_db()
    assert (upload.offset, upload.lease_until) == (0, None)


@pytest.mark.django_db
def test_release_lets_another_take_at_once() -> None:
    upload = _upload()
    now = timezone.now()
    assert lease_take(ResumableUpload, upload.pk, when=lapsed(now), seconds=600, lease_token="a" * 32) is True
    assert lease_take(ResumableUpload, upload.pk, when=lapsed(now), seconds=600, lease_token="b" * 32) is False

    # Not by someone else's token: the lease stays where it is.
    assert lease_release(ResumableUpload, upload.pk, when=Q(lease_token="b" * 32), lease_token="") is False
    upload.refresh_from_db()
    assert upload.lease_token == "a" * 32 and upload.lease_until is not None

    assert lease_release(ResumableUpload, upload.pk, when=Q(lease_token="a" * 32), lease_token="", offset=40) is True
    upload.refresh_from_db()
    assert (upload.lease_token, upload.lease_until, upload.offset) == ("", None, 40)
    assert lease_take(ResumableUpload, upload.pk, when=lapsed(timezone.now()), seconds=600, lease_token="b" * 32)
    upload.refresh_from_db()
    assert upload.lease_token == "b" * 32


@pytest.mark.django_db
def test_remaining_is_zero_for_no_lease_a_lapsed_one_or_a_row_that_is_gone() -> None:
    now = timezone.now()
    free = _replica()
    old = _replica(region="us", lease_until=now - timedelta(seconds=30))
    held = _replica(region="ap", lease_until=now + timedelta(seconds=40))

    assert lease_remaining(VersionReplica, free.pk, now=now) == 0.0
    assert lease_remaining(VersionReplica, old.pk, now=now) == 0.0
    assert lease_remaining(VersionReplica, 987654321, now=now) == 0.0
    assert lease_remaining(VersionReplica, held.pk, now=now) == 40.0
    assert 0.0 < lease_remaining(VersionReplica, held.pk) <= 40.0


@pytest.mark.django_db
def test_lapsed_selects_rows_without_a_lease_or_with_one_that_passed() -> None:
    now = timezone.now()
    free = _replica()
    old = _replica(region="us", lease_until=now - timedelta(microseconds=1))
    _replica(region="ap", lease_until=now + timedelta(seconds=1))
    exact = _replica(region="sa", lease_until=now)  # still held at its last instant

    found = set(VersionReplica.objects.filter(lapsed(now)).values_list("pk", flat=True))
    assert found == {free.pk, old.pk}
    assert exact.pk not in found
