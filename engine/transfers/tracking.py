"""Refunds and payouts on the network, followed by what the indexer sees at their destination: a
transfer's transaction confirmed there completes it (the ledger records the money leaving, once); a reorg that
orphans it takes the transfer back to in flight, and mined again it completes again without a second
entry. Runs with the payment settlement of the same queued addresses, in its transaction."""

from __future__ import annotations

import structlog

from beanpay import audit
from beanpay.db import Connection
from beanpay.engine.transfers import service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL

log = structlog.get_logger("transfers")


async def follow(conn: Connection, keys: list[tuple[str, str]], *, secret: str,
                 actor: audit.Actor = audit.SYSTEM) -> int:
    """Move the transfers at these (chain, address) pairs with their transactions; returns how many moved."""
    rows = await conn.fetch(SQL.at_destinations, [k[0] for k in keys], [k[1] for k in keys])
    moved = 0
    for r in rows:
        arrived = r["arrival"] == "confirmed" and int(r["arrived"]) >= int(r["amount"])
        if r["status"] == TransferStatus.IN_FLIGHT and arrived:
            await service.move(conn, await service.lock(conn, r["id"]), TransferStatus.COMPLETED, secret=secret,
                               actor=actor)
            moved += 1
        elif r["status"] == TransferStatus.COMPLETED and not arrived:
            log.warning("a reorg took a completed transfer's transaction away", transfer=str(r["id"]))
            await service.move(conn, await service.lock(conn, r["id"]), TransferStatus.IN_FLIGHT, secret=secret,
                               actor=actor, reverted=True)
            moved += 1
    return moved
