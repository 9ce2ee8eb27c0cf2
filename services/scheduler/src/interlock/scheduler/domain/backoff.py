"""Retry backoff: exponential, capped, with optional full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable

from interlock.events.v1 import definition_pb2

DEFAULT_INITIAL_INTERVAL_MS = 1000
"""Used when a policy leaves the initial interval at 0."""
DEFAULT_COEFFICIENT = 2.0
"""Used when a policy leaves the coefficient at 0."""


def retry_delay_ms(
    policy: definition_pb2.RetryPolicy,
    failed_attempt: int,
    uniform: Callable[[float, float], float] = random.uniform,
) -> int:
    """How long to wait before the attempt after ``failed_attempt``.

    The ceiling is ``initial * coefficient ** (failed_attempt - 1)``, capped at
    ``max_interval_ms`` when that is set. With full jitter (the default when the
    policy leaves it unspecified) the wait is uniform in ``[0, ceiling]``
    (AWS "full jitter": retries of many runs spread out instead of stampeding);
    ``JITTER_NONE`` waits exactly the ceiling.

    Args:
        policy: The task's retry policy.
        failed_attempt: The attempt that just failed, from 1.
        uniform: Random source ``(low, high) -> float``. Default: ``random.uniform``.

    Returns:
        Milliseconds, at least 0.
    """
    initial = policy.initial_interval_ms or DEFAULT_INITIAL_INTERVAL_MS
    coefficient = policy.backoff_coefficient or DEFAULT_COEFFICIENT
    ceiling = initial * coefficient ** max(failed_attempt - 1, 0)
    if policy.max_interval_ms > 0:
        ceiling = min(ceiling, policy.max_interval_ms)
    if policy.jitter == definition_pb2.RetryPolicy.JITTER_NONE:
        return int(ceiling)
    return max(0, int(uniform(0.0, ceiling)))
