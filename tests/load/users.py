"""The simulated users as locust runs them (importing this module patches the standard library for gevent).

Each user repeats actions of the mix with no think time (a closed loop) on its own keep-alive connection;
locust records every request under its route, and an answer that is neither 2xx nor an expected refusal is
one of its failures.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import count
from typing import Any, ClassVar

from locust import FastHttpUser, constant

from tests.load.traffic import ACTIONS, Shared, error_code, is_expected

REQUEST_TIMEOUT = 30.0


def programme_user(shared: Shared, shares: dict[str, int], seed: int) -> type[FastHttpUser]:
    """The user class of a run: its tasks are the mix's actions, weighted by their shares (percent)."""
    numbers = count()

    def task(action: Callable) -> Callable[[Any], None]:
        return lambda user: action(user.call, shared, user.rng)

    class ProgrammeUser(FastHttpUser):
        wait_time = constant(0)
        network_timeout = connection_timeout = REQUEST_TIMEOUT
        tasks: ClassVar[dict[Callable, int]] = {task(ACTIONS[name]): share for name, share in shares.items()}

        def on_start(self) -> None:
            self.rng = random.Random(seed * 1000 + next(numbers))

        def call(
            self,
            route: str,
            path: str,
            *,
            token: str | None = None,
            json: Any = None,
            params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None,
        ) -> tuple[int, Any]:
            method, name = route.split(" ", 1)
            all_headers = dict(headers or {})
            if token:
                all_headers["Authorization"] = f"Bearer {token}"
            with self.client.request(
                method, path, name=name, json=json, params=params, headers=all_headers, catch_response=True
            ) as response:
                status = response.status_code or 0  # 0: no answer (the connection failed)
                try:
                    body = response.json() if response.content else None
                except ValueError:
                    body = None
                code = error_code(status, body)
                if not 200 <= status < 300:
                    with shared.lock:
                        shared.refused[(route, status, code)] += 1
                if is_expected(route, status, code):
                    response.success()
                else:
                    response.failure(f"{status} {code}".rstrip() if status else f"no answer: {response.error}")
            return status, body

    return ProgrammeUser
