"""Asking the scheduler about runs: a run it cannot answer about is passed over."""

from __future__ import annotations

import logging
import uuid

import grpc
import pytest

from interlock.common.scheduler_state import ScheduledRun, ask_about
from interlock.common.statuses import RunStatus

ENDED = ScheduledRun(status=RunStatus.SUCCEEDED, ended_at=None, tasks=())


async def test_each_answer_comes_with_its_run_and_an_unanswered_run_is_logged_and_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    known, unknown, unreachable = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    asked: list[tuple[str, str]] = []

    async def truth(tenant: str, run_id: str) -> ScheduledRun | None:
        asked.append((tenant, run_id))
        if run_id == str(unreachable):
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), None, None
            )
        return ENDED if run_id == str(known) else None

    runs = [("acme", known), ("acme", unreachable), ("zeta", unknown)]
    with caplog.at_level(logging.WARNING):
        answers = [answer async for answer in ask_about(truth, runs)]

    assert answers == [("acme", known, ENDED), ("zeta", unknown, None)]
    assert asked == [(tenant, str(run_id)) for tenant, run_id in runs]
    [record] = caplog.records
    assert record.getMessage() == "cannot ask the scheduler about a run"
    assert (record.__dict__["run_id"], record.__dict__["code"]) == (
        str(unreachable),
        str(grpc.StatusCode.UNAVAILABLE),
    )
