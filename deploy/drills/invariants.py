"""What must hold after any drill: every payment made on chain confirmed its order and was credited once
for exactly what was paid, the ledger balances, and the merchant heard of every order (each event once)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import msgspec

from beanpay import queries
from beanpay.db import Connection, fetch_as
from beanpay.deploy.drills.shop import Merchant, Placed

SQL = queries.load("beanpay.deploy", "drills.sql")


class Invariants(msgspec.Struct):
    paid: int  # orders paid on chain
    confirmed: int
    lost: list[str]  # paid on chain, not confirmed
    credited_twice: list[str]
    credited_wrong: list[str]  # credited, but not what was paid
    unbalanced_groups: int
    webhooks_missing: list[str]  # a confirmed order the merchant was not told of
    webhooks_doubled: list[str]  # told twice of its confirmation, as two different events

    @property
    def hold(self) -> bool:
        return not (self.lost or self.credited_twice or self.credited_wrong or self.unbalanced_groups
                    or self.webhooks_missing or self.webhooks_doubled)


class _State(msgspec.Struct):
    id: uuid.UUID
    order_status: str
    payment_status: str
    amount_received: int


class _Credit(msgspec.Struct):
    order_id: uuid.UUID
    postings: int
    credited: int


async def check(conn: Connection, paid: Iterable[Placed], merchant: Merchant | None = None) -> Invariants:
    orders = {uuid.UUID(p.id): p for p in paid}
    ids = list(orders)
    states = {s.id: s for s in await fetch_as(conn, SQL.order_states, _State, ids)}
    credits = {c.order_id: c for c in await fetch_as(conn, SQL.credits_per_payment, _Credit, ids)}
    confirmed = [i for i in ids if i in states and states[i].order_status == "confirmed"]
    missing, doubled = [], []
    if merchant is not None:
        for i in confirmed:
            events = merchant.events.get(str(i), [])
            types = [t for _, t in events]
            if "order.confirmed" not in types:
                missing.append(str(i))
            if types.count("order.confirmed") > 1:
                doubled.append(str(i))
    return Invariants(
        paid=len(ids), confirmed=len(confirmed),
        lost=[str(i) for i in ids if i not in confirmed],
        credited_twice=[str(i) for i, c in credits.items() if c.postings > 1],
        credited_wrong=[str(i) for i in ids if credits.get(i) is None or credits[i].credited != orders[i].amount],
        unbalanced_groups=len(await conn.fetch(SQL.unbalanced_groups)),
        webhooks_missing=missing, webhooks_doubled=doubled)


async def known(conn: Connection, orders: Iterable[Placed]) -> set[str]:
    """Which of these orders the database holds (after a region failover: what the copy received)."""
    return {str(s.id) for s in await fetch_as(conn, SQL.order_states, _State, [uuid.UUID(o.id) for o in orders])}
