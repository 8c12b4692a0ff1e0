"""A media asset: one uploaded source and the adaptive versions built from it.

The pipeline moves an asset through its states with compare-and-set updates
(see workflow); nothing here does I/O.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AssetStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded, waiting to be probed"
    PROBING = "probing", "Probing"
    # A new upload is made playable at once (media_pipeline/steps/provisional.py, docs/adr): its own bitstream
    # repackaged, or one fast low rung. Leaves for PROBED whatever happens; never fails the asset.
    PROVISIONAL = "provisional", "Making a quick first stream"
    PROBED = "probed", "Probed, waiting to be encoded"
    TRANSCODING = "transcoding", "Encoding and packaging"
    TRANSCODED = "transcoded", "Encoded, waiting to be published"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class MediaAsset(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Where every version of this asset lives in storage, e.g. "lessons/<lesson uuid>".
    # Given by the owner (courses); the pipeline only appends "/<version>/...".
    key_prefix = models.CharField(max_length=200, unique=True)
    source_key = models.CharField(max_length=300, blank=True)
    source_name = models.CharField(max_length=255, blank=True, help_text="Original file name, for display only.")
    source_size = models.BigIntegerField(default=0)

    status = models.CharField(max_length=16, choices=AssetStatus.choices, default=AssetStatus.UPLOADED)
    failure_reason = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Encoding progress in percent.")
    attempts = models.PositiveIntegerField(default=0)

    probe = models.JSONField(default=dict, blank=True)
    ladder = models.JSONField(default=list, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    # Encrypt the versions built from now on (set by the owner: courses' Lesson.protected). Whether a
    # given version is encrypted is recorded by its ContentKey row, not by this flag.
    protected = models.BooleanField(default=False)

    # The version being built, and the one being served. Versions are immutable once published.
    building_version = models.PositiveIntegerField(default=0)
    published_version = models.PositiveIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Key id of the published version when it is encrypted (its ContentKey), set by the publish flip:
    # playback learns whether to hand out DRM information without another query.
    published_kid = models.UUIDField(null=True, blank=True)
    # What the published version holds besides the streams (storyboard, chapters, captions: file names),
    # copied from its index by the publish flip, so playback needs no storage read. Empty for versions
    # published before storyboards existed.
    published_extras = models.JSONField(default=dict, blank=True)
    # The published version is a provisional stream (the source repackaged, or one fast low rung): the
    # lesson plays, and the full ladder is on its way (status and progress tell how far). Set by the
    # provisional flip, cleared by the full version's flip.
    published_provisional = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="asset_progress_at_most_100"),
            models.CheckConstraint(condition=models.Q(status__in=AssetStatus.values), name="asset_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(status=AssetStatus.READY) | models.Q(published_version__isnull=False),
                name="asset_ready_has_published_version",
            ),
        ]

    def __str__(self) -> str:
        return f"asset {self.public_id} ({self.status})"

    @property
    def is_playable(self) -> bool:
        # A re-encode in progress keeps serving the version already published.
        return self.published_version is not None

    def version_prefix(self, version: int) -> str:
        """Storage prefix of one version, with a trailing slash."""
        return f"{self.key_prefix}/v{version}/"

    @property
    def published_prefix(self) -> str | None:
        if self.published_version is None:
            return None
        return self.version_prefix(self.published_version)


class AssetTextTrack(models.Model):
    """Captions in one language, or the chapters, that the asset's versions built from now on carry
    (set by the owner, courses, through services.asset_set_text_tracks). A table of its own, not a field
    of the asset: the asset row is read on every playback start and must stay small."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="text_tracks")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16)
    language = models.CharField(max_length=35)
    label = models.CharField(max_length=80)
    vtt = models.TextField()

    class Meta:
        ordering = ["asset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "position"], name="text_track_one_per_position"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.language} of {self.asset_id}"


class ReplicaState(models.TextChoices):
    PENDING = "pending", "Waiting to be copied"
    COPYING = "copying", "Copying"
    COMPLETE = "complete", "Complete and verified"
    DEGRADED = "degraded", "Region unreachable or incomplete, retrying"
    DELETING = "deleting", "Waiting to be removed"
    DELETED = "deleted", "Removed"


class VersionReplica(models.Model):
    """One storage prefix (a published version, or an asset's originals) in one region.

    Rows outlive their asset (``asset`` becomes null) so a deletion is retried until every region
    has dropped the objects.
    """

    asset = models.ForeignKey(MediaAsset, on_delete=models.SET_NULL, null=True, blank=True, related_name="replicas")
    prefix = models.CharField(max_length=300, help_text="Storage prefix, ending with a slash.")
    region = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=ReplicaState.choices, default=ReplicaState.PENDING)
    objects_total = models.PositiveIntegerField(default=0)
    objects_copied = models.PositiveIntegerField(default=0)
    bytes_copied = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A worker holds the row until then; a worker that died loses it when it passes.
    lease_until = models.DateTimeField(null=True, blank=True)
    # When the version became available to copy: replication lag is measured from here.
    available_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    delete_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "region"], name="replica_one_row_per_prefix_and_region"),
            models.CheckConstraint(condition=models.Q(state__in=ReplicaState.values), name="replica_state_valid"),
            models.CheckConstraint(
                condition=~models.Q(state=ReplicaState.DELETING) | models.Q(delete_after__isnull=False),
                name="replica_deleting_has_delete_after",
            ),
        ]
        indexes = [models.Index(fields=["state", "region"])]

    def __str__(self) -> str:
        return f"{self.prefix} in {self.region} ({self.state})"


class UploadStatus(models.TextChoices):
    ACTIVE = "active", "Receiving bytes"
    COMPLETING = "completing", "All bytes received, being assembled"
    COMPLETED = "completed", "Completed"
    TERMINATED = "terminated", "Cancelled by the uploader"
    EXPIRED = "expired", "Expired unfinished"
    DISCARDED = "discarded", "Replaced by a newer original and deleted"


class UploadTransport(models.TextChoices):
    TUS = "tus", "tus, through the web process"
    DIRECT = "direct", "Direct to S3 with presigned part URLs"


class ResumableUpload(models.Model):
    """One upload of an asset's original (see media_pipeline/uploads.py and docs/adr/0009; a direct
    upload, whose parts the browser sends straight to S3, is media_pipeline/direct_uploads.py and
    docs/adr/0026).

    With S3 storage the bytes go into an S3 multipart upload as they arrive: ``parts`` lists the
    parts already stored (all ``part_size`` long), and ``spool_key`` names a small object holding
    the bytes received after the last whole part (less than one part). With local storage the
    bytes are appended to ``<storage_key>.part`` in the media root.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="uploads"
    )
    # Null once the asset is deleted; the sweep then aborts the upload if it was unfinished.
    asset = models.ForeignKey(MediaAsset, on_delete=models.SET_NULL, null=True, blank=True, related_name="uploads")
    storage_key = models.CharField(max_length=300, help_text="Generated; never derived from the file name.")
    filename = models.CharField(max_length=255, blank=True, help_text="The client's file name, for display only.")
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    part_size = models.PositiveIntegerField()
    multipart_id = models.CharField(max_length=1024, blank=True)
    parts = models.JSONField(default=list, blank=True)
    spool_key = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.ACTIVE)
    transport = models.CharField(max_length=8, choices=UploadTransport.choices, default=UploadTransport.TUS)
    # One request appends at a time: it holds the lease (compare-and-set) until it commits or it lapses.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(offset__gte=0), name="upload_offset_not_negative"),
            models.CheckConstraint(
                condition=models.Q(offset__lte=models.F("length")), name="upload_offset_within_length"
            ),
            models.CheckConstraint(condition=models.Q(status__in=UploadStatus.values), name="upload_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"]), models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"upload {self.public_id} ({self.status}, {self.offset}/{self.length})"


class UploadQuota(models.Model):
    """A per-educator storage quota overriding settings.UPLOAD_QUOTA_BYTES."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_quota")
    quota_bytes = models.BigIntegerField(help_text="Bytes of uploaded originals this user may keep.")

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(quota_bytes__gte=0), name="upload_quota_not_negative")]

    def __str__(self) -> str:
        return f"quota of {self.user}: {self.quota_bytes} bytes"


class ContentKey(models.Model):
    """The content key one protected version was encrypted with; sealed (media_pipeline.content_keys).

    Never written to storage: the published objects carry only the key id. Deleted with the asset
    (without its segments a key protects nothing).
    """

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="content_keys")
    version = models.PositiveIntegerField()
    kid = models.UUIDField(unique=True, help_text="Key id, as written in the segments and manifests.")
    key_sealed = models.CharField(max_length=200, help_text="AES-256-GCM sealed content key (never the key itself).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["asset", "version"], name="content_key_one_per_version"),
        ]

    def __str__(self) -> str:
        return f"key {self.kid} of {self.asset_id} v{self.version}"


class ChunkState(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class ChunkedBuild(models.Model):
    """One version of an asset encoded in chunks by many workers (media_pipeline/steps/chunked.py,
    docs/adr/0016). The join claims the row (compare-and-set ``encoding`` -> ``joining``) so one worker
    joins; a worker that dies while joining loses the claim when ``lease_until`` passes."""

    class State(models.TextChoices):
        ENCODING = "encoding", "Encoding chunks"
        JOINING = "joining", "Joining and packaging"
        JOINED = "joined", "Joined"

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="chunked_builds")
    version = models.PositiveIntegerField()
    chunk_seconds = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.ENCODING)
    lease_until = models.DateTimeField(null=True, blank=True)
    joins = models.PositiveIntegerField(default=0, help_text="Joins started (more than one: a joiner died).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["asset", "version"], name="chunked_build_one_per_version"),
        ]

    def __str__(self) -> str:
        return f"chunked build of {self.asset_id} v{self.version} ({self.state})"

    def work_prefix(self) -> str:
        """Storage prefix of the chunk outputs: outside every version prefix, removed once joined."""
        return f"{self.asset.key_prefix}/work/v{self.version}/"


class EncodeChunk(models.Model):
    """One message's worth of encoding: the video rungs of output frames [start_frame, end_frame), or
    (kind ``audio``) the whole programme's audio. A worker holds a running chunk until ``lease_until``
    (renewed with its progress); after that any worker may take it over."""

    class Kind(models.TextChoices):
        VIDEO = "video", "Video rungs"
        AUDIO = "audio", "Audio"

    build = models.ForeignKey(ChunkedBuild, on_delete=models.CASCADE, related_name="chunks")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    index = models.PositiveIntegerField()
    start_frame = models.PositiveIntegerField(default=0)
    end_frame = models.PositiveIntegerField(null=True, blank=True, help_text="Exclusive; empty: to the end.")
    state = models.CharField(max_length=16, choices=ChunkState.choices, default=ChunkState.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker claimed it.")
    encodes = models.PositiveIntegerField(default=0, help_text="Times an encode of it finished.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["build", "kind", "index"]
        constraints = [
            models.UniqueConstraint(fields=["build", "kind", "index"], name="encode_chunk_one_per_index"),
            models.CheckConstraint(condition=models.Q(state__in=ChunkState.values), name="encode_chunk_state_valid"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="encode_chunk_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} chunk {self.index} of build {self.build_id} ({self.state})"
