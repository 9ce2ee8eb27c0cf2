"""Every INTERLOCK_* variable a deployment gives a service is one that service reads.

A service refuses to start with a variable its settings do not know
(:func:`interlock.common.settings.check_environment`), so a variable set by
compose.yml, by the image or by `make up` that no setting reads would stop the
service. These checks catch that statically, for every service and deployment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from interlock import artifact, iam, metadata, notification, scheduler, worker, workflow
from interlock.common.settings import ENV_PREFIX, NON_SERVICE_PREFIXES, known_variables
from interlock.devstack import SERVICES as DEVSTACK_SERVICES
from interlock.devstack import Stack
from interlock.devstack._stack import StackSecrets

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: dict[str, type[BaseSettings]] = {
    "iam": iam.IamSettings,
    "workflow": workflow.WorkflowSettings,
    "scheduler": scheduler.SchedulerSettings,
    "worker": worker.WorkerSettings,
    "metadata": metadata.MetadataSettings,
    "notification": notification.NotificationSettings,
    "artifact": artifact.ArtifactSettings,
}


def _interlock_variables(env: dict[str, Any]) -> set[str]:
    return {name for name in env if name.upper().startswith(ENV_PREFIX)}


def _compose_environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return dict(env)


def _image_environment() -> set[str]:
    """INTERLOCK_* names the Dockerfile's ENV instructions set."""
    names = set()
    for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        words = line.split()
        if words and words[0] == "ENV":
            names |= {word.split("=", 1)[0] for word in words[1:] if "=" in word}
    return _interlock_variables(dict.fromkeys(names))


def test_settings_cover_the_seven_services() -> None:
    on_disk = {path.parent.name for path in ROOT.glob("services/*/pyproject.toml")}
    assert set(SETTINGS) == on_disk


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_compose_gives_each_service_only_variables_it_reads(name: str) -> None:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    given = _interlock_variables(_compose_environment(compose["services"][name]))
    unread = given - known_variables(SETTINGS[name])
    assert not unread, f"compose.yml gives {name} variables it does not read: {sorted(unread)}"


def test_the_image_sets_only_variables_every_service_reads() -> None:
    image = _image_environment()
    assert "INTERLOCK_HTTP_HOST" in image
    for name, settings in SETTINGS.items():
        unread = image - known_variables(settings)
        assert not unread, f"the Dockerfile sets {sorted(unread)}, which {name} does not read"


@pytest.mark.parametrize("service", DEVSTACK_SERVICES, ids=lambda s: s.name)
def test_make_up_gives_each_service_only_variables_it_reads(service: Any, tmp_path: Path) -> None:
    env = Stack(data_dir=tmp_path).service_env(service, StackSecrets.generate())
    unread = _interlock_variables(env) - known_variables(SETTINGS[service.name])
    assert not unread, f"make up gives {service.name} variables it does not read: {unread}"


def test_no_setting_hides_among_the_development_stack_variables() -> None:
    for name, settings in SETTINGS.items():
        hidden = {v for v in known_variables(settings) if v.startswith(NON_SERVICE_PREFIXES)}
        assert not hidden, f"{name} reads {hidden}, which every service lets pass unchecked"


def test_a_service_refuses_to_start_with_a_variable_it_does_not_read() -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.upper().startswith(ENV_PREFIX)
    }
    # The compose variable of issue 23 (the worker reads IAM's target, not this one)
    # and a near miss.
    env["INTERLOCK_SCHEDULER_GRPC_TARGET"] = "scheduler:9103"
    env["INTERLOCK_KAFKA_BOOTSTRAP_SERVER"] = "127.0.0.1:1"
    result = subprocess.run(
        [sys.executable, "-m", "interlock.worker"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTERLOCK_SCHEDULER_GRPC_TARGET" in result.stderr
    assert (
        "INTERLOCK_KAFKA_BOOTSTRAP_SERVER (did you mean INTERLOCK_KAFKA_BOOTSTRAP_SERVERS?)"
        in result.stderr
    )
