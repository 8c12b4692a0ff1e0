"""Chunked encoding on real Dramatiq worker processes (Redis broker, PostgreSQL, S3): a worker killed
with SIGKILL in the middle of a chunk costs that chunk only, and the lesson is published once."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from media_pipeline import services, storage
from media_pipeline.models import AssetStatus, ChunkedBuild, ChunkState, EncodeChunk, MediaAsset, VersionReplica
from tests.conftest import make_clip
from tests.worker_processes import WorkerProcess, wait_for, worker_environment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    return worker_environment(
        tmp_path / "worker-work",
        # Chunks only: no provisional stream first (its own tests cover it), so the lesson's one version is v1.
        MEDIA_PROVISIONAL="0",
        # A 6 s lecture makes two video chunks: the first (4 s) is the one caught mid-encode, the second
        # (the 2 s left) is the "other" chunk that must be encoded once; a third would prove nothing more.
        MEDIA_CHUNK_MIN_SECONDS="4",
        MEDIA_CHUNK_SECONDS="4",
        MEDIA_CHUNK_LEASE_SECONDS="5",
        # Slow enough that a chunk is still running when the test kills its worker, and reports progress
        # (every 2 s) before it ends, on a quiet machine too: veryslow chunks of this clip took under 2 s.
        ENCODE_PRESET="placebo",
        ENCODE_THREADS="1",
    )


def _upload_and_wait_mid_chunk(
    key_prefix: str, worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> tuple[MediaAsset, EncodeChunk, Path]:
    """A 6 s lecture uploaded with one worker running: the asset, a video chunk it is encoding (past 0 %,
    before 100 %), and the worker's log."""
    clip = make_clip(tmp_path / "lecture.mp4", seconds=6, size="640x360")
    log = tmp_path / "workers.log"
    workers.append(WorkerProcess(worker_env, log))
    asset = services.asset_create(key_prefix=key_prefix)
    with clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)

    def a_video_chunk_mid_encode() -> EncodeChunk | None:
        return EncodeChunk.objects.filter(
            build__asset=asset, kind="video", state=ChunkState.RUNNING, progress__gt=0, progress__lt=100
        ).first()

    try:
        chunk = wait_for(a_video_chunk_mid_encode, timeout=180, what="a chunk being encoded")
    except AssertionError:
        state = MediaAsset.objects.filter(pk=asset.pk).values("status", "building_version", "published_version")
        chunks = list(EncodeChunk.objects.filter(build__asset=asset).values("index", "kind", "state", "progress"))
        raise AssertionError(f"no chunk mid-encode: {list(state)} {chunks}\n{log.read_text()[-2000:]}") from None
    return asset, chunk, log


def test_a_worker_killed_mid_chunk_costs_only_that_chunk_and_the_lesson_is_published_once(
    key_prefix: str, worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    asset, victim, log = _upload_and_wait_mid_chunk(key_prefix, worker_env, workers, tmp_path)
    workers[0].kill()
    victim.refresh_from_db()
    assert (victim.state, victim.attempts, victim.encodes) == (ChunkState.RUNNING, 1, 0)
    done_before = set(
        EncodeChunk.objects.filter(build__asset=asset, state=ChunkState.DONE).values_list("pk", flat=True)
    )

    # An operator starts a new worker and runs pipeline_resume, which sends the transcode step again.
    workers.append(WorkerProcess(worker_env, log))
    out = io.StringIO()
    call_command("pipeline_resume", "--idle-minutes", "0", stdout=out)
    assert out.getvalue().startswith("resumed 1 asset(s)")
    asset = services.asset_wait(asset_id=asset.pk, timeout=300)
    assert (asset.status, asset.failure_reason, asset.published_version) == (AssetStatus.READY, "", 1), log.read_text()

    build = ChunkedBuild.objects.get(asset=asset)
    assert (build.version, build.state, build.joins) == (1, ChunkedBuild.State.JOINED, 1)
    chunks = {c.pk: c for c in build.chunks.all()}
    assert sorted((c.kind, c.index) for c in chunks.values()) == [("audio", 0), ("video", 0), ("video", 1)]
    # The killed chunk was claimed twice and encoded to the end once; every other chunk once and once.
    assert (chunks[victim.pk].attempts, chunks[victim.pk].encodes) == (2, 1)
    for pk, chunk in chunks.items():
        assert chunk.state == ChunkState.DONE
        if pk != victim.pk:
            assert (chunk.attempts, chunk.encodes) == (1, 1), chunk
    assert done_before <= set(chunks)

    # Published once: one version, its index lists exactly the objects stored, and no chunk output.
    assert storage.list_keys(key_prefix + "/v2/") == []
    assert storage.list_keys(build.work_prefix()) == []
    prefix = asset.published_prefix
    index = json.loads(storage.read_bytes(prefix + "files.json"))["files"]
    assert sorted(prefix + name for name in index) == [
        k for k in storage.list_keys(prefix) if not k.endswith("files.json")
    ]
    assert not [name for name in index if name.startswith("c0") or "/c0" in name]
    assert VersionReplica.objects.filter(asset=asset, prefix=prefix).count() == 1
    assert MediaAsset.objects.get(pk=asset.pk).attempts >= 2  # the transcode step ran again after the kill


def test_an_asset_deleted_mid_build_leaves_nothing_in_storage_and_its_worker_stops_cleanly(
    key_prefix: str, worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    asset, _, log = _upload_and_wait_mid_chunk(key_prefix, worker_env, workers, tmp_path)
    build = ChunkedBuild.objects.get(asset=asset)
    work, sources = build.work_prefix(), f"sources/{asset.public_id}/"
    assert key_prefix + "/work/v1/source/index.json" in storage.list_keys(work)  # the split source is there

    services.asset_delete(asset_id=asset.pk)
    prefixes = list(VersionReplica.objects.filter(asset=None).values_list("prefix", flat=True).distinct())
    # The work objects (split source, chunk outputs) are deleted with the versions and the original.
    assert sorted(prefixes) == [key_prefix + "/v1/", key_prefix + "/work/", sources]

    # The worker stops the chunk at its next progress report (its lease can no longer be renewed) and removes
    # what it wrote; the chunk messages still queued find nothing to do; the deletions run.
    wait_for(lambda: "stopped, " in log.read_text(), timeout=120, what="the chunk's worker to stop")
    wait_for(
        lambda: not VersionReplica.objects.filter(prefix__in=prefixes).exclude(state="deleted").exists(),
        timeout=120,
        what="the deletions",
    )
    workers[0].stop()  # whatever it still had (a queued chunk message) is finished, nothing is left running
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert text.count("stopped, ") == 1, text[-3000:]
    assert storage.list_keys(key_prefix + "/") == []
    assert storage.list_keys(sources) == []

    # A worker killed after an upload and before removing it leaves an object behind: the sweep in
    # pipeline_resume (cron) removes it.
    late = tmp_path / "late.mp4"
    late.write_bytes(b"late chunk output")
    storage.save_file(key=work + "c0002_video_360p.mp4", source=late)
    out = io.StringIO()
    call_command("pipeline_resume", stdout=out)
    assert "removed 1 object(s) written after their asset was deleted" in out.getvalue()
    assert storage.list_keys(key_prefix + "/") == []
