"""Open-loop login driver: POST /auth/login/ at a fixed rate, whatever the answers' latency.

Login ``i`` is sent at ``start_at + i / rate`` (asyncio sleep pacing; it does not wait for the
previous answer, so a stalled server meets the same arrival rate as a healthy one), with the
correct password of user ``i mod len(users)``. When the last answer is in, one JSON object goes
to stdout: per login its status, latency (ms), when it was sent (s after login 0's due time)
and how late (ms).

bench/auth/run.py starts it in its own process (pinned next to wrk), e.g.:
    .venv/bin/python bench/auth/login_driver.py --base http://127.0.0.1:8791 --rate 3.5 \
        --duration 12 --start-at 1767000000.0 --users u0@bench.io,u1@bench.io --password ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httpx


async def _login(
    client: httpx.AsyncClient, email: str, password: str, sent_s: float, lag_ms: float
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        response = await client.post("/auth/login/", json={"email": email, "password": password})
        status = response.status_code
        ok = status == 200 and "access_token" in response.json()
    except httpx.HTTPError as exc:
        status, ok = 0, False
        print(f"login error: {exc!r}", file=sys.stderr)
    return {
        "status": status,
        "ok": ok,
        "latency_ms": (time.perf_counter() - started) * 1000,
        "sent_s": sent_s,
        "lag_ms": lag_ms,
    }


async def drive(
    base: str, rate: float, duration: float, start_at: float, users: list[str], password: str
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        loop = asyncio.get_running_loop()
        # Wall-clock start shared with the runner, mapped onto the loop's monotonic clock.
        t0 = loop.time() + max(0.0, start_at - time.time())
        count = int(duration * rate)
        tasks: list[asyncio.Task[dict[str, Any]]] = []
        for i in range(count):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            sent_s = loop.time() - t0
            lag_ms = (sent_s - i / rate) * 1000
            email = users[i % len(users)]
            tasks.append(asyncio.create_task(_login(client, email, password, sent_s, lag_ms)))
        results = await asyncio.gather(*tasks)
        span = loop.time() - t0
    return {"rate": rate, "sent": count, "span_s": span, "logins": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", required=True, help="http://host:port of the app")
    parser.add_argument("--rate", type=float, required=True, help="logins per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of sending")
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() of login 0")
    parser.add_argument("--users", required=True, help="comma-separated emails")
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    result = asyncio.run(
        drive(
            args.base,
            args.rate,
            args.duration,
            args.start_at,
            args.users.split(","),
            args.password,
        )
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
