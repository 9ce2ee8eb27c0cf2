import pytest

from interlock.notification import NotificationSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = NotificationSettings()
    assert (settings.service_name, settings.http_port) == ("notification", 8106)
    assert settings.postgres_dsn.endswith("/notification")


def test_the_retry_schedule_is_the_specifications_and_bad_ones_are_refused() -> None:
    settings = NotificationSettings()
    assert settings.retry_delays_s()[:3] == (0.0, 5.0, 300.0)
    assert len(settings.retry_delays_s()) == 10
    assert NotificationSettings(retry_schedule=["0s", "250ms"]).retry_delays_s() == (0.0, 0.25)
    for bad in ([], ["soon"]):
        with pytest.raises(ValueError, match="retry"):
            NotificationSettings(retry_schedule=bad)
    with pytest.raises(ValueError):
        NotificationSettings(webhook_allowed_networks=["not-a-network"])
