"""Fixtures shared by every test: real service addresses (skip locally, fail in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import services

# Outside ENVIRONMENT=test an app refuses to start without a private SECRET_KEY; the suite's apps
# (and the subprocesses it starts) are test apps. A test of the refusal sets another environment.
os.environ.setdefault("ENVIRONMENT", "test")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return services.service_url("postgres")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.service_url("redis")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return services.service_url("rabbitmq")


@pytest.fixture(scope="session")
def kafka_url() -> Iterator[str]:
    """CORE_TEST_KAFKA_URL when set (CI starts Tansu on 9092), else a Tansu of this session's."""
    if os.environ.get("CORE_TEST_KAFKA_URL"):
        yield services.service_url("kafka")
        return
    with services.tansu() as address:
        yield address
