"""Schemathesis against the OpenAPI document: every documented operation, with generated valid
and invalid data (and the coverage phase's edge cases), called as every persona. No call may
answer 5xx, and every answer must be one the document states, in the documented shape, with
its declared media type; invalid data must be refused.

`positive_data_acceptance` is left out: some valid-looking requests are refused for reasons a
schema cannot state (a proof's `first` above its `second`, a tree size beyond the log, a
reorder that must list every category once), with a 400 naming the rule.

`make test` runs FUZZ_MAX_EXAMPLES=10 per operation; `make fuzz` runs many more. Each run
writes its tally to var/test-reports/fuzz.json (operations, calls, statuses, 5xx).
"""

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.conftest import REPO_ROOT, reset_halt
from tests.personas import PERSONAS, Workshop, build_workshop

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
REPORT = Path(os.environ.get("FUZZ_REPORT", REPO_ROOT / "var" / "test-reports" / "fuzz.json"))
TALLY: Counter[str] = Counter()


def _load_schema() -> schemathesis.BaseSchema:
    """The document `/api/schema/` serves, called in-process through the WSGI application."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    from conclave.wsgi import application

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = application
    return loaded


schema = _load_schema()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    statuses = {k: v for k, v in sorted(TALLY.items()) if k.isdigit()}
    REPORT.write_text(
        json.dumps(
            {
                "max_examples_per_operation": MAX_EXAMPLES,
                "operations": len(list(schema.get_all_operations())),
                "personas": len(PERSONAS),
                "calls": sum(statuses.values()),
                "statuses": statuses,
                "server_errors": sum(v for k, v in statuses.items() if k.startswith("5")),
            },
            indent=2,
        )
    )


@pytest.fixture
def workshop(system_keys):
    """The calls go through the WSGI application, not Django's test client: like the client,
    keep the test's connection (and its transaction) open across requests."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield build_workshop()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _aim_at_real_objects(case, workshop: Workshop) -> None:
    """Random ids mostly miss: an even one is turned into an object that exists, so the
    operation's own code runs (for a mechanic, one order is theirs and one is not)."""
    real = {
        "order_id": (workshop.order_a.pk, workshop.order_b.pk),
        "category_id": (workshop.category.pk,),
        "part_id": (workshop.part.pk,),
    }
    for name, value in (case.path_parameters or {}).items():
        if name in real and isinstance(value, int) and value % 2 == 0:
            choices = real[name]
            case.path_parameters[name] = choices[value // 2 % len(choices)]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation__every_persona__no_5xx_and_as_documented(case, workshop):
    _aim_at_real_objects(case, workshop)
    for persona in PERSONAS:
        response = case.call(headers=workshop.headers(persona))
        TALLY[str(response.status_code)] += 1
        reset_halt()  # a halt raised by one call would turn the next writes into 503s
        case.validate_response(
            response,
            headers=workshop.headers(persona),
            excluded_checks=[checks.positive_data_acceptance],
        )
