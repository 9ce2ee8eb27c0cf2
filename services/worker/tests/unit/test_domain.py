import json

import pytest

from interlock.worker.domain.failures import classify
from interlock.worker.domain.offsets import PartitionOffsets
from interlock.worker.domain.redaction import Redactor, loggable_url
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


def test_redaction_finds_secret_values_raw_and_json_escaped() -> None:
    redactor = Redactor(['tok-"x"-é', "tok", ""])
    assert redactor.text('use tok-"x"-é or tok') == "use [redacted] or [redacted]"
    for ascii_only in (True, False):  # outputs are encoded as UTF-8, not \u escapes
        value = {"seen": 'tok-"x"-é', "ok": "fine"}
        document = json.dumps(value, ensure_ascii=ascii_only).encode()
        assert json.loads(redactor.json(document)) == {"seen": "[redacted]", "ok": "fine"}
    assert not Redactor([""])


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("https://api.example.com/items?page=2", "https://api.example.com/items?page=2"),
        (
            "https://ada:pw@api.example.com:8443/x?access_token=abc&q=1",
            "https://api.example.com:8443/x?access_token=[redacted]&q=1",
        ),
        (
            "http://h/p?X-Amz-Signature=f00&apiKey=k#frag",
            "http://h/p?X-Amz-Signature=[redacted]&apiKey=[redacted]",
        ),
        ("http://[::1", "[redacted]"),
    ],
)
def test_urls_in_log_lines_carry_no_credentials(url: str, logged: str) -> None:
    assert loggable_url(url) == logged
