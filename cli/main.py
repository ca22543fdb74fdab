"""The `beanpay` command: one entry point for operators and developers (also `python -m beanpay`)."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from beanpay.config import ConfigError, Settings, load_settings

DESCRIPTION = """\
beanpay: self-hosted crypto payment engine for coffee commerce.

Configuration comes from BEANPAY_* environment variables (see README); defaults point at
the local stack that `beanpay dev up` runs on 127.0.0.1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="beanpay", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"beanpay {version('beanpay')}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run the local stack (PostgreSQL, Redis, Kafka, anvil, btcd)",
                         description="Start, stop or inspect the local stack of real services on loopback. "
                         "State, logs and download caches live under BEANPAY_STATE_DIR (default ./.beanpay).")
    dev_sub = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    from beanpay.deploy.devstack import SERVICE_NAMES

    for action, text in (("up", "install what is missing and start every service that is not healthy"),
                         ("down", "stop the services"),
                         ("status", "print address, pid, version and health of each service")):
        a = dev_sub.add_parser(action, help=text, description=text)
        a.add_argument("services", nargs="*", metavar="SERVICE",
                       help=f"limit to these services ({', '.join(SERVICE_NAMES)}); default all")
        a.add_argument("--ha", action="store_true",
                       help="the highly available stack instead: Patroni + etcd + HAProxy, three Kafka nodes, "
                       "Redis with Sentinel, two processes of every beanpay service (ports from "
                       "BEANPAY_HA_PORTS_BASE)")
        a.add_argument("--standby", action="store_true",
                       help="with --ha: its standby region instead (region B, ports from "
                       "BEANPAY_HA_STANDBY_PORTS_BASE): a Patroni standby cluster streaming from region A through "
                       "a 40 ms link (toxiproxy), its own Kafka fed by MirrorMaker 2, its own Redis, passive "
                       "beanpay processes, and the front that sends clients to A, else to B")
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

    us = sub.add_parser("users", help="accounts of merchants, staff and operators: create, grant, disable",
                        description="Manage beanpay accounts directly in the database (the first operator is "
                        "made here; after that, owners invite their staff through the API).")
    us_sub = us.add_subparsers(dest="action", required=True)
    uc = us_sub.add_parser("create", help="create an account",
                           description="Create an account. The password is read from --password-file, else asked "
                           "for on the terminal; it is never taken on the command line (shell history, ps).")
    uc.add_argument("--email", required=True)
    uc.add_argument("--name", default=None, help="display name")
    uc.add_argument("--operator", action="store_true", help="a platform operator (every shop, every action)")
    uc.add_argument("--password-file", type=Path, default=None, help="a file whose first line is the password")
    uc.add_argument("--json", action="store_true", help="print the account as JSON")
    ug = us_sub.add_parser("grant", help="give an account a role at a shop",
                           description="Give an account the owner, manager or staff role at a shop (replacing "
                           "the role it had there).")
    ug.add_argument("--email", required=True)
    ug.add_argument("--shop", type=uuid.UUID, required=True)
    ug.add_argument("--role", required=True, choices=["owner", "manager", "staff"])
    ud = us_sub.add_parser("disable", help="disable an account and end its sessions",
                           description="Disable an account: it can no longer sign in and its sessions end at once "
                           "(API processes drop what they cached within seconds).")
    ud.add_argument("--email", required=True)

    sub.add_parser("api", help="serve the HTTP API", description="Serve the HTTP API on uvloop.")
    idx = sub.add_parser("index", help="follow chains and index deposits",
                         description="Follow each chain's node: apply blocks, count confirmations, handle reorgs. "
                         "One follower leads per chain; a second one waits and takes over if the first dies.")
    idx.add_argument("--chain", action="append", help="chain to follow (repeatable; default: every configured chain)")

    chain = sub.add_parser("chain", help="operator view of the chain index: status, reorg, replay",
                           description="Inspect and repair the chain index. Exit codes: 0 ok, 1 the operation "
                           "failed (reason on stderr), 2 bad usage or configuration, 3 status found a problem "
                           "(node unreachable or lagging).")
    chain_sub = chain.add_subparsers(dest="action", required=True, metavar="ACTION")
    st = chain_sub.add_parser("status", help="node tip, indexed tip, lag, finalized height, watched addresses, "
                              "deposits, last reorg", description="Per chain: node tip, indexed tip, lag, "
                              "finalized height, watched addresses, deposits by status, last reorg.")
    st.add_argument("--chain", action="append", help="limit to this chain (repeatable)")
    st.add_argument("--max-lag", type=int, default=6, help="lag above which the exit code is 3 (default 6)")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    rg = chain_sub.add_parser("reorg", help="rewind the index to a height (deposits above it orphaned)",
                              description="Rewind the index to --to-height: deposits above it become orphaned "
                              "(events emitted), the checkpoint moves back, and the follower re-applies the "
                              "node's chain from there. This is also how a halted follower (a reorg deeper than "
                              "the kept window) is released. --dry-run shows what would change and changes nothing.")
    rg.add_argument("--chain", required=True)
    rg.add_argument("--to-height", type=int, required=True)
    rg.add_argument("--dry-run", action="store_true", help="print the deposits and orders affected; change nothing")
    rg.add_argument("--beyond-window", action="store_true",
                    help="allow a height below the kept window (after a reorg deeper than it halted the follower): "
                    "the node's block at that height becomes the index's new base")
    rg.add_argument("--json", action="store_true")
    rp = chain_sub.add_parser("replay", help="re-scan a block range idempotently",
                              description="Re-scan blocks FROM..TO: indexed blocks are checked against the node "
                              "and deposits missing from the index are added; blocks above the indexed tip are "
                              "applied. Replaying a range twice changes nothing.")
    rp.add_argument("--chain", required=True)
    rp.add_argument("--from", dest="start", type=int, required=True)
    rp.add_argument("--to", dest="end", type=int, default=None, help="last height (default: the node's tip)")
    rp.add_argument("--json", action="store_true")
    sub.add_parser("relay", help="publish outbox events to Kafka",
                   description="Publish committed outbox events to Kafka in order per key; several relays "
                   "may run side by side.")
    sub.add_parser("engine", help="settle payments, expire orders and claims, refresh rates",
                   description="The payment engine: drains the deposit work queue (FOR UPDATE SKIP LOCKED), "
                   "expires unpaid orders and unprocessed claims, refreshes exchange rates. Several engines may "
                   "run side by side.")
    wh = sub.add_parser("webhooks", help="merchant webhooks: serve deliveries, redeliver",
                        description="Merchant webhooks signed per Standard Webhooks.")
    wh_sub = wh.add_subparsers(dest="action", required=True, metavar="ACTION")
    wh_sub.add_parser("serve", help="fan events out of Kafka into deliveries and send them",
                      description="Consume order/payment/claim/supply events from Kafka, make one delivery per "
                      "subscribed endpoint, and send due deliveries with retries.")
    rd = wh_sub.add_parser("redeliver", help="queue deliveries again",
                           description="Queue one delivery, or every failed delivery of an endpoint, again.")
    target = rd.add_mutually_exclusive_group(required=True)
    target.add_argument("--delivery", type=uuid.UUID, help="a delivery id")
    target.add_argument("--endpoint", type=uuid.UUID, help="an endpoint id: redeliver all its failed deliveries")
    sub.add_parser("notify", help="tell customers about their orders: email, Web Push, in-app",
                   description="Consume order, payment and refund events from Kafka, make one notification per "
                   "event, channel and recipient (email over BEANPAY_SMTP_HOST, Web Push with "
                   "BEANPAY_VAPID_PRIVATE_KEY, in-app), and send them with retries. Several may run side by side.")
    sub.add_parser("lightning", help="follow Lightning nodes: settle paid invoices, watch node health",
                   description="Follow each lnd node's settled invoices from the last committed settle index and "
                   "settle their payments; read each node's reachability and inbound liquidity every "
                   "BEANPAY_LIGHTNING_HEALTH_SECONDS; cancel invoices that must no longer be paid. One process leads "
                   "each node; several may run side by side.")
    sw = sub.add_parser("sweep", help="deploy and flush the forwarders of paid EVM orders to the treasury",
                        description="Deploy-and-flush, in batches, the CREATE2 forwarders of confirmed orders on "
                        "an EVM chain, paying gas with BEANPAY_SWEEPER_KEY; funds can only reach the treasury.")
    sw.add_argument("--chain", required=True)
    sw.add_argument("--batch", type=int, default=50, help="forwarders per transaction (default 50)")
    sw.add_argument("--dry-run", action="store_true", help="list what would be swept, send nothing")
    sw.add_argument("--json", action="store_true", help="machine-readable output")
    rp = sub.add_parser("outbox-replay", help="publish the last minutes' events again (after a region failover)",
                        description="Put the events published in the last SECONDS back in the outbox, under their "
                        "first ids, for the relay to publish again. Run once a standby region is promoted: its "
                        "Kafka was fed asynchronously (MirrorMaker 2) and may lack the lost region's last events; "
                        "consumers skip what they already recorded. The journal keeps "
                        "BEANPAY_OUTBOX_JOURNAL_SECONDS of events.")
    rp.add_argument("--since", type=float, default=300.0, metavar="SECONDS",
                    help="how far back to publish again (default 300)")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    from beanpay.cli import payouts

    payouts.add_parser(sub)
    wl = sub.add_parser("wallet", help="what shops' wallets hold on chain against the ledger",
                        description="Reconcile a shop's wallets: on-chain holdings (Bitcoin outputs and their spends "
                        "as indexed; EVM balances read from the node) against its ledger balance, and the difference.")
    wl_sub = wl.add_subparsers(dest="action", required=True, metavar="ACTION")
    wb = wl_sub.add_parser("balance", help="on chain vs ledger for one shop",
                           description="On chain vs ledger per chain and asset for one shop: its own wallets "
                           "against its own-wallet balance, and the platform's wallet against all custodial balances.")
    wb.add_argument("--shop", type=uuid.UUID, required=True)
    wb.add_argument("--json", action="store_true", help="machine-readable output")
    ct = sub.add_parser("contracts", help="list the contract artifacts shipped with beanpay",
                        description="The compiled contracts this package deploys and talks to, with the keccak-256 "
                        "of each one's runtime bytecode, to compare with the code deployed on a chain.")
    ct.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("run", help="all-in-one: API, relay, engine, webhooks, notifications, lightning and every "
                   "chain's indexer",
                   description="Run every service in one process (the local default): the API, the outbox "
                   "relay, the payment engine, the webhook sender, the notifier and one indexer per configured "
                   "chain.")
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
    from beanpay.deploy.devstack import stack
    from beanpay.deploy.devstack.process import StackError

    try:
        if args.ha:
            from beanpay.deploy.devstack.ha import stack as ha

            if args.services:
                print("error: --ha takes no service names", file=sys.stderr)
                return 2
            from beanpay.deploy.devstack.ha.ports import region_a, region_b

            region = region_b(settings) if args.standby else region_a(settings)
        elif args.standby:
            print("error: --standby goes with --ha", file=sys.stderr)
            return 2
        if args.action == "up":
            ha.up(settings, region=region) if args.ha else stack.up(settings, args.services)
        elif args.action == "down":
            ha.down(settings, region) if args.ha else stack.down(settings, args.services)
        else:
            rows = ha.status(settings, region) if args.ha else stack.status(settings, args.services)
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

    from beanpay.migrate import MigrationError, migrate

    try:
        applied = asyncio.run(migrate(settings.dsn))
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from beanpay.tokens import Claims, issue

    if not settings.dev_tokens:
        print("error: development tokens are off here (BEANPAY_DEV_TOKENS); sign in or use an API key",
              file=sys.stderr)
        return 2
    if args.role in ("staff", "merchant") and not args.shop:
        print(f"error: --shop is required for role {args.role}", file=sys.stderr)
        return 2
    claims = Claims(sub=args.sub or uuid.uuid4(), role=args.role, shops=list(args.shop))
    print(issue(claims, settings.jwt_secret or "", ttl=args.ttl or settings.jwt_ttl_seconds))
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from beanpay.cli.runner import run_services

    if args.command == "index":
        from beanpay.indexer import registry

        chains = args.chain or registry.chains(settings)
        unknown = set(chains) - set(registry.chains(settings))
        if unknown:
            print(f"error: unknown chain(s) {', '.join(sorted(unknown))}; configured: "
                  f"{', '.join(registry.chains(settings))}", file=sys.stderr)
            return 2
        return run_services(settings, tuple(f"index-{c}" for c in chains))
    if args.command == "run":
        from beanpay.indexer import registry
        from beanpay.services import SERVICES

        singles = tuple(s.name for s in SERVICES if not s.name.startswith("index-"))  # one indexer per chain below
        return run_services(settings, (*singles, *(f"index-{c}" for c in registry.chains(settings))))
    if args.command == "webhooks" and args.action == "redeliver":
        return _redeliver(settings, args)
    return run_services(settings, (args.command,))


def _redeliver(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from beanpay import db
    from beanpay.engine.webhooks.sender import failed_deliveries, redeliver

    async def go() -> int:
        pool = await db.create_pool(settings)
        try:
            ids = [args.delivery] if args.delivery else await failed_deliveries(pool, args.endpoint)
            async with pool.transaction() as conn:
                done = await redeliver(conn, ids)
        finally:
            await pool.close()
        print(f"queued {len(done)} delivery(ies) again")
        return 0 if done or args.endpoint else 1

    return asyncio.run(go())


def _payouts(settings: Settings, args: argparse.Namespace) -> int:
    from beanpay.cli.payouts import run

    return run(settings, args)


def _outbox_replay(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import msgspec

    from beanpay.events.relay import replay_events

    count = asyncio.run(replay_events(settings, args.since))
    print(msgspec.json.encode({"replayed": count}).decode() if args.json
          else f"{count} event(s) queued to publish again")
    return 0


def _wallet(settings: Settings, args: argparse.Namespace) -> int:
    from beanpay.cli.wallets import balance

    return balance(settings, args.shop, as_json=args.json)


def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from beanpay.engine.sweeps import run_sweep

    code: int = asyncio.run(run_sweep(settings, args.chain, batch=args.batch, dry_run=args.dry_run,
                                      as_json=args.json))
    return code


def _chain(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from beanpay.indexer.operator_cli import run_chain_command

    return asyncio.run(run_chain_command(settings, args))


def _contracts(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec
    from eth_utils.crypto import keccak

    from beanpay.chains.evm.artifacts import artifact, names

    rows = []
    for name in names():
        runtime = bytes.fromhex(str(artifact(name).get("deployedBytecode", "")).removeprefix("0x"))
        rows.append({"name": name, "runtime_bytes": len(runtime), "runtime_keccak": "0x" + keccak(runtime).hex()})
    if args.json:
        print(msgspec.json.encode(rows).decode())
    else:
        for r in rows:
            print(f"{r['name']:18} {r['runtime_bytes']:6} bytes  {r['runtime_keccak']}")
    return 0


def _users(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from beanpay.cli.accounts import UsersError, run

    try:
        print(asyncio.run(run(settings, args)))
    except UsersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


_COMMANDS = {"dev": _dev, "migrate": _migrate, "token": _token, "users": _users, "api": _serve, "relay": _serve,
             "run": _serve,
             "index": _serve, "chain": _chain, "engine": _serve, "webhooks": _serve, "notify": _serve,
             "lightning": _serve, "sweep": _sweep,
             "wallet": _wallet, "payouts": _payouts, "outbox-replay": _outbox_replay,
             "contracts": _contracts}

if __name__ == "__main__":
    sys.exit(main())
