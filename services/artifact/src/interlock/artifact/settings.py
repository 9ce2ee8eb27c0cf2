"""The artifact service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import SecretStr

from interlock.common.settings import PostgresOptions, ServiceSettings


class ArtifactSettings(ServiceSettings, PostgresOptions):
    """Everything the artifact service reads from its environment; defaults fit ``make up``."""

    service_name: str = "artifact"
    """Default: ``"artifact"``."""
    http_port: int = 8107
    """Default: 8107."""
    postgres_dsn: str = "postgresql://artifact@127.0.0.1:15432/artifact"
    """Default: the ``artifact`` database of the ``make up`` server, as role ``artifact``."""
    s3_endpoint: str = "127.0.0.1:18333"
    """``host:port`` of the S3 API (MinIO in compose). Default: the ``make up`` server."""
    s3_access_key: str = ""
    """S3 access key. Default: none (``make up`` passes its generated key)."""
    s3_secret_key: SecretStr = SecretStr("")
    """S3 secret key, never logged. Default: none."""
    s3_secure: bool = False
    """Use HTTPS for S3. Default: false (loopback or a private network)."""
    s3_bucket: str = "interlock-artifacts"
    """Bucket holding artifact bytes, created at start-up when missing."""
