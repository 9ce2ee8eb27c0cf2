"""The CLI's variables, exported in a shell that also starts services, break none of them."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from interlock.artifact.settings import ArtifactSettings
from interlock.cli._config import API_KEY_ENV, GATEWAY_ENV
from interlock.common.settings import CLIENT_VARIABLES, check_environment, known_variables
from interlock.devstack import SERVICES
from interlock.devstack._stack import Stack, StackSecrets
from interlock.iam.settings import IamSettings
from interlock.metadata.settings import MetadataSettings
from interlock.notification.settings import NotificationSettings
from interlock.scheduler.settings import SchedulerSettings
from interlock.worker.settings import WorkerSettings
from interlock.workflow.settings import WorkflowSettings

SETTINGS: list[type[BaseSettings]] = [
    IamSettings,
    WorkflowSettings,
    SchedulerSettings,
    WorkerSettings,
    MetadataSettings,
    NotificationSettings,
    ArtifactSettings,
]
SHELL = {GATEWAY_ENV: "http://127.0.0.1:8080", API_KEY_ENV: "ilk_secret"}


def test_the_cli_reads_exactly_the_variables_services_let_pass() -> None:
    assert {GATEWAY_ENV, API_KEY_ENV} == CLIENT_VARIABLES


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_a_service_started_from_such_a_shell_accepts_them(settings: type[BaseSettings]) -> None:
    check_environment(settings, SHELL)
    assert not (known_variables(settings) & CLIENT_VARIABLES), "a setting takes a CLI name"


def test_make_up_gives_them_to_no_service(tmp_path) -> None:
    secrets = StackSecrets.generate()
    for service in SERVICES:
        env = Stack(data_dir=tmp_path).service_env(service, secrets, environ=SHELL)
        assert not (set(env) & CLIENT_VARIABLES), service.name
