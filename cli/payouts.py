"""`beanpay payouts`: the operator's side of payouts at a terminal: see what waits, approve, put the
approved Bitcoin payouts into one PSBT for the operator's wallet, submit it signed, and cancel one no
transaction pays. Same rules, ledger entries and audit rows as the API."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path
from typing import Any

import msgspec

from beanpay import db
from beanpay.audit import Actor
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.engine.transfers import bitcoin, cancellation, payouts, service
from beanpay.engine.transfers.service import TransferRow
from beanpay.errors import DomainError, InvalidInput

CLI = Actor(id=None, role="operator-cli")


class PayoutsError(Exception):
    pass


class _Shown(Exception):
    """A dry run's batch, raised out of its transaction so that it rolls back."""

    def __init__(self, rows: list[TransferRow]) -> None:
        self.rows = rows


class Line(msgspec.Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    chain: str
    asset: str
    amount: str | None
    status: str
    destination: str | None
    batch_id: uuid.UUID | None
    txid: str | None
    network_fee: str | None


def _line(r: TransferRow) -> Line:
    return Line(r.id, r.shop_id, r.chain, r.asset, None if r.amount is None else str(r.amount), r.status,
                r.destination, r.batch_id, r.txid, None if r.network_fee is None else str(r.network_fee))


def _print(rows: list[TransferRow], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        print(msgspec.json.encode({"payouts": [_line(r) for r in rows], **(extra or {})}).decode())
        return
    for r in rows:
        print(f"{r.id}  shop {str(r.shop_id)[:8]}  {r.amount} {r.asset} on {r.chain} -> {r.destination}  "
              f"{r.status}{'  batch ' + str(r.batch_id) if r.batch_id else ''}")
    for key, value in (extra or {}).items():
        if key != "psbt":
            print(f"{key}: {value}")
    if not rows:
        print("no payouts")


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings)
    rpc = BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or "")
    secret = settings.jwt_secret or ""
    try:
        if args.action == "list":
            async with pool.acquire() as conn:
                _print(await service.awaiting_approval(conn, args.limit), args.json)
            return 0
        if args.action == "approve":
            async with pool.transaction() as conn:
                payout = await service.lock(conn, args.id)
                if payout.kind != "payout":
                    raise PayoutsError(f"{args.id} is a {payout.kind}, not a payout")
                _print([await payouts.approve(conn, settings, payout, actor=CLI)], args.json)
            return 0
        if args.action == "batch":
            try:
                async with pool.transaction() as conn:
                    rows = await payouts.batch(conn, settings, rpc, limit=args.limit)
                    if args.dry_run:
                        raise _Shown(rows)  # rolls the batch back: nothing is kept
            except _Shown as shown:
                rows = shown.rows
            fee = sum(r.network_fee or 0 for r in rows)
            extra: dict[str, Any] = {"batch_id": None if args.dry_run or not rows else str(rows[0].batch_id),
                                     "network_fee": str(fee), "dry_run": args.dry_run,
                                     "psbt": None if args.dry_run or not rows else rows[0].psbt}
            if rows and args.psbt_out and not args.dry_run:
                args.psbt_out.write_text(rows[0].psbt or "")
            _print(rows, args.json, extra)
            if not args.json and rows and not args.psbt_out and not args.dry_run:
                print(rows[0].psbt)
            return 0
        if args.action == "cancel":
            async with pool.transaction() as conn:
                payout = await service.lock(conn, args.id)
                if payout.kind != "payout":
                    raise PayoutsError(f"{args.id} is a {payout.kind}, not a payout")
                _print([await cancellation.cancel(conn, settings, rpc, payout, operator=True,
                                                         not_sent=args.not_sent, actor=CLI)], args.json)
            return 0
        if args.action == "submit":
            signed = args.psbt_file.read_text().strip()
            async with pool.transaction() as conn:
                rows = await payouts.of_batch(conn, args.batch)
                if not rows:
                    raise PayoutsError(f"no batch {args.batch}")
                _print(await bitcoin.submit(conn, rpc, rows, signed, secret=secret, actor=CLI), args.json)
            return 0
        raise PayoutsError(f"unknown action {args.action}")
    finally:
        await rpc.close()
        await pool.close()


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(settings, args))
    except InvalidInput as exc:
        print("error: " + "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors))
        return 2
    except (DomainError, PayoutsError) as exc:
        print(f"error: {exc}")
        return 1


def add_parser(sub: Any) -> None:
    po = sub.add_parser("payouts", help="payouts of custodial balances: list, approve, batch, submit, cancel",
                        description="The operator's side of payouts: what waits for approval, approving one, "
                        "putting the approved Bitcoin payouts into one PSBT for the operator's wallet, and "
                        "submitting it signed (EVM payouts are sent by the platform's payout wallet).")
    po_sub = po.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = po_sub.add_parser("list", help="payouts waiting for approval")
    ls.add_argument("--limit", type=int, default=100)
    ap = po_sub.add_parser("approve", help="approve a payout (the shop's custodial balance is debited)")
    ap.add_argument("--id", type=uuid.UUID, required=True)
    bt = po_sub.add_parser("batch", help="put the approved Bitcoin payouts into one PSBT",
                           description="Build one PSBT paying every approved Bitcoin payout (up to --limit), from "
                           "the platform's wallet, with change to its next change address. Sign it in the "
                           "operator's wallet, then `beanpay payouts submit`.")
    bt.add_argument("--limit", type=int, default=100, help="payouts per transaction (default 100)")
    bt.add_argument("--dry-run", action="store_true", help="show the batch and its fee, keep nothing")
    bt.add_argument("--psbt-out", type=Path, default=None, help="write the PSBT (base64) to this file")
    sb = po_sub.add_parser("submit", help="submit a batch's PSBT signed by the operator's wallet")
    sb.add_argument("--batch", type=uuid.UUID, required=True)
    sb.add_argument("--psbt-file", type=Path, required=True, help="the signed PSBT, base64")
    cn = po_sub.add_parser("cancel", help="cancel a payout no transaction pays (the shop's balance is credited back)",
                           description="Cancel a payout. Once approved, one your own wallet was to send needs "
                           "--not-sent: your statement that no transaction was sent for it (kept in the audit "
                           "trail); one sent before and dropped is refused while that transaction may still be "
                           "mined (send it again instead: the retry conflicts with it).")
    cn.add_argument("--id", type=uuid.UUID, required=True)
    cn.add_argument("--not-sent", action="store_true", help="state that no transaction was sent for this payout")
    for p in (ls, ap, bt, sb, cn):
        p.add_argument("--json", action="store_true", help="machine-readable output")
