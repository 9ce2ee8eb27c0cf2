"""Process entry point shared by every service's ``__main__``."""

from __future__ import annotations

import contextlib

import uvloop
from fastapi import FastAPI

from interlock.common.http import serve
from interlock.common.logs import configure_logging
from interlock.common.settings import ServiceSettings, UnknownVariablesError, check_environment
from interlock.common.supervision import restart_requested
from interlock.common.tracing import configure_tracing


def run_service(app: FastAPI, settings: ServiceSettings) -> None:
    """Configure logs and tracing, then serve ``app`` until SIGINT/SIGTERM.

    Uvicorn handles the signals: it stops accepting requests, lets in-flight
    ones finish and runs the app's lifespan shut-down, where a service stops its
    consumers and relays.

    Raises:
        SystemExit: The environment holds an ``INTERLOCK_*`` variable the service's
            settings do not read (the message names it), before anything is served; or
            status 1 when a piece that could not recover asked for a new process
            (:func:`~interlock.common.supervision.request_process_restart`), so the
            supervisor restarts it whatever its policy for clean exits.
    """
    try:
        check_environment(type(settings))
    except UnknownVariablesError as error:
        raise SystemExit(str(error)) from None
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    telemetry = configure_tracing(
        settings.service_name,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        sample_ratio=settings.trace_sample_ratio,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve(app, settings))
    finally:
        telemetry.shutdown()
    if restart_requested() is not None:
        raise SystemExit(1)
