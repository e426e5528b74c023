"""Schemathesis, with all its checks, over every operation of an app on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from core.containers.core import build_container
from core.settings import Settings
from tests import services

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
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


def test_every_operation_passes_every_schemathesis_check(served: str, tmp_path: Path) -> None:
    """`st run --checks all`: every check schemathesis has (conformance of statuses, bodies,
    headers and content types; negative data refused and positive data accepted; unsupported
    methods, missing headers, ignored auth, use after free, resources available after
    creation, object-level authorization), over every operation, in every phase (examples,
    coverage, fuzzing, stateful). Tuned to stay well under a minute."""
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{served}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {_token()}",
            "--max-examples",
            "10",
            "--continue-on-failure",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # schemathesis writes a crash cache in its working directory
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        },
    )
    assert run.returncode == 0, run.stdout[-6000:]
    assert "22 selected / 22 total" in run.stdout  # every operation of the document


def test_values_postgres_cannot_store_are_a_400(served: str) -> None:
    # Found by the fuzz run: PostgreSQL text cannot hold NUL, and int4 stops at 2**31 - 1.
    headers = {"authorization": f"Bearer {_token()}"}
    nul = httpx.post(
        f"{served}/api/v1/authors/", json={"email": "a\x00b", "name": "x"}, headers=headers
    )
    assert nul.status_code == 400 and nul.json()["code"] == "invalid"
    # Documented as a pattern without NUL; the database refuses it: a 400, never a 500.
    search = httpx.get(f"{served}/api/v1/articles/", params={"search": "a\x00"})
    assert search.status_code == 400
    huge = httpx.get(f"{served}/api/v1/articles/{2**40}/")
    assert huge.status_code == 422 and huge.json()["detail"]["error"] == "invalid_lookup_value"
    page = httpx.get(f"{served}/api/v1/authors/", params={"offset": 2**70})
    # The paginator reads its parameters itself: a 400 naming the parameter.
    assert page.status_code == 400 and page.json()["code"] == "invalid_pagination"
