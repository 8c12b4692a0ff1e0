"""Audit of every published version in every region against its index, and repair from a good copy.

Quick mode trusts sizes and the SHA-256 kept in object metadata; the default reads every byte.
Repair copies each bad object from a region whose copy of it hashes right, then checks it again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from django.utils import timezone

from media_pipeline.models import MediaAsset, ReplicaState, VersionReplica
from media_pipeline.regions import ObjectStore, Region, regions_all, store_for
from media_pipeline.replication import Expected, NoGoodSource, copy_object, index_from_any, replicas_ensure

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    region: str
    key: str
    problem: str


@dataclass
class Report:
    versions: int = 0
    findings: list[Finding] = field(default_factory=list)
    repaired: list[Finding] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Finding]:
        return [finding for finding in self.findings if finding not in self.repaired]


def _hash(store: ObjectStore, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in store.read(key):
        digest.update(chunk)
    return digest.hexdigest()


def object_problem(store: ObjectStore, key: str, expected: Expected, *, size: int | None, deep: bool) -> str | None:
    """What is wrong with one object in one region (``size`` from a listing), or None."""
    if size is None:
        return "missing"
    if size != expected.size:
        return f"size {size} bytes, expected {expected.size}"
    if deep:
        return None if _hash(store, key) == expected.sha256 else "content does not match its SHA-256"
    info = store.head(key)
    if info is None:
        return "missing"
    if store.region.backend == "s3" and info.sha256 != expected.sha256:
        return "checksum in metadata missing or different"
    return None


def version_verify(*, prefix: str, deep: bool, regions: list[Region]) -> tuple[dict[str, Expected], list[Finding]]:
    _, index = index_from_any(prefix, prefer=regions_all())
    findings: list[Finding] = []
    for region in regions:
        store = store_for(region)
        try:
            present = store.list(prefix)
            for key, expected in sorted(index.items()):
                problem = object_problem(store, key, expected, size=present.get(key), deep=deep)
                if problem:
                    findings.append(Finding(region.name, key, problem))
        except Exception as exc:  # noqa: BLE001 - report the region and go on with the others
            findings.append(Finding(region.name, prefix, f"region unreachable: {type(exc).__name__}"))
    return index, findings


def _repair(finding: Finding, expected: Expected, regions: list[Region]) -> bool:
    target_region = next(region for region in regions if region.name == finding.region)
    for source_region in regions:
        if source_region.name == finding.region:
            continue
        source = store_for(source_region)
        try:
            info = source.head(finding.key)
            if info is None or info.size != expected.size or _hash(source, finding.key) != expected.sha256:
                continue
            copy_object(source=source, target=store_for(target_region), key=finding.key, expected=expected)
        except Exception as exc:  # noqa: BLE001 - try the next good region
            logger.warning("repair of %s in %s from %s: %s", finding.key, finding.region, source_region.name, exc)
            continue
        target = store_for(target_region)
        present = target.head(finding.key)
        return object_problem(target, finding.key, expected, size=present.size if present else None, deep=True) is None
    return False


def replicas_verify(*, deep: bool = True, repair: bool = False, prefix: str = "") -> Report:
    """Walk every published version (optionally under ``prefix``) in every region."""
    replicas_ensure()
    regions = regions_all()
    report = Report()
    assets = MediaAsset.objects.filter(published_version__isnull=False, key_prefix__startswith=prefix.rstrip("/"))
    for asset in assets.order_by("pk"):
        version_prefix = asset.published_prefix
        assert version_prefix is not None
        report.versions += 1
        try:
            index, findings = version_verify(prefix=version_prefix, deep=deep, regions=regions)
        except NoGoodSource as exc:
            report.findings.append(Finding("*", version_prefix, str(exc)))
            continue
        report.findings.extend(findings)
        if repair:
            for finding in findings:
                if finding.key in index and _repair(finding, index[finding.key], regions):
                    report.repaired.append(finding)
        _record(version_prefix, regions, [f for f in findings if f not in report.repaired])
    return report


def _record(prefix: str, regions: list[Region], unresolved: list[Finding]) -> None:
    """Per-region state follows the audit: a region with problems is degraded until repaired."""
    now = timezone.now()
    for region in regions:
        problems = [finding for finding in unresolved if finding.region == region.name]
        rows = VersionReplica.objects.filter(prefix=prefix, region=region.name).exclude(
            state__in=[ReplicaState.DELETING, ReplicaState.DELETED, ReplicaState.COPYING]
        )
        if problems:
            summary = f"verify: {len(problems)} problem(s), e.g. {problems[0].key}: {problems[0].problem}"
            rows.update(state=ReplicaState.DEGRADED, last_error=summary[:1000], completed_at=None, updated_at=now)
        else:
            rows.exclude(state=ReplicaState.COMPLETE).update(
                state=ReplicaState.COMPLETE, last_error="", completed_at=now, updated_at=now
            )
