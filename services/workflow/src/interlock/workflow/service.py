"""The workflow service's use cases: definitions, run starts, run control, reads.

Each public method is one request's work: read or decide with the domain, then commit
state and outgoing events together (transactional outbox). The REST adapter
(:mod:`interlock.workflow.api`) only translates HTTP to these calls and back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cachetools import LRUCache

from interlock.common import inbox, outbox, topics
from interlock.common.events import Event
from interlock.common.identity import Principal
from interlock.common.paging import Page, PageKey
from interlock.common.scheduler_state import SchedulerTask
from interlock.common.tracing import start_run_trace
from interlock.events.v1 import definition_pb2, workflow_pb2
from interlock.workflow import metrics, store
from interlock.workflow.domain import (
    CompiledDefinition,
    ControlAction,
    IdempotencyConflictError,
    InvalidDefinitionError,
    InvalidDocumentError,
    InvalidInputError,
    Issue,
    PayloadTooLargeError,
    RunNotFoundError,
    RunState,
    RunStatus,
    TaskProgress,
    TasksUnavailableError,
    WaitingTask,
    WorkflowArchivedError,
    WorkflowError,
    WorkflowNotFoundError,
    after_control,
    after_outcome,
    canonical_json,
    check_input,
    compile_definition,
    input_validator,
    parse_document,
    task_progress,
)
from interlock.workflow.domain.batches import parse_batch, request_hash
from interlock.workflow.domain.documents import parse_json
from interlock.workflow.domain.limits import MAX_INPUT_BYTES

_WORKFLOWS_PAGE = PageKey("workflows", str)
"""Workflows sort by name."""
_VERSIONS_PAGE = PageKey("versions", int)
"""A workflow's versions sort oldest first, by number."""
_RUNS_PAGE = PageKey("runs", datetime, uuid.UUID)
"""Runs sort newest first, by creation time then id."""

COMPILING_AT_ONCE = 2
"""Definitions parsed and validated at the same time (on worker threads); more wait."""
PREPARED_CACHE_SIZE = 1024
"""Pinned versions kept parsed in memory (they never change)."""
LATEST_VERSION_HINTS = 10_000
"""Workflows whose latest version is remembered as a hint (the map is cleared when full)."""

RunTasks = Callable[[str, str], Awaitable[tuple[SchedulerTask, ...] | None]]
"""``(tenant, run id)`` → the run's tasks as the scheduler holds them, or ``None`` when it
does not know the run (yet). Raises :class:`TasksUnavailableError` when the scheduler
does not answer."""


@dataclass(frozen=True, kw_only=True)
class RunView:
    """A run and its tasks' progress (tasks in definition order)."""

    run: store.StoredRun
    tasks: list[tuple[str, TaskProgress]]
    tasks_unavailable: bool = False
    """The scheduler could not be asked for the tasks (a control's answer only):
    ``tasks`` is empty."""


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    """What became of one run of a batch start."""

    status: int
    """201 started; 200 an earlier request with its Idempotency-Key started it; 409 that
    key was used with another request; 422 the input fails the workflow's schema."""
    run: store.StoredRun | None = None
    """The run (201, 200)."""
    error: WorkflowError | None = None
    """Why it was refused (409, 422)."""


@dataclass(frozen=True, kw_only=True)
class _StartRequest:
    principal: Principal
    name: str
    run_input: Any
    input_json: str
    idempotency_key: str | None
    request_hash: str | None


@dataclass(frozen=True)
class _Prepared:
    definition: definition_pb2.WorkflowDefinition
    validator: Any
    task_ids: list[str]


class WorkflowService:
    """Definitions, runs and run control for every tenant.

    Args:
        pool: A callable returning the service's open ``asyncpg.Pool`` (the database
            opens after the service object is built).
        source: The CloudEvents source of the events it emits. Default: ``"workflow"``.
        run_tasks: Reads a run's tasks from the scheduler. Default: none (no
            credential to ask it with): reads that show tasks answer 503.
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        source: str = "workflow",
        run_tasks: RunTasks | None = None,
    ) -> None:
        self._pool = pool
        self._source = source
        self._run_tasks = run_tasks
        self._compiling = asyncio.Semaphore(COMPILING_AT_ONCE)
        self._prepared: LRUCache[tuple[str, str, int], _Prepared] = LRUCache(PREPARED_CACHE_SIZE)
        # The latest version each workflow had when this process last started a run of
        # it: a hint the run insert verifies, saving a read per start.
        self._latest_versions: dict[tuple[str, str], int] = {}

    def _acquire(self) -> Any:
        return self._pool().acquire()

    # Definitions ---------------------------------------------------------------

    async def create_definition(
        self, principal: Principal, body: bytes, content_type: str | None
    ) -> store.StoredVersion:
        """Create a workflow from a YAML/JSON document (its version 1)."""
        compiled = await self._compile(body, content_type)
        async with self._acquire() as conn, conn.transaction():
            return await store.create_workflow(conn, principal.tenant, compiled, principal.subject)

    async def put_definition(
        self, principal: Principal, name: str, body: bytes, content_type: str | None
    ) -> tuple[store.StoredVersion, bool]:
        """Add a version when the document changed; returns it and whether it is new."""
        compiled = await self._compile(body, content_type)
        _require_same_name(compiled, name)
        async with self._acquire() as conn, conn.transaction():
            return await store.put_workflow(conn, principal.tenant, compiled, principal.subject)

    async def _compile(self, body: bytes, content_type: str | None) -> CompiledDefinition:
        """Parse and validate a definition on a worker thread, a few at a time.

        Parsing and validating a 1 MiB document takes a CPU for a while; on the event
        loop it would hold every other request (health checks included) meanwhile.
        """
        async with self._compiling:
            return await asyncio.to_thread(
                lambda: compile_definition(parse_document(body, content_type))
            )

    async def get_definition(
        self, principal: Principal, name: str, version: int | None = None
    ) -> store.StoredVersion:
        """The latest (or a given) version of a workflow."""
        async with self._acquire() as conn:
            found = await store.get_version(conn, principal.tenant, name, version)
        if found is None:
            what = f"version {version} of workflow" if version else "workflow"
            raise WorkflowNotFoundError(f"no {what} {name!r}")
        return found

    async def list_versions(
        self, principal: Principal, name: str, *, page_size: int, page_token: str | None
    ) -> Page[store.StoredVersion]:
        """A workflow's versions, oldest first, one page.

        Raises:
            WorkflowNotFoundError: The tenant has no such workflow.
            InvalidPageTokenError: ``page_token`` was not issued for this workflow's list.
        """
        filters = {"name": name}
        (after,) = _VERSIONS_PAGE.decode(page_token, filters) if page_token else (0,)
        async with self._acquire() as conn:
            rows = await store.list_versions(
                conn, principal.tenant, name, after_version=after, limit=page_size + 1
            )
        if not rows and page_token is None:  # every workflow has a version 1
            raise WorkflowNotFoundError(f"no workflow {name!r}")
        return _VERSIONS_PAGE.page(rows, page_size, lambda row: (row.version,), filters)

    async def archive_definition(self, principal: Principal, name: str) -> None:
        """Archive a workflow: hidden from lists, no new runs; its history stays."""
        async with self._acquire() as conn:
            if not await store.archive_workflow(conn, principal.tenant, name):
                raise WorkflowNotFoundError(f"no workflow {name!r}")

    async def list_definitions(
        self,
        principal: Principal,
        *,
        name_prefix: str | None,
        labels: dict[str, str],
        include_archived: bool,
        page_size: int,
        page_token: str | None,
    ) -> Page[store.StoredVersion]:
        """Latest versions of the tenant's workflows, by name, one page."""
        filters = {"prefix": name_prefix, "labels": labels, "archived": include_archived}
        after = None
        if page_token:
            (after,) = _WORKFLOWS_PAGE.decode(page_token, filters)
        async with self._acquire() as conn:
            rows = await store.list_workflows(
                conn,
                principal.tenant,
                name_prefix=name_prefix,
                labels=labels,
                include_archived=include_archived,
                after_name=after,
                limit=page_size + 1,
            )
        return _WORKFLOWS_PAGE.page(rows, page_size, lambda row: [row.name], filters)

    # Runs ----------------------------------------------------------------------

    async def start_run(
        self, principal: Principal, name: str, body: bytes, idempotency_key: str | None
    ) -> tuple[RunView, bool]:
        """Start a run of a workflow's latest version, committing it with workflow.started.

        Returns:
            The run and whether this call created it (``False``: an earlier request
            with the same Idempotency-Key and body created it).

        Raises:
            IdempotencyConflictError: The key was used with another request.
        """
        run_input = _run_input(body)
        input_json = canonical_json(run_input)
        request = _StartRequest(
            principal=principal,
            name=name,
            run_input=run_input,
            input_json=input_json,
            idempotency_key=idempotency_key,
            request_hash=request_hash(name, run_input) if idempotency_key else None,
        )
        key = (principal.tenant, name)
        async with self._acquire() as conn:
            hint = self._latest_versions.get(key)
            if hint is not None:
                try:
                    started = await self._start_version(conn, request, hint)
                except InvalidInputError:
                    started = None  # maybe judged by an outdated schema: check the latest
                if started is not None:
                    return started
                self._latest_versions.pop(key, None)
            return await self._start_latest(conn, request)

    async def start_runs(self, principal: Principal, name: str, body: bytes) -> list[BatchOutcome]:
        """Start many runs of a workflow's latest version in one transaction.

        Each run is judged on its own (input schema, Idempotency-Key) and gets its own
        outcome, in request order; the request as a whole fails only when it is
        malformed or the workflow cannot start runs.
        """
        tenant = principal.tenant
        requests = [
            _StartRequest(
                principal=principal,
                name=name,
                run_input=item.run_input,
                input_json=item.input_json,
                idempotency_key=item.idempotency_key,
                request_hash=request_hash(name, item.run_input) if item.idempotency_key else None,
            )
            for item in parse_batch(body)
        ]
        async with self._acquire() as conn, conn.transaction():
            version = await self._locked_latest_version(conn, tenant, name)
            prepared = await self._prepare(conn, tenant, name, version)
            refused = _refused_inputs(prepared, requests)
            new_runs = _new_batch_runs(requests, refused)
            created = await store.insert_runs(
                conn,
                tenant=tenant,
                workflow=name,
                version=version,
                created_by=principal.subject,
                runs=list(new_runs.values()),
            )
            await outbox.enqueue(
                conn,
                [
                    self._started_event(
                        tenant,
                        run.id,
                        prepared,
                        run_input_json=run.input_json,
                        idempotency_key=run.idempotency_key,
                        own_trace=True,
                    )
                    for run in new_runs.values()
                    if run.id in created
                ],
            )
            keys = {
                request.idempotency_key
                for index, request in enumerate(requests)
                if request.idempotency_key
                and index not in refused
                and (index not in new_runs or new_runs[index].id not in created)
            }
            earlier = await store.runs_by_idempotency_keys(conn, tenant, list(keys))
        outcomes: list[BatchOutcome] = []
        for index, request in enumerate(requests):
            if index in refused:
                outcomes.append(BatchOutcome(status=422, error=refused[index]))
            elif index in new_runs and new_runs[index].id in created:
                run_id = new_runs[index].id
                view = self._new_run(request, run_id, version, prepared, created[run_id])
                outcomes.append(BatchOutcome(status=201, run=view.run))
            else:
                outcome = _earlier_outcome(request, earlier)
                if outcome.run is not None:
                    metrics.IDEMPOTENT_REPLAYS.inc()
                outcomes.append(outcome)
        return outcomes

    async def _start_version(
        self, conn: asyncpg.Connection, request: _StartRequest, version: int
    ) -> tuple[RunView, bool] | None:
        """Start a run of ``version`` (a hint) in one statement, outside a transaction.

        Returns:
            The new run; ``None`` when nothing was written: ``version`` is no longer the
            latest startable one, or the Idempotency-Key was used before
            (:meth:`_start_latest` tells which).
        """
        prepared = await self._prepare(conn, request.principal.tenant, request.name, version)
        check_input(prepared.validator, request.run_input)
        run_id = uuid.uuid4()
        created_at = await self._insert_run(conn, request, run_id, version, prepared)
        if created_at is None:
            return None
        return self._new_run(request, run_id, version, prepared, created_at), True

    async def _start_latest(
        self, conn: asyncpg.Connection, request: _StartRequest
    ) -> tuple[RunView, bool]:
        """Start a run of the latest version, locked, or return the Idempotency-Key's run.

        Raises:
            IdempotencyConflictError: The key was used with another request.
            TasksUnavailableError: The key's run cannot be shown: the scheduler, which
                holds its tasks, did not answer.
        """
        tenant = request.principal.tenant
        async with conn.transaction():
            version = await self._locked_latest_version(conn, tenant, request.name)
            prepared = await self._prepare(conn, tenant, request.name, version)
            check_input(prepared.validator, request.run_input)
            run_id = uuid.uuid4()
            created_at = await self._insert_run(conn, request, run_id, version, prepared)
            existing = None if created_at else await self._existing_run(conn, request)
        if existing is not None:
            metrics.IDEMPOTENT_REPLAYS.inc()
            # Shown as a read shows it, once the transaction (and its lock) is over.
            waits = await store.task_waits(conn, existing.id)
            return await self._view(tenant, existing, waits), False
        assert created_at is not None
        return self._new_run(request, run_id, version, prepared, created_at), True

    async def _existing_run(
        self, conn: asyncpg.Connection, request: _StartRequest
    ) -> store.StoredRun:
        """The run an earlier request with this Idempotency-Key started.

        Called when the locked, startable version still refused the insert: only the
        key's run can be in the way.

        Raises:
            IdempotencyConflictError: The key was used with another request.
        """
        tenant, key = request.principal.tenant, request.idempotency_key
        existing = None if key is None else await store.run_by_idempotency_key(conn, tenant, key)
        if existing is None:
            raise RuntimeError("a startable version refused a run without a key conflict")
        if existing.request_hash != request.request_hash:
            raise IdempotencyConflictError("this Idempotency-Key was used with another request")
        return existing

    async def _insert_run(
        self,
        conn: asyncpg.Connection,
        request: _StartRequest,
        run_id: uuid.UUID,
        version: int,
        prepared: _Prepared,
    ) -> datetime | None:
        tenant = request.principal.tenant
        started = self._started_event(
            tenant,
            run_id,
            prepared,
            run_input_json=request.input_json,
            idempotency_key=request.idempotency_key,
        )
        return await store.insert_run(
            conn,
            run_id=run_id,
            tenant=tenant,
            workflow=request.name,
            version=version,
            input_json=request.input_json,
            idempotency_key=request.idempotency_key,
            request_hash=request.request_hash,
            created_by=request.principal.subject,
            events=[started],
        )

    def _new_run(
        self,
        request: _StartRequest,
        run_id: uuid.UUID,
        version: int,
        prepared: _Prepared,
        created_at: datetime,
    ) -> RunView:
        metrics.RUNS_STARTED.inc()
        key = (request.principal.tenant, request.name)
        if len(self._latest_versions) >= LATEST_VERSION_HINTS:
            self._latest_versions.clear()
        self._latest_versions[key] = version
        run = store.StoredRun(
            id=run_id,
            workflow=request.name,
            version=version,
            status=RunStatus.PENDING,
            input=request.run_input,
            idempotency_key=request.idempotency_key,
            request_hash=request.request_hash,
            created_at=created_at,
            updated_at=created_at,
            finished_at=None,
            task_ids=prepared.task_ids,
        )
        return RunView(run=run, tasks=[(t, TaskProgress()) for t in prepared.task_ids])

    async def _locked_latest_version(self, conn: asyncpg.Connection, tenant: str, name: str) -> int:
        latest = await store.lock_latest_version(conn, tenant, name)
        if latest is None:
            raise WorkflowNotFoundError(f"no workflow {name!r}")
        version, archived = latest
        if archived:
            raise WorkflowArchivedError(f"workflow {name!r} is archived")
        return version

    def _started_event(
        self,
        tenant: str,
        run_id: uuid.UUID,
        prepared: _Prepared,
        *,
        run_input_json: str,
        idempotency_key: str | None,
        own_trace: bool = False,
    ) -> Event[workflow_pb2.WorkflowStarted]:
        started = workflow_pb2.WorkflowStarted(
            workflow_name=prepared.definition.name,
            workflow_version=prepared.definition.version,
            definition=prepared.definition,
            input_json=run_input_json.encode(),
            idempotency_key=idempotency_key or "",
        )
        traceparent = start_run_trace(
            run_id=str(run_id), tenant=tenant, workflow=started.workflow_name, own_trace=own_trace
        )
        return Event(
            type=topics.WORKFLOW_STARTED,
            payload=started,
            tenant=tenant,
            run_id=str(run_id),
            source=self._source,
            id=started_event_id(run_id),
            traceparent=traceparent,
        )

    async def republish_stalled_starts(
        self, *, grace_s: float, max_republishes: int, batch_size: int
    ) -> int:
        """Publish workflow.started again for runs still pending after ``grace_s``.

        Kafka may lose what it held (the local broker keeps nothing across restarts);
        PostgreSQL is the truth. A run is still ``pending`` until the first event about
        one of its tasks arrives, so its start may never have reached the scheduler.
        The event keeps its id (:func:`started_event_id`) and the scheduler ignores a
        start for a run it already holds, so a needless re-publish changes nothing.

        Returns:
            How many runs were re-published.
        """
        async with self._acquire() as conn, conn.transaction():
            stalled = await store.claim_stalled_starts(
                conn, grace_s=grace_s, max_republishes=max_republishes, limit=batch_size
            )
            events = [
                self._started_event(
                    run.tenant,
                    run.id,
                    await self._prepare(conn, run.tenant, run.workflow, run.version),
                    run_input_json=run.input_json,
                    idempotency_key=run.idempotency_key,
                    own_trace=True,
                )
                for run in stalled
            ]
            await outbox.enqueue(conn, events)
        return len(events)

    async def claim_quiet_runs(self, *, quiet_s: float, limit: int) -> list[tuple[str, uuid.UUID]]:
        """Unfinished runs whose status may lack lost events (:func:`store.claim_quiet_runs`)."""
        async with self._acquire() as conn, conn.transaction():
            return await store.claim_quiet_runs(conn, quiet_s=quiet_s, limit=limit)

    async def fold_scheduler_status(
        self, tenant: str, run_id: uuid.UUID, *, status: RunStatus, ended_at: datetime | None
    ) -> bool:
        """Bring a run's status to the scheduler's, as its lost run events would have.

        A run the scheduler ended since the run last changed here ends; a pending one it
        runs, runs; a running one it runs stops waiting. An end older than the run's
        last change is no news: a retry reopened the run since, and the scheduler holds
        it failed until it takes the retry in (or a slot frees for it).

        Returns:
            Whether the run changed.
        """
        async with self._acquire() as conn, conn.transaction():
            locked = await store.lock_run(conn, tenant, run_id)
            if locked is None:
                return False
            state, changed_at = locked
            after = state
            if status.finished and ended_at is not None and ended_at > changed_at:
                ended = after_outcome(state.status, status)
                if ended is not state.status:
                    after = RunState(ended, ended_at, None, state.event_at)
            elif status is RunStatus.RUNNING and state.status in (
                RunStatus.PENDING,
                RunStatus.RUNNING,
            ):
                # Its workflow.running was lost: it runs, and waits for no slot.
                after = RunState(RunStatus.RUNNING, None, None, state.event_at)
            if after == state:
                return False
            await store.save_runs(conn, {run_id: after})
        return True

    async def prune_inbox(self, *, older_than_s: float) -> int:
        """Forget projection event ids older than any redelivery; returns how many."""
        async with self._acquire() as conn:
            return await inbox.prune(conn, older_than=timedelta(seconds=older_than_s))

    async def _prepare(
        self, conn: asyncpg.Connection, tenant: str, name: str, version: int
    ) -> _Prepared:
        key = (tenant, name, version)
        prepared = self._prepared.get(key)
        if prepared is not None:
            return prepared
        data, schema = await store.version_definition(conn, tenant, name, version)
        definition = definition_pb2.WorkflowDefinition.FromString(data)
        prepared = _Prepared(
            definition=definition,
            validator=input_validator(schema),
            task_ids=[task.id for task in definition.tasks],
        )
        self._prepared[key] = prepared
        return prepared

    async def get_run(self, principal: Principal, run_id: str) -> RunView:
        """A run of the caller's tenant with its tasks, as the scheduler holds them.

        Raises:
            RunNotFoundError: No such run for the caller's tenant.
            TasksUnavailableError: The scheduler did not answer.
        """
        parsed = _run_uuid(run_id)
        async with self._acquire() as conn:
            run = await store.get_run(conn, principal.tenant, parsed)
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            waits = await store.task_waits(conn, parsed)
        return await self._view(principal.tenant, run, waits)

    async def _view(
        self, tenant: str, run: store.StoredRun, waits: dict[str, WaitingTask]
    ) -> RunView:
        """``run`` with its tasks from the scheduler, in definition order.

        A run the scheduler does not know yet (its start is on its way, or it waits for
        a concurrency slot) shows every task pending.

        Raises:
            TasksUnavailableError: The scheduler did not answer, or cannot be asked.
        """
        if self._run_tasks is None:
            raise TasksUnavailableError("no service credential to ask the scheduler with")
        held = {task.task_id: task for task in await self._run_tasks(tenant, str(run.id)) or ()}
        tasks = [
            (task_id, task_progress(held[task_id], waits.get(task_id)))
            if task_id in held
            else (task_id, TaskProgress())
            for task_id in run.task_ids
        ]
        return RunView(run=run, tasks=tasks)

    async def list_runs(
        self,
        principal: Principal,
        *,
        workflow: str | None,
        status: RunStatus | None,
        created_after: datetime | None,
        created_before: datetime | None,
        page_size: int,
        page_token: str | None,
    ) -> Page[store.StoredRun]:
        """The tenant's runs, newest first, one page (without task details)."""
        filters = {
            "workflow": workflow,
            "status": status,
            "after": created_after.isoformat() if created_after else None,
            "before": created_before.isoformat() if created_before else None,
        }
        before = None
        if page_token:
            created_at, run_id = _RUNS_PAGE.decode(page_token, filters)
            before = (created_at, run_id)
        async with self._acquire() as conn:
            rows = await store.list_runs(
                conn,
                principal.tenant,
                workflow=workflow,
                status=status.value if status else None,
                created_after=created_after,
                created_before=created_before,
                before=before,
                limit=page_size + 1,
            )
        return _RUNS_PAGE.page(rows, page_size, lambda row: [row.created_at, row.id], filters)

    async def control_run(
        self, principal: Principal, run_id: str, action: ControlAction, reason: str
    ) -> RunView:
        """Cancel, pause, resume or retry a run: new status and workflow.control together.

        Raises:
            RunNotFoundError: No such run for the caller's tenant.
            TransitionNotAllowedError: The run's status does not allow ``action``.
        """
        parsed = _run_uuid(run_id)
        async with self._acquire() as conn, conn.transaction():
            run = await store.get_run(conn, principal.tenant, parsed, lock=True)
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            status = after_control(run.status, action)
            now = datetime.now(UTC)
            finished_at = now if status.finished else None
            # A retry reopens a failed run: its failure, should the event arrive only
            # now, must not end it again.
            reopened_at = now if action is ControlAction.RETRY else None
            await store.set_run_status(conn, parsed, status, finished_at, reopened_at=reopened_at)
            control = workflow_pb2.RunControl(
                action=action.message, reason=reason, requested_by=principal.subject
            )
            await outbox.enqueue(
                conn,
                [
                    Event(
                        type=topics.WORKFLOW_CONTROL,
                        payload=control,
                        tenant=principal.tenant,
                        run_id=str(parsed),
                        source=self._source,
                    )
                ],
            )
            waits = await store.task_waits(conn, parsed)
        metrics.CONTROL_ACTIONS.labels(action.value).inc()
        updated = replace(run, status=status, finished_at=finished_at)
        try:
            return await self._view(principal.tenant, updated, waits)
        except TasksUnavailableError:
            # The control is committed: answer it, saying the tasks could not be read.
            return RunView(run=updated, tasks=[], tasks_unavailable=True)


def started_event_id(run_id: uuid.UUID) -> str:
    """The id of a run's workflow.started event: the same every time it is published."""
    return str(uuid.uuid5(run_id, "workflow.started"))


def _require_same_name(compiled: CompiledDefinition, name: str) -> None:
    if compiled.name != name:
        raise InvalidDefinitionError(
            [Issue("/name", f"the definition is named {compiled.name!r}, the URL {name!r}")]
        )


def _run_input(body: bytes) -> Any:
    if len(body) > MAX_INPUT_BYTES:
        raise PayloadTooLargeError(
            f"the request has {len(body)} bytes; at most {MAX_INPUT_BYTES} are accepted"
        )
    if not body.strip():
        return {}
    request = parse_json(body, what="the request body")
    if not isinstance(request, dict) or set(request) - {"input"}:
        raise InvalidDocumentError('the request body is {"input": <JSON value>}')
    return request.get("input", {})


def _refused_inputs(
    prepared: _Prepared, requests: list[_StartRequest]
) -> dict[int, InvalidInputError]:
    """The batch's runs whose input fails the schema, by index."""
    refused: dict[int, InvalidInputError] = {}
    for index, request in enumerate(requests):
        try:
            check_input(prepared.validator, request.run_input)
        except InvalidInputError as error:
            refused[index] = error
    return refused


def _new_batch_runs(
    requests: list[_StartRequest], refused: dict[int, InvalidInputError]
) -> dict[int, store.NewRun]:
    """The runs to insert, by index: each accepted one, but only the first of a key."""
    seen_keys: set[str] = set()
    runs: dict[int, store.NewRun] = {}
    for index, request in enumerate(requests):
        key = request.idempotency_key
        if index in refused or (key is not None and key in seen_keys):
            continue
        if key is not None:
            seen_keys.add(key)
        runs[index] = store.NewRun(
            id=uuid.uuid4(),
            input_json=request.input_json,
            idempotency_key=key,
            request_hash=request.request_hash,
        )
    return runs


def _earlier_outcome(request: _StartRequest, earlier: dict[str, store.StoredRun]) -> BatchOutcome:
    """A keyed run the insert skipped: the key's run if the request matches, else 409."""
    key = request.idempotency_key
    run = earlier.get(key) if key else None
    if run is None:
        raise RuntimeError("a batch run was neither inserted nor found by its key")
    if run.request_hash != request.request_hash:
        error = IdempotencyConflictError("this Idempotency-Key was used with another request")
        return BatchOutcome(status=409, error=error)
    return BatchOutcome(status=200, run=run)


def _run_uuid(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(run_id)
    except ValueError as error:
        raise RunNotFoundError(f"no run {run_id!r}") from error
