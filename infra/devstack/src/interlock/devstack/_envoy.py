"""Render the gateway's Envoy config from ``infra/envoy/envoy.yaml.tmpl``."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

from interlock.devstack._paths import envoy_dir
from interlock.devstack._stack import SERVICES

TEMPLATE_NAME = "envoy.yaml.tmpl"
COMPOSE_NAME = "envoy.compose.yaml"

COMPOSE_LISTENER = ("0.0.0.0", 8080)  # noqa: S104 - inside its container, behind compose's port map
"""Listener address in compose."""
COMPOSE_ADMIN = ("0.0.0.0", 9901)  # noqa: S104 - as above
"""Admin address in compose."""

IAM_AUTHZ = "iam-authz"
"""Key of IAM's authorizer listener (the gateway's ext_authz, HTTP) in the upstreams."""
DEFAULT_RATE_LIMIT_PER_S = 20000
"""Gateway-wide request rate limit: high enough not to cap a benchmark on one machine."""


def template_path() -> Path:
    """Path of the gateway template in the checkout."""
    return envoy_dir() / TEMPLATE_NAME


def compose_config_path() -> Path:
    """Path of the committed compose rendering."""
    return envoy_dir() / COMPOSE_NAME


def render_envoy_config(
    *,
    upstreams: Mapping[str, tuple[str, int]],
    listener: tuple[str, int],
    admin: tuple[str, int],
    header: str = "",
    rate_limit_per_s: int = DEFAULT_RATE_LIMIT_PER_S,
) -> str:
    """Render the gateway config.

    Args:
        upstreams: ``(host, port)`` of each service's HTTP listener, by service name;
            every one of the seven services must be present, and IAM's authorizer
            listener under :data:`IAM_AUTHZ`.
        listener: Address and port the gateway serves users on.
        admin: Address and port of Envoy's admin interface.
        header: Comment lines put before the rendered text (each starting with ``#``).
        rate_limit_per_s: Requests per second the gateway lets through (429 beyond).
            Default: :data:`DEFAULT_RATE_LIMIT_PER_S`.

    Returns:
        The Envoy YAML.

    Raises:
        KeyError: A service's upstream is missing.
    """
    values: dict[str, str] = {
        "listener_address": listener[0],
        "listener_port": str(listener[1]),
        "admin_address": admin[0],
        "admin_port": str(admin[1]),
        "iam_authz_host": upstreams[IAM_AUTHZ][0],
        "iam_authz_port": str(upstreams[IAM_AUTHZ][1]),
        "rate_limit_per_s": str(rate_limit_per_s),
    }
    for service in SERVICES:
        host, port = upstreams[service.name]
        values[f"{service.name}_host"] = host
        values[f"{service.name}_port"] = str(port)
    text = string.Template(template_path().read_text()).substitute(values)
    return header + text


def render_compose_config() -> str:
    """The gateway config for compose: upstreams by compose service name."""
    header = (
        "# GENERATED from infra/envoy/envoy.yaml.tmpl by\n"
        "# `python -m interlock.devstack render-envoy`: edit the template, not this file.\n"
    )
    upstreams = {service.name: (service.name, service.http_port) for service in SERVICES}
    iam_authz = next(service.authz_port for service in SERVICES if service.name == "iam")
    assert iam_authz is not None
    upstreams[IAM_AUTHZ] = ("iam", iam_authz)
    return render_envoy_config(
        upstreams=upstreams,
        listener=COMPOSE_LISTENER,
        admin=COMPOSE_ADMIN,
        header=header,
    )


def write_compose_config() -> Path:
    """Write :func:`render_compose_config` to ``infra/envoy/envoy.compose.yaml``."""
    path = compose_config_path()
    path.write_text(render_compose_config())
    return path
