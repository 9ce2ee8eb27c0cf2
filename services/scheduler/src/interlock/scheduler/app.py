"""Wires the scheduler service: its database, broker, loops, gRPC server and routes."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI

from interlock.common.http import create_app as create_service_app
from interlock.common.identity import IdentityVerifier, JwksKeys
from interlock.common.kafka import EventConsumerTask, KafkaBroker
from interlock.common.outbox import OUTBOX_MIGRATIONS, OutboxRelayTask
from interlock.common.parking import parked_events_router, postgres_parking
from interlock.common.postgres import MigrationSource, PostgresDatabase
from interlock.scheduler.api import build_router
from interlock.scheduler.domain.admission import configure_tenant_limit
from interlock.scheduler.domain.run import AttemptBounds, configure_attempt_bounds
from interlock.scheduler.grpc import TaskStateServer
from interlock.scheduler.handlers import CONSUMED, BatchHandler
from interlock.scheduler.loops import (
    AdmissionLoop,
    LoopTask,
    TaskTopics,
    TimerLoop,
    TopicGuard,
    every,
)
from interlock.scheduler.reconciler import Reconciler
from interlock.scheduler.service import SchedulerService
from interlock.scheduler.settings import SchedulerSettings

MIGRATIONS = MigrationSource(component="scheduler", location="interlock.scheduler.migrations")
"""The scheduler's own tables."""


class _TimerWaker:
    """Forwards "a timer was set" to the running timer loop, if any yet."""

    def __init__(self) -> None:
        self.loop: TimerLoop | None = None

    def __call__(self, due_at: datetime) -> None:
        if self.loop is not None:
            self.loop.wake(due_at)


def create_app(settings: SchedulerSettings | None = None) -> FastAPI:
    """Build the scheduler service's app. Default settings come from the environment."""
    settings = settings or SchedulerSettings()
    configure_attempt_bounds(
        AttemptBounds(
            lost_after_ms=round(settings.lost_attempt_after_s * 1000),
            start_to_close_ms=round(settings.default_start_to_close_s * 1000),
        )
    )
    configure_tenant_limit(settings.tenant_max_concurrent_runs)
    database = PostgresDatabase(settings, migrations=[OUTBOX_MIGRATIONS, MIGRATIONS])
    broker = KafkaBroker(settings)
    relay = OutboxRelayTask(database, broker)
    waker = _TimerWaker()
    admission: list[AdmissionLoop] = []
    task_topics = TaskTopics(settings)
    service = SchedulerService(
        lambda: database.pool,
        on_timer=waker,
        ensure_queues=task_topics.ensure,
        on_slots=lambda: admission[0].wake() if admission else None,
    )

    async def run_admission() -> None:
        loop = AdmissionLoop(service, interval_s=settings.admission_interval_s)
        admission[:] = [loop]
        await loop.run()

    async def run_timers() -> None:
        loop = TimerLoop(
            service,
            batch_size=settings.timer_batch_size,
            max_sleep_ms=settings.timer_max_sleep_ms,
        )
        waker.loop = loop
        await loop.run()

    async def run_reconciler() -> None:
        reconciler = Reconciler(
            service,
            after_s=settings.reconcile_after_s,
            unserved_after_s=settings.unserved_after_s,
        )
        topic_guard = TopicGuard(
            settings, interval_s=settings.topics_check_interval_s, task_topics=task_topics
        )

        retention = timedelta(seconds=settings.inbox_retention_s)
        parked_retention = timedelta(seconds=settings.parked_control_retention_s)

        async def reconcile() -> int:
            await topic_guard.check_once()
            await reconciler.prune_inbox(retention)
            await reconciler.prune_parked_controls(parked_retention)
            await reconciler.prune_rejected_events(retention)
            await reconciler.report_waiting()
            await reconciler.report_backlogs()
            await reconciler.tell_unserved()
            return await reconciler.reconcile_once()

        await every(settings.reconcile_interval_s, reconcile)

    consumer = EventConsumerTask(
        broker.consumer(
            group_id=settings.consumer_group,
            event_types=CONSUMED,
            handler=BatchHandler(service),
            park=postgres_parking(lambda: database.pool),
        )
    )
    identity = IdentityVerifier(JwksKeys.from_settings(settings), issuer=settings.jwt_issuer)
    grpc_server = TaskStateServer(
        service,
        identity,
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_credentials=settings.service_credentials,
    )
    app = create_service_app(
        settings,
        identity=identity,
        resources=[
            database,
            broker,
            relay,
            LoopTask("timers", run_timers),
            LoopTask("reconciler", run_reconciler),
            LoopTask("admission", run_admission),
            consumer,
            grpc_server,
        ],
        routers=[
            build_router(service),
            parked_events_router("scheduler", lambda: database.pool),
        ],
    )
    # Tests and tools read the bound port here (grpc_port 0 binds a free one).
    app.state.task_state_server = grpc_server
    return app
