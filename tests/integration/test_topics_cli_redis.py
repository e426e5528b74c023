"""`core topics list` on Redis: event topics, and the task queue's streams apart, labelled."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.unit.cli.test_cli_edges import run_core

pytestmark = pytest.mark.redis


async def _add_streams(url: str, *names: str) -> None:
    client = Redis.from_url(url)
    try:
        for name in names:
            await client.xadd(name, {"data": b"{}"})
    finally:
        await client.aclose()


async def _delete(url: str, *names: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.delete(*names)
    finally:
        await client.aclose()


def test_topics_list_sets_the_task_streams_apart(tmp_path: Path, redis_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    topic = f"core-cli-orders-{suffix}"
    prefix = f"core-cli-tasks-{suffix}"
    stream = f"{prefix}:stream:default"
    asyncio.run(_add_streams(redis_url, topic, stream))
    try:
        # No app module in tmp_path: the settings are enough.
        listed = run_core(
            tmp_path,
            "topics",
            "list",
            MESSAGE_BROKER="redis",
            REDIS_URL=redis_url,
            TASK_KEY_PREFIX=prefix,
        )
    finally:
        asyncio.run(_delete(redis_url, topic, stream))

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Task queue streams"))
    assert topic in lines[:heading]
    assert stream not in lines[:heading]
    assert f"  {stream}" in lines[heading + 1 :]
