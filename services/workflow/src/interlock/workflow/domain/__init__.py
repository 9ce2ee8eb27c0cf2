"""The workflow service's decisions, free of I/O: definitions, runs, progress."""

from interlock.common.durations import parse_duration_ms
from interlock.common.errors import InvalidPageTokenError
from interlock.common.statuses import RunStatus, TaskStatus
from interlock.workflow.domain.definition import (
    CompiledDefinition,
    canonical_json,
    compile_definition,
)
from interlock.workflow.domain.documents import parse_document
from interlock.workflow.domain.errors import (
    IdempotencyConflictError,
    InvalidDefinitionError,
    InvalidDocumentError,
    InvalidInputError,
    PayloadTooLargeError,
    RunNotFoundError,
    TasksUnavailableError,
    TransitionNotAllowedError,
    UnsupportedMediaTypeError,
    WorkflowArchivedError,
    WorkflowError,
    WorkflowExistsError,
    WorkflowNotFoundError,
)
from interlock.workflow.domain.inputs import check_input, input_validator
from interlock.workflow.domain.issues import Issue
from interlock.workflow.domain.progress import (
    TaskProgress,
    WaitingTask,
    decode_output,
    task_progress,
)
from interlock.workflow.domain.runs import (
    ControlAction,
    RunState,
    after_control,
    after_outcome,
    after_outcome_event,
    after_running,
    after_waiting,
)
from interlock.workflow.domain.schema import DEFINITION_SCHEMA
from interlock.workflow.domain.task_types import DELAY, EXECUTOR_TYPES, TASK_TYPES

__all__ = [
    "DEFINITION_SCHEMA",
    "DELAY",
    "EXECUTOR_TYPES",
    "TASK_TYPES",
    "CompiledDefinition",
    "ControlAction",
    "IdempotencyConflictError",
    "InvalidDefinitionError",
    "InvalidDocumentError",
    "InvalidInputError",
    "InvalidPageTokenError",
    "Issue",
    "PayloadTooLargeError",
    "RunNotFoundError",
    "RunState",
    "RunStatus",
    "TaskProgress",
    "TaskStatus",
    "TasksUnavailableError",
    "TransitionNotAllowedError",
    "UnsupportedMediaTypeError",
    "WaitingTask",
    "WorkflowArchivedError",
    "WorkflowError",
    "WorkflowExistsError",
    "WorkflowNotFoundError",
    "after_control",
    "after_outcome",
    "after_outcome_event",
    "after_running",
    "after_waiting",
    "canonical_json",
    "check_input",
    "compile_definition",
    "decode_output",
    "input_validator",
    "parse_document",
    "parse_duration_ms",
    "task_progress",
]
