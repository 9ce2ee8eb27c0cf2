"""``interlock subscriptions list|create|delete|test`` and ``deliveries list`` (notification)."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from interlock.cli._context import client_for
from interlock.cli._output import CliError, Column, Format, OutputOption, chosen, emit, say
from interlock.client import EVENTS

subscriptions = typer.Typer(
    help="Who is told when runs end: email and signed webhooks.", no_args_is_help=True
)
deliveries = typer.Typer(
    help="Messages sent to subscriptions, and their attempts.", no_args_is_help=True
)

SubscriptionArgument = Annotated[str, typer.Argument(help="The subscription's id.")]


@subscriptions.command("list")
def list_subscriptions(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every subscription of the tenant.

    Example: interlock subscriptions list -o yaml
    """
    with client_for(ctx) as client:
        items = list(client.subscriptions.list())
    emit(
        items,
        output,
        [
            Column("id", lambda s: s.id, whole=True),
            Column("name", lambda s: s.name),
            Column("channel", lambda s: s.channel),
            Column("target", lambda s: s.target),
            Column("events", lambda s: s.events),
            Column("enabled", lambda s: "yes" if s.enabled else "no"),
        ],
    )


@subscriptions.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What it is for.")],
    event: Annotated[
        list[str], typer.Option("--event", "-e", help=f"Repeatable: {', '.join(EVENTS)}.")
    ],
    webhook: Annotated[str | None, typer.Option(help="Deliver to this URL, signed.")] = None,
    email: Annotated[
        list[str] | None, typer.Option(help="Deliver to this address. Repeatable.")
    ] = None,
    workflow: Annotated[
        list[str] | None, typer.Option(help="Only this workflow's runs. Repeatable.")
    ] = None,
    workflow_prefix: Annotated[
        str | None, typer.Option(help="Only workflows whose name starts with it.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Subscribe a webhook or email addresses to run events.

    A webhook's signing secret (whsec_...) is shown once, in this command's answer.

    Example: interlock subscriptions create ops --webhook https://ops.example/hook -e run.failed
    """
    if (webhook is None) == (not email):
        raise CliError("give --webhook or --email (not both)")
    channel, target = ("webhook", webhook) if webhook else ("email", email)
    assert target is not None
    with client_for(ctx) as client:
        created = client.subscriptions.create(
            name, channel, target, event, workflows=workflow, workflow_prefix=workflow_prefix
        )
    if chosen(output) is Format.TABLE:
        say(f"subscription [bold]{created.name}[/] created: {created.id}")
        if created.secret:
            say(f"signing secret (shown once): {created.secret}")
    else:
        emit(created, output, [])


@subscriptions.command("delete")
def delete(ctx: typer.Context, subscription_id: SubscriptionArgument) -> None:
    """Delete a subscription.

    Example: interlock subscriptions delete 9b2e...
    """
    with client_for(ctx) as client:
        client.subscriptions.delete(subscription_id)
    say(f"subscription {subscription_id} deleted")


@subscriptions.command("test")
def test(ctx: typer.Context, subscription_id: SubscriptionArgument) -> None:
    """Send a test event to the subscription's target.

    Example: interlock subscriptions test 9b2e...
    """
    with client_for(ctx) as client:
        client.subscriptions.test(subscription_id)
    say(f"test event sent to subscription {subscription_id}")


@deliveries.command("list")
def list_deliveries(
    ctx: typer.Context,
    subscription: Annotated[str | None, typer.Option(help="Only this subscription's.")] = None,
    run: Annotated[str | None, typer.Option(help="Only this run's.")] = None,
    status: Annotated[str | None, typer.Option(help="Only deliveries in this status.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 50,
    output: OutputOption = None,
) -> None:
    """Deliveries, newest first, with their attempts.

    Example: interlock deliveries list --subscription 9b2e... --status failed
    """
    with client_for(ctx) as client:
        found = client.deliveries.list(
            subscription_id=subscription, run_id=run, status=status, page_size=min(limit, 100)
        )
        items = list(itertools.islice(found, limit))
    emit(
        items,
        output,
        [
            Column("id", lambda d: d.id, whole=True),
            Column("subscription", lambda d: d.subscription_id, whole=True),
            Column("run", lambda d: d.run_id, whole=True),
            Column("event", lambda d: d.event_type),
            Column("status", lambda d: d.status),
            Column(
                "attempts",
                lambda d: len(d.attempts) if isinstance(d.attempts, list) else d.attempts,
            ),
            Column("created", lambda d: d.created_at),
        ],
    )


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.add_typer(subscriptions, name="subscriptions")
    app.add_typer(deliveries, name="deliveries")
