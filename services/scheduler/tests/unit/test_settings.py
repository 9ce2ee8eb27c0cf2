import pytest

from interlock.scheduler import SchedulerSettings


def test_defaults_fit_make_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_HTTP_PORT", raising=False)
    settings = SchedulerSettings()
    assert (settings.service_name, settings.http_port) == ("scheduler", 8103)
    assert settings.postgres_dsn.endswith("/scheduler")


def test_the_grpc_listener_follows_the_http_host_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTERLOCK_GRPC_HOST", raising=False)
    monkeypatch.setenv("INTERLOCK_HTTP_HOST", "127.0.0.1")
    assert SchedulerSettings().grpc_host == "127.0.0.1"
    # The container image sets INTERLOCK_HTTP_HOST=0.0.0.0: gRPC must be reachable too.
    monkeypatch.setenv("INTERLOCK_HTTP_HOST", "0.0.0.0")
    assert SchedulerSettings().grpc_host == "0.0.0.0"
    monkeypatch.setenv("INTERLOCK_GRPC_HOST", "127.0.0.2")
    assert SchedulerSettings().grpc_host == "127.0.0.2"
