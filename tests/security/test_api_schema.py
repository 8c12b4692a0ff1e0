"""Every API route is in the OpenAPI schema (/api/schema/) with every method it answers, so that
schemathesis (tests/security/test_schemathesis.py) reaches all of them. Pure: no services needed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator as BaseGenerator
from drf_spectacular.settings import spectacular_settings

HANDLERS = ("get", "post", "put", "patch", "delete", "head", "options")


def api_routes(patterns: Any = None, prefix: str = "") -> dict[str, Any]:
    """OpenAPI path ("/api/v1/lessons/{public_id}/") -> view class, for every route under /api/v1/."""
    routes: dict[str, Any] = {}
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            routes.update(api_routes(entry.url_patterns, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("api/v1/"):
            path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + str(entry.pattern))
            routes[path] = entry.callback.cls
    return routes


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generator = spectacular_settings.DEFAULT_GENERATOR_CLASS()
    return generator.get_schema(request=None, public=True)


def described_methods(view: Any) -> set[str]:
    """The methods the view itself handles (DRF answers OPTIONS for every view; not described unless
    the view's protocol defines it, as tus does)."""
    ours = [klass for klass in view.__mro__ if klass.__module__.split(".")[0] not in ("rest_framework", "django")]
    own = {name for name in HANDLERS for klass in ours if name in vars(klass)} - {"head", "options"}
    extra = {method.lower() for method in getattr(view, "openapi_extra_methods", ())}
    return own | {name for name in extra if name == "options" or hasattr(view, name)}


def test_every_api_route_and_method_is_in_the_schema(schema: dict[str, Any]) -> None:
    routes = api_routes()
    assert set(schema["paths"]) == set(routes)
    for path, view in routes.items():
        assert set(schema["paths"][path]) - {"parameters"} == described_methods(view), path


def test_the_tus_and_beacon_endpoints_are_described(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    assert set(paths["/api/v1/uploads/"]) == {"post", "options"}
    assert set(paths["/api/v1/uploads/{upload_id}"]) == {"head", "patch", "delete", "options"}
    patch = paths["/api/v1/uploads/{upload_id}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/offset+octet-stream"]
    assert {p["name"] for p in patch["parameters"] if p["in"] == "header" and p.get("required")} == {
        "Tus-Resumable",
        "Upload-Offset",
    }
    assert set(patch["responses"]["204"]["headers"]) == {"Upload-Offset", "Upload-Expires", "Tus-Resumable"}
    assert set(paths["/api/v1/qoe/events/"]) == {"post"}
    assert set(paths["/api/v1/qoe/events/"]["post"]["responses"]) == {"202", "400", "403", "413", "429", "503"}
    # Precise enough that generated batches are accepted: the fuzzing reaches past validation.
    events = schema["components"]["schemas"]["QoeBatch"]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 200)
    assert set(schema["components"]["schemas"]["QoeEvent"]["required"]) == {"type", "t"}


def test_the_direct_upload_endpoints_are_described(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    assert set(paths["/api/v1/uploads/direct/"]) == {"get", "post"}
    assert set(paths["/api/v1/uploads/direct/{upload_id}/"]) == {"get", "delete"}
    create = paths["/api/v1/uploads/direct/"]["post"]
    assert set(create["responses"]) == {"201", "400", "403", "404", "409", "413", "415"}
    assert list(create["requestBody"]["content"]) == ["application/json"]
    urls = paths["/api/v1/uploads/direct/{upload_id}/part-urls/"]["post"]
    assert set(urls["responses"]) == {"200", "400", "403", "404", "409", "415"}
    complete = paths["/api/v1/uploads/direct/{upload_id}/complete/"]["post"]
    assert set(complete["responses"]) == {"200", "400", "403", "404", "415"}


def test_refusals_are_declared(schema: dict[str, Any]) -> None:
    """Found by schemathesis: answers the schema did not declare."""
    paths = schema["paths"]
    assert set(paths["/api/v1/courses/{slug}/"]["get"]["responses"]) == {"200", "404"}
    assert set(paths["/api/v1/lessons/{public_id}/"]["get"]["responses"]) == {"200", "404"}
    assert set(paths["/api/v1/lessons/{public_id}/replicas/"]["get"]["responses"]) == {"200", "403", "404"}
    progress = paths["/api/v1/lessons/{public_id}/progress/"]["post"]
    assert set(progress["responses"]) == {"200", "400", "403", "404", "409", "415"}
    assert list(progress["requestBody"]["content"]) == ["application/json"]


def test_a_slug_parameter_says_what_the_url_accepts(schema: dict[str, Any]) -> None:
    # Found by schemathesis: "/api/v1/courses/%0E.../" matches no URL and Django answers with HTML.
    (slug,) = schema["paths"]["/api/v1/courses/{slug}/"]["get"]["parameters"]
    assert slug["schema"] == {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}


def test_the_generator_is_drf_spectacular_s_with_head_and_options_for_tus() -> None:
    assert issubclass(spectacular_settings.DEFAULT_GENERATOR_CLASS, BaseGenerator)
