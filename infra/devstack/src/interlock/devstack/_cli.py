"""``python -m interlock.devstack``: the local platform's command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from interlock.devstack import _control
from interlock.devstack._envoy import write_compose_config
from interlock.devstack._stack import (
    DATA_DIR_ENV,
    DEFAULT_GATEWAY_AUTHZ,
    GATEWAY_AUTHZ_ENV,
    INFRA_PROGRAMS,
    KAFKA_PARTITIONS,
    KAFKA_PARTITIONS_ENV,
    PORT_OFFSET_ENV,
    SERVICE_COMMAND_ENV,
    SERVICES,
    Stack,
)

_EPILOG = f"""
environment:
  {DATA_DIR_ENV}      data folder (default: .data at the repository root)
  {PORT_OFFSET_ENV}   added to every port, to run a second stack beside the first
  {KAFKA_PARTITIONS_ENV} partitions of every topic (default: {KAFKA_PARTITIONS})
  {GATEWAY_AUTHZ_ENV} how the gateway asks IAM about each request: grpc
                              (Envoy's ext_authz Check) or http (IAM's HTTP authorizer,
                              less CPU per request); default: {DEFAULT_GATEWAY_AUTHZ}
  {SERVICE_COMMAND_ENV} command run for each service instead of
                              `python -m interlock.<name>` ({{name}}, {{python}} substituted)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interlock.devstack",
        description="Run Interlock locally without Docker: real servers plus the seven "
        "services under supervisord, behind the Envoy gateway.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="start everything and wait until it is ready")
    commands.add_parser("down", help="stop everything `up` started (data is kept)")
    commands.add_parser(
        "clean", help="`down`, then delete everything `up` wrote (data and PostgreSQL's folder)"
    )
    commands.add_parser("status", help="every program with its state, PID and health")
    logs = commands.add_parser("logs", help="follow the logs of one program, or of all")
    logs.add_argument(
        "name",
        nargs="?",
        choices=[*INFRA_PROGRAMS, *(service.name for service in SERVICES), _control.WATCHDOG],
        help="program name (default: all, each line prefixed by its program)",
    )
    commands.add_parser(
        "render-envoy", help="write infra/envoy/envoy.compose.yaml from the template"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    args = _parser().parse_args(argv)
    out = _control.stdout
    if args.command == "render-envoy":
        out(f"wrote {write_compose_config()}")
        return 0
    stack = Stack.from_env()
    if args.command == "up":
        return _control.up(stack, out)
    if args.command == "down":
        return _control.down(stack, out)
    if args.command == "clean":
        return _control.clean(stack, out)
    if args.command == "status":
        return 0 if _control.status(stack, out) else 1
    try:
        return _control.logs(stack, args.name, out)
    except BrokenPipeError:  # `logs | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
