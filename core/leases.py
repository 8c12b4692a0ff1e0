"""Leases on rows: a worker holds a row until ``lease_until``; a dead worker's lease lapses.

Every claim is one compare-and-set UPDATE, so of two workers racing for a row exactly one wins and
the other does nothing. The models that use this have ``lease_until`` and ``updated_at`` fields.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Model, Q
from django.utils import timezone


def lapsed(now: datetime) -> Q:
    """Rows with no lease or one that has passed."""
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def lease_take(
    model: type[Model], pk: Any, *, when: Q, seconds: float, now: datetime | None = None, **changes: Any
) -> bool:
    """Take the row's lease for ``seconds`` if ``when`` holds, applying ``changes``; True if taken."""
    now = now or timezone.now()
    rows = model._default_manager.filter(when, pk=pk)
    return rows.update(lease_until=now + timedelta(seconds=seconds), updated_at=now, **changes) == 1


def lease_renew(model: type[Model], pk: Any, *, seconds: float, when: Q | None = None, **changes: Any) -> bool:
    """Extend a lease the caller holds (``when`` says how it knows); True if still held."""
    now = timezone.now()
    rows = model._default_manager.filter(when or Q(), pk=pk)
    return rows.update(lease_until=now + timedelta(seconds=seconds), updated_at=now, **changes) == 1


def lease_release(model: type[Model], pk: Any, *, when: Q | None = None, **changes: Any) -> bool:
    """Give the lease up, applying ``changes``, so another worker may take the row at once."""
    rows = model._default_manager.filter(when or Q(), pk=pk)
    return rows.update(lease_until=None, updated_at=timezone.now(), **changes) == 1


def lease_remaining(model: type[Model], pk: Any, *, now: datetime | None = None) -> float:
    """Seconds left on the row's lease: 0 when there is none, it has passed, or the row is gone."""
    now = now or timezone.now()
    until = model._default_manager.filter(pk=pk).values_list("lease_until", flat=True).first()
    return max(0.0, (until - now).total_seconds()) if until else 0.0
