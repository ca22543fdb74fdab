"""Orders: creation with its quote and reservations, modification while unpaid, cancellation and the
shop's progress moves. Each runs in one transaction and locks what it changes; every status move
is one guarded UPDATE whose allowed sources come from the transition table (engine.lifecycle).

Placing an order is the hot path (every payment starts here): one read and one write statement, and
the answer to the client is built here, before the write, so that it is stored under the
Idempotency-Key by the same statement. In the common case the two are sent on their own, two round
trips, and the write commits as it ends: a popular product's supply row is locked only while that
statement runs (in a transaction, it stayed locked until the client's COMMIT came back round, and at
16 concurrent orders every order queued on that row). The write declines, writing nothing, whenever
it is not the common case (stock short, a supply changing status so that a low-stock alert may be
due, the key taken meanwhile), and then the order is placed again in a transaction (BEGIN, read,
write, COMMIT), where those are handled; Bitcoin orders always are, their address index being
allocated gap-free by the read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from beanpay import audit, idempotency, queries, tracing
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.config import Settings
from beanpay.db import Connection, Database, NeedsTransaction, fetch_as, fetch_one, fetchrow_as
from beanpay.engine import inventory, wallets
from beanpay.engine.addresses import BITCOIN, evm_forwarder
from beanpay.engine.assets import Asset
from beanpay.engine.lifecycle import IllegalTransition, OrderStatus, modifiable, order_sources
from beanpay.engine.payment_uri import payment_uri
from beanpay.engine.prices.providers import Rate
from beanpay.engine.pricing import Group, Option, PricedLine, PricingError, order_total, price_line
from beanpay.engine.quote import crypto_amount
from beanpay.engine.rows import OrderRow, PaymentRow
from beanpay.errors import Conflict, InvalidInput, NotFound
from beanpay.events import catalog, outbox
from beanpay.events.outbox import Event, emit_many
from beanpay.money import MAX_FIAT

SQL = queries.load("beanpay.engine", "orders.sql")
_json = msgspec.json.Encoder(decimal_format="string").encode
_groups = msgspec.json.Decoder(list[dict[str, object]]).decode


@dataclass(frozen=True, slots=True)
class Line:
    product_id: uuid.UUID
    quantity: int
    customizations: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    order_type: str  # pickup | delivery
    pickup_time: dt.datetime | None = None
    delivery_address: str | None = None
    special_instructions: str | None = None


class MenuLine(msgspec.Struct):
    product_id: uuid.UUID
    name: str
    customizations: str  # the product's options (JSON)
    price: Decimal
    stocked: bool  # the shop keeps a supply record (stock is reserved) for this product


@dataclass(frozen=True, slots=True)
class PricedItem:
    line: Line
    name: str
    menu_price: Decimal
    priced: PricedLine
    stocked: bool


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A placed order as written: the API answers from this without reading it back."""

    order: OrderRow
    payment: PaymentRow
    items: list[PricedItem]
    held: list[uuid.UUID]  # supplies it holds stock from


def _options(raw: str) -> list[Group]:
    return [Group(str(g["name"]), tuple(Option(str(o["name"]), Decimal(str(o.get("price_delta", "0"))))
                                        for o in g["options"]),  # type: ignore[attr-defined]
                  bool(g.get("required", False)), bool(g.get("multiple", False))) for g in _groups(raw)]


def price_items(menu: Mapping[uuid.UUID, MenuLine], currency: str, lines: Sequence[Line]) -> list[PricedItem]:
    """Each line priced from the shop's menu and the product's options; every problem names its field. Pure."""
    priced, problems = [], []
    for i, line in enumerate(lines):
        where = f"items[{i}]"
        item = menu.get(line.product_id)
        if item is None:
            problems.append({"field": f"{where}.product_id", "message": "not available on this shop's menu"})
            continue
        try:
            priced_line = price_line(item.price, _options(item.customizations), line.customizations, line.quantity,
                                     currency, field=where)
        except PricingError as exc:
            problems.append({"field": exc.field, "message": exc.message})
            continue
        if priced_line.unit_price > MAX_FIAT:
            problems.append({"field": f"{where}.customizations",
                             "message": f"the price with these options must be at most {MAX_FIAT}"})
        elif priced_line.total > MAX_FIAT:
            problems.append({"field": f"{where}.quantity", "message": f"the line total must be at most {MAX_FIAT}"})
        priced.append(PricedItem(line, item.name, item.price, priced_line, item.stocked))
    if problems:
        raise InvalidInput("the order's items do not match the menu", problems)
    total = order_total([it.priced for it in priced], currency)
    if total > MAX_FIAT:
        raise InvalidInput("the order is too large",
                           [{"field": "items", "message": f"the total must be at most {MAX_FIAT}"}])
    if total <= 0:
        raise InvalidInput("nothing to pay", [{"field": "items", "message": "the order total must be above zero"}])
    return priced


def wanted(items: Sequence[PricedItem]) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, str]]:
    """Units of each stock-tracked product, and the line that first asked for it (for errors)."""
    units: dict[uuid.UUID, int] = defaultdict(int)
    fields: dict[uuid.UUID, str] = {}
    for i, item in enumerate(items):
        if item.stocked:
            units[item.line.product_id] += item.line.quantity
            fields.setdefault(item.line.product_id, f"items[{i}].quantity")
    return dict(units), fields


class _Begun(msgspec.Struct):
    shop_status: str | None
    currency: str | None
    request_hash: bytes | None
    status_code: int | None
    response_body: bytes | None
    btc_index: int | None
    wallet_id: uuid.UUID | None
    account_key: str | None
    treasury: str | None
    product_id: uuid.UUID | None
    name: str | None
    customizations: str | None
    price: Decimal | None
    stocked: bool | None


class _Written(msgspec.Struct):
    recorded: bool
    supply_id: uuid.UUID | None
    product_id: uuid.UUID | None
    held: bool | None
    available_before: int | None
    status_before: str | None
    status_after: str | None
    quantity: int | None
    reserved: int | None
    reorder_level: int | None


class Stored(Exception):
    def __init__(self, answer: idempotency.Answer) -> None:
        self.answer = answer



def written_by(actor: audit.Actor, order: OrderRow, events: list[Event[Any]]) -> dict[str, Any]:
    """write_order's audit row and events, as its named parameters."""
    return {"actor_id": actor.id, "actor_role": actor.role, "request_id": actor.request_id,
            "audit_after": _json(order.event()).decode(), "event_ids": [uuid.uuid4() for _ in events],
            "event_types": [e.type.name for e in events], "event_topics": [e.type.topic for e in events],
            "event_payloads": [_json(e.payload).decode() for e in events]}


def idempotent(key: idempotency.Key | None, body: bytes | None) -> dict[str, Any]:
    """write_order's stored answer under the request's Idempotency-Key (all None when none was sent)."""
    return {"key_principal": key.principal if key else None, "key": key.key if key else None,
            "key_method": key.method if key else None, "key_path": key.path if key else None,
            "key_request_hash": key.request_hash if key else None, "key_status": 201 if key else None,
            "key_body": body if key else None, "key_expires_at": key.expires_at if key else None}

async def create_order(db: Database, settings: Settings, *, user_id: uuid.UUID, shop_id: uuid.UUID,
                       lines: Sequence[Line], delivery: Delivery, asset: Asset,
                       rate_for: Callable[[str], Awaitable[Rate]], btc_account: Bip84Account | None,
                       actor: audit.Actor, key: idempotency.Key | None = None,
                       respond: Callable[[NewOrder], bytes] | None = None,
                       then: Callable[[Connection, NewOrder], Awaitable[None]] | None = None) \
        -> NewOrder | idempotency.Answer:
    """Place an order (one transaction). With an Idempotency-Key, the answer `respond` builds is stored
    by the same statement, and an answer stored earlier under the key is returned instead. `then` runs
    in the order's transaction after it is written (a cart checked out goes with it).
    Raises idempotency.Replay when a concurrent request with the key committed first."""
    args = (settings, user_id, shop_id, lines, delivery, asset, rate_for, btc_account, actor, key, respond, then)
    try:
        if asset.chain != BITCOIN and then is None:
            try:
                async with db.acquire() as conn:
                    return await _create(conn, *args, alone=True)
            except NeedsTransaction:
                pass  # nothing was written: the uncommon case, handled below
        async with db.transaction() as conn:
            return await _create(conn, *args, alone=False)
    except Stored as stored:  # raised inside, so the transaction (and any index it took) rolled back
        return stored.answer


async def _create(conn: Connection, settings: Settings, user_id: uuid.UUID, shop_id: uuid.UUID,
                  lines: Sequence[Line], delivery: Delivery, asset: Asset, rate_for: Callable[[str], Awaitable[Rate]],
                  btc_account: Bip84Account | None, actor: audit.Actor, key: idempotency.Key | None,
                  respond: Callable[[NewOrder], bytes] | None,
                  then: Callable[[Connection, NewOrder], Awaitable[None]] | None, *, alone: bool) -> NewOrder:
    rows = await fetch_as(conn, SQL.begin_order, _Begun, shop_id, sorted({ln.product_id for ln in lines}),
                          key.principal if key else None, key.key if key else None, asset.chain == BITCOIN,
                          asset.chain)
    head = rows[0]
    if head.status_code is not None and head.response_body is not None and head.request_hash is not None:
        raise Stored(idempotency.Answer(head.request_hash, head.status_code, head.response_body))
    if head.shop_status is None or head.shop_status == "deleted" or head.currency is None:
        raise InvalidInput("no such shop", [{"field": "shop_id", "message": "no such shop"}])
    if head.shop_status != "active":
        raise InvalidInput("the shop is not taking orders", [{"field": "shop_id",
                                                              "message": f"shop is {head.shop_status}"}])
    currency = head.currency.strip()
    menu = {r.product_id: MenuLine(r.product_id, r.name or "", r.customizations or "[]", r.price or Decimal(0),
                                   bool(r.stocked)) for r in rows if r.product_id is not None}
    items = price_items(menu, currency, lines)
    rate = await rate_for(currency)
    total = order_total([it.priced for it in items], currency)
    amount = crypto_amount(total, rate.rate, asset.decimals)
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    script, index = None, None
    if asset.chain == BITCOIN:
        if head.wallet_id is not None:  # the shop's own wallet: gap limit kept, unused addresses recycled
            derived, _ = await wallets.receive_address(
                conn, head.wallet_id, settings.btc_network, dt.timedelta(seconds=settings.address_quarantine_seconds))
        elif btc_account is None or head.btc_index is None:
            raise Conflict("Bitcoin payments are not configured (BEANPAY_BTC_ACCOUNT_XPUB) and the shop has no "
                           "Bitcoin wallet of its own")
        else:
            derived = btc_account.derive(head.btc_index)
        address, script, index = derived.address, derived.script, derived.index
    else:
        address = evm_forwarder(settings.evm_chain(asset.chain), order_id, head.treasury)
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(seconds=settings.payment_window_seconds)
    order = OrderRow(order_id, user_id, shop_id, total, currency, amount, asset.symbol, asset.chain, "pending",
                     "pending", delivery.order_type, delivery.pickup_time, delivery.delivery_address,
                     delivery.special_instructions, expires, 1, now, now)
    payment = PaymentRow(payment_id, order_id, user_id, asset.chain, asset.symbol, amount, 0, asset.decimals, total,
                         currency, rate.rate, address, None, None, 0, "pending", expires, None, None, 0,
                         asset.token_address, asset.chain_id, payment_uri(asset, address, amount), rate.source)
    placed = NewOrder(order, payment, items, [])
    events: list[Event[Any]] = [Event(catalog.ORDER_CREATED, order_id, order.event()),
              Event(catalog.PAYMENT_INITIATED, order_id, payment.event(shop_id))]
    units, fields = wanted(items)
    stocked = sorted(units)
    body = respond(placed) if key is not None and respond is not None else None
    written = await fetch_as(conn, SQL.write_order, _Written, *SQL.write_order.bind(
        order_id=order_id, user_id=user_id, shop_id=shop_id, total=total, currency=currency, crypto_amount=amount,
        crypto_currency=asset.symbol, chain=asset.chain, order_type=delivery.order_type,
        pickup_time=delivery.pickup_time, delivery_address=delivery.delivery_address,
        special_instructions=delivery.special_instructions, now=now, expires_at=expires,
        item_products=[it.line.product_id for it in items], item_names=[it.name for it in items],
        item_base_prices=[it.menu_price for it in items], item_final_prices=[it.priced.unit_price for it in items],
        item_quantities=[it.line.quantity for it in items],
        item_customizations=[_json(it.line.customizations).decode() for it in items],
        payment_id=payment_id, decimals=asset.decimals, rate=rate.rate, address=address,
        token_address=asset.token_address, chain_id=asset.chain_id, payment_uri=payment.payment_uri,
        rate_source=rate.source, rate_as_of=rate.as_of, script=script, derivation_index=index,
        stocked_products=stocked, stocked_quantities=[units[p] for p in stocked],
        **written_by(actor, order, events), **idempotent(key, body), alone=alone, wallet_id=head.wallet_id,
        invoice_id=uuid.uuid4(), invoice_assets=[f"{asset.chain}/{asset.symbol}"],
        tolerance_bps=settings.underpay_tolerance_bps, speed="low", picked_invoice_id=None,
        trace_parent=tracing.current()))
    if not written[0].recorded:
        raise idempotency.Replay()
    conn.wake_after_commit(outbox.CHANNEL)  # the statement wrote the order's events
    reserved = [inventory.Reserved(w.supply_id, w.product_id, bool(w.held), w.available_before or 0,
                                   w.status_before or "", w.status_after, w.quantity, w.reserved, w.reorder_level)
                for w in written if w.supply_id is not None and w.product_id is not None]
    inventory.check_held(reserved, fields)
    await emit_many(conn, inventory.alerts(shop_id, reserved))  # a statement only when an alert fires
    made = NewOrder(order, payment, items, [r.supply_id for r in reserved])
    if then is not None:
        await then(conn, made)
    return made


async def lock_order(conn: Connection, order_id: uuid.UUID) -> OrderRow:
    return await fetch_one(conn, SQL.lock_order, OrderRow, order_id, what="order")


async def move(conn: Connection, order: OrderRow, target: OrderStatus, actor: audit.Actor, *,
               payment_in: Sequence[str] = ("pending", "processing", "confirmed", "underpaid", "overpaid", "late",
                                            "expired"),
               extra: Sequence[Event[Any]] = ()) -> OrderRow:
    """One guarded move of the order to `target` (sources from the transition table; its payment in
    `payment_in`), with its audit row and events. Refused with IllegalTransition naming the state."""
    after = await fetchrow_as(conn, SQL.move_order, OrderRow, order.id, target.value, order_sources(target),
                              list(payment_in))
    if after is None:
        now = await conn.fetchrow(SQL.order_status, order.id)
        if now is None:
            raise NotFound("no such order", order_id=str(order.id))
        if now["order_status"] in order_sources(target):
            raise Conflict(f"the payment is {now['payment_status']}; the order cannot become {target.value}",
                           payment_status=now["payment_status"])
        raise IllegalTransition("order", now["order_status"], target.value)
    await audit.record(conn, actor, f"order.{target.value}", "order", order.id,
                       before={"order_status": order.order_status}, after={"order_status": target.value})
    await emit_many(conn, [Event(catalog.ORDER_STATUS_EVENTS[target.value], order.id, after.event()), *extra])
    return after


async def cancel(conn: Connection, order: OrderRow, actor: audit.Actor) -> OrderRow:
    """Cancel an unpaid order: its stock goes back and its payment window closes. A paid or paying
    order cannot be cancelled (its payment is no longer pending or expired)."""
    after = await move(conn, order, OrderStatus.CANCELLED, actor, payment_in=("pending", "expired"))
    await inventory.release(conn, [order.id])
    closed = await fetchrow_as(conn, SQL.close_payment, PaymentRow, order.id)
    if closed is not None:
        await emit_many(conn, [Event(catalog.PAYMENT_EXPIRED, order.id, closed.event(order.shop_id))])
        after = msgspec.structs.replace(after, payment_status="expired")
    return after


STAFF_MOVES = (OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.COMPLETED)


async def advance(conn: Connection, order: OrderRow, target: str, actor: audit.Actor) -> OrderRow:
    """The shop's progress moves: preparing, ready, completed."""
    wanted_status = OrderStatus(target)
    if order.order_type == "invoice":
        raise Conflict("an invoice's payment has no preparation to move along")
    if wanted_status not in STAFF_MOVES:
        raise IllegalTransition("order", order.order_status, wanted_status)
    return await move(conn, order, wanted_status, actor)


async def modify(conn: Connection, settings: Settings, order: OrderRow, *, lines: Sequence[Line] | None,
                 delivery: Delivery, rate: Rate | None, asset: Asset, actor: audit.Actor) -> OrderRow:
    """Change an unpaid order: details, and items (re-priced, re-reserved, re-quoted at a fresh rate)."""
    if not modifiable(order.order_status) or order.payment_status != "pending":
        raise Conflict(f"the order is {order.order_status} and its payment {order.payment_status};"
                       " only an unpaid order can change", current_status=order.order_status)
    if await conn.fetchval(SQL.deposits_seen, order.id):
        raise Conflict("a payment to this order has been seen; it can no longer change")
    total, amount = order.total_amount, order.crypto_amount
    if lines is not None:
        assert rate is not None
        menu = {m.product_id: m for m in await fetch_as(conn, SQL.menu_lines, MenuLine, order.shop_id,
                                                         sorted({ln.product_id for ln in lines}))}
        items = price_items(menu, order.currency.strip(), lines)
        total = order_total([it.priced for it in items], order.currency.strip())
        amount = crypto_amount(total, rate.rate, asset.decimals)
        await inventory.release(conn, [order.id])
        await conn.execute(SQL.replace_items, order.id, [it.line.product_id for it in items],
                           [it.name for it in items], [it.menu_price for it in items],
                           [it.priced.unit_price for it in items], [it.line.quantity for it in items],
                           [_json(it.line.customizations).decode() for it in items])
        units, fields = wanted(items)
        await inventory.reserve(conn, order.id, order.shop_id, units, fields)
        address = await conn.fetchval(SQL.payment_address, order.id)
        await conn.execute(SQL.requote_payment, order.id, amount, total, rate.rate, rate.source, rate.as_of,
                           payment_uri(asset, address, amount))
    after = await fetchrow_as(conn, SQL.update_order, OrderRow, order.id, total, amount, delivery.order_type,
                              delivery.pickup_time, delivery.delivery_address, delivery.special_instructions)
    if after is None:  # the row is locked by the caller, so this cannot happen; refuse rather than guess
        raise Conflict("the order changed meanwhile; retry")
    await audit.record(conn, actor, "order.update", "order", order.id, before=order.event(), after=after.event())
    await emit_many(conn, [Event(catalog.ORDER_UPDATED, order.id, after.event())])
    return after
