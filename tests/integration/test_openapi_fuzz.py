"""Schemathesis over every operation of an app on PostgreSQL: no 5xx, responses as documented."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from core.containers.core import build_container
from core.settings import Settings
from tests import services

pytestmark = pytest.mark.postgres
SECRET = "fuzz-secret-key-of-a-decent-length-0123456789"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzz_database(postgres_url: str) -> AsyncIterator[str]:
    url = await services.create_database(postgres_url, "core_fuzz")
    yield url
    await services.drop_database(postgres_url, url)


@pytest.fixture(scope="module")
def served(fuzz_database: str) -> Iterator[str]:
    port = services.free_port()
    env = {**os.environ, "DATABASE_URL": fuzz_database, "SECRET_KEY": SECRET, "ENVIRONMENT": "test"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.integration.api_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the test API did not start")
                time.sleep(0.2)
        # Rows for lookups and foreign keys to hit.
        token = _token()
        headers = {"authorization": f"Bearer {token}"}
        httpx.post(
            f"{base}/api/v1/authors/", json={"email": "a@x.io", "name": "A"}, headers=headers
        )
        httpx.post(
            f"{base}/api/v1/articles/",
            json={"title": "T", "slug": "t", "author_id": 1},
            headers=headers,
        )
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def _token() -> str:
    app_settings = Settings(_env_file=None, secret_key=SECRET)  # type: ignore[call-arg]
    backend = build_container(app_settings).auth.token_backend()
    claims = {
        "sub": "1",
        "permissions": ["articles.delete", "articles.edit_any"],
        "groups": ["editors"],
    }
    return backend.create_token(claims, token_type="access")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # An operation whose `security` names the bearer scheme refuses a request without it.
    ignored_auth,
]


def test_every_operation(served: str) -> None:
    # Driven by hand rather than schemathesis' pytest plugin, which does not load under pytest 9.
    api = schemathesis.openapi.from_url(f"{served}/openapi.json")
    # Spelled as the bearer scheme names it, so `ignored_auth`'s probes can take it away.
    headers = {"Authorization": f"Bearer {_token()}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            case.call_and_validate(base_url=served, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())


def test_values_postgres_cannot_store_are_a_400(served: str) -> None:
    # Found by the fuzz run: PostgreSQL text cannot hold NUL, and int4 stops at 2**31 - 1.
    headers = {"authorization": f"Bearer {_token()}"}
    nul = httpx.post(
        f"{served}/api/v1/authors/", json={"email": "a\x00b", "name": "x"}, headers=headers
    )
    assert nul.status_code == 400 and nul.json()["code"] == "invalid"
    search = httpx.get(f"{served}/api/v1/articles/", params={"search": "a\x00"})
    assert search.status_code == 400
    huge = httpx.get(f"{served}/api/v1/articles/{2**40}/")
    assert huge.status_code == 422 and huge.json()["detail"]["error"] == "invalid_lookup_value"
    page = httpx.get(f"{served}/api/v1/authors/", params={"offset": 2**70})
    assert page.status_code == 422
