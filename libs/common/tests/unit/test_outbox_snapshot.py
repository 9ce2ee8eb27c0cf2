"""How the outbox relay reads a take's snapshot: which transactions it saw over."""

from interlock.common.outbox import Snapshot


def test_a_snapshot_is_read_from_its_text_form() -> None:
    assert Snapshot.parse("748:752:749,751") == Snapshot(748, 752, frozenset({749, 751}))
    assert Snapshot.parse("750:750:") == Snapshot(750, 750, frozenset())


def test_a_snapshot_sees_what_ended_before_it_and_nothing_that_ran_or_came_after() -> None:
    snapshot = Snapshot.parse("748:752:749,751")
    assert snapshot.sees(700)
    assert snapshot.sees(750)
    assert not snapshot.sees(749)  # still running when it was taken
    assert not snapshot.sees(752)  # started after it
    assert not snapshot.sees(9_000)
