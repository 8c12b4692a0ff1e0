"""The probe step: read the upload's streams and plan its ladder (uploaded -> probing -> probed).

A new upload of a lesson that is not protected goes on to the provisional stream first
(steps.provisional); an input that is not playable media fails the asset with the reason.

ffprobe reads a local file: the stored file itself with the embedded local storage, else a sparse copy
holding only what ffprobe and the damage checks read (source_reader.probe_copy: a phone's 650 MB video
is probed after reading its index and its first 6 MiB, not after copying it whole).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from media_pipeline import source_reader, storage, versions, workflow
from media_pipeline.errors import InputRejected
from media_pipeline.ladder import plan_ladder
from media_pipeline.models import AssetStatus
from media_pipeline.probe import parse_probe, run_ffprobe
from media_pipeline.quick_stream import remux_refusal


def asset_probe(*, asset_id: int) -> None:
    asset = workflow.claim(asset_id, to_state=AssetStatus.PROBING)
    if asset is None:
        return
    with versions.work_dir() as tmp:
        if storage.is_local():
            source = storage.local_path(asset.source_key)
        else:
            source = Path(tmp) / "source"
            source_reader.probe_copy(asset.source_key, source)
        try:
            data = run_ffprobe(ffprobe=settings.FFPROBE_BIN, path=source, work_dir=Path(tmp))
            result = parse_probe(data)
        except InputRejected as exc:
            reason = f"rejected: {exc}"
            workflow.fail(asset.pk, version=asset.building_version, in_state=AssetStatus.PROBING, reason=reason)
            return
    # A sound-only lesson has no video ladder: only its audio rendition is encoded and packaged.
    rungs = plan_ladder(width=result.width, height=result.height, fps=result.fps) if result.has_video else []
    # A new upload of a lesson that is not protected plays first as a provisional stream (steps.provisional).
    # A sound-only lesson needs none: its full version is one audio encode, ready about as soon.
    provisional_first = settings.MEDIA_PROVISIONAL and not asset.protected and result.has_video
    workflow.advance(
        asset.pk,
        version=asset.building_version,
        from_state=AssetStatus.PROBING,
        to_state=AssetStatus.PROVISIONAL if provisional_first else AssetStatus.PROBED,
        # Why the quick first stream cannot copy the source's packets ("" when it can: steps.provisional).
        probe={**result.as_dict(), "remux_refusal": remux_refusal(data) or ""},
        ladder=[rung.as_dict() for rung in rungs],
        duration_seconds=result.duration,
        width=result.width or None,  # none for a sound-only lesson
        height=result.height or None,
    )
