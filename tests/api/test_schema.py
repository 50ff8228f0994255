"""The OpenAPI document is part of the contract: it loads, documents every operation with an
example, and schemathesis finds no server error in generated requests against it."""

import json
from collections import Counter

import pytest
import yaml
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from jobs.models import ExecutionStatus, JobSplit, StockClip
from tests.factories import (
    make_account,
    make_execution,
    make_job,
    make_language,
    make_topic,
    make_user,
    make_voice,
)

EXAMPLES_PER_OPERATION = 5
TOKEN = "0123456789abcdef0123456789abcdef01234567"
# Operations outside this API (they document themselves elsewhere).
NOT_OURS = {"/api/v1/ws-ticket/"}
# What a hostile client sends where the schema says text or a number: NUL and other control
# characters (PostgreSQL stores no NUL), and integers past a 32-bit or 64-bit column.
HOSTILE_TEXTS = ["\x00", "a\x00b", "\x1b[2J", "\u2028", ",Style: x\n[Events]"]
HOSTILE_INTEGERS = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30]
# Past the platform's limits: JSON nested beyond Python's recursion limit, numbers int() refuses
# (more than 4,300 digits), and headers of that size, sent as raw text (json.dumps refuses both).
NESTED = "[" * 5000 + "]" * 5000
HUGE_NUMBER = "9" * 5000
_PLACEHOLDER = 123456789123456789123456789
HUGE_HEADERS = {
    "Range": f"bytes={HUGE_NUMBER}-",
    "X-Forwarded-For": HUGE_NUMBER,
    "Accept-Language": "x" * 100_000,
    "If-Modified-Since": HUGE_NUMBER,
    "X-Page": NESTED,
}


def test_schema_and_docs_are_served(client, db):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/jobs/{id}/render/" in schema["paths"]
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_every_operation_has_an_example(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    missing = []
    for path, operations in schema["paths"].items():
        if path in NOT_OURS or path == "/api/v1/schema/":
            continue
        for method, operation in operations.items():
            if method == "parameters":
                continue
            text = yaml.safe_dump(operation)
            if "examples:" not in text and method != "delete":
                missing.append(f"{method.upper()} {path}")
    assert not missing


@pytest.fixture
def seeded(db) -> dict:
    """A user who owns one of everything; half the generated requests use these real ids."""
    user = make_user()
    Token.objects.create(user=user, key=TOKEN)
    language = make_language(owner=user)
    job = make_job(
        owner=user,
        language=language,
        voice=make_voice(owner=user),
        topic=make_topic(owner=user),
        account=make_account(owner=user),
    )
    execution = make_execution(job, status=ExecutionStatus.SUCCESS, results={"video": "jobs/1/video.mp4"})
    JobSplit.objects.create(
        job=job,
        index=0,
        start_ms=0,
        end_ms=1000,
        text="a",
        images=[{"key": "jobs/p.png", "seed": 1, "source": "card"}],
    )
    clip = StockClip.objects.create(
        owner=user, team=user.personal_team, title="sea", file="clips/sea.mp4", duration_ms=1000
    )
    ids = {
        "jobs": job.pk,
        "accounts": job.account_id,
        "languages": language.pk,
        "voices": job.voice_id,
        "topics": job.topic_id,
        "clips": clip.pk,
        "executions": execution.pk,
    }
    return {"user": user, "ids": ids}


def real_path_parameters(path: str, ids: dict) -> dict:
    resource = path.split("/")[3]  # /api/v1/<resource>/...
    parameters = {}
    if "{id}" in path and resource in ids:
        parameters["id"] = ids[resource]
    if "{job_pk}" in path:
        parameters["job_pk"] = ids["jobs"]
    if "{index}" in path:
        parameters["index"] = 0
    return parameters


def hostile(value, text: str, integer: int):
    """`value` with `text` added to every string and every integer replaced by `integer`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return integer
    if isinstance(value, str):
        return value + text
    if isinstance(value, dict):
        return {key: hostile(item, text, integer) for key, item in value.items()}
    if isinstance(value, list):
        return [hostile(item, text, integer) for item in value]
    return value


def hostile_cases(operation):
    """Schema-valid cases whose body, query and path values are then made hostile."""

    def spoil(case, text: str, integer: int):
        if isinstance(case.body, (dict, list, str)):
            case.body = hostile(case.body, text, integer)
        if case.query:
            case.query = hostile(case.query, text, integer)
        if case.path_parameters:  # ids in paths are digits only: "-1" is no route (Django's own 404 page)
            case.path_parameters = hostile(case.path_parameters, text, abs(integer))
        return case

    return st.builds(
        spoil, operation.as_strategy(), st.sampled_from(HOSTILE_TEXTS), st.sampled_from(HOSTILE_INTEGERS)
    )


def extreme_body(body, nested: bool) -> str:
    """The generated JSON body as raw text: a deeply nested value for every key, or every integer
    as a 5,000-digit number."""
    if nested:
        return (
            "{" + ", ".join(f"{json.dumps(key)}: {NESTED}" for key in body) + "}"
            if isinstance(body, dict)
            else NESTED
        )
    return json.dumps(hostile(body, "", _PLACEHOLDER)).replace(str(_PLACEHOLDER), HUGE_NUMBER)


def extreme_cases(operation):
    """Schema-valid cases sent with a raw body past the limits, 5,000-digit query and path values and
    huge headers: (case, raw body or None)."""

    def spoil(case, nested: bool):
        case.query = {
            **{key: HUGE_NUMBER for key in case.query or {}},
            "page": HUGE_NUMBER,
            "page_size": HUGE_NUMBER,
        }
        if case.path_parameters:
            case.path_parameters = {key: HUGE_NUMBER for key in case.path_parameters}
        raw = extreme_body(case.body, nested) if isinstance(case.body, (dict, list)) else None
        return case, raw

    return st.builds(spoil, operation.as_strategy(), st.booleans())


@pytest.fixture
def wsgi_app():
    """The real WSGI application, kept on this test's database transaction (as Django's test
    client does): after each request Django would otherwise close the connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(seeded, settings, wsgi_app):
    """No 5xx, and every response matches its documented schema and content type (business-rule
    400s for schema-valid input, e.g. a taken name or an unreadable upload, are expected); then the
    same with NUL bytes, control characters and extreme integers in every value; then no 5xx with
    bodies nested past the recursion limit, numbers past int()'s limit and huge headers."""
    import schemathesis
    from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

    CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

    settings.API_THROTTLE_USER = None
    settings.API_THROTTLE_ANON = None
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Token {TOKEN}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [
        operation
        for operation in operations
        if operation.path not in NOT_OURS and operation.path != "/api/v1/schema/"
    ]
    # Deletions last, so the seeded rows serve every other operation first.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    runs = [
        (operation, use_real_ids, spoiled)
        for operation in operations
        for use_real_ids in (False, True)
        for spoiled in (False, True, "extreme")
    ]
    for operation, use_real_ids, spoiled in runs:
        real = real_path_parameters(operation.path, seeded["ids"]) if use_real_ids else {}
        if use_real_ids and not real:
            continue
        if spoiled == "extreme":
            strategy = extreme_cases(operation)
        else:
            strategy = st.tuples(hostile_cases(operation) if spoiled else operation.as_strategy(), st.none())

        @given(generated=strategy)
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(generated) -> None:  # run once, below, inside this loop's iteration
            case, raw_body = generated
            # A generated logout deletes the token; put it back for the next request.
            Token.objects.get_or_create(user=seeded["user"], defaults={"key": TOKEN})
            if real:  # noqa: B023
                case.path_parameters = {**(case.path_parameters or {}), **real}  # noqa: B023
            sent = {**HUGE_HEADERS, **headers} if spoiled == "extreme" else headers  # noqa: B023
            response = case.call(headers=sent, **({} if raw_body is None else {"data": raw_body}))
            statuses[response.status_code] += 1
            try:
                case.validate_response(
                    response,
                    headers=sent,
                    checks=[not_a_server_error] if spoiled == "extreme" else CHECKS,  # noqa: B023
                )
            except BaseException as error:  # hypothesis' FailureGroup is an exception group
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {str(error)[:600]}"
                )

        run()
    print(
        f"schemathesis: {sum(statuses.values())} requests over {len(operations)} operations, "
        f"status codes {dict(sorted(statuses.items()))}"
    )
    assert sum(statuses.values()) >= 200
    assert statuses[200] + statuses[201] + statuses[202] + statuses[204] >= 50
    assert not failures, "\n".join(failures)
