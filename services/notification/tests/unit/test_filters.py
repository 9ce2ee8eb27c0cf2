import pytest

from interlock.notification.domain import (
    Channel,
    InvalidSubscriptionError,
    RunFilter,
    check_events,
    check_target,
)


def test_an_empty_filter_matches_every_run() -> None:
    assert RunFilter().matches("anything", {})


def test_names_match_exactly_and_any_of_them() -> None:
    run_filter = RunFilter(workflows=("etl", "report"))
    assert run_filter.matches("etl", {})
    assert run_filter.matches("report", {})
    assert not run_filter.matches("etl-nightly", {})
    assert not run_filter.matches("ETL", {})


def test_a_prefix_and_labels_must_all_hold() -> None:
    run_filter = RunFilter(workflow_prefix="etl-", labels={"team": "data", "tier": "1"})
    assert run_filter.matches("etl-nightly", {"team": "data", "tier": "1", "x": "y"})
    assert not run_filter.matches("etl-nightly", {"team": "data"})
    assert not run_filter.matches("etl-nightly", {"team": "data", "tier": "2"})
    assert not run_filter.matches("nightly-etl-", {"team": "data", "tier": "1"})


def test_targets_are_checked_by_channel() -> None:
    assert check_target(Channel.WEBHOOK, "https://example.com/hook") == "https://example.com/hook"
    assert check_target(Channel.EMAIL, ["a@example.com", "a@example.com"]) == ["a@example.com"]
    for bad in ("ftp://example.com/", "https://user:pw@example.com/", "/relative", ["x"]):
        with pytest.raises(InvalidSubscriptionError):
            check_target(Channel.WEBHOOK, bad)
    for bad_list in (["not-an-address"], [], "a@example.com", ["a@example.com"] * 21):
        with pytest.raises(InvalidSubscriptionError):
            check_target(Channel.EMAIL, bad_list)


def test_event_names_are_the_documented_ones() -> None:
    assert [e.value for e in check_events(["run.failed", "run.failed"])] == ["run.failed"]
    with pytest.raises(InvalidSubscriptionError):
        check_events(["run.exploded"])
