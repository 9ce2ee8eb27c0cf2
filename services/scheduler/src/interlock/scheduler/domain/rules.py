"""Trigger rules: whether a pending task runs, waits or is skipped, given its upstream.

As in Airflow. Each upstream task counts as a success (succeeded, or a delay whose
timer a user cancelled), a failure (dead-lettered or cancelled), skipped, or not done
yet. A task without upstream tasks runs whatever its rule.

=============  ==========================================  =============================
rule           runs when                                   skipped when
=============  ==========================================  =============================
all_success    every upstream task succeeded (default)     one failed or was skipped
all_done       every upstream task ended                   never
one_success    one upstream task succeeded (at once)       all ended, none succeeded
one_failed     one upstream task failed (at once)          all ended, none failed
none_failed    every upstream task ended, none failed      one failed
=============  ==========================================  =============================

The engine judges a task once every upstream task ended (``one_success`` and
``one_failed`` as soon as one did). A skip propagates through these rules: a task
skipped under ``all_success`` skips its own ``all_success`` downstream, while
``none_failed`` or ``all_done`` joins run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from interlock.events.v1 import definition_pb2


class Outcome(Enum):
    """What one upstream task came to, as trigger rules see it."""

    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    NOT_DONE = "not done"


class Verdict(Enum):
    """What a pending task does now."""

    RUN = "run"
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True)
class Judgement:
    """A verdict and, for a skip, why."""

    verdict: Verdict
    reason: str = ""
    reason_type: str = ""
    """``UpstreamFailed``, ``UpstreamSkipped``, ``NoUpstreamSucceeded``,
    ``NoUpstreamFailed``; empty unless skipped."""


_R = definition_pb2
RULE_NAMES = {
    _R.TRIGGER_RULE_UNSPECIFIED: "all_success",
    _R.TRIGGER_RULE_ALL_SUCCESS: "all_success",
    _R.TRIGGER_RULE_ALL_DONE: "all_done",
    _R.TRIGGER_RULE_ONE_SUCCESS: "one_success",
    _R.TRIGGER_RULE_ONE_FAILED: "one_failed",
    _R.TRIGGER_RULE_NONE_FAILED: "none_failed",
}
"""Each rule's name in definitions."""
DECIDED_EARLY = frozenset({_R.TRIGGER_RULE_ONE_SUCCESS, _R.TRIGGER_RULE_ONE_FAILED})
"""Rules that may decide before every upstream task ended."""
RUN_AFTER_FAILURE = frozenset({_R.TRIGGER_RULE_ALL_DONE, _R.TRIGGER_RULE_ONE_FAILED})
"""Rules of tasks that still run once their run failed (cleanup, failure handlers)."""

_RUN = Judgement(Verdict.RUN)
_WAIT = Judgement(Verdict.WAIT)


def judge(rule: int, upstream: Sequence[tuple[str, Outcome]]) -> Judgement:
    """Decide a pending task by its trigger rule.

    Args:
        rule: A ``TriggerRule`` value (unspecified is ``all_success``).
        upstream: Each upstream task id with its outcome, in dependency order.
    """
    if not upstream:
        return _RUN
    failed = [task_id for task_id, outcome in upstream if outcome is Outcome.FAILURE]
    skipped = [task_id for task_id, outcome in upstream if outcome is Outcome.SKIPPED]
    succeeded = any(outcome is Outcome.SUCCESS for _, outcome in upstream)
    all_done = all(outcome is not Outcome.NOT_DONE for _, outcome in upstream)
    if rule == _R.TRIGGER_RULE_ALL_DONE:
        return _RUN if all_done else _WAIT
    if rule == _R.TRIGGER_RULE_ONE_SUCCESS:
        if succeeded:
            return _RUN
        return _skip("no upstream task succeeded", "NoUpstreamSucceeded") if all_done else _WAIT
    if rule == _R.TRIGGER_RULE_ONE_FAILED:
        if failed:
            return _RUN
        return _skip("no upstream task failed", "NoUpstreamFailed") if all_done else _WAIT
    if failed:
        return _skip(f"upstream task {failed[0]!r} failed", "UpstreamFailed")
    if rule == _R.TRIGGER_RULE_NONE_FAILED:
        return _RUN if all_done else _WAIT
    if skipped:
        return _skip(f"upstream task {skipped[0]!r} was skipped", "UpstreamSkipped")
    return _RUN if all_done else _WAIT


def _skip(reason: str, reason_type: str) -> Judgement:
    return Judgement(Verdict.SKIP, reason, reason_type)
