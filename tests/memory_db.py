"""An in-memory database that answers the engine's named statements by name, for fast unit tests of
settlement, expiry, claiming and inventory (procrastinate's in-memory connector is the model).

Each handler does in Python what its statement does in SQL, on plain dict rows, and returns rows with
exactly the statement's columns. It is not a SQL engine: only the statements the unit tests reach
are here, and tests/integration proves the same behaviour against PostgreSQL. A transaction (or a
savepoint inside one) snapshots every table and restores it if the block raises.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from beanpay.engine.payments import LIVE
from beanpay.errors import Conflict
from beanpay.queries import Query

Row = dict[str, Any]

ORDER = ("id", "user_id", "shop_id", "total_amount", "currency", "crypto_amount", "crypto_currency", "chain",
         "payment_status", "order_status", "order_type", "pickup_time", "delivery_address", "special_instructions",
         "expires_at", "version", "created_at", "updated_at")
PAYMENT = ("id", "order_id", "user_id", "chain", "crypto_currency", "crypto_amount", "amount_received", "decimals",
           "fiat_amount", "fiat_currency", "exchange_rate", "wallet_address", "transaction_hash", "block_number",
           "confirmations", "status", "expires_at", "confirmed_at", "resolution", "credited", "token_address",
           "chain_id", "payment_uri", "rate_source")
CLAIM = ("id", "order_id", "user_id", "shop_id", "claim_code", "status", "claimed_at", "expires_at", "processed_at",
         "pickup_time")


def pick(row: Row, columns: Sequence[str], **extra: Any) -> Row:
    return {**{c: row[c] for c in columns}, **extra}


def supply_status(s: Row) -> str:
    """The generated column of migration 0006."""
    available = s["quantity"] - s["reserved"]
    if s["discontinued"]:
        return "discontinued"
    if available <= 0:
        return "out_of_stock"
    return "low_stock" if available <= s["reorder_level"] else "in_stock"


class MemoryDb:
    """Both the Database (pool) and the Connection protocols."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now or dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
        self.orders: dict[uuid.UUID, Row] = {}
        self.payments: dict[uuid.UUID, Row] = {}
        self.deposits: list[Row] = []
        self.supplies: dict[uuid.UUID, Row] = {}
        self.reservations: dict[tuple[uuid.UUID, uuid.UUID], Row] = {}
        self.claims: dict[uuid.UUID, Row] = {}
        self.ledger: list[Row] = []
        self.audit: list[Row] = []
        self.outbox: list[Row] = []
        self.asked: list[str] = []  # statement names, in order: what a unit test may assert on
        self.woken: set[str] = set()  # channels to wake after commit

    # ---- the protocols ----------------------------------------------------------------------------

    def _handler(self, query: Query) -> Callable[..., list[Row]]:
        self.asked.append(query.name)
        handler = getattr(self, f"q_{query.name}", None)
        if handler is None:
            raise NotImplementedError(f"the in-memory database does not answer {query.name!r}")
        if query.params:  # a named statement is answered by name too: its positions are the loader's
            return lambda *args: handler(**dict(zip(query.params, args, strict=True)))  # type: ignore[no-any-return]
        return handler  # type: ignore[no-any-return]

    async def fetch(self, query: Query, *args: Any) -> list[Row]:
        return self._handler(query)(*args)

    async def fetchrow(self, query: Query, *args: Any) -> Row | None:
        rows = self._handler(query)(*args)
        return rows[0] if rows else None

    async def fetchval(self, query: Query, *args: Any) -> Any:
        rows = self._handler(query)(*args)
        return next(iter(rows[0].values())) if rows else None

    async def execute(self, query: Query, *args: Any) -> str:
        rows = self._handler(query)(*args)
        return f"OK {len(rows)}"

    def wake_after_commit(self, channel: str) -> None:
        self.woken.add(channel)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryDb]:
        tables = ("orders", "payments", "deposits", "supplies", "reservations", "claims", "ledger", "audit", "outbox")
        saved = {t: copy.deepcopy(getattr(self, t)) for t in tables}
        try:
            yield self
        except BaseException:
            for t, value in saved.items():
                setattr(self, t, value)
            raise

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[MemoryDb]:
        yield self

    # ---- test set-up ------------------------------------------------------------------------------

    def add_order(self, *, amount: int = 1000, chain: str = "eth", asset: str = "ETH", stocked: dict[uuid.UUID, int]
                  | None = None, window: dt.timedelta = dt.timedelta(minutes=15), shop_id: uuid.UUID | None = None,
                  order_type: str = "pickup") -> tuple[Row, Row]:
        order_id, payment_id = uuid.uuid4(), uuid.uuid4()
        shop = shop_id or uuid.uuid4()
        expires = self.now + window
        order = {"id": order_id, "user_id": uuid.uuid4(), "shop_id": shop, "total_amount": Decimal("4.50"),
                 "currency": "USD", "crypto_amount": amount, "crypto_currency": asset, "chain": chain,
                 "payment_status": "pending", "order_status": "pending", "order_type": order_type,
                 "pickup_time": None, "delivery_address": None, "special_instructions": None, "expires_at": expires,
                 "version": 1, "created_at": self.now, "updated_at": self.now}
        payment = {"id": payment_id, "order_id": order_id, "user_id": order["user_id"], "chain": chain,
                   "crypto_currency": asset, "crypto_amount": amount, "amount_received": 0, "decimals": 18,
                   "fiat_amount": Decimal("4.50"), "fiat_currency": "USD", "exchange_rate": Decimal("3200"),
                   "wallet_address": f"0x{uuid.uuid4().hex}", "transaction_hash": None, "block_number": None,
                   "confirmations": 0, "status": "pending", "expires_at": expires, "confirmed_at": None,
                   "resolution": None, "credited": 0, "token_address": None, "chain_id": 31337,
                   "payment_uri": "", "rate_source": "static"}
        self.orders[order_id], self.payments[payment_id] = order, payment
        for supply_id, quantity in (stocked or {}).items():
            self.supplies[supply_id]["reserved"] += quantity
            self.reservations[(order_id, supply_id)] = {"quantity": quantity, "status": "reserved"}
        return order, payment

    def add_supply(self, *, shop_id: uuid.UUID, quantity: int, reorder_level: int = 5,
                   product_id: uuid.UUID | None = None) -> Row:
        supply = {"id": uuid.uuid4(), "shop_id": shop_id, "product_id": product_id or uuid.uuid4(),
                  "quantity": quantity, "reserved": 0, "reorder_level": reorder_level, "discontinued": False}
        self.supplies[supply["id"]] = supply
        return supply

    def deposit(self, payment: Row, amount: int, status: str = "confirmed", *, at: dt.datetime | None = None,
                confirmations: int = 3, height: int = 10) -> Row:
        row = {"chain": payment["chain"], "address": payment["wallet_address"], "asset": payment["crypto_currency"],
               "txid": f"0x{uuid.uuid4().hex}", "amount": amount, "status": status,
               "first_seen_at": at or self.now, "confirmations": confirmations if status != "orphaned" else 0,
               "block_height": height if status in ("confirming", "confirmed") else None}
        self.deposits.append(row)
        return row

    def events(self) -> list[str]:
        return [e["event_type"] for e in self.outbox]

    def balance(self, shop_id: uuid.UUID) -> int:
        return -sum(e["amount"] for e in self.ledger if e["account"] == f"merchant:{shop_id}")

    # ---- kernel: audit, outbox --------------------------------------------------------------------

    def q_insert_entries(self, actor_id: Any, role: str, request_id: Any, actions: list[str], types: list[str],
                         ids: list[str], befores: list[Any], afters: list[Any]) -> list[Row]:
        for row in zip(actions, types, ids, befores, afters, strict=True):
            self.audit.append(dict(zip(("action", "entity_type", "entity_id", "before", "after"), row, strict=True),
                                   actor_role=role))
        return []

    def q_insert_events(self, ids: list[uuid.UUID], types: list[str], topics: list[str], aggregates: list[str],
                        keys: list[str], payloads: list[str], traces: list[str | None]) -> list[Row]:
        for row in zip(ids, types, topics, aggregates, keys, payloads, traces, strict=True):
            self.outbox.append(dict(zip(("event_id", "event_type", "topic", "aggregate_type", "aggregate_id",
                                         "payload", "trace_parent"), row, strict=True)))
        return []

    # ---- ledger -----------------------------------------------------------------------------------

    def q_post(self, groups: list[uuid.UUID], accounts: list[str], shops: list[uuid.UUID], chains: list[str],
               assets: list[str], amounts: list[int], kinds: list[str], payments: list[uuid.UUID],
               memos: list[str], custodial: list[bool]) -> list[Row]:
        rows = [dict(zip(("entry_group", "account", "shop_id", "chain", "asset", "amount", "kind", "payment_id",
                          "memo", "custodial"), r, strict=True))
                for r in zip(groups, accounts, shops, chains, assets, amounts, kinds, payments, memos, custodial,
                             strict=True)]
        for group in set(groups):  # the database's deferred check, at once
            if sum(r["amount"] for r in rows if r["entry_group"] == group) != 0:
                raise Conflict("the change breaks rule ledger_balanced", constraint="ledger_balanced")
        self.ledger += rows
        return []

    # ---- settlement -------------------------------------------------------------------------------

    def _payment_rows(self, pairs: set[tuple[str, str]]) -> list[Row]:
        return sorted((p for p in self.payments.values() if (p["chain"], p["wallet_address"]) in pairs),
                      key=lambda p: (p["chain"], p["wallet_address"]))

    def _credited_custodial(self, payment_id: uuid.UUID) -> int:
        shop_id = self.orders[self.payments[payment_id]["order_id"]]["shop_id"]
        return -sum(e["amount"] for e in self.ledger if e["payment_id"] == payment_id and e["custodial"]
                    and e["account"] == f"merchant:{shop_id}")

    def q_lock_payments(self, chains: list[str], addresses: list[str]) -> list[Row]:
        return [pick(p, PAYMENT, order_status=self.orders[p["order_id"]]["order_status"],
                     shop_id=self.orders[p["order_id"]]["shop_id"], wallet_id=None)
                for p in self._payment_rows(set(zip(chains, addresses, strict=True)))]

    def q_credited_custodial(self, payment_ids: list[uuid.UUID]) -> list[Row]:
        return [{"payment_id": p, "credited": self._credited_custodial(p)} for p in payment_ids]

    def q_deposits_at(self, chains: list[str], addresses: list[str]) -> list[Row]:
        pairs = set(zip(chains, addresses, strict=True))  # on chain only: held by the payment's wallet
        return [dict(d, held_by_platform=None)
                for d in sorted(self.deposits, key=lambda d: (d["first_seen_at"], d["txid"]))
                if (d["chain"], d["address"]) in pairs]

    def q_settle_payments(self, ids: list[uuid.UUID], froms: list[str], statuses: list[str], received: list[int],
                          confs: list[int], txids: list[str | None], blocks: list[int | None], paid: list[bool],
                          credits: list[int]) -> list[Row]:
        out = []
        for pid, frm, status, got, conf, txid, block, is_paid, credit in zip(
                ids, froms, statuses, received, confs, txids, blocks, paid, credits, strict=True):
            p = self.payments[pid]
            if p["status"] != frm:
                continue
            p.update(status=status, amount_received=got, confirmations=conf, transaction_hash=txid,
                     block_number=block, credited=credit,
                     confirmed_at=(p["confirmed_at"] or self.now) if is_paid else None)
            out.append(pick(p, PAYMENT))
        return out

    def q_settle_orders(self, ids: list[uuid.UUID], froms: list[str], payment_statuses: list[str],
                        order_statuses: list[str]) -> list[Row]:
        out = []
        for oid, frm, pay, status in zip(ids, froms, payment_statuses, order_statuses, strict=True):
            o = self.orders[oid]
            if o["order_status"] != frm:
                continue
            o["version"] += o["order_status"] != status
            o.update(payment_status=pay, order_status=status, updated_at=self.now)
            out.append(pick(o, ORDER))
        return out

    def q_lock_payment_of_order(self, order_id: uuid.UUID) -> list[Row]:
        return [pick(p, PAYMENT) for p in self.payments.values() if p["order_id"] == order_id]

    def q_live_deposits(self, chain: str, address: str, asset: str) -> list[Row]:
        return [{"status": d["status"], "amount": d["amount"], "held_by_platform": None} for d in self.deposits
                if (d["chain"], d["address"], d["asset"]) == (chain, address, asset) and d["status"] in LIVE]

    def q_mark_resolved(self, payment_id: uuid.UUID, resolution: str) -> list[Row]:
        p = self.payments[payment_id]
        if p["resolution"] is not None:
            return []
        p["resolution"] = resolution
        return [pick(p, PAYMENT)]

    def q_credit_custody(self, payment_id: uuid.UUID, shop_id: str) -> list[Row]:
        return [{"wallet_id": None, "credited_custodial": self._credited_custodial(payment_id)}]

    def q_set_credited(self, payment_id: uuid.UUID, credited: int) -> list[Row]:
        self.payments[payment_id]["credited"] = credited
        return []

    # ---- orders -----------------------------------------------------------------------------------

    def q_lock_order(self, order_id: uuid.UUID) -> list[Row]:
        return [pick(self.orders[order_id], ORDER)] if order_id in self.orders else []

    def q_move_order(self, order_id: uuid.UUID, target: str, sources: list[str], payment_in: list[str]) -> list[Row]:
        o = self.orders.get(order_id)
        if o is None or o["order_status"] not in sources or o["payment_status"] not in payment_in:
            return []
        o.update(order_status=target, version=o["version"] + 1, updated_at=self.now)
        return [pick(o, ORDER)]

    def q_order_status(self, order_id: uuid.UUID) -> list[Row]:
        o = self.orders.get(order_id)
        return [] if o is None else [{"order_status": o["order_status"], "payment_status": o["payment_status"]}]

    def q_close_payment(self, order_id: uuid.UUID) -> list[Row]:
        out = []
        for p in self.payments.values():
            if p["order_id"] == order_id and p["status"] == "pending":
                p["status"] = "expired"
                out.append(pick(p, PAYMENT))
        if self.orders[order_id]["payment_status"] == "pending":
            self.orders[order_id]["payment_status"] = "expired"
        return out

    # ---- inventory --------------------------------------------------------------------------------

    def _move(self, order_ids: list[uuid.UUID], frm: str, to: str, on_hand: int, held: int) -> list[Row]:
        moved: dict[uuid.UUID, int] = {}
        for (oid, sid), r in self.reservations.items():
            if oid in order_ids and r["status"] == frm:
                r["status"] = to
                moved[sid] = moved.get(sid, 0) + r["quantity"]
        for sid, quantity in moved.items():
            s = self.supplies[sid]
            s["quantity"] += on_hand * quantity
            s["reserved"] += held * quantity
            if s["reserved"] > s["quantity"] or s["reserved"] < 0:
                raise Conflict("the change breaks rule coffee_supplies_reserved_on_hand")
        return [{"supply_id": sid, "shop_id": self.supplies[sid]["shop_id"]} for sid in moved]

    def q_release(self, order_ids: list[uuid.UUID]) -> list[Row]:
        return self._move(order_ids, "reserved", "released", 0, -1)

    def q_commit(self, order_ids: list[uuid.UUID]) -> list[Row]:
        return self._move(order_ids, "reserved", "committed", -1, -1)

    def q_uncommit(self, order_ids: list[uuid.UUID]) -> list[Row]:
        return self._move(order_ids, "committed", "reserved", 1, 1)

    def q_reserve(self, order_id: uuid.UUID, shop_id: uuid.UUID, stocked_products: list[uuid.UUID],
                  stocked_quantities: list[int]) -> list[Row]:
        wanted = dict(zip(stocked_products, stocked_quantities, strict=True))
        out = []
        for s in sorted(self.supplies.values(), key=lambda s: str(s["id"])):
            if s["shop_id"] != shop_id or s["product_id"] not in wanted:
                continue
            before, available = supply_status(s), s["quantity"] - s["reserved"]
            held = not s["discontinued"] and available >= wanted[s["product_id"]]
            if held:
                s["reserved"] += wanted[s["product_id"]]
                self.reservations[(order_id, s["id"])] = {"quantity": wanted[s["product_id"]], "status": "reserved"}
            out.append({"supply_id": s["id"], "product_id": s["product_id"], "held": held,
                        "available_before": 0 if s["discontinued"] else available, "status_before": before,
                        "status_after": supply_status(s) if held else None,
                        "quantity": s["quantity"] if held else None, "reserved": s["reserved"] if held else None,
                        "reorder_level": s["reorder_level"] if held else None})
        return out

    # ---- expiry -----------------------------------------------------------------------------------

    def q_due_payments(self, batch: int, grace: dt.timedelta) -> list[Row]:
        live = {(d["chain"], d["address"]) for d in self.deposits if d["status"] in LIVE}
        due = [p for p in self.payments.values() if p["status"] == "pending" and p["expires_at"] + grace <= self.now
               and (p["chain"], p["wallet_address"]) not in live]
        return [pick(p, PAYMENT, order_status=self.orders[p["order_id"]]["order_status"],
                     shop_id=self.orders[p["order_id"]]["shop_id"])
                for p in sorted(due, key=lambda p: p["expires_at"])[:batch]]

    def q_expire_payments(self, ids: list[uuid.UUID]) -> list[Row]:
        out = []
        for pid in ids:
            p = self.payments[pid]
            if p["status"] == "pending":
                p["status"] = "expired"
                out.append(pick(p, PAYMENT))
        return out

    def q_expire_orders(self, ids: list[uuid.UUID], sources: list[str]) -> list[Row]:
        out = []
        for oid in ids:
            o = self.orders[oid]
            o.update(payment_status="expired", version=o["version"] + 1,
                     order_status="expired" if o["order_status"] in sources else o["order_status"])
            out.append(pick(o, ORDER))
        return out

    def q_expire_claims(self, batch: int) -> list[Row]:
        due = [c for c in self.claims.values() if c["status"] == "active" and c["expires_at"] <= self.now][:batch]
        for c in due:
            c["status"] = "expired"
        return [pick(c, CLAIM) for c in due]

    # ---- claims -----------------------------------------------------------------------------------

    def q_live_claim(self, order_id: uuid.UUID) -> list[Row]:
        return [{"status": c["status"]} for c in self.claims.values()
                if c["order_id"] == order_id and c["status"] in ("active", "processed")]

    def q_insert_claim(self, order_id: uuid.UUID, user_id: uuid.UUID, shop_id: uuid.UUID, code: str,
                       ttl: dt.timedelta, pickup: dt.datetime | None) -> list[Row]:
        if any(c["claim_code"] == code for c in self.claims.values()):
            raise Conflict("claim code collision", constraint="order_claims_code_uq")
        claim = {"id": uuid.uuid4(), "order_id": order_id, "user_id": user_id, "shop_id": shop_id,
                 "claim_code": code, "status": "active", "claimed_at": self.now, "expires_at": self.now + ttl,
                 "processed_at": None, "pickup_time": pickup}
        self.claims[claim["id"]] = claim
        return [pick(claim, CLAIM)]

    def q_lock_claim(self, code: str) -> list[Row]:
        return [pick(c, CLAIM) for c in self.claims.values() if c["claim_code"] == code]

    def q_process_claim(self, claim_id: uuid.UUID) -> list[Row]:
        c = self.claims[claim_id]
        if c["status"] != "active" or (c["expires_at"] is not None and c["expires_at"] <= self.now):
            return []
        c.update(status="processed", processed_at=self.now)
        return [pick(c, CLAIM)]
