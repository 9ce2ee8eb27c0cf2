"""Typed Python client (sync and async) for Interlock's REST API."""

from interlock.client._artifacts import Artifact, PresignedUrl
from interlock.client._client import DEFAULT_GATEWAY, AsyncClient, Client
from interlock.client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    FieldProblem,
    Forbidden,
    InterlockClientError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    SessionEnded,
    StreamError,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from interlock.client._iam import ApiKey, Principal, Secret, Tenant, User
from interlock.client._metadata import Execution, LogLine, LogPage
from interlock.client._notifications import EVENTS, Delivery, Subscription
from interlock.client._runs import ENDED_STATUSES, Run, RunSummary, TaskView
from interlock.client._scheduler import DeadLetter, Replay, Timer
from interlock.client._transport import Session, TokenPair
from interlock.client._workflows import Definition, Workflow

__all__ = [
    "DEFAULT_GATEWAY",
    "ENDED_STATUSES",
    "EVENTS",
    "ApiError",
    "ApiKey",
    "Artifact",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "DeadLetter",
    "Definition",
    "Delivery",
    "Execution",
    "FieldProblem",
    "Forbidden",
    "InterlockClientError",
    "LogLine",
    "LogPage",
    "NotFound",
    "PayloadTooLarge",
    "PresignedUrl",
    "Principal",
    "RateLimited",
    "Replay",
    "Run",
    "RunSummary",
    "Secret",
    "ServerError",
    "Session",
    "SessionEnded",
    "StreamError",
    "Subscription",
    "TaskView",
    "Tenant",
    "Timer",
    "TokenPair",
    "Unauthenticated",
    "UnsupportedMediaType",
    "User",
    "ValidationFailed",
    "Workflow",
]
