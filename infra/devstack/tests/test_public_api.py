"""The package's public surface and the stack table."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from supervisor.datatypes import dict_of_key_value_pairs

import interlock.devstack as devstack
from interlock.devstack._process import is_root
from interlock.devstack._stack import INFRA_PORTS, POSTGRES_HOMES, Stack, StackSecrets
from interlock.devstack._supervisor import Program, render_config


def test_public_names_are_exported() -> None:
    public = {
        name
        for name, value in vars(devstack).items()
        if name.isidentifier() and not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(devstack.__all__)


def test_ports_follow_the_offset() -> None:
    stack = Stack(data_dir=Path("/x"), port_offset=100)
    assert stack.port("postgres") == 15532
    assert stack.gateway_url == "http://127.0.0.1:8180"
    ports = [p for group in stack.ports_by_program().values() for p in group.values()]
    # 7 HTTP, 2 gRPC (iam, scheduler), IAM's authorizer
    assert len(ports) == len(set(ports)) == len(INFRA_PORTS) + 7 + 2 + 1


def test_stack_from_env() -> None:
    stack = Stack.from_env({"INTERLOCK_DEV_DATA_DIR": "/d", "INTERLOCK_DEV_PORT_OFFSET": "7"})
    assert stack == Stack(data_dir=Path("/d"), port_offset=7, postgres_home=stack.postgres_home)
    with pytest.raises(ValueError, match="outside"):
        Stack.from_env({"INTERLOCK_DEV_PORT_OFFSET": "60000"})


def test_postgres_lives_outside_the_checkout_when_root_runs_the_stack() -> None:
    first = Stack.from_env({"INTERLOCK_DEV_DATA_DIR": "/home/a/interlock/.data"})
    second = Stack.from_env({"INTERLOCK_DEV_DATA_DIR": "/home/b/interlock/.data"})
    if not is_root():
        assert first.postgres_home is None
        assert first.postgres_dir == Path("/home/a/interlock/.data/postgres")
        return
    assert first.postgres_home is not None and second.postgres_home is not None
    assert first.postgres_home.parent == second.postgres_home.parent == POSTGRES_HOMES
    assert first.postgres_home != second.postgres_home
    assert first.postgres_dir.is_relative_to(first.postgres_home)
    assert first.postgres_bin_dir.is_relative_to(first.postgres_home)
    assert first.postgres_home in first.written_paths()


def test_exported_variables_reach_only_the_services_that_read_them() -> None:
    """A service refuses variables it does not read, so the shell's are sorted per service."""
    stack = Stack(data_dir=Path("/x"))
    secrets = StackSecrets.generate()
    shell = {
        "INTERLOCK_SHELL_ENABLED": "true",
        "INTERLOCK_NO_SUCH_OPTION": "1",
        "INTERLOCK_HTTP_PORT": "1",
        "INTERLOCK_DEV_PORT_OFFSET": "0",
    }
    env = {s.name: stack.service_env(s, secrets, shell) for s in devstack.SERVICES}
    assert env["worker"]["INTERLOCK_SHELL_ENABLED"] == "true"
    assert all("INTERLOCK_SHELL_ENABLED" not in env[n] for n in env if n != "worker")
    assert all("INTERLOCK_NO_SUCH_OPTION" not in e for e in env.values())
    assert env["iam"]["INTERLOCK_HTTP_PORT"] == "8101"  # the stack's wiring wins
    assert all("INTERLOCK_DEV_PORT_OFFSET" not in e for e in env.values())


def test_service_environment() -> None:
    stack = Stack(data_dir=Path("/x"))
    secrets = StackSecrets.generate()
    env = {s.name: stack.service_env(s, secrets) for s in devstack.SERVICES}
    assert env["iam"]["INTERLOCK_HTTP_PORT"] == "8101"
    assert env["iam"]["INTERLOCK_GRPC_PORT"] == "9101"
    assert env["iam"]["INTERLOCK_AUTHZ_PORT"] == "9111"
    assert "INTERLOCK_AUTHZ_PORT" not in env["scheduler"]
    assert env["iam"]["INTERLOCK_BOOTSTRAP_ADMIN_USERNAME"] == "admin"
    assert env["iam"]["INTERLOCK_BOOTSTRAP_ADMIN_MUST_CHANGE_PASSWORD"] == "false"
    # Workers read tenant secrets from this IAM, with a credential it accepts.
    assert env["worker"]["INTERLOCK_IAM_GRPC_TARGET"] == "127.0.0.1:9101"
    assert (
        env["worker"]["INTERLOCK_SERVICE_CREDENTIAL"] == env["iam"]["INTERLOCK_SERVICE_CREDENTIALS"]
    )
    assert env["iam"]["INTERLOCK_KEY_ENCRYPTION_KEYS"].startswith("k1:")
    assert env["scheduler"]["INTERLOCK_GRPC_PORT"] == "9103"
    # The notification service's run-end reconciler asks the scheduler, which accepts it.
    assert env["notification"]["INTERLOCK_SCHEDULER_GRPC_TARGET"] == "127.0.0.1:9103"
    notification_credential = env["notification"]["INTERLOCK_SERVICE_CREDENTIAL"]
    assert notification_credential in env["scheduler"]["INTERLOCK_SERVICE_CREDENTIALS"].split(",")
    assert "INTERLOCK_GRPC_PORT" not in env["workflow"]
    passwords = set()
    for name in ("iam", "workflow", "scheduler", "notification", "artifact"):
        # Each service its own role, with rights on its own database only.
        assert env[name]["INTERLOCK_POSTGRES_DSN"] == f"postgresql://{name}@127.0.0.1:15432/{name}"
        assert env[name]["INTERLOCK_POSTGRES_PASSWORD"] == secrets.postgres_passwords[name]
        passwords.add(env[name]["INTERLOCK_POSTGRES_PASSWORD"])
    assert len(passwords) == 5
    assert env["iam"]["INTERLOCK_KEY_ENCRYPTION_KEYS"] == secrets.key_encryption_keys
    assert "INTERLOCK_KEY_ENCRYPTION_KEYS" not in env["workflow"]
    # The notification service seals webhook secrets with a key of its own.
    notification_keks = env["notification"]["INTERLOCK_KEY_ENCRYPTION_KEYS"]
    assert notification_keks == secrets.notification_key_encryption_keys
    assert notification_keks != secrets.key_encryption_keys
    assert all(
        e["INTERLOCK_IAM_JWKS_URL"] == "http://127.0.0.1:8101/.well-known/jwks.json"
        for e in env.values()
    )
    assert "INTERLOCK_POSTGRES_DSN" not in env["worker"]
    assert env["metadata"]["INTERLOCK_MONGO_URL"] == (
        "mongodb://127.0.0.1:17017/?directConnection=true"
    )
    assert env["artifact"]["INTERLOCK_S3_BUCKET"] == "interlock-artifacts"
    assert env["artifact"]["INTERLOCK_S3_ENDPOINT"] == "127.0.0.1:18333"
    assert env["notification"]["INTERLOCK_SMTP_PORT"] == "1025"
    assert all(e["INTERLOCK_LOG_FORMAT"] == "json" for e in env.values())
    kafka = {name for name, e in env.items() if "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS" in e}
    assert kafka == {"workflow", "scheduler", "worker", "metadata", "notification"}
    assert all(
        env[name]["INTERLOCK_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092" for name in kafka
    )


def test_secrets_are_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    first, created = StackSecrets.load_or_create(path)
    again, created_again = StackSecrets.load_or_create(path)
    assert (created, created_again) == (True, False)
    assert first == again
    assert path.stat().st_mode & 0o777 == 0o600


def test_secrets_added_later_are_generated_for_an_older_data_folder(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text(
        "INTERLOCK_DEV_POSTGRES_SUPERUSER_PASSWORD=su\n"
        "INTERLOCK_POSTGRES_PASSWORD=shared\n"
        "INTERLOCK_S3_ACCESS_KEY=ak\n"
        "INTERLOCK_S3_SECRET_KEY=sk\n"
    )
    loaded, created = StackSecrets.load_or_create(path)
    assert not created
    assert (loaded.postgres_superuser_password, loaded.s3_access_key) == ("su", "ak")
    assert set(loaded.postgres_passwords) == {
        "iam",
        "workflow",
        "scheduler",
        "notification",
        "artifact",
    }
    assert loaded.key_encryption_keys.startswith("k1:")
    assert loaded.notification_key_encryption_keys.startswith("k1:")
    assert StackSecrets.load_or_create(path)[0] == loaded  # written down, not made up again
    assert path.stat().st_mode & 0o777 == 0o600


def test_supervisor_config_escapes_values(tmp_path: Path) -> None:
    program = Program(
        name="svc",
        argv=["/bin/echo", "100%", "two words"],
        log_file=tmp_path / "svc.log",
        directory=tmp_path,
        env={"A": "x,y=z", "B": "50%", "C": '["127.0.0.0/8", "::1/128"]'},
    )
    text = render_config(supervisor_dir=tmp_path, programs=[program])
    assert "command=/bin/sh -c 'exec \"$@\" </dev/null' svc /bin/echo 100%% 'two words'" in text
    assert 'environment=A="x,y=z",B="50%%",C=\'["127.0.0.0/8", "::1/128"]\'' in text
    section = text.split("[program:svc]")[1]
    environment = next(line for line in section.splitlines() if line.startswith("environment="))
    assert dict_of_key_value_pairs(environment.removeprefix("environment=").replace("%%", "%")) == {
        "A": "x,y=z",
        "B": "50%",
        "C": '["127.0.0.0/8", "::1/128"]',
    }
    with pytest.raises(ValueError, match="both"):
        render_config(
            supervisor_dir=tmp_path,
            programs=[
                Program(
                    name="p",
                    argv=["x"],
                    log_file=tmp_path,
                    directory=tmp_path,
                    env={"A": 'say "it\'s"'},
                )
            ],
        )
