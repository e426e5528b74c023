"""`core consumer`, `core topics` and `core outbox` on a small project, run as a user would."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

from tests.migration_roundtrip import core_command

APP = """
    import os
    from contextlib import asynccontextmanager

    from sqlalchemy.orm import Mapped

    from core import CoreApp, Field, Model
    from core.messaging import consumer, on_event, publish_event


    class Greeting(Model):
        __tablename__ = "greetings"
        id: Mapped[int] = Field.pk()
        text: Mapped[str] = Field.string()


    @consumer("greeter", topics=["hellos"])
    class Greeter:
        @on_event("hello")
        async def on_hello(self, event, db):
            await Greeting.objects.create(text=event.data["text"], db=db)


    @asynccontextmanager
    async def lifespan(app):
        await app.create_all()
        if os.environ.get("SAY_HELLO"):
            # Straight to the in-memory broker, whose consumers run in this very process.
            await publish_event("hello", data={"text": "hi"}, topic="hellos")
        if os.environ.get("WRITE_EVENTS"):
            async with app.session():
                for n in range(2):
                    await publish_event("note", data={"n": n}, topic="notes")
        yield


    app = CoreApp(lifespan=lifespan)
"""


def _project(tmp_path: Path, **env: str) -> dict[str, str]:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "main.py").write_text(textwrap.dedent(APP))
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/app.db",
        "MESSAGE_BROKER": "memory",
        "OUTBOX_RELAY_IN_PROCESS": "false",
        **env,
    }


def _core(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*core_command(), *args],
        cwd=tmp_path,
        env=_project(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _greetings(database: Path) -> list[str]:
    if not database.exists():
        return []
    with sqlite3.connect(database) as connection:
        try:
            return [row[0] for row in connection.execute("SELECT text FROM greetings")]
        except sqlite3.OperationalError:  # the table is not created yet
            return []


def test_consumer_runs_the_apps_consumers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*core_command(), "consumer", "--group", "greeter", "--topic", "hellos"],
        cwd=tmp_path,
        env=_project(tmp_path, SAY_HELLO="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _greetings(tmp_path / "app.db") != ["hi"]:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the consumer never handled the event"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Consuming hellos as greeter (src.main.Greeter)" in out
    assert out.rstrip().endswith("Stopped.")


def test_consumer_refuses_an_undeclared_group_in_one_line(tmp_path: Path) -> None:
    result = _core(tmp_path, "consumer", "--group", "nobody")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: No @consumer declares group nobody (declared groups: greeter)"
    )


def test_topics_say_not_applicable_on_brokers_without_them(tmp_path: Path) -> None:
    memory = _core(tmp_path, "topics", "list")
    assert memory.returncode == 1
    assert memory.stderr.startswith(
        "error: `core topics` is not applicable to MESSAGE_BROKER=memory"
    )
    assert len(memory.stderr.strip().splitlines()) == 1

    redis = _core(
        tmp_path, "topics", "create", "users", "--partitions", "3", MESSAGE_BROKER="redis"
    )
    assert redis.returncode == 1
    assert redis.stderr.startswith("error: create_topic is not applicable to Redis")


def test_outbox_relay_once_relays_the_pending_rows_and_status_shows_it(tmp_path: Path) -> None:
    relayed = _core(tmp_path, "outbox", "relay", "--once", WRITE_EVENTS="1")
    assert relayed.returncode == 0, relayed.stderr
    assert relayed.stdout.strip() == "Relayed 2 events."

    status = _core(tmp_path, "outbox", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[:2] == ["pending: 0", "sent (kept for OUTBOX_RETENTION): 2"]


def test_outbox_failed_lists_shows_and_requeues_the_parked_rows(tmp_path: Path) -> None:
    assert _core(tmp_path, "outbox", "relay", "--once", WRITE_EVENTS="1").returncode == 0
    assert _core(tmp_path, "outbox", "failed").stdout.strip() == "No failed outbox rows."
    # As the relay leaves rows the broker kept refusing.
    with sqlite3.connect(tmp_path / "app.db") as connection:
        connection.execute(
            "UPDATE core_outbox SET status = 'failed', attempts = 10, sent_at = NULL, "
            "last_error = 'BrokerUnavailableError: message too large'"
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM core_outbox ORDER BY id")]

    listed = _core(tmp_path, "outbox", "failed")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "EVENT", "TOPIC", "KEY", "ATTEMPTS", "LAST", "ERROR"]
    assert [row.split()[:5] for row in rows] == [[str(i), "note", "notes", "-", "10"] for i in ids]
    assert rows[0].endswith("BrokerUnavailableError: message too large")
    status = _core(tmp_path, "outbox", "status")
    assert "failed: 2 (`core outbox failed` lists them)" in status.stdout

    shown = _core(tmp_path, "outbox", "show", str(ids[0]))
    assert shown.returncode == 0, shown.stderr
    assert "status:          failed" in shown.stdout
    assert '"name": "note"' in shown.stdout
    missing = _core(tmp_path, "outbox", "show", "999")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: No outbox row has id 999.")

    requeued = _core(tmp_path, "outbox", "requeue", str(ids[0]))
    assert requeued.stdout.strip() == "Requeued 1 row.", requeued.stderr
    assert _core(tmp_path, "outbox", "requeue", "--all").stdout.strip() == "Requeued 1 row."
    relayed = _core(tmp_path, "outbox", "relay", "--once")
    assert relayed.stdout.strip() == "Relayed 2 events."
    with sqlite3.connect(tmp_path / "app.db") as connection:
        assert [r[0] for r in connection.execute("SELECT status FROM core_outbox")] == ["sent"] * 2
