"""Interlock as a user reaches it: the gateway's REST API over HTTP keep-alive.

The client is aiohttp: its C parser keeps the load generator's own CPU time, which this
machine's two cores share with the platform, a fraction of httpx's.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
"""Run statuses that do not change any more."""
LIST_PAGE_SIZE = 500
"""Rows per page when listing runs (the API's maximum)."""
RETRY_STATUSES = frozenset({429, 502, 503})
"""Answers worth retrying after a short pause (rate limit, upstream briefly away)."""


class InterlockError(RuntimeError):
    """The platform answered something the benchmark cannot go on with."""


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp of the API (``...Z``) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, kw_only=True)
class StartedRun:
    """A run the API accepted."""

    run_id: str
    created_at: datetime
    """The server's creation time."""
    latency_s: float
    """Time the start request took, as the client saw it."""


@dataclass(frozen=True)
class _Answer:
    method: str
    path: str
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class InterlockClient:
    """An authorized client of one Interlock gateway.

    Args:
        base_url: The gateway, e.g. ``http://127.0.0.1:8080``.
        max_connections: Kept-alive connections at most. Default: 128.
    """

    def __init__(self, base_url: str, *, max_connections: int = 128) -> None:
        self._base_url = base_url.rstrip("/")
        self._max_connections = max_connections
        self._headers: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self.retried = 0
        """Requests answered 429/502/503 and sent again."""

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use: aiohttp binds a session to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                base_url=self._base_url,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=30.0),
                trust_env=False,
            )
        return self._session

    async def aclose(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> _Answer:
        for attempt in range(5):
            async with self._http().request(
                method, path, json=json, params=params, headers=self._headers
            ) as response:
                answer = _Answer(method, path, response.status, await response.read())
            if answer.status not in RETRY_STATUSES or attempt == 4:
                return answer
            self.retried += 1
            await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _check(answer: _Answer, what: str) -> Any:
        if 200 <= answer.status < 300:
            return answer.json()
        raise InterlockError(
            f"{what}: {answer.method} {answer.path} answered "
            f"{answer.status}: {answer.body[:300].decode(errors='replace')}"
        )

    async def login(self, username: str, password: str, tenant: str) -> None:
        """Log in through the gateway; later requests carry the bearer token."""
        response = await self._request(
            "POST",
            "/api/v1/auth/login",
            json={"username": username, "password": password, "tenant": tenant},
        )
        body = self._check(response, "login")
        self._headers["authorization"] = f"Bearer {body['access_token']}"

    async def define(self, definition: dict[str, Any]) -> None:
        """Create the workflow, or add a version if one by that name exists."""
        response = await self._request("POST", "/api/v1/workflows", json=definition)
        if response.status == 409:
            response = await self._request(
                "PUT", f"/api/v1/workflows/{definition['name']}", json=definition
            )
        self._check(response, f"define workflow {definition['name']}")

    async def start_run(self, workflow: str, run_input: dict[str, Any] | None = None) -> StartedRun:
        """Start a run of the latest version of ``workflow``."""
        began = time.perf_counter()
        response = await self._request(
            "POST", f"/api/v1/workflows/{workflow}/runs", json={"input": run_input or {}}
        )
        latency = time.perf_counter() - began
        body = self._check(response, f"start a run of {workflow}")
        return StartedRun(
            run_id=body["run_id"], created_at=parse_time(body["created_at"]), latency_s=latency
        )

    async def start_batch(self, workflow: str, count: int) -> int:
        """Start ``count`` runs of ``workflow`` in one batch request; returns how many started."""
        response = await self._request(
            "POST",
            f"/api/v1/workflows/{workflow}/runs:batch",
            json={"runs": [{"input": {}}] * count},
        )
        body = self._check(response, f"start a batch of {workflow}")
        return sum(1 for result in body["results"] if result["status"] == 201)

    async def list_runs(self, workflow: str, created_after: datetime) -> list[dict[str, Any]]:
        """Every run of ``workflow`` created at or after ``created_after`` (all pages)."""
        params: dict[str, Any] = {
            "workflow": workflow,
            "created_after": created_after.isoformat(),
            "page_size": LIST_PAGE_SIZE,
        }
        runs: list[dict[str, Any]] = []
        while True:
            body = self._check(await self._request("GET", "/api/v1/runs", params=params), "list")
            runs.extend(body["runs"])
            if not body.get("next_page_token"):
                return runs
            params["page_token"] = body["next_page_token"]

    async def fetch_text(self, url: str) -> str:
        """GET an absolute URL outside the gateway (a service's ``/metrics``) as text."""
        async with self._http().get(url) as response:
            response.raise_for_status()
            return await response.text()

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """One run with its tasks."""
        return dict(self._check(await self._request("GET", f"/api/v1/runs/{run_id}"), "get run"))


class RunWatcher:
    """Tells waiting callers when their runs finish, from one shared list poll.

    Each pass lists the workflow's runs created since the oldest run still
    awaited (so the page stays small however many runs finished before it).

    Args:
        client: The API client.
        workflow: The workflow whose runs are watched.
        interval_s: Pause between passes. Default: 0.05 s.
    """

    def __init__(self, client: InterlockClient, workflow: str, *, interval_s: float = 0.05) -> None:
        self._client = client
        self._workflow = workflow
        self._interval_s = interval_s
        self._waiting: dict[str, tuple[datetime, asyncio.Future[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self.passes = 0
        """List passes made."""

    def __enter__(self) -> RunWatcher:
        self._task = asyncio.create_task(self._poll_forever())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        for entry in self._waiting.values():
            entry[1].cancel()

    def watch(self, run: StartedRun) -> asyncio.Future[dict[str, Any]]:
        """A future resolved with the run's summary once its status is final."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self._error is not None:
            future.set_exception(self._error)
        else:
            self._waiting[run.run_id] = (run.created_at, future)
        return future

    async def _poll_forever(self) -> None:
        try:
            await self._poll()
        except Exception as error:
            # Every waiter learns why, instead of waiting forever.
            self._error = error
            for entry in self._waiting.values():
                if not entry[1].done():
                    entry[1].set_exception(error)
            self._waiting.clear()

    async def _poll(self) -> None:
        while True:
            if self._waiting:
                oldest = min(entry[0] for entry in self._waiting.values())
                for summary in await self._client.list_runs(self._workflow, oldest):
                    if summary["status"] in TERMINAL_STATUSES:
                        entry = self._waiting.pop(summary["run_id"], None)
                        if entry is not None and not entry[1].done():
                            entry[1].set_result(summary)
                self.passes += 1
            await asyncio.sleep(self._interval_s)
