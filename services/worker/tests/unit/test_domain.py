import ipaddress

import pytest

from interlock.worker.domain.addresses import is_reachable, parse_networks
from interlock.worker.domain.failures import classify
from interlock.worker.domain.offsets import PartitionOffsets
from interlock.worker.domain.slots import Slots
from interlock.worker.errors import InvalidParams, TaskCancelled, TaskFailure, WorkerShutdown


def test_offsets_commit_up_to_the_oldest_pending_record() -> None:
    offsets = PartitionOffsets()
    assert offsets.committable() is None
    for offset in (10, 11, 12):
        offsets.received(offset)
    offsets.done(11)
    offsets.done(12)
    assert offsets.committable() == 10
    offsets.committed(10)
    assert offsets.committable() is None
    offsets.done(10)
    assert offsets.committable() == 13
    offsets.committed(13)
    assert offsets.committable() is None
    assert offsets.pending == 0


def test_slots_bound_the_worker_and_each_type() -> None:
    slots = Slots(3, {"http": 1})
    assert slots.can_start("http")
    slots.acquire("http")
    assert not slots.can_start("http")
    assert slots.can_start("noop")
    slots.acquire("noop")
    slots.acquire("noop")
    assert slots.full and not slots.can_start("noop")
    slots.release("http")
    assert slots.can_start("http") and slots.running == 2
    assert slots.running_of("noop") == 2


def test_failures_are_classified() -> None:
    def raised(error: Exception) -> Exception:
        try:
            raise error
        except Exception as caught:
            return caught

    plain = classify(raised(KeyError("missing")))
    assert (plain.type, plain.retryable) == ("KeyError", True)
    assert "KeyError" in plain.traceback_excerpt
    assert classify(InvalidParams("no url")).retryable is False
    assert classify(TaskFailure("x", retryable=False)).retryable is False
    assert classify(TaskFailure("x", type_="Custom")).type == "Custom"
    assert classify(TimeoutError()).type == "TaskTimeout"
    assert classify(TimeoutError()).retryable is True
    assert classify(TaskCancelled("stop")).retryable is False
    assert classify(WorkerShutdown("bye")).retryable is True
    assert len(classify(ValueError("x" * 10_000)).message) <= 2000


@pytest.mark.parametrize(
    ("address", "reachable"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("172.16.5.5", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("0.0.0.0", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_address_guard_denies_private_ranges(address: str, reachable: bool) -> None:
    assert is_reachable(ipaddress.ip_address(address)) is reachable


def test_address_guard_allows_configured_networks() -> None:
    allowed = parse_networks(["127.0.0.0/8", "::1/128"])
    assert is_reachable(ipaddress.ip_address("127.0.0.1"), allowed)
    assert is_reachable(ipaddress.ip_address("::1"), allowed)
    assert is_reachable(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert not is_reachable(ipaddress.ip_address("10.0.0.1"), allowed)
