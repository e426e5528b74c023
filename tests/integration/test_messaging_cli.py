"""`core topics create` and `core topics list` against a Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.migration_roundtrip import core_command

pytestmark = pytest.mark.kafka


def _core(tmp_path: Path, kafka_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "main.py").write_text("from core import CoreApp\n\napp = CoreApp()\n")
    env = {
        **os.environ,
        "MESSAGE_BROKER": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/app.db",
    }
    return subprocess.run(
        [*core_command(), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_topics_create_then_list(tmp_path: Path, kafka_url: str) -> None:
    name = f"core-cli-{uuid.uuid4().hex[:8]}"

    created = _core(tmp_path, kafka_url, "topics", "create", name, "--partitions", "3")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"Created topic {name} (3 partitions)."

    again = _core(tmp_path, kafka_url, "topics", "create", name, "--partitions", "3")
    assert again.stdout.strip() == f"Topic {name} already exists; left unchanged."

    listed = _core(tmp_path, kafka_url, "topics", "list")
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout.splitlines()


def test_an_unreachable_kafka_is_one_line(tmp_path: Path) -> None:
    from tests.services import free_port

    result = _core(tmp_path, f"127.0.0.1:{free_port()}", "topics", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("error: Kafka is unreachable")
    assert len(result.stderr.strip().splitlines()) == 1
