"""Prometheus metrics of the artifact service (served on ``/metrics`` with the others)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from prometheus_client import Counter

__all__ = ["ARTIFACTS_STORED", "BYTES_IN", "BYTES_OUT", "DOWNLOADS_HANDED_OFF", "counted"]

ARTIFACTS_STORED = Counter(
    "interlock_artifact_stored_total",
    "Artifacts made available, by how their bytes came (stream: through the service; "
    "presigned: PUT to S3 directly).",
    ["upload"],
)
BYTES_IN = Counter(
    "interlock_artifact_bytes_in_total",
    "Bytes of the artifacts made available, by how they came (stream, presigned).",
    ["upload"],
)
BYTES_OUT = Counter(
    "interlock_artifact_bytes_out_total",
    "Bytes of artifacts streamed out by the service (pre-signed downloads go to S3 and "
    "are not counted).",
)
DOWNLOADS_HANDED_OFF = Counter(
    "interlock_artifact_downloads_handed_off_total",
    "Downloads the gateway served from S3 on the service's pre-signed redirect (their "
    "bytes are not in bytes_out).",
)


async def counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield ``chunks``, counting their bytes as :data:`BYTES_OUT`; close it when closed."""
    try:
        async for chunk in chunks:
            BYTES_OUT.inc(len(chunk))
            yield chunk
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:  # a download cut short gives its S3 connection back now
            await close()
