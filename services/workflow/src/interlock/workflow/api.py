"""REST routes of the workflow service (behind the gateway, which sets the caller).

``/api/v1/workflows`` (definitions, versions, run starts) and ``/api/v1/runs`` (reads
and control). Every route is tenant-scoped by :data:`CurrentPrincipal`; another
tenant's workflow or run answers 404. Timestamps are RFC 3339 UTC with milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from interlock.common.identity import CurrentPrincipal, require_principal
from interlock.common.paging import DEFAULT_PAGE_SIZE, PageSize, PageToken
from interlock.common.problems import (
    GATEWAY_PROBLEMS,
    Problem,
    ProblemDetails,
    problem_for,
    problem_responses,
)
from interlock.workflow import store
from interlock.workflow.domain import (
    DEFINITION_SCHEMA,
    ControlAction,
    InvalidDocumentError,
    RunStatus,
    TaskStatus,
)
from interlock.workflow.domain.limits import MAX_BATCH_RUNS, MAX_IDEMPOTENCY_KEY_LENGTH
from interlock.workflow.service import BatchOutcome, RunView, WorkflowService

DEFINITION_SCHEMA_NAME = "WorkflowDefinition"
"""Name of the definition's JSON Schema among the OpenAPI document's schemas."""

_DEFINITION_REF = {"$ref": f"#/components/schemas/{DEFINITION_SCHEMA_NAME}"}
_DEFINITION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": _DEFINITION_REF},
            "application/json": {"schema": _DEFINITION_REF},
        },
    }
}
_RUN_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"input": {}}},
            }
        }
    }
}

# The start route reads its path parameter and header itself (see _add_run_routes), so
# they are declared here, as FastAPI would have declared them.
_RUN_START = {
    "parameters": [
        {"in": "path", "name": "name", "required": True, "schema": {"type": "string"}},
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
            },
        },
    ],
    **_RUN_BODY,
}

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["runs"],
                    "additionalProperties": False,
                    "properties": {
                        "runs": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BATCH_RUNS,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "input": {},
                                    "idempotency_key": {
                                        "type": "string",
                                        "minLength": 1,
                                        "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                                    },
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}
MAX_VERSION = 2**31 - 1
"""Largest version number (the store's integer column): beyond it, 422 rather than 500."""


class WorkflowView(BaseModel):
    """One version of a workflow."""

    name: str
    version: int
    latest_version: int
    description: str
    labels: dict[str, str]
    content_hash: str = Field(description="SHA-256 of the canonical definition.")
    created_at: str = Field(description="When the workflow's first version was created.")
    version_created_at: str
    version_created_by: str
    archived: bool
    archived_at: str | None
    definition: dict[str, Any] = Field(description="The definition as it was submitted.")


class WorkflowList(BaseModel):
    """One page of workflows."""

    workflows: list[WorkflowView]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class VersionList(BaseModel):
    """One page of a workflow's versions, oldest first."""

    versions: list[WorkflowView]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class RunSummary(BaseModel):
    """A run without its tasks."""

    run_id: str
    workflow: str
    version: int
    status: RunStatus
    created_at: str
    finished_at: str | None
    status_reason: str | None = Field(
        default=None,
        description="Why the run waits for a concurrency slot: a pending one, a retried "
        "one (running), or a failed one whose dead letter was replayed (it stays failed "
        "until it gets its slot); absent otherwise.",
    )


class TaskView(BaseModel):
    """A task of a run, as the scheduler holds it."""

    id: str
    status: TaskStatus
    attempts: int
    scheduled_at: str | None
    started_at: str | None
    finished_at: str | None
    output: Any = Field(default=None, description="Only once the task succeeded.")
    error: dict[str, Any] | None = Field(
        default=None, description="The latest failure: `{type, message, retryable}`."
    )
    reason: str | None = Field(
        default=None,
        description="Why the task was skipped or cancelled, or why it waits, scheduled, "
        "while no worker takes tasks of its queue.",
    )


class RunDetail(RunSummary):
    """A run with its input and its tasks."""

    input: Any
    output: Any = Field(
        default=None,
        description="Once the run succeeded: its definition's `output` rendered, or the "
        "outputs of the tasks nothing depends on.",
    )
    tasks: list[TaskView]
    tasks_unavailable: bool | None = Field(
        default=None,
        description="Only in a control's answer, `true` when the scheduler could not be "
        "asked for the run's tasks (the control is done; `tasks` is then empty). A read "
        "answers 503 instead.",
    )


class RunList(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page.")


class BatchItemResult(BaseModel):
    """What became of one run of a batch start."""

    index: int = Field(description="Its position in the request's `runs`.")
    status: int = Field(
        description="201 started; 200 its Idempotency-Key's earlier run; 409 that key was "
        "used with another request; 422 the input fails the workflow's input_schema."
    )
    run: RunSummary | None = Field(default=None, description="With 201 and 200.")
    problem: ProblemDetails | None = Field(default=None, description="With 409 and 422.")


class BatchStartResult(BaseModel):
    """One result per run asked for, in request order."""

    results: list[BatchItemResult]


class ControlRequest(BaseModel):
    """Optional body of a control request."""

    reason: str = Field(default="", max_length=1024)
    """Why, for the record. Default: empty."""


class JsonSchemaResponse(JSONResponse):
    """A JSON Schema document."""

    media_type = "application/schema+json"


def openapi_schemas() -> dict[str, dict[str, Any]]:
    """The definition's JSON Schema as OpenAPI components, which any OpenAPI tool resolves.

    ``WorkflowDefinition`` and one ``WorkflowDefinition.<name>`` per ``$defs`` entry,
    their ``#/$defs/<name>`` references rewritten to point at those components.
    """
    prefix = f"#/components/schemas/{DEFINITION_SCHEMA_NAME}."
    root = {key: value for key, value in DEFINITION_SCHEMA.items() if not key.startswith("$")}
    schemas = {DEFINITION_SCHEMA_NAME: root}
    for name, definition in DEFINITION_SCHEMA.get("$defs", {}).items():
        schemas[f"{DEFINITION_SCHEMA_NAME}.{name}"] = definition
    return {name: _rewrite_refs(schema, prefix) for name, schema in schemas.items()}


def _rewrite_refs(value: Any, prefix: str) -> Any:
    if isinstance(value, dict):
        return {
            key: prefix + item.removeprefix("#/$defs/")
            if key == "$ref" and isinstance(item, str)
            else _rewrite_refs(item, prefix)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite_refs(item, prefix) for item in value]
    return value


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # Every route is behind the gateway's authorization.
    return problem_responses(*GATEWAY_PROBLEMS, *statuses)


def rfc3339(time: datetime | None) -> str | None:
    """``time`` as RFC 3339 UTC with milliseconds, e.g. ``2026-01-01T09:00:00.000Z``."""
    if time is None:
        return None
    # isoformat costs a fraction of strftime, which lists call twice per run; it
    # truncates to milliseconds as well, and writes UTC as "+00:00".
    return time.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def definition_view(version: store.StoredVersion) -> dict[str, Any]:
    """A workflow version as the API shows it."""
    return {
        "name": version.name,
        "version": version.version,
        "latest_version": version.latest_version,
        "description": version.description,
        "labels": version.labels,
        "content_hash": version.content_hash,
        "created_at": rfc3339(version.workflow_created_at),
        "version_created_at": rfc3339(version.created_at),
        "version_created_by": version.created_by,
        "archived": version.archived_at is not None,
        "archived_at": rfc3339(version.archived_at),
        "definition": version.document,
    }


_WAITING = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.FAILED})
"""Statuses of a run that may wait for a concurrency slot (a failed one after a replay)."""


def run_summary(run: store.StoredRun) -> dict[str, Any]:
    """A run without its tasks."""
    summary: dict[str, Any] = {
        "run_id": str(run.id),
        "workflow": run.workflow,
        "version": run.version,
        "status": run.status.value,
        "created_at": rfc3339(run.created_at),
        "finished_at": rfc3339(run.finished_at),
    }
    if run.status in _WAITING and run.status_reason:
        summary["status_reason"] = run.status_reason
    return summary


def run_view(view: RunView) -> dict[str, Any]:
    """A run with its input and its tasks' progress."""
    tasks = []
    for task_id, progress in view.tasks:
        task: dict[str, Any] = {
            "id": task_id,
            "status": progress.status.value,
            "attempts": progress.attempts,
            "scheduled_at": rfc3339(progress.scheduled_at),
            "started_at": rfc3339(progress.started_at),
            "finished_at": rfc3339(progress.finished_at),
        }
        if progress.status is TaskStatus.SUCCEEDED:
            task["output"] = progress.output
        elif progress.error is not None:
            task["error"] = progress.error
        if progress.reason:
            task["reason"] = progress.reason
        tasks.append(task)
    detail = {**run_summary(view.run), "input": view.run.input, "tasks": tasks}
    if view.run.status is RunStatus.SUCCEEDED:
        detail["output"] = view.run.output
    if view.tasks_unavailable:
        detail["tasks_unavailable"] = True
    return detail


def _batch_result(index: int, outcome: BatchOutcome) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, "status": outcome.status}
    if outcome.run is not None:
        result["run"] = run_summary(outcome.run)
    if outcome.error is not None:
        result["problem"] = problem_for(outcome.error).to_dict()
    return result


def _idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, or a 422 as FastAPI would answer for a bad one."""
    key = request.headers.get("idempotency-key")
    if key is None or 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        return key
    message = (
        "String should have at least 1 character"
        if not key
        else f"String should have at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
    )
    raise RequestValidationError([{"loc": ("header", "Idempotency-Key"), "msg": message}])


def _labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, equals, label = value.partition("=")
        if not equals or not key:
            raise InvalidDocumentError(f"label filter {value!r} is not key=value")
        labels[key] = label
    return labels


def _utc(time: datetime | None) -> datetime | None:
    """``time`` in UTC (naive means UTC), or a 422 when UTC cannot hold it."""
    if time is None:
        return None
    try:
        return (time if time.tzinfo is not None else time.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as error:  # e.g. 0001-01-01T00:00+23:59 is before year 1 in UTC
        raise Problem(
            422, "Invalid query", type_="validation", detail=f"{time.isoformat()} is out of range"
        ) from error


def build_router(service: WorkflowService) -> APIRouter:
    """The service's routes, calling ``service``."""
    router = APIRouter(prefix="/api/v1")
    # Requests are matched against the routes in order: run starts and reads, the hot
    # ones, come first (no definition route matches their paths).
    _add_run_routes(router, service)
    _add_definition_routes(router, service)
    return router


def _add_definition_routes(router: APIRouter, service: WorkflowService) -> None:
    @router.get(
        "/workflows/schema",
        tags=["workflows"],
        response_class=JsonSchemaResponse,
        response_model=dict[str, Any],
        responses=_problems(),
    )
    async def definition_schema(_: CurrentPrincipal) -> JsonSchemaResponse:
        """The JSON Schema (2020-12) of a workflow definition."""
        return JsonSchemaResponse(DEFINITION_SCHEMA)

    @router.post(
        "/workflows",
        status_code=201,
        tags=["workflows"],
        openapi_extra=_DEFINITION_BODY,
        response_model=WorkflowView,
        responses=_problems(400, 409, 413, 415, 422),
    )
    async def create_workflow(principal: CurrentPrincipal, request: Request) -> JSONResponse:
        """Create a workflow from a YAML or JSON definition (409 if the name exists)."""
        created = await service.create_definition(
            principal, await request.body(), request.headers.get("content-type")
        )
        return JSONResponse(
            definition_view(created),
            status_code=201,
            headers={"location": f"/api/v1/workflows/{created.name}"},
        )

    @router.get(
        "/workflows",
        tags=["workflows"],
        response_model=WorkflowList,
        responses=_problems(400, 422),
    )
    async def list_workflows(
        principal: CurrentPrincipal,
        name_prefix: str | None = None,
        label: Annotated[list[str], Query(description="key=value; repeat for all of")] = [],  # noqa: B006
        include_archived: bool = False,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """The latest version of each workflow, by name."""
        page = await service.list_definitions(
            principal,
            name_prefix=name_prefix,
            labels=_labels(label),
            include_archived=include_archived,
            page_size=page_size,
            page_token=page_token,
        )
        return JSONResponse(
            {
                "workflows": [definition_view(item) for item in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get(
        "/workflows/{name}",
        tags=["workflows"],
        response_model=WorkflowView,
        responses=_problems(404),
    )
    async def get_workflow(principal: CurrentPrincipal, name: str) -> JSONResponse:
        """The latest version of a workflow."""
        return JSONResponse(definition_view(await service.get_definition(principal, name)))

    @router.put(
        "/workflows/{name}",
        tags=["workflows"],
        openapi_extra=_DEFINITION_BODY,
        response_model=WorkflowView,
        responses={
            201: {"model": WorkflowView, "description": "A new version."},
            **_problems(400, 404, 409, 413, 415, 422),
        },
    )
    async def put_workflow(
        principal: CurrentPrincipal, name: str, request: Request
    ) -> JSONResponse:
        """A new version when the definition changed (201), else the latest one (200)."""
        version, created = await service.put_definition(
            principal, name, await request.body(), request.headers.get("content-type")
        )
        return JSONResponse(definition_view(version), status_code=201 if created else 200)

    @router.delete(
        "/workflows/{name}", status_code=204, tags=["workflows"], responses=_problems(404)
    )
    async def archive_workflow(principal: CurrentPrincipal, name: str) -> Response:
        """Archive a workflow: no new runs, hidden from lists; versions and runs stay."""
        await service.archive_definition(principal, name)
        return Response(status_code=204)

    @router.get(
        "/workflows/{name}/versions",
        tags=["workflows"],
        response_model=VersionList,
        responses=_problems(400, 404, 422),
    )
    async def list_versions(
        principal: CurrentPrincipal,
        name: str,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """A workflow's versions, oldest first, with their definitions."""
        page = await service.list_versions(
            principal, name, page_size=page_size, page_token=page_token
        )
        return JSONResponse(
            {
                "versions": [definition_view(v) for v in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get(
        "/workflows/{name}/versions/{version}",
        tags=["workflows"],
        response_model=WorkflowView,
        responses=_problems(404, 422),
    )
    async def get_version(
        principal: CurrentPrincipal, name: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)]
    ) -> JSONResponse:
        """One version of a workflow."""
        return JSONResponse(definition_view(await service.get_definition(principal, name, version)))


def _add_run_routes(router: APIRouter, service: WorkflowService) -> None:
    # The hottest route reads its caller, path parameter and header itself: FastAPI's
    # per-request parameter handling was about 40% of its HTTP-layer CPU (220 -> 130 us
    # per start, measured in-process with the service stubbed).
    @router.post(
        "/workflows/{name}/runs",
        status_code=201,
        tags=["runs"],
        openapi_extra=_RUN_START,
        response_model=RunDetail,
        responses={
            200: {
                "model": RunDetail,
                "description": "The run an earlier request with this Idempotency-Key started.",
            },
            **_problems(400, 404, 409, 413, 415, 422, 503),
        },
    )
    async def start_run(request: Request) -> JSONResponse:
        """Start a run of the latest version; a repeated Idempotency-Key returns its run."""
        principal = await require_principal(request)
        view, created = await service.start_run(
            principal,
            request.path_params["name"],
            await request.body(),
            _idempotency_key(request),
        )
        return JSONResponse(
            run_view(view),
            status_code=201 if created else 200,
            headers={"location": f"/api/v1/runs/{view.run.id}"},
        )

    @router.post(
        "/workflows/{name}/runs:batch",
        tags=["runs"],
        openapi_extra=_BATCH_BODY,
        response_model=BatchStartResult,
        responses=_problems(400, 404, 409, 413, 415),
    )
    async def start_runs(principal: CurrentPrincipal, name: str, request: Request) -> JSONResponse:
        """Start up to 1,000 runs of the latest version at once, in one transaction.

        Each run carries its own optional `idempotency_key` and gets its own result;
        the request fails as a whole (4xx problem) only when it is malformed or the
        workflow cannot start runs.
        """
        outcomes = await service.start_runs(principal, name, await request.body())
        return JSONResponse({"results": [_batch_result(i, o) for i, o in enumerate(outcomes)]})

    @router.get("/runs", tags=["runs"], response_model=RunList, responses=_problems(400, 422))
    async def list_runs(
        principal: CurrentPrincipal,
        workflow: str | None = None,
        status: RunStatus | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        page_token: PageToken = None,
    ) -> JSONResponse:
        """Runs, newest first."""
        page = await service.list_runs(
            principal,
            workflow=workflow,
            status=status,
            created_after=_utc(created_after),
            created_before=_utc(created_before),
            page_size=page_size,
            page_token=page_token,
        )
        return JSONResponse(
            {
                "runs": [run_summary(run) for run in page.items],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get(
        "/runs/{run_id}", tags=["runs"], response_model=RunDetail, responses=_problems(404, 503)
    )
    async def get_run(principal: CurrentPrincipal, run_id: str) -> JSONResponse:
        """A run with its tasks, as the scheduler holds them (503 when it does not answer)."""
        return JSONResponse(run_view(await service.get_run(principal, run_id)))

    @router.post(
        "/runs/{run_id}/{action}",
        tags=["runs"],
        response_model=RunDetail,
        responses=_problems(404, 409, 422),
    )
    async def control_run(
        principal: CurrentPrincipal,
        run_id: str,
        action: ControlAction,
        body: ControlRequest | None = None,
    ) -> JSONResponse:
        """Cancel, pause, resume or retry a run (409 when its status does not allow it)."""
        reason = body.reason if body else ""
        return JSONResponse(run_view(await service.control_run(principal, run_id, action, reason)))
