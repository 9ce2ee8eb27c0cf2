"""Subscriptions: who is told about which events, how, and which runs they care about."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from interlock.notification.domain.errors import InvalidSubscriptionError

MAX_NAME_CHARS = 200
"""Longest subscription name."""
MAX_URL_CHARS = 2048
"""Longest webhook URL."""
MAX_EMAIL_RECIPIENTS = 20
"""Most addresses one email subscription sends to."""
MAX_FILTER_ITEMS = 50
"""Most workflow names, and most labels, in one filter."""

_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


class Channel(enum.StrEnum):
    """How a subscription is told."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class EventName(enum.StrEnum):
    """What a subscription can be told about (the ``type`` of a webhook's body)."""

    RUN_STARTED = "run.started"
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    TASK_DEAD_LETTERED = "task.dead_lettered"


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """Which runs a subscription cares about; an empty filter matches every run.

    Attributes:
        workflows: Exact workflow names; any of them matches. Default: any name.
        workflow_prefix: A prefix the workflow name must start with. Default: any.
        labels: Labels the run's workflow must carry, each with this value. Default: none.
    """

    workflows: tuple[str, ...] = ()
    workflow_prefix: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def matches(self, workflow: str, labels: Mapping[str, str]) -> bool:
        """Whether a run of ``workflow`` whose workflow carries ``labels`` matches."""
        if self.workflows and workflow not in self.workflows:
            return False
        if not workflow.startswith(self.workflow_prefix):
            return False
        return all(labels.get(key) == value for key, value in self.labels.items())


def check_name(name: str) -> str:
    """The name, stripped; 422 when empty or too long."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidSubscriptionError(f"name: 1 to {MAX_NAME_CHARS} characters")
    return name


def check_events(events: Sequence[str]) -> list[EventName]:
    """The event names, deduplicated; 422 when empty or one is unknown."""
    if not events:
        raise InvalidSubscriptionError("events: name at least one")
    known = {item.value for item in EventName}
    unknown = [name for name in events if name not in known]
    if unknown:
        raise InvalidSubscriptionError(
            f"events: {unknown[0]!r} is not one of {', '.join(sorted(known))}"
        )
    return [EventName(name) for name in dict.fromkeys(events)]


def check_filter(run_filter: RunFilter) -> RunFilter:
    """The filter; 422 when it holds too much."""
    if len(run_filter.workflows) > MAX_FILTER_ITEMS or len(run_filter.labels) > MAX_FILTER_ITEMS:
        raise InvalidSubscriptionError(
            f"filter: at most {MAX_FILTER_ITEMS} workflows and {MAX_FILTER_ITEMS} labels"
        )
    texts = [*run_filter.workflows, run_filter.workflow_prefix, *run_filter.labels]
    if any(len(text) > MAX_NAME_CHARS for text in [*texts, *run_filter.labels.values()]):
        raise InvalidSubscriptionError(f"filter: each value at most {MAX_NAME_CHARS} characters")
    return run_filter


def check_webhook_url(url: object) -> str:
    """A webhook target: an absolute http(s) URL without credentials; 422 otherwise.

    Where it leads is vetted separately, by address (the SSRF guard).
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise InvalidSubscriptionError(f"target: a URL of at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        raise InvalidSubscriptionError(f"target: not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSubscriptionError("target: an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidSubscriptionError("target: no credentials in the URL")
    if any(char.isspace() for char in url):
        raise InvalidSubscriptionError("target: no spaces in the URL")
    return url


def check_email_recipients(recipients: object) -> list[str]:
    """An email target: a list of 1 to 20 addresses; 422 otherwise."""
    if (
        not isinstance(recipients, list)
        or not 1 <= len(recipients) <= MAX_EMAIL_RECIPIENTS
        or not all(isinstance(item, str) for item in recipients)
    ):
        raise InvalidSubscriptionError(
            f"target: a list of 1 to {MAX_EMAIL_RECIPIENTS} email addresses"
        )
    for address in recipients:
        if _EMAIL.fullmatch(address) is None:
            raise InvalidSubscriptionError(f"target: {address[:100]!r} is not an email address")
    return list(dict.fromkeys(recipients))


def check_target(channel: Channel, target: object) -> str | list[str]:
    """The target ``channel`` needs: a URL for a webhook, addresses for email."""
    if channel is Channel.WEBHOOK:
        return check_webhook_url(target)
    return check_email_recipients(target)
