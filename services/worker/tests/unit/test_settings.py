import pytest

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
