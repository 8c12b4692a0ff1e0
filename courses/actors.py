"""Dramatiq discovers `<app>.actors`; the LTI actors live in courses/lti/actors.py."""

from __future__ import annotations

from courses.lti.actors import ags_post_score, nrps_sync_context

__all__ = ["ags_post_score", "nrps_sync_context"]
