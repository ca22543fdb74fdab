"""`beanpay chain ...`: formatting and exit codes around indexer.operator."""

from __future__ import annotations

import argparse
import sys

import msgspec

from beanpay import db
from beanpay.config import Settings, UnknownChain
from beanpay.indexer import operator, registry

OK, FAILED, USAGE, PROBLEM = 0, 1, 2, 3


def _print_json(data: object) -> None:
    print(msgspec.json.encode(data).decode())


async def run_chain_command(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings)
    try:
        if args.action == "status":
            return await _status(settings, pool, args)
        if args.action == "reorg":
            plan = await operator.reorg(settings, pool, args.chain, args.to_height, dry_run=args.dry_run,
                                        beyond_window=args.beyond_window)
            if args.json:
                _print_json(plan)
            else:
                verb = "would orphan" if not plan.applied else "orphaned"
                print(f"{plan.chain}: rewind {plan.from_tip} -> {plan.to_height}"
                      f"{' (dry run: nothing changed)' if not plan.applied else ''}")
                print(f"{verb} {len(plan.deposits)} deposit(s)")
                for d in plan.deposits:
                    print(f"  height {d.block_height}  {d.txid}:{d.output_index}  {d.amount} to {d.address}  "
                          f"[{d.status}]  order {d.order_id or '-'}")
            return OK
        summary = await operator.replay(settings, pool, args.chain, args.start, args.end,
                                        progress=not args.json and sys.stderr.isatty())
        if args.json:
            _print_json(summary)
        else:
            print(f"{summary.chain}: replayed {summary.from_height}..{summary.to_height}: "
                  f"{summary.blocks_scanned} block(s) scanned, {summary.blocks_applied} newly applied, "
                  f"{summary.deposits_added} deposit(s) added")
        return OK
    except (operator.OperatorError, UnknownChain) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    finally:
        await pool.close()


async def _status(settings: Settings, pool: db.Pool, args: argparse.Namespace) -> int:
    rows = [await operator.status(settings, pool, c) for c in (args.chain or registry.chains(settings))]
    if args.json:
        _print_json(rows)
    else:
        print(f"{'CHAIN':6} {'NODE TIP':>9} {'INDEXED':>9} {'LAG':>5} {'FINALIZED':>10} {'CONF':>5} "
              f"{'WATCHED':>8}  DEPOSITS                      LAST REORG")
        for r in rows:
            deposits = ", ".join(f"{k} {v}" for k, v in sorted(r.deposits.items())) or "-"
            reorg = ("-" if r.last_reorg_at is None
                     else f"{r.last_reorg_at:%Y-%m-%d %H:%M:%S} depth {r.last_reorg_depth}")
            print(f"{r.chain:6} {_n(r.node_tip):>9} {_n(r.indexed_tip):>9} {_n(r.lag):>5} "
                  f"{_n(r.finalized_height):>10} {r.confirmations_required:>5} {r.watched_addresses:>8}  "
                  f"{deposits:29} {reorg}")
            if r.node_error:
                print(f"       node unreachable: {r.node_error}")
            for e in r.endpoints if len(r.endpoints) > 1 or any(e.condition != "ok" for e in r.endpoints) else []:
                print(f"       endpoint {e.name}: {e.condition}, head {_n(e.head)}, {e.lag} behind"
                      + (f" ({e.error})" if e.error else ""))
            if r.halted_at is not None:
                print(f"       HALTED since {r.halted_at:%Y-%m-%d %H:%M:%S}: {r.halt_reason}")
    bad = any(r.node_error or r.halted_at or r.lag is None or r.lag > args.max_lag
              or any(e.condition != "ok" for e in r.endpoints) for r in rows)
    return PROBLEM if bad else OK


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
