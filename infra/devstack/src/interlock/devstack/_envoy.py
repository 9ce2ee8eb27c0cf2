"""Render the gateway's Envoy config from ``infra/envoy/envoy.yaml.tmpl``."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from pathlib import Path

from interlock.devstack._paths import envoy_dir
from interlock.devstack._stack import DEFAULT_GATEWAY_AUTHZ, SERVICES, AuthzMode

TEMPLATE_NAME = "envoy.yaml.tmpl"
COMPOSE_NAME = "envoy.compose.yaml"
API_REFERENCE_NAME = "api-reference.html"

COMPOSE_LISTENER = ("0.0.0.0", 8080)  # noqa: S104 - inside its container, behind compose's port map
"""Listener address in compose."""
COMPOSE_ADMIN = ("0.0.0.0", 9901)  # noqa: S104 - as above
"""Admin address in compose."""

IAM_GRPC = "iam-grpc"
"""Key of IAM's gRPC listener (the gateway's ext_authz Check, ``authz="grpc"``) in the
upstreams."""
IAM_AUTHZ = "iam-authz"
"""Key of IAM's HTTP authorizer listener (the gateway's ext_authz, ``authz="http"``) in
the upstreams."""
DEFAULT_RATE_LIMIT_PER_S = 20000
"""Gateway-wide request rate limit: high enough not to cap a benchmark on one machine."""


# What the template's ${ext_authz_service} and ${iam_authz_cluster_options} become, by
# mode: the text is YAML indented for its place in the template.
_AUTHZ_SERVICE = {
    "grpc": """\
                      # Envoy's envoy.service.auth.v3.Authorization/Check: OK lets the
                      # request through with the response's headers, a denial answers
                      # the client with its status, headers and body.
                      grpc_service:
                        envoy_grpc: {{ cluster_name: iam_authz }}
                        timeout: 2s
""",
    "http": """\
                      # 200 lets the request through with the headers below, any other
                      # answer goes to the client as it is; a 5xx is IAM failing (503).
                      http_service:
                        server_uri:
                          uri: http://{host}:{port}
                          cluster: iam_authz
                          timeout: 2s
                        authorization_response:
                          allowed_upstream_headers:
                            patterns:
                              - {{ exact: x-interlock-principal }}
                              - {{ exact: x-interlock-tenant }}
                              - {{ exact: x-interlock-roles }}
                          allowed_client_headers:
                            patterns: [{{ exact: content-type }}, {{ exact: www-authenticate }}]
""",
}
_AUTHZ_CLUSTER_OPTIONS = {
    "grpc": """\
      # HTTP/2 with few streams per connection: busy workers open several
      # connections, which the kernel spreads over IAM's authorizer processes.
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: { max_concurrent_streams: 4 }
""",
    "http": "",
}
_AUTHZ_UPSTREAM = {"grpc": IAM_GRPC, "http": IAM_AUTHZ}


def template_path() -> Path:
    """Path of the gateway template in the checkout."""
    return envoy_dir() / TEMPLATE_NAME


def api_reference_path() -> Path:
    """Path of the API reference page the gateway serves at ``/api/docs``."""
    return envoy_dir() / API_REFERENCE_NAME


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
    authz: AuthzMode = DEFAULT_GATEWAY_AUTHZ,
) -> str:
    """Render the gateway config.

    Args:
        upstreams: ``(host, port)`` of each service's HTTP listener, by service name;
            every one of the seven services must be present, and IAM's authorizer:
            its gRPC listener under :data:`IAM_GRPC` when ``authz`` is ``"grpc"``, its
            HTTP authorizer listener under :data:`IAM_AUTHZ` when it is ``"http"``.
        listener: Address and port the gateway serves users on.
        admin: Address and port of Envoy's admin interface.
        header: Comment lines put before the rendered text (each starting with ``#``).
        rate_limit_per_s: Requests per second the gateway lets through (429 beyond).
            Default: :data:`DEFAULT_RATE_LIMIT_PER_S`.
        authz: How the gateway asks IAM: ``"grpc"`` (Envoy's ext_authz Check) or
            ``"http"`` (IAM's HTTP authorizer, cheaper per request). Default: ``"grpc"``.

    Returns:
        The Envoy YAML.

    Raises:
        KeyError: A service's upstream is missing, or ``authz`` is no mode.
    """
    authz_host, authz_port = upstreams[_AUTHZ_UPSTREAM[authz]]
    values: dict[str, str] = {
        "listener_address": listener[0],
        "listener_port": str(listener[1]),
        "admin_address": admin[0],
        "admin_port": str(admin[1]),
        "iam_authz_host": authz_host,
        "iam_authz_port": str(authz_port),
        "ext_authz_service": _AUTHZ_SERVICE[authz].format(host=authz_host, port=authz_port),
        "iam_authz_cluster_options": _AUTHZ_CLUSTER_OPTIONS[authz],
        "rate_limit_per_s": str(rate_limit_per_s),
        # A JSON string is a YAML double-quoted scalar: the page goes in as one line.
        "api_reference_html": json.dumps(api_reference_path().read_text()),
    }
    for service in SERVICES:
        host, port = upstreams[service.name]
        values[f"{service.name}_host"] = host
        values[f"{service.name}_port"] = str(port)
    text = string.Template(template_path().read_text()).substitute(values)
    return header + text


def render_compose_config() -> str:
    """The gateway config for compose: upstreams by compose service name, default authorizer."""
    header = (
        "# GENERATED from infra/envoy/envoy.yaml.tmpl by\n"
        "# `python -m interlock.devstack render-envoy`: edit the template, not this file.\n"
    )
    upstreams = {service.name: (service.name, service.http_port) for service in SERVICES}
    iam = next(service for service in SERVICES if service.name == "iam")
    assert iam.grpc_port is not None and iam.authz_port is not None
    upstreams[IAM_GRPC] = ("iam", iam.grpc_port)
    upstreams[IAM_AUTHZ] = ("iam", iam.authz_port)
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
