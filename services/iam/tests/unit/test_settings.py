import pytest

from interlock.iam import IamSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = IamSettings()
    assert (settings.service_name, settings.http_port) == ("iam", 8101)
    assert settings.postgres_dsn.endswith("/iam")
