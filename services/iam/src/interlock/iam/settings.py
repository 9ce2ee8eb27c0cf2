"""The iam service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from interlock.common.settings import PostgresOptions, ServiceSettings


class IamSettings(ServiceSettings, PostgresOptions):
    """Everything the iam service reads from its environment; defaults fit ``make up``."""

    service_name: str = "iam"
    """Default: ``"iam"``."""
    http_port: int = 8101
    """Default: 8101."""
    postgres_dsn: str = "postgresql://iam@127.0.0.1:15432/iam"
    """Default: the ``iam`` database of the ``make up`` server, as role ``iam``."""
    grpc_host: str = Field(default_factory=lambda data: data["http_host"])
    """Address the gRPC listener (ValidateToken, Envoy's Check) binds. Default:
    :attr:`http_host`'s (loopback under ``make up``; all interfaces in the container
    image, which sets ``INTERLOCK_HTTP_HOST``)."""
    grpc_port: int = 9101
    """Port of the gRPC listener. Default: 9101."""
    grpc_threads: int = 4
    """Threads serving gRPC calls (ValidateToken and the gateway's Check). Default: 4."""
    authz_host: str = Field(default_factory=lambda data: data["http_host"])
    """Address the gateway's HTTP authorizer (Envoy ext_authz ``http_service``) binds.
    Default: :attr:`http_host`'s, as :attr:`grpc_host`."""
    authz_port: int = 9111
    """Port of the gateway's HTTP authorizer. Default: 9111."""
    authorizer_processes: int = Field(default=1, ge=1, le=64)
    """Processes serving the gateway's authorizer (gRPC Check on ``grpc_port``, HTTP on
    ``authz_port``), this one included; above 1 the others share both ports
    (``SO_REUSEPORT``) and learn revocations from PostgreSQL notifications, usually
    within milliseconds. Default: 1."""

    bootstrap_admin_username: str = "admin"
    """User created at first start, with the admin role. Default: ``"admin"``."""
    bootstrap_admin_password: SecretStr | None = None
    """Their password; without it no bootstrap admin is created. Default: unset."""
    bootstrap_admin_tenant: str = "default"
    """Their tenant, created with them; its admins also manage tenants and signing keys.
    Default: ``"default"``."""
    bootstrap_admin_must_change_password: bool = True
    """Whether the bootstrap admin must change the password (``POST
    /api/v1/auth/password``) before their first session: a password read from the
    environment should not stay in use. ``make up`` turns it off. Default: on."""

    access_token_ttl_s: int = 900
    """Lifetime of an access token. Default: 900 s (15 minutes)."""
    refresh_token_ttl_s: int = 30 * 24 * 3600
    """Lifetime of a refresh token (each refresh issues a new one). Default: 30 days."""
    session_cookie_secure: bool = True
    """Whether the browser session cookies (``POST /api/v1/auth/session``) are marked
    ``Secure`` (sent over HTTPS only). ``make up`` turns it off: its gateway is plain
    HTTP on loopback. Default: on."""
    signing_key_rotation_s: int = 7 * 24 * 3600
    """Age at which the signing key is replaced (checked at start and every minute); old
    keys keep validating until their last tokens expire. Default: 7 days."""

    login_max_failures: int = 5
    """Failed logins in a row that lock a name (tenant and username, whether or not the
    user exists) out. Default: 5."""
    login_lockout_s: int = 60
    """First lockout; after it the name has ``login_max_failures`` tries again, and each
    further lockout in a row lasts twice the last, up to ``login_max_lockout_s``.
    Default: 60 s."""
    login_max_lockout_s: int = 900
    """Longest lockout. Default: 900 s (15 minutes)."""
    login_attempts_retention_s: int = 24 * 3600
    """How long the failed attempts of a name nobody tries any more are remembered.
    Default: 1 day."""

    service_credentials: SecretStr | None = None
    """Credentials a worker may present to read tenant secrets for a task
    (:mod:`interlock.common.service_credentials`), comma-separated to rotate. Without
    one no secret is ever handed out. ``make up`` sets one. Default: unset."""
    secret_max_bytes: int = Field(default=65_536, ge=1)
    """Largest secret value (UTF-8 bytes). Default: 64 KiB."""
    secrets_per_tenant: int = Field(default=1000, ge=1)
    """Most secrets a tenant may keep. Default: 1000."""

    key_encryption_keys: SecretStr | None = None
    """Key-encryption keys sealing the signing keys and tenant secrets at rest:
    ``id:base64url-32-bytes``, several comma-separated to rotate (the first seals, all
    unseal; IAM re-seals signing keys with the first at start-up). Required; ``make up``
    generates one into ``.data/secrets.env``. Default: unset (IAM refuses to start)."""
    identity_token_ttl_s: int = Field(default=60, ge=10, le=900)
    """Lifetime of the identity tokens the gateway forwards to services; each is reused
    for half of it. Default: 60 s."""
    api_key_max_lookups: int = Field(default=2, ge=1)
    """API keys looked up in the database at once (keys not in memory); more get 503 at
    once. Keep it below ``grpc_threads``, whose threads wait for these lookups.
    Default: 2."""

    token_cache_size: int = 10000
    """Validated tokens and API keys kept in memory by the authorizer. Default: 10000."""
    api_key_cache_ttl_s: int = 60
    """How long a validated API key is cached (and so how fresh its last-used time is).
    Default: 60 s."""
    revocation_poll_s: float = 1.0
    """How often revocations and signing-key changes made by other processes are read
    even without a PostgreSQL notification. Default: 1 s."""
