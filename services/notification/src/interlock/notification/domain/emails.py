"""Email bodies: a plain-text and an HTML rendering of a message, from ``templates/``.

Both say the same: a headline, the run's summary, the failed tasks with their errors,
and a link to the run. Every value is escaped in the HTML one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from interlock.notification.domain.messages import TEST_EVENT

_HEADLINES = {
    "run.started": "Run of {workflow} started",
    "run.succeeded": "Run of {workflow} succeeded",
    "run.failed": "Run of {workflow} failed",
    "run.cancelled": "Run of {workflow} was cancelled",
    "task.dead_lettered": "A task of {workflow} was dead-lettered",
}


@dataclass(frozen=True, kw_only=True)
class Email:
    """A rendered email."""

    subject: str
    text: str
    html: str


@cache
def _template(name: str) -> Template:
    source = resources.files("interlock.notification") / "templates" / name
    return Template(source.read_text(encoding="utf-8"))


def render(message: dict[str, Any], *, subscription: str) -> Email:
    """The email telling ``message`` to the subscription named ``subscription``."""
    data = message["data"]
    if message["type"] == TEST_EVENT:
        subject = f"[Interlock] Test message for {subscription}"
        text = f"{data['message']}\n\nSubscription: {subscription}\n"
        body = (
            f"<p>{html.escape(data['message'])}</p><p>Subscription: {html.escape(subscription)}</p>"
        )
        return Email(
            subject=subject, text=text, html=f"<!doctype html>\n<html><body>{body}</body></html>\n"
        )
    headline = _HEADLINES[message["type"]].format(workflow=data["workflow"])
    duration = "-" if data["duration_ms"] is None else f"{data['duration_ms'] / 1000:.3f} s"
    fields = {
        "headline": headline,
        "workflow": data["workflow"],
        "version": str(data["version"]),
        "run_id": data["run_id"],
        "status": data["status"],
        "started_at": data["started_at"] or "-",
        "finished_at": data["finished_at"] or "-",
        "duration": duration,
        "link": data["links"]["run"],
        "subscription": subscription,
    }
    tasks = data["failed_tasks"]
    text_failures = "".join(
        f"\nFailed task {task['task_id']}: {task['error']['type']}: {task['error']['message']}"
        for task in tasks
    )
    html_failures = ""
    if tasks:
        items = "".join(
            f"<li><code>{html.escape(task['task_id'])}</code>: "
            f"<b>{html.escape(task['error']['type'])}</b>: "
            f"{html.escape(task['error']['message'])}</li>"
            for task in tasks
        )
        html_failures = f"<h3>Failed tasks</h3>\n<ul>{items}</ul>"
    text = _template("message.txt").substitute(
        fields, failures=text_failures + "\n" if tasks else ""
    )
    escaped = {key: html.escape(value) for key, value in fields.items()}
    rendered_html = _template("message.html").substitute(escaped, failures=html_failures)
    return Email(subject=f"[Interlock] {headline}", text=text, html=rendered_html)
