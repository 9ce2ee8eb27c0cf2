import pytest

from interlock.metadata import MetadataSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = MetadataSettings()
    assert (settings.service_name, settings.http_port) == ("metadata", 8105)
