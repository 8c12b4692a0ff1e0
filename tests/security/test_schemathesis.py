"""schemathesis against /api/schema/ on the running ASGI server (config.serve; the beacon app in front of
Django): every operation, as an anonymous client, an enrolled learner and the course's educator.

For each principal and operation, cases come from three strategies: valid data with random path
parameters, valid data with the world's real objects in the path (a published lesson, a course, the
educator's tus upload), and invalid data (schemathesis's negative mode) with the real objects. The
seed is fixed (`derandomize`) and the size is bounded by examples per strategy, not by a clock, so a
run does the same requests every time. Failing responses are collected and reported together.

Checks, chosen explicitly: no 5xx; the status, the content type, the headers and the body are the
ones the schema declares for that operation.
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import Served

# django_db: pytest-django creates the test database only for a session whose tests ask for it; the
# tests here only speak HTTP (the `served` world is committed by its fixture).
pytestmark = [pytest.mark.slow, pytest.mark.django_db]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# A tus PATCH body is bytes: send them as schemathesis sends application/octet-stream.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
EXAMPLES = 20  # per principal, operation and strategy (about 1.5 minutes here on a quiet machine)
FUZZED_AS = ("anonymous", "learner", "educator")
# Operations run in this order, so DELETE (of its own upload) comes after the reads and changes.
METHOD_ORDER = {"OPTIONS": 0, "GET": 1, "HEAD": 2, "POST": 3, "PATCH": 4, "PUT": 5, "DELETE": 6}


def real_path_parameters(served: Served, operation: Any) -> dict[str, str]:
    values = {"public_id": served.lesson_id, "slug": served.course_slug}
    purpose = "delete" if operation.method.upper() == "DELETE" else "fuzz"
    direct = operation.path.startswith("/api/v1/uploads/direct/")
    values["upload_id"] = served.uploads[f"direct-{purpose}" if direct else purpose]
    names = {parameter.name for parameter in operation.path_parameters}
    return {name: value for name, value in values.items() if name in names}


def real_headers(served: Served, operation: Any) -> dict[str, str]:
    """A tus creation names the world's lesson in its metadata (else every one is a 404)."""
    if operation.method.upper() == "POST" and operation.path == "/api/v1/uploads/":
        lesson = base64.b64encode(served.lesson_id.encode()).decode()
        return {"Upload-Metadata": f"lesson {lesson},filename {base64.b64encode(b'fuzz.mp4').decode()}"}
    return {}


@dataclass(frozen=True)
class Planned:
    """One generated request: where it came from ("METHOD /path (strategy)") and the case."""

    where: str
    case: Any


def generate(where: str, strategy: Any) -> list[Planned]:
    """The cases hypothesis draws from ``strategy``: ``EXAMPLES`` of them, from a seed fixed by this
    function (``derandomize``). The draws depend only on the strategy and that seed, never on what is
    done with a case (nothing is raised into hypothesis: no shrinking, no target), so every principal
    would draw exactly these; they are drawn once and sent as each principal."""
    drawn: list[Planned] = []

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not minimised
        suppress_health_check=list(HealthCheck),
    )
    def draw(case: Any) -> None:
        drawn.append(Planned(where, case))

    try:
        draw()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body).
        assert where.endswith("(invalid data)"), f"{where}: no case could be generated"
    return drawn


def plan(served: Served, schema: Any) -> list[Planned]:
    """Every operation of the schema, with each of the three strategies, in the order they are sent."""
    operations = sorted(
        (item.ok() for item in schema.get_all_operations()),
        key=lambda op: (METHOD_ORDER.get(op.method.upper(), 9), op.path),
    )
    planned: list[Planned] = []
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        path, headers = real_path_parameters(served, operation), real_headers(served, operation)
        for name, strategy in (
            ("random ids", operation.as_strategy(GenerationMode.POSITIVE)),
            ("real ids", operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path, headers=headers)),
            ("invalid data", operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path)),
        ):
            planned += generate(f"{label} ({name})", strategy)
    return planned


@dataclass
class Run:
    """What one principal's run saw: failures by kind (with the first example) and statuses by operation."""

    principal: str
    headers: dict[str, str]
    session: requests.Session = field(default_factory=requests.Session)
    failures: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def send(self, served: Served, where: str, case: Any) -> None:
        response = case.call(base_url=served.base, session=self.session, headers=self.headers, timeout=60)
        self.statuses[where.split(" (")[0]][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except FailureGroup as exc:  # collected, reported together below
            kinds = "; ".join(sorted({f"{failure.title} ({response.status_code})" for failure in exc.exceptions}))
            key = f"{self.principal} {where}: {kinds}"
            self.failures.setdefault(key, f"{key}\n    {case.as_curl_command(headers=self.headers)}\n    {exc}")


def fuzz(served: Served, principal: str, planned: list[Planned]) -> Run:
    """Every planned case, in order, as ``principal``."""
    result = Run(principal=principal, headers=served.headers(principal))
    for item in planned:
        result.send(served, item.where, item.case)
    return result


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    schema = schemathesis.openapi.from_url(f"{served.base}/api/schema/?format=json", timeout=60)
    return schema


@pytest.fixture(scope="module")
def planned(served: Served, api_schema: Any) -> list[Planned]:
    """Drawn once for the three principals (drawing took about as long as sending)."""
    return plan(served, api_schema)


@pytest.mark.parametrize("principal", FUZZED_AS)
def test_no_server_error_and_no_schema_violation(
    served: Served, api_schema: Any, planned: list[Planned], principal: str
) -> None:
    run = fuzz(served, principal, planned)
    seen = "\n".join(f"  {operation}: {dict(sorted(counts.items()))}" for operation, counts in run.statuses.items())
    print(f"\n{principal}: statuses per operation\n{seen}")
    # Every operation of the schema was called (none failed to generate).
    assert len(run.statuses) == sum(1 for _ in api_schema.get_all_operations()) >= 13
    failures = run.failures
    assert not failures, (
        f"{len(failures)} kinds of failure:\n"
        + "\n".join(failures)
        + "\n\nfirst examples:\n\n"
        + "\n\n".join(failures.values())
        + "\n\nserver log:\n"
        + served.log_tail()
    )
