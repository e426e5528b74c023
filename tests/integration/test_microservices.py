"""The spec's two microservices end to end: examples/microservices run as a user runs them.

Each service gets its own scratch PostgreSQL database, migrated with `core migrate`; both APIs
(`core run`) and both workers (`core consumer`) run as separate processes on loopback, sharing a
Kafka-protocol broker and a SECRET_KEY. Then the spec's "Fluxo":

1. `POST /api/v1/users/register/` on the user API emits `user.created`;
2. the order worker creates the user's welcome order;
3. `POST /api/v1/orders/create_order/` on the order API, with a token the user API issued,
   emits `order.created`;
4. the user worker increments the user's `order_count`;

and the "Comunicacao Sincrona": `GET /api/v1/orders/{id}/with_user/` calls the user API over
httpx with the caller's token. Every wait polls with a deadline; a failure prints every
process's log.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import pytest
import yaml

from core.auth import configure_auth, create_access_token
from core.settings import Settings
from core.testing import isolated_declarations
from tests.migration_roundtrip import core_command
from tests.services import create_database, drop_database, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "microservices"
USER_API = EXAMPLE / "user-api"
ORDER_API = EXAMPLE / "order-api"
WITHIN = 40.0  # seconds any one step may take: consumers join their Kafka groups in a few
PASSWORD = "s3cret-pass-123"
USER_WORKER = "consumer --group user-service --topic order-events"
ORDER_WORKER = "consumer --group order-service --topic user-events"

T = TypeVar("T")


@dataclass
class Process:
    """One long-running `core` command of the example, its output captured in a log file."""

    name: str
    args: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    _out: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(
            [*core_command(), *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def check_running(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with status {self.popen.returncode}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self._out is not None:
            self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    """Start the processes; stop them all on the way out, printing their logs on failure."""
    try:
        for process in processes:
            process.start()
        yield processes
    except BaseException:
        for process in processes:
            process.stop()
            print(f"\n===== {process.name} ({' '.join(process.args)}) =====\n{process.output()}")
        raise
    finally:
        for process in processes:
            process.stop()


async def core(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Run one `core` command to completion in a service's folder; its output, or a failure."""
    process = await asyncio.create_subprocess_exec(
        *core_command(),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=WITHIN)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"core {' '.join(args)} in {cwd.name} timed out") from None
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"core {' '.join(args)} in {cwd.name} failed:\n{text}"
    return text


async def eventually(
    what: str,
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    processes: list[Process],
) -> T:
    """Poll `probe` until `until` accepts what it returns: no fixed sleeps, a deadline, and a
    fast failure when one of the processes died."""
    deadline = time.monotonic() + WITHIN
    last: Any = None
    while True:
        for process in processes:
            process.check_running()
        try:
            last = await probe()
        except httpx.TransportError as exc:  # a server still starting
            last = exc
        else:
            if until(last):
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WITHIN:.0f}s; last seen: {last!r}")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def scratch_databases(postgres_url: str) -> AsyncIterator[tuple[str, str]]:
    """One fresh database per service, dropped afterwards."""
    users, orders = await asyncio.gather(
        create_database(postgres_url, "ms_users"), create_database(postgres_url, "ms_orders")
    )
    try:
        yield users, orders
    finally:
        await asyncio.gather(
            drop_database(postgres_url, users), drop_database(postgres_url, orders)
        )


def service_env(database_url: str, kafka_url: str, secret: str, **extra: str) -> dict[str, str]:
    """What a service's `.env` holds (see .env.example), as environment variables."""
    # No setting of this process's environment leaks into the services.
    settings = {name.upper() for name in Settings.model_fields}
    return {
        **{name: value for name, value in os.environ.items() if name.upper() not in settings},
        "PYTHONUNBUFFERED": "1",
        "ENVIRONMENT": "development",
        "SECRET_KEY": secret,
        "DATABASE_URL": database_url,
        "MESSAGE_BROKER": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_url,
        "CONSUMER_RETRY_BACKOFF": "0.2",
        **extra,
    }


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.timeout(120)
async def test_the_spec_flow_across_two_services(
    tmp_path: Path, postgres_url: str, kafka_url: str
) -> None:
    secret = f"microservices-test-{uuid.uuid4().hex}"
    async with scratch_databases(postgres_url) as (users_db, orders_db):
        user_port, order_port = free_port(), free_port()
        user_api = f"http://127.0.0.1:{user_port}"
        order_api = f"http://127.0.0.1:{order_port}"
        user_env = service_env(users_db, kafka_url, secret, APP_NAME="User API")
        order_env = service_env(
            orders_db, kafka_url, secret, APP_NAME="Order API", USER_API_URL=user_api
        )

        # What the README tells users: migrate each service's own database.
        migrated = await asyncio.gather(
            core(USER_API, user_env, "migrate"), core(ORDER_API, order_env, "migrate")
        )
        assert all("Applied" in out for out in migrated), migrated

        def process(name: str, cwd: Path, env: dict[str, str], command: str) -> Process:
            return Process(name, command.split(), cwd, env, tmp_path / f"{name}.log")

        # The commands of the README (and of the spec's docker-compose files).
        processes = [
            process("user-api", USER_API, user_env, f"run --port {user_port}"),
            process("user-worker", USER_API, user_env, USER_WORKER),
            process("order-api", ORDER_API, order_env, f"run --port {order_port}"),
            process("order-worker", ORDER_API, order_env, ORDER_WORKER),
        ]
        with running(processes):
            async with httpx.AsyncClient(timeout=10) as http:
                await _spec_flow(http, user_api, order_api, secret, processes)


async def _spec_flow(
    http: httpx.AsyncClient, user_api: str, order_api: str, secret: str, processes: list[Process]
) -> None:
    def answering(response: httpx.Response) -> bool:
        return response.status_code == 200

    for url in (f"{user_api}/openapi.json", f"{order_api}/openapi.json"):
        await eventually(url, functools.partial(http.get, url), answering, processes)

    # 1. Register on the user API: `user.created` goes out through its outbox.
    email = f"ann-{uuid.uuid4().hex[:8]}@example.com"
    registered = await http.post(
        f"{user_api}/api/v1/users/register/", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 200, registered.text
    user = registered.json()
    assert user == {"id": user["id"], "email": email, "order_count": 0}

    # Log in on the user API; the order API trusts its tokens (same SECRET_KEY, no user table).
    login = await http.post(
        f"{user_api}/api/v1/auth/login/", json={"email": email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}

    # 2. The order worker consumed `user.created`: the user's welcome order exists.
    async def welcome_orders() -> list[dict[str, Any]]:
        response = await http.get(
            f"{order_api}/api/v1/orders/",
            params={"user_id": user["id"], "status": "welcome"},
            headers=bearer,
        )
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    welcome = await eventually("the welcome order", welcome_orders, bool, processes)
    assert [(o["user_id"], o["total"], o["status"]) for o in welcome] == [
        (user["id"], 0.0, "welcome")
    ]

    # 3. Create an order as the logged-in user: `order.created` goes out.
    anonymous = await http.post(f"{order_api}/api/v1/orders/create_order/", json={"total": 1})
    assert anonymous.status_code == 401, anonymous.text
    created = await http.post(
        f"{order_api}/api/v1/orders/create_order/", json={"total": 42.5}, headers=bearer
    )
    assert created.status_code == 200, created.text
    order = created.json()
    assert order == {"id": order["id"], "user_id": user["id"], "total": 42.5, "status": "pending"}

    # 4. The user worker consumed `order.created`: the user's order_count went up.
    async def the_user() -> dict[str, Any]:
        response = await http.get(f"{user_api}/api/v1/users/{user['id']}/", headers=bearer)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    await eventually(
        "order_count incremented", the_user, lambda u: u["order_count"] == 1, processes
    )

    # Synchronous call: the order API fetches the user from the user API with the caller's
    # token, here one minted by `create_access_token` wherever SECRET_KEY is known.
    with isolated_declarations():
        configure_auth(secret_key=secret)
        minted = create_access_token(user_id=user["id"], extra_claims={"email": email})
    combined = await http.get(
        f"{order_api}/api/v1/orders/{order['id']}/with_user/",
        headers={"Authorization": f"Bearer {minted}"},
    )
    assert combined.status_code == 200, combined.text
    assert combined.json() == {
        **order,
        "user": {"id": user["id"], "email": email, "order_count": 1},
    }


def test_the_docs_and_compose_files_match_the_example() -> None:
    """What docs/microservices.md shows and what the Compose files run is what this test runs."""
    page = (EXAMPLE.parents[1] / "docs" / "microservices.md").read_text()
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", page, flags=re.MULTILINE | re.DOTALL)
    compose = yaml.safe_load((USER_API / "docker-compose.yml").read_text())
    assert [yaml.safe_load(code) for lang, code in blocks if lang == "yaml"] == [compose]
    [dotenv] = [code for lang, code in blocks if lang == "dotenv"]
    assert dotenv.splitlines() == _settings_lines(USER_API / ".env.example")

    for folder, command in ((USER_API, USER_WORKER), (ORDER_API, ORDER_WORKER)):
        services = yaml.safe_load((folder / "docker-compose.yml").read_text())["services"]
        workers = [s for s in services.values() if "command" in s]
        assert [w["command"] for w in workers] == [f"core {command}"]

    # The order API accepts the user API's tokens only when both hold the same key.
    [user_key] = [line for line in _settings_lines(USER_API / ".env.example") if "SECRET" in line]
    assert user_key in _settings_lines(ORDER_API / ".env.example")


def _settings_lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]
