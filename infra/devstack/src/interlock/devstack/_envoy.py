"""Render the gateway's Envoy config from ``infra/envoy/envoy.yaml.tmpl``."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from pathlib import Path

from interlock.devstack._paths import console_dir, envoy_dir
from interlock.devstack._stack import DEFAULT_GATEWAY_AUTHZ, SERVICES, AuthzMode

TEMPLATE_NAME = "envoy.yaml.tmpl"
COMPOSE_NAME = "envoy.compose.yaml"
API_REFERENCE_NAME = "api-reference.html"

COMPOSE_LISTENER = ("0.0.0.0", 8080)  # noqa: S104 - inside its container, behind compose's port map
"""Listener address in compose."""
COMPOSE_ADMIN = ("127.0.0.1", 9901)
"""Admin address in compose: the container's loopback (the healthcheck asks it there)."""
COMPOSE_STATS = ("0.0.0.0", 9902)  # noqa: S104 - reached by Prometheus on the compose network
"""Stats listener in compose (``/stats/prometheus`` only), never published on the host."""

IAM_GRPC = "iam-grpc"
"""Key of IAM's gRPC listener (the gateway's ext_authz Check, ``authz="grpc"``) in the
upstreams."""
IAM_AUTHZ = "iam-authz"
"""Key of IAM's HTTP authorizer listener (the gateway's ext_authz, ``authz="http"``) in
the upstreams."""
S3_OBJECTS = "s3"
"""Key of the S3 API in the upstreams: the gateway forwards pre-signed artifact URLs to it,
with the ``Host`` they were signed for (its ``host:port``). Optional: without it, the
``make up`` address :data:`DEFAULT_S3_UPSTREAM`."""
DEFAULT_S3_UPSTREAM = ("127.0.0.1", 18333)
"""The S3 upstream when none is given."""
DEFAULT_RATE_LIMIT_PER_S = 20000
"""Gateway-wide request rate limit: high enough not to cap a benchmark on one machine."""
DEFAULT_LOGIN_RATE_LIMIT_PER_MIN = 30
"""Login and password-change attempts per client address and minute."""


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
                              - {{ exact: x-interlock-identity }}
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

# What ${stats_listener} and ${admin_cluster} become when a stats listener is asked for:
# Envoy proxying to its own admin listener, with a route for the one read-only path.
_STATS_LISTENER = """\
    # Prometheus stats without the rest of the admin API: GET /stats/prometheus goes
    # to the admin listener on loopback, every other request is a 404.
    - name: stats
      address:
        socket_address: {{ address: {host}, port_value: {port} }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": {manager_type}
                stat_prefix: stats
                codec_type: AUTO
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                route_config:
                  name: stats
                  virtual_hosts:
                    - name: stats
                      domains: ["*"]
                      routes:
                        - name: prometheus
                          match:
                            path: /stats/prometheus
                            headers: [{{ name: ":method", string_match: {{ exact: GET }} }}]
                          route: {{ cluster: envoy_admin, timeout: 10s }}
                        - name: not-found
                          match: {{ prefix: "/" }}
                          direct_response: {{ status: 404 }}
"""
_MANAGER_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ADMIN_CLUSTER = """\
    # Envoy's own admin listener, for the stats listener's one route.
    - name: envoy_admin
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: envoy_admin
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {{ address: {host}, port_value: {port} }}
"""
_LOOPBACK = frozenset({"127.0.0.1", "::1"})

# The web console (console/): static files the gateway serves itself, inlined in its
# config like the API reference (so compose needs no mount), public (they hold no data;
# every page asks the API, which authorizes each request). `/` is the page,
# `/console/<file>` its modules and style sheet.
_CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_CONSOLE_ROUTE = """                        - name: console-{name}
                          match:
                            path: {path}
                            headers: [{{ name: ":method", string_match: {{ exact: GET }} }}]
                          direct_response:
                            status: 200
                            body: {{ inline_string: {body} }}
                          response_headers_to_add:
                            - header: {{ key: content-type, value: "{content_type}" }}
                              append_action: OVERWRITE_IF_EXISTS_OR_ADD
                            - header: {{ key: cache-control, value: no-cache }}
                              append_action: OVERWRITE_IF_EXISTS_OR_ADD
                            - header: {{ key: x-content-type-options, value: nosniff }}
                              append_action: OVERWRITE_IF_EXISTS_OR_ADD
                            - header: {{ key: content-security-policy, value: "{policy}" }}
                              append_action: OVERWRITE_IF_EXISTS_OR_ADD
                          typed_per_filter_config: *public
"""


def console_routes() -> str:
    """The gateway routes serving every file of ``console/`` (YAML for the template)."""
    routes = []
    for file in sorted(console_dir().rglob("*")):
        content_type = _CONSOLE_TYPES.get(file.suffix)
        if content_type is None or not file.is_file():
            continue
        relative = file.relative_to(console_dir()).as_posix()
        path = "/" if relative == "index.html" else f"/console/{relative}"
        routes.append(
            _CONSOLE_ROUTE.format(
                name=relative.replace("/", "-").replace(".", "-"),
                path=path,
                # A JSON string is a YAML double-quoted scalar: the file goes in as one line.
                body=json.dumps(file.read_text()),
                content_type=content_type,
                policy=_CONSOLE_POLICY,
            )
        )
    return "".join(routes)


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
    login_rate_limit_per_min: int = DEFAULT_LOGIN_RATE_LIMIT_PER_MIN,
    authz: AuthzMode = DEFAULT_GATEWAY_AUTHZ,
    stats: tuple[str, int] | None = None,
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
        login_rate_limit_per_min: Login and password-change requests each client
            address may make per minute (429 beyond). Default:
            :data:`DEFAULT_LOGIN_RATE_LIMIT_PER_MIN`.
        authz: How the gateway asks IAM: ``"grpc"`` (Envoy's ext_authz Check) or
            ``"http"`` (IAM's HTTP authorizer, cheaper per request). Default: ``"grpc"``.
        stats: Address and port of a listener serving only ``GET /stats/prometheus``
            (proxied to the admin interface), for a scraper that must not reach the
            admin API. Default: none.

    Returns:
        The Envoy YAML.

    Raises:
        KeyError: A service's upstream is missing, or ``authz`` is no mode.
        ValueError: ``stats`` is asked for while the admin interface is not on loopback
            (the point of the stats listener is an admin API nobody else reaches).
    """
    stats_listener = admin_cluster = ""
    if stats is not None:
        if admin[0] not in _LOOPBACK:
            raise ValueError(f"the admin interface must be on loopback, not {admin[0]}")
        stats_listener = _STATS_LISTENER.format(
            host=stats[0], port=stats[1], manager_type=_MANAGER_TYPE
        )
        admin_cluster = _ADMIN_CLUSTER.format(host=admin[0], port=admin[1])
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
        "stats_listener": stats_listener,
        "admin_cluster": admin_cluster,
        "login_rate_limit_per_min": str(login_rate_limit_per_min),
        # A JSON string is a YAML double-quoted scalar: the page goes in as one line.
        "api_reference_html": json.dumps(api_reference_path().read_text()),
        "console_routes": console_routes(),
    }
    s3_host, s3_port = upstreams.get(S3_OBJECTS, DEFAULT_S3_UPSTREAM)
    values |= {"s3_host": s3_host, "s3_port": str(s3_port), "s3_authority": f"{s3_host}:{s3_port}"}
    for service in SERVICES:
        host, port = upstreams[service.name]
        values[f"{service.name}_host"] = host
        values[f"{service.name}_port"] = str(port)
    text = string.Template(template_path().read_text()).substitute(values)
    return header + text


def render_compose_config() -> str:
    """The gateway config for compose: upstreams by compose service name.

    The default authorizer, the admin API on the container's loopback, and the stats
    listener Prometheus scrapes.
    """
    header = (
        "# GENERATED from infra/envoy/envoy.yaml.tmpl by\n"
        "# `python -m interlock.devstack render-envoy`: edit the template, not this file.\n"
    )
    upstreams = {service.name: (service.name, service.http_port) for service in SERVICES}
    iam = next(service for service in SERVICES if service.name == "iam")
    assert iam.grpc_port is not None and iam.authz_port is not None
    upstreams[IAM_GRPC] = ("iam", iam.grpc_port)
    upstreams[IAM_AUTHZ] = ("iam", iam.authz_port)
    upstreams[S3_OBJECTS] = ("minio", 9000)
    return render_envoy_config(
        upstreams=upstreams,
        listener=COMPOSE_LISTENER,
        admin=COMPOSE_ADMIN,
        header=header,
        stats=COMPOSE_STATS,
    )


def write_compose_config() -> Path:
    """Write :func:`render_compose_config` to ``infra/envoy/envoy.compose.yaml``."""
    path = compose_config_path()
    path.write_text(render_compose_config())
    return path
