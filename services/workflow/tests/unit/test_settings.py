import pytest

from interlock.workflow import WorkflowSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = WorkflowSettings()
    assert (settings.service_name, settings.http_port) == ("workflow", 8102)
    assert settings.postgres_dsn.endswith("/workflow")
    # The run view is read by people, not by the next task: it batches more than the hot path.
    assert settings.view_fetch_max_wait_ms > settings.kafka_fetch_max_wait_ms
