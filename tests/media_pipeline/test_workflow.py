"""The asset state machine (media_pipeline/workflow.py): every transition of its table happens as the
table says, every other one is refused and changes nothing, and the next step is sent only after commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import dramatiq
import pytest
from django.db import transaction
from django.db.models import Q

from media_pipeline import workflow
from media_pipeline.metrics import ASSET_FAILURES
from media_pipeline.models import AssetStatus, MediaAsset
from tests.pipeline_steps import record_sends

S = AssetStatus
pytestmark = pytest.mark.django_db


def _asset(key_prefix: str, status: str, **fields: Any) -> MediaAsset:
    defaults: dict[str, Any] = {
        "building_version": 1,
        "probe": {"duration": 6.0},
        "source_key": "sources/x",
        "failure_reason": "earlier",
        "progress": 40,
    }
    if status == S.READY:
        defaults["published_version"] = 1
    return MediaAsset.objects.create(key_prefix=key_prefix, status=status, **{**defaults, **fields})


def _row(asset: MediaAsset) -> dict[str, Any]:
    return MediaAsset.objects.filter(pk=asset.pk).values().get()


def _failures(step: str) -> float:
    return ASSET_FAILURES.labels(step)._value.get()


@dataclass(frozen=True)
class Move:
    """One transition of the table, made the way the pipeline makes it."""

    from_state: str
    to_state: str
    run: Callable[[MediaAsset], object]
    sends: str | None = None  # the step sent after commit
    changes: dict[str, Any] = field(default_factory=dict)  # besides the status

    def __str__(self) -> str:
        return f"{self.from_state}->{self.to_state}"


def _claim(to_state: str) -> Callable[[MediaAsset], object]:
    return lambda asset: workflow.claim(asset.pk, to_state=to_state)


def _advance(from_state: str, to_state: str, **changes: Any) -> Callable[[MediaAsset], object]:
    return lambda asset: workflow.advance(
        asset.pk, version=asset.building_version, from_state=from_state, to_state=to_state, **changes
    )


def _fail(in_state: str) -> Callable[[MediaAsset], object]:
    return lambda asset: workflow.fail(asset.pk, version=asset.building_version, in_state=in_state, reason="broken")


def _rebuild(*from_states: str, versioned: bool = False) -> Callable[[MediaAsset], object]:
    return lambda asset: workflow.rebuild(
        asset.pk, from_states=list(from_states), version=asset.building_version if versioned else None
    )


FAILED = {"failure_reason": "broken", "progress": 0}
REBUILT = {"building_version": 2, "failure_reason": "", "progress": 0}
MOVES = [
    Move(S.UPLOADED, S.PROBING, _claim(S.PROBING), changes={"attempts": 1}),
    Move(S.PROBING, S.PROBING, _claim(S.PROBING), changes={"attempts": 1}),
    Move(
        S.PROBING,
        S.PROVISIONAL,
        _advance(S.PROBING, S.PROVISIONAL, ladder=[{"name": "360p"}]),
        sends="provisional_asset",
        changes={"ladder": [{"name": "360p"}]},
    ),  # fmt: skip
    Move(
        S.PROBING,
        S.PROBED,
        _advance(S.PROBING, S.PROBED, duration_seconds=6.0),
        sends="transcode_asset",
        changes={"duration_seconds": 6.0},
    ),  # fmt: skip
    Move(S.PROBING, S.FAILED, _fail(S.PROBING), changes=FAILED),
    Move(S.PROVISIONAL, S.PROVISIONAL, _claim(S.PROVISIONAL), changes={"attempts": 1}),
    Move(
        S.PROVISIONAL,
        S.PROBED,
        _advance(S.PROVISIONAL, S.PROBED, building_version=2),
        sends="transcode_asset",
        changes={"building_version": 2},
    ),  # fmt: skip
    Move(S.PROBED, S.TRANSCODING, _claim(S.TRANSCODING), changes={"attempts": 1}),
    Move(S.TRANSCODING, S.TRANSCODING, _claim(S.TRANSCODING), changes={"attempts": 1}),
    Move(
        S.TRANSCODING,
        S.TRANSCODED,
        _advance(S.TRANSCODING, S.TRANSCODED, progress=100),
        sends="publish_asset",
        changes={"progress": 100},
    ),  # fmt: skip
    Move(S.TRANSCODING, S.FAILED, _fail(S.TRANSCODING), changes=FAILED),
    Move(
        S.TRANSCODED, S.READY, _advance(S.TRANSCODED, S.READY, published_version=1), changes={"published_version": 1}
    ),  # fmt: skip
    Move(S.TRANSCODED, S.FAILED, _fail(S.TRANSCODED), changes=FAILED),
    Move(S.TRANSCODED, S.PROBED, _rebuild(S.TRANSCODED, versioned=True), sends="transcode_asset", changes=REBUILT),
    Move(S.READY, S.PROBED, _rebuild(S.READY, S.FAILED), sends="transcode_asset", changes=REBUILT),
    Move(
        S.READY,
        S.FAILED,
        lambda asset: workflow.withdraw(asset.pk, reason="withdrawn"),
        changes={"failure_reason": "withdrawn"},
    ),  # fmt: skip
    Move(S.FAILED, S.PROBED, _rebuild(S.READY, S.FAILED), sends="transcode_asset", changes=REBUILT),
]


def test_every_transition_of_the_table_has_its_test() -> None:
    table = {(source, target) for source, targets in workflow.TRANSITIONS.items() for target in targets}
    assert {(move.from_state, move.to_state) for move in MOVES} == table
    assert len(MOVES) == len(table)


def test_claims_and_next_steps_agree_with_the_table() -> None:
    for running, sources in workflow.CLAIMS.items():
        assert all(workflow.allowed(source, running) for source in sources)
    # A running state retried when stale is re-sent its own step.
    assert workflow.RETRIED_WHEN_STALE == {S.PROBING, S.PROVISIONAL, S.TRANSCODING}
    assert all(state in workflow.NEXT_STEP for state in workflow.RETRIED_WHEN_STALE)
    assert S.READY not in workflow.NEXT_STEP and S.FAILED not in workflow.NEXT_STEP


@pytest.mark.parametrize("move", MOVES, ids=str)
def test_an_allowed_transition_happens(
    move: Move, key_prefix: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    sent = record_sends(monkeypatch)
    asset = _asset(key_prefix, move.from_state)
    before = _row(asset)
    with django_capture_on_commit_callbacks(execute=True):
        assert move.run(asset)
    after = _row(asset)
    assert after["status"] == move.to_state
    changed = {name: value for name, value in after.items() if before[name] != value}
    changed.pop("updated_at", None)
    assert changed == {**({"status": move.to_state} if move.to_state != move.from_state else {}), **move.changes}
    assert sent == ([(move.sends, asset.pk)] if move.sends else [])


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    [(source, target) for source, target in product(S.values, S.values) if not workflow.allowed(source, target)],
)
def test_a_transition_outside_the_table_is_refused_and_changes_nothing(
    from_state: str, to_state: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    sent = record_sends(monkeypatch)
    asset = _asset(key_prefix, from_state)
    before = _row(asset)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(workflow.TransitionRefused):
            workflow.advance(asset.pk, version=1, from_state=from_state, to_state=to_state, progress=50)
        if to_state == S.FAILED:
            with pytest.raises(workflow.TransitionRefused):
                workflow.fail(asset.pk, version=1, in_state=from_state, reason="broken")
        if to_state == S.PROBED:
            with pytest.raises(workflow.TransitionRefused):
                workflow.rebuild(asset.pk, from_states=[from_state])
    assert _row(asset) == before
    assert sent == []


@pytest.mark.parametrize("running", list(workflow.CLAIMS))
def test_a_claim_from_any_other_state_changes_nothing(
    running: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_sends(monkeypatch)
    for index, state in enumerate(s for s in S.values if s not in workflow.CLAIMS[running]):
        asset = _asset(f"{key_prefix}/{index}", state)
        before = _row(asset)
        assert workflow.claim(asset.pk, to_state=running) is None
        assert _row(asset) == before
    assert sent == []


def test_a_claim_lost_to_another_worker_does_nothing(key_prefix: str) -> None:
    asset = _asset(key_prefix, S.PROBED)
    mine = workflow.claim(asset.pk, to_state=S.TRANSCODING)
    assert mine is not None and (mine.status, mine.attempts) == (S.TRANSCODING, 1)
    # The other worker finished the step meanwhile: a redelivered message's claim finds nothing to do.
    assert workflow.advance(asset.pk, version=1, from_state=S.TRANSCODING, to_state=S.TRANSCODED)
    before = _row(asset)
    assert workflow.claim(asset.pk, to_state=S.TRANSCODING) is None
    assert _row(asset) == before


def test_an_advance_from_a_state_the_asset_left_or_of_an_older_version_changes_nothing(
    key_prefix: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    sent = record_sends(monkeypatch)
    asset = _asset(key_prefix, S.TRANSCODING, building_version=2)  # a newer upload is being built
    before = _row(asset)
    with django_capture_on_commit_callbacks(execute=True):
        assert not workflow.advance(asset.pk, version=1, from_state=S.TRANSCODING, to_state=S.TRANSCODED)
        assert not workflow.advance(asset.pk, version=2, from_state=S.PROBING, to_state=S.PROBED)
        assert not workflow.fail(asset.pk, version=1, in_state=S.TRANSCODING, reason="too late")
        assert not workflow.rebuild(asset.pk, from_states=[S.TRANSCODED], version=2)
    assert _row(asset) == before
    assert sent == []


def test_a_condition_on_the_advance_that_does_not_hold_changes_nothing(key_prefix: str) -> None:
    asset = _asset(key_prefix, S.TRANSCODED, protected=True)
    before = _row(asset)
    assert not workflow.advance(
        asset.pk,
        version=1,
        from_state=S.TRANSCODED,
        to_state=S.READY,
        when=Q(protected=False),
        published_version=1,
    )
    assert _row(asset) == before


def test_fail_records_the_reason_and_counts_the_failed_step(key_prefix: str) -> None:
    asset = _asset(key_prefix, S.PROBING, progress=30)
    probes, transcodes = _failures("probe"), _failures("transcode")
    assert workflow.fail(asset.pk, version=1, in_state=S.PROBING, reason="rejected: " + "x" * 2000)
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason, asset.progress) == (S.FAILED, "rejected: " + "x" * 990, 0)
    assert (_failures("probe"), _failures("transcode")) == (probes + 1, transcodes)
    # Failing again (a redelivered message) neither changes the reason nor counts twice.
    assert not workflow.fail(asset.pk, version=1, in_state=S.PROBING, reason="other")
    asset.refresh_from_db()
    assert asset.failure_reason.startswith("rejected: ")
    assert _failures("probe") == probes + 1


def test_a_withdrawal_is_not_counted_as_a_failed_step(key_prefix: str) -> None:
    asset = _asset(key_prefix, S.READY)
    others = _failures("other")
    assert workflow.withdraw(asset.pk, reason="upload the video again")
    assert _failures("other") == others


@pytest.mark.parametrize("state", S.values)
def test_a_new_upload_restarts_from_every_state(
    state: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    sent = record_sends(monkeypatch)
    asset = _asset(key_prefix, state, failure_reason="old", progress=40)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.restart(asset.pk, source_key="sources/new", source_size=10)
    asset.refresh_from_db()
    assert (asset.status, asset.building_version, asset.failure_reason, asset.progress) == (S.UPLOADED, 2, "", 0)
    assert (asset.source_key, asset.source_size) == ("sources/new", 10)
    assert sent == [("probe_asset", asset.pk)]


def test_a_heartbeat_records_progress_only_in_the_running_state_and_version(key_prefix: str) -> None:
    asset = _asset(key_prefix, S.TRANSCODING, building_version=2)
    workflow.heartbeat(asset.pk, in_state=S.TRANSCODING, version=1, progress=10)
    workflow.heartbeat(asset.pk, in_state=S.PROBING, progress=20)
    asset.refresh_from_db()
    assert asset.progress == 40
    workflow.heartbeat(asset.pk, in_state=S.TRANSCODING, version=2, progress=30)
    asset.refresh_from_db()
    assert asset.progress == 30


@pytest.mark.django_db(transaction=True)
def test_advance_sends_the_next_step_only_after_commit(key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = record_sends(monkeypatch)
    asset = _asset(key_prefix, S.TRANSCODING)
    with transaction.atomic():
        assert workflow.advance(asset.pk, version=1, from_state=S.TRANSCODING, to_state=S.TRANSCODED)
        assert sent == []  # the publish step must not see the row before it is committed
    assert sent == [("publish_asset", asset.pk)]

    # Rolled back: neither the move nor the message happened.
    other = _asset(key_prefix + "-b", S.TRANSCODING)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert workflow.advance(other.pk, version=1, from_state=S.TRANSCODING, to_state=S.TRANSCODED)
        raise RuntimeError("the step failed after moving the asset")
    other.refresh_from_db()
    assert other.status == S.TRANSCODING
    assert sent == [("publish_asset", asset.pk)]


@pytest.mark.django_db(transaction=True)
def test_the_next_step_reaches_the_broker_by_actor_name(key_prefix: str) -> None:
    broker = dramatiq.get_broker()
    broker.flush_all()
    asset = _asset(key_prefix, S.PROBING)
    with transaction.atomic():
        assert workflow.advance(asset.pk, version=1, from_state=S.PROBING, to_state=S.PROBED)
        assert broker.client.llen(f"{broker.namespace}:ladder") == 0
    # The Redis broker queues message ids and keeps each message in the queue's ".msgs" hash; the full
    # ladder goes to its own queue (docs/adr/0025).
    client, queue = broker.client, f"{broker.namespace}:ladder"
    messages = [json.loads(client.hget(f"{queue}.msgs", message_id)) for message_id in client.lrange(queue, 0, -1)]
    broker.flush_all()
    assert [(message["actor_name"], message["args"]) for message in messages] == [("transcode_asset", [asset.pk])]
