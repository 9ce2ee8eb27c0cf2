import pytest

from interlock.worker import WorkerSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = WorkerSettings()
    assert (settings.service_name, settings.http_port) == ("worker", 8104)
