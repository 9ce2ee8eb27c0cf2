"""The artifact domain: names, object keys, download file names, ranges, limits."""

from __future__ import annotations

import uuid

import pytest

from interlock.artifact.domain import (
    ArtifactTooLargeError,
    InvalidArtifactError,
    Limits,
    QuotaExceededError,
    RangeNotSatisfiableError,
    check_name,
    check_task_id,
    content_disposition,
    link_lifetime_s,
    object_key,
    parse_range,
)

RUN = uuid.UUID("6f1c3c5e-8a3b-4d4c-9a53-0d7c1f0a9b11")
ARTIFACT = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize("name", ["report.csv", "a b", "résumé.pdf", "..hidden", "x" * 255, "日本"])
def test_safe_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "a\\b",
        "nul\x00",
        "tab\t",
        "del\x7f",
        "c1\x85",
        "bidi\u202e",
        "sep\u2028",
        "é" * 128,
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArtifactError):
        check_name(name)


def test_object_keys_are_predictable_per_tenant_run_and_task() -> None:
    assert object_key("acme", RUN, "build", ARTIFACT) == f"acme/{RUN}/build/{ARTIFACT}"
    assert object_key("acme", RUN, None, ARTIFACT) == f"acme/{RUN}/-/{ARTIFACT}"
    # A tenant with other characters cannot climb out of its prefix.
    assert object_key("../x", RUN, None, ARTIFACT).startswith("~Li4veA/")
    with pytest.raises(InvalidArtifactError):
        check_task_id("-")
    with pytest.raises(InvalidArtifactError):
        check_task_id("a/b")


def test_download_file_names_cannot_break_the_header() -> None:
    value = content_disposition('a";\r\nx: y.txt')
    assert "\r" not in value and "\n" not in value
    assert value.startswith(
        "attachment; filename=\"a_;__x: y.txt\"; filename*=UTF-8''a%22%3B%0D%0Ax"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=0-99", None),  # the whole
        ("bytes=5-1", None),  # invalid: ignored
        ("bytes=0-1,5-6", None),  # several: the whole
        ("items=0-1", None),
    ],
)
def test_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    parsed = parse_range(header, 100)
    assert (None if parsed is None else (parsed.start, parsed.end)) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, 100)


def test_limits() -> None:
    limits = Limits(
        max_artifact_bytes=10, tenant_quota_bytes=25, default_retention_s=60, max_retention_s=3600
    )
    assert limits.room(0) == 10
    assert limits.room(20) == 5
    with pytest.raises(QuotaExceededError):
        limits.room(25)
    with pytest.raises(ArtifactTooLargeError):
        limits.check_size(11, 0)
    with pytest.raises(QuotaExceededError):
        limits.check_size(6, 20)
    assert limits.retention_s(None) == 60
    assert limits.retention_s("1h") == 3600
    for bad in ("2h", "soon", "0s"):
        with pytest.raises(InvalidArtifactError):
            limits.retention_s(bad)
    assert link_lifetime_s(None) == 3600
    assert link_lifetime_s(604800) == 604800
    for lifetime in (0, 604801):
        with pytest.raises(InvalidArtifactError):
            link_lifetime_s(lifetime)
