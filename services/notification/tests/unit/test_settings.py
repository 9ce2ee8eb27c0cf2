import pytest

from interlock.notification import NotificationSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = NotificationSettings()
    assert (settings.service_name, settings.http_port) == ("notification", 8106)
    assert settings.postgres_dsn.endswith("/notification")
