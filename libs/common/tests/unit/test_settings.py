"""Settings refuse INTERLOCK_* variables they do not read."""

import pytest
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from interlock.common.settings import (
    KafkaOptions,
    ServiceSettings,
    UnknownVariablesError,
    check_environment,
    known_variables,
    unknown_variables,
)


class _Settings(ServiceSettings, KafkaOptions):
    pass


def test_known_variables_are_the_prefixed_fields_and_their_aliases() -> None:
    known = known_variables(_Settings)
    assert {"INTERLOCK_HTTP_PORT", "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS"} <= known
    # Read under either name.
    assert {"INTERLOCK_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} <= known
    assert "INTERLOCK_POSTGRES_DSN" not in known


def test_only_unread_interlock_variables_are_reported() -> None:
    environ = {
        "INTERLOCK_HTTP_PORT": "1",
        "interlock_log_level": "DEBUG",  # read case-insensitively
        "INTERLOCK_DEV_PORT_OFFSET": "100",  # the development stack's own
        "PATH": "/bin",
        "INTERLOCK_IAM_GRPC_TARGET": "iam:9101",
        "INTERLOCK_POSTGRES_DSN": "postgresql://x",  # a setting, but not of this service
    }
    assert unknown_variables(_Settings, environ) == [
        "INTERLOCK_IAM_GRPC_TARGET",
        "INTERLOCK_POSTGRES_DSN",
    ]


def test_the_error_names_each_variable_and_the_likely_intended_one() -> None:
    environ = {"INTERLOCK_KAFKA_BOOTSTRAP_SERVER": "kafka:9092", "INTERLOCK_ZZZ": "1"}
    with pytest.raises(UnknownVariablesError) as error:
        check_environment(_Settings, environ)
    message = str(error.value)
    assert (
        "INTERLOCK_KAFKA_BOOTSTRAP_SERVER (did you mean INTERLOCK_KAFKA_BOOTSTRAP_SERVERS?)"
        in message
    )
    assert "  INTERLOCK_ZZZ\n" in message
    check_environment(_Settings, {"INTERLOCK_HTTP_PORT": "1"})


class _Nested(BaseModel):
    size: int = 1


class _NestedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTERLOCK_", env_nested_delimiter="__")

    pool: _Nested = _Nested()


def test_nested_settings_are_known_by_their_delimited_names() -> None:
    environ = {"INTERLOCK_POOL__SIZE": "3", "INTERLOCK_POOL": "{}", "INTERLOCK_POOLS__SIZE": "3"}
    assert unknown_variables(_NestedSettings, environ) == ["INTERLOCK_POOLS__SIZE"]
