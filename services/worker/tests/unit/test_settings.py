import ipaddress
from pathlib import Path

import pytest

from interlock.common.addresses import is_reachable, parse_networks
from interlock.devstack._stack import Stack, StackSecrets, service_by_name
from interlock.worker import WorkerSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = WorkerSettings()
    assert (settings.service_name, settings.http_port) == ("worker", 8104)


def test_lists_and_limits_are_read_as_json_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_WORKER_QUEUES", '["", "gpu"]')
    monkeypatch.setenv("INTERLOCK_MAX_IN_FLIGHT_PER_TYPE", '{"http": 3}')
    settings = WorkerSettings()
    assert settings.worker_queues == ["", "gpu"]
    assert settings.max_in_flight_per_type == {"http": 3}
    assert settings.kafka_linger_ms == 0
    monkeypatch.setenv("INTERLOCK_MAX_IN_FLIGHT_PER_TYPE", '{"http": 0}')
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        WorkerSettings()


def test_each_instance_gets_its_own_worker_id() -> None:
    assert WorkerSettings().worker_id != WorkerSettings().worker_id


def test_only_the_local_stack_lets_http_tasks_reach_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loopback = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    production = parse_networks(WorkerSettings().http_allowed_networks)
    assert not any(is_reachable(address, production) for address in loopback)

    worker = service_by_name("worker")
    assert worker is not None
    env = Stack(data_dir=Path("/unused")).service_env(worker, StackSecrets.generate())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    local = parse_networks(WorkerSettings().http_allowed_networks)
    assert all(is_reachable(address, local) for address in loopback)
    assert not is_reachable(ipaddress.ip_address("10.0.0.1"), local)
    assert not is_reachable(ipaddress.ip_address("169.254.169.254"), local)
