import pytest

from interlock.scheduler import SchedulerSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = SchedulerSettings()
    assert (settings.service_name, settings.http_port) == ("scheduler", 8103)
    assert settings.postgres_dsn.endswith("/scheduler")
