import pytest

from interlock.artifact import ArtifactSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = ArtifactSettings()
    assert (settings.service_name, settings.http_port) == ("artifact", 8107)
    assert settings.postgres_dsn.endswith("/artifact")
