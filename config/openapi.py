"""What every API view shares in the OpenAPI schema (/api/schema/): the error body, and a generator
that also describes HEAD and OPTIONS for the views whose protocol uses them (tus uploads).

tests/security/test_schemathesis.py holds every answer of the running server to this schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()

    class Meta:
        ref_name = "Error"


def error(description: str) -> OpenApiResponse:
    """A refusal with a JSON ``{"detail": ...}`` body (DRF's exceptions and our own)."""
    return OpenApiResponse(ErrorOutput, description=description)


NOT_LOGGED_IN = "Not logged in (no session and no valid token)"


class _Enumerator(EndpointEnumerator):
    def get_allowed_methods(self, callback: Any) -> list[str]:
        methods = super().get_allowed_methods(callback)
        view = getattr(callback, "cls", None)
        extra = getattr(view, "openapi_extra_methods", ())
        handled = view().allowed_methods if view is not None and extra else []
        return methods + [method for method in extra if method in handled and method not in methods]


class Generator(SchemaGenerator):
    """drf-spectacular's generator; a view lists ``openapi_extra_methods = ("HEAD", "OPTIONS")`` to
    have those described too (drf-spectacular leaves them out, as DRF answers them by itself)."""

    endpoint_inspector_cls = _Enumerator
