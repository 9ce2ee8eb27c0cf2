"""The artifact service's settings, read from ``INTERLOCK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
    """``host:port`` of the S3 API (MinIO in compose). Default: the ``make up`` server.
    Pre-signed URLs are signed for this host: the gateway forwards them to S3 with it."""
    s3_access_key: str = ""
    """S3 access key. Default: none (``make up`` passes its generated key)."""
    s3_secret_key: SecretStr = SecretStr("")
    """S3 secret key, never logged. Default: none."""
    s3_secure: bool = False
    """Use HTTPS for S3. Default: false (loopback or a private network)."""
    s3_region: str = "us-east-1"
    """Region pre-signed URLs are signed for (SeaweedFS and MinIO accept any). Default:
    ``us-east-1``."""
    s3_bucket: str = "interlock-artifacts"
    """Bucket holding artifact bytes, created at start-up when missing."""
    s3_part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    """Uploads larger than this go to S3 in parts of this size (S3 multipart), so a
    part is all an upload holds in memory. Default: 8 MiB (S3's least is 5 MiB)."""

    public_url: str | None = None
    """Base URL clients reach the gateway at, e.g. ``https://interlock.example.com``;
    pre-signed URLs start with it. Default: unset, the scheme and ``Host`` of the request
    that asked for the URL (right whenever the client asked through the gateway)."""
    scheduler_grpc_target: str = "127.0.0.1:9103"
    """The scheduler's gRPC listener, which says whether an upload's run exists in the
    caller's tenant. Default: the ``make up`` address."""
    scheduler_timeout_ms: int = Field(default=5_000, ge=1)
    """How long asking the scheduler about a run may take (503 beyond). Default: 5000 ms."""
    service_credentials: SecretStr | None = None
    """Credentials workers present to upload and read artifacts for their tasks
    (:mod:`interlock.common.service_credentials`), comma-separated to rotate. Without
    one, no worker can store artifacts. Default: unset."""

    max_artifact_bytes: int = Field(default=5 * 1024**3, ge=1)
    """Largest artifact (413 beyond). Default: 5 GiB."""
    tenant_quota_bytes: int = Field(default=100 * 1024**3, ge=1)
    """Most bytes one tenant keeps, pending uploads included (413 beyond). Default: 100 GiB."""
    default_retention_s: int = Field(default=30 * 86_400, ge=1)
    """How long an artifact is kept when its upload asks nothing else. Default: 30 days."""
    max_retention_s: int = Field(default=366 * 86_400, ge=1)
    """Longest retention an upload may ask for. Default: 366 days."""
    upload_grace_s: int = Field(default=3600, ge=1)
    """How long an upload may stay pending beyond its URL's expiry (a streamed upload:
    from its start) before the sweeper removes its row and bytes; also how old an object
    without a row must be before it is removed as an orphan. Default: 1 h."""
    collect_interval_s: float = Field(default=60.0, gt=0)
    """Time between passes of the retention collector and the orphan sweeper.
    Default: 60 s."""
    collect_batch_size: int = Field(default=500, ge=1)
    """Most artifacts one collector pass deletes. Default: 500."""
