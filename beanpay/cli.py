"""The `beanpay` command: one entry point for operators and developers."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence

from beanpay.config import ConfigError, Settings, load_settings

DESCRIPTION = """\
beanpay: self-hosted crypto payment engine for coffee commerce.

Configuration comes from BEANPAY_* environment variables (see README); defaults point at
the local stack that `beanpay dev up` runs on 127.0.0.1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="beanpay", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run the local stack (PostgreSQL, Redis, Kafka, anvil, btcd)",
                         description="Start, stop or inspect the local stack of real services on loopback. "
                         "State, logs and download caches live under BEANPAY_STATE_DIR (default ./.beanpay).")
    dev_sub = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    from deploy.devstack.stack import SERVICE_NAMES

    for action, text in (("up", "install what is missing and start every service that is not healthy"),
                         ("down", "stop the services"),
                         ("status", "print address, pid, version and health of each service")):
        a = dev_sub.add_parser(action, help=text, description=text)
        a.add_argument("services", nargs="*", metavar="SERVICE",
                       help=f"limit to these services ({', '.join(SERVICE_NAMES)}); default all")
        if action == "status":
            a.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("migrate", help="apply pending database migrations",
                   description="Apply the numbered SQL migrations not yet recorded in schema_migrations, "
                   "under an advisory lock so concurrent runs are safe.")

    tok = sub.add_parser("token", help="print a signed JWT for local use",
                         description="Print an HS256 JWT signed with BEANPAY_JWT_SECRET.")
    tok.add_argument("--role", required=True, choices=["customer", "staff", "merchant", "operator"])
    tok.add_argument("--sub", type=uuid.UUID, default=None, help="subject (user id); random when omitted")
    tok.add_argument("--shop", type=uuid.UUID, action="append", default=[],
                     help="shop id the staff/merchant role is scoped to (repeatable)")
    tok.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default BEANPAY_JWT_TTL_SECONDS)")

    sub.add_parser("api", help="serve the HTTP API", description="Serve the HTTP API on uvloop.")
    sub.add_parser("relay", help="publish outbox events to Kafka",
                   description="Publish committed outbox events to Kafka in order per key; several relays "
                   "may run side by side.")
    sub.add_parser("run", help="all-in-one: API and outbox relay in one process",
                   description="Run the API and the outbox relay in one process (the local default).")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from beanpay.logs import configure_logging

    configure_logging(settings)
    handler = _COMMANDS[args.command]
    return handler(settings, args)


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.devstack import stack
    from deploy.devstack.process import StackError

    try:
        if args.action == "up":
            stack.up(settings, args.services)
        elif args.action == "down":
            stack.down(settings, args.services)
        else:
            rows = stack.status(settings, args.services)
            if args.json:
                import msgspec

                print(msgspec.json.encode(rows).decode())
            else:
                print(stack.format_status(rows))
            return 0 if all(r.healthy for r in rows) else 1
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from beanpay.migrate import migrate

    applied = asyncio.run(migrate(settings.dsn))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from beanpay.tokens import Claims, issue

    if args.role in ("staff", "merchant") and not args.shop:
        print(f"error: --shop is required for role {args.role}", file=sys.stderr)
        return 2
    claims = Claims(sub=args.sub or uuid.uuid4(), role=args.role, shops=list(args.shop))
    print(issue(claims, settings.jwt_secret or "", ttl=args.ttl or settings.jwt_ttl_seconds))
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from beanpay.services import run_services

    wanted = {"api": ("api",), "relay": ("relay",), "run": ("api", "relay")}[args.command]
    return run_services(settings, wanted)


_COMMANDS = {"dev": _dev, "migrate": _migrate, "token": _token, "api": _serve, "relay": _serve, "run": _serve}

if __name__ == "__main__":
    sys.exit(main())
