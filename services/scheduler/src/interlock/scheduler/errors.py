"""Scheduler errors as problem+json."""

from __future__ import annotations

from interlock.common.problems import Problem


def not_found(what: str) -> Problem:
    """A 404 problem (also for another tenant's resources)."""
    return Problem(404, "Not found", detail=f"{what} not found.", type_="not-found")


def conflict(detail: str) -> Problem:
    """A 409 problem: the resource is not in a state that allows the request."""
    return Problem(409, "Conflict", detail=detail, type_="conflict")
