"""Orders: creation with its quote and reservations, modification while unpaid, cancellation and the
shop's progress moves. Each function runs inside the caller's transaction and locks what it changes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from beanpay import audit
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.evm.create2 import forwarder_address
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import inventory
from beanpay.engine.assets import Asset
from beanpay.engine.lifecycle import IllegalTransition, OrderStatus, modifiable, order_transition
from beanpay.engine.payment_uri import payment_uri
from beanpay.engine.prices.providers import Rate
from beanpay.engine.pricing import Group, Option, PricedLine, PricingError, order_total, price_line
from beanpay.engine.quote import crypto_amount
from beanpay.errors import Conflict, InvalidInput, NotFound
from beanpay.events.outbox import Event, emit_many
from beanpay.indexer import store
from beanpay.indexer.watch import new_btc_address
from beanpay.money import base_units


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


@dataclass(frozen=True, slots=True)
class PricedItem:
    line: Line
    name: str
    menu_price: Decimal
    priced: PricedLine
    stocked: bool  # the shop keeps a supply record (stock is reserved) for this product


ORDER_COLUMNS = """id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency, chain,
                   payment_status, order_status, order_type, pickup_time, delivery_address, special_instructions,
                   expires_at, version, created_at, updated_at"""


def order_payload(order: Any) -> dict[str, Any]:
    """What order.* events carry: enough for a merchant's webhook to act without calling back."""
    return {"order_id": str(order["id"]), "shop_id": str(order["shop_id"]), "user_id": str(order["user_id"]),
            "order_status": order["order_status"], "payment_status": order["payment_status"],
            "total_amount": str(order["total_amount"]), "currency": order["currency"]}


def payment_payload(payment: Any, shop_id: uuid.UUID) -> dict[str, Any]:
    return {"payment_id": str(payment["id"]), "order_id": str(payment["order_id"]), "shop_id": str(shop_id),
            "chain": payment["chain"], "asset": payment["crypto_currency"], "address": payment["wallet_address"],
            "amount": base_units(payment["crypto_amount"]), "amount_received": base_units(payment["amount_received"]),
            "decimals": payment["decimals"], "status": payment["status"], "confirmations": payment["confirmations"],
            "expires_at": payment["expires_at"].isoformat(), "resolution": payment["resolution"]}


async def price_items(conn: Connection, shop_id: uuid.UUID, currency: str, lines: Sequence[Line]) -> list[PricedItem]:
    """Each line priced from the shop's menu and the product's options; every problem names its field."""
    rows = await conn.fetch(
        """SELECT p.id, p.name, p.customizations, sp.price, cs.id IS NOT NULL AS stocked
           FROM shop_products sp JOIN products p ON p.id = sp.product_id
           LEFT JOIN coffee_supplies cs ON cs.shop_id = sp.shop_id AND cs.product_id = p.id
           WHERE sp.shop_id = $1 AND sp.product_id = ANY($2) AND sp.available AND p.status = 'active'""",
        shop_id, [line.product_id for line in lines])
    menu = {r["id"]: r for r in rows}
    priced, problems = [], []
    for i, line in enumerate(lines):
        where = f"items[{i}]"
        item = menu.get(line.product_id)
        if item is None:
            problems.append({"field": f"{where}.product_id", "message": "not available on this shop's menu"})
            continue
        groups = [Group(g["name"], tuple(Option(o["name"], Decimal(str(o.get("price_delta", "0"))))
                                         for o in g["options"]), g.get("required", False), g.get("multiple", False))
                  for g in msgspec.json.decode(item["customizations"])]
        try:
            priced.append(PricedItem(line, item["name"], item["price"],
                                     price_line(item["price"], groups, line.customizations, line.quantity, currency,
                                                field=where), item["stocked"]))
        except PricingError as exc:
            problems.append({"field": exc.field, "message": exc.message})
    if problems:
        raise InvalidInput("the order's items do not match the menu", problems)
    return priced


def _wanted(items: Sequence[PricedItem]) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, str]]:
    wanted: dict[uuid.UUID, int] = defaultdict(int)
    fields: dict[uuid.UUID, str] = {}
    for i, item in enumerate(items):
        if not item.stocked:
            continue
        wanted[item.line.product_id] += item.line.quantity
        fields.setdefault(item.line.product_id, f"items[{i}].quantity")
    return wanted, fields


async def _insert_items(conn: Connection, order_id: uuid.UUID, items: Sequence[PricedItem]) -> None:
    await conn.executemany(
        """INSERT INTO order_items (order_id, product_id, product_name, base_price, final_price, quantity,
                                    customizations) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [(order_id, it.line.product_id, it.name, it.menu_price, it.priced.unit_price, it.line.quantity,
          msgspec.json.encode(it.line.customizations).decode()) for it in items])


async def deposit_address(conn: Connection, settings: Settings, asset: Asset, order_id: uuid.UUID,
                          btc_account: Bip84Account | None) -> str:
    """A fresh watched address for the order: the next BIP84 index, or its CREATE2 forwarder."""
    if asset.chain == "btc":
        if btc_account is None:
            raise Conflict("Bitcoin payments are not configured (BEANPAY_BTC_ACCOUNT_XPUB)")
        return (await new_btc_address(conn, btc_account, order_id)).address
    chain = settings.evm_chain(asset.chain)
    if not (chain.factory and chain.implementation and chain.treasury):
        raise Conflict(f"chain {asset.chain} has no forwarder factory, implementation or treasury configured")
    address = forwarder_address(chain.factory, chain.implementation, order_id, chain.treasury)
    await store.watch(conn, asset.chain, address, None, None, order_id)
    return address


async def create_order(conn: Connection, settings: Settings, *, user_id: uuid.UUID, shop_id: uuid.UUID,
                       currency: str, lines: Sequence[Line], delivery: Delivery, asset: Asset, rate: Rate,
                       btc_account: Bip84Account | None, actor: audit.Actor) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Create the order; returns its id and the supplies it holds stock from."""
    items = await price_items(conn, shop_id, currency, lines)
    total = order_total([it.priced for it in items], currency)
    if total <= 0:
        raise InvalidInput("nothing to pay", [{"field": "items", "message": "the order total must be above zero"}])
    amount = crypto_amount(total, rate.rate, asset.decimals)
    order_id = uuid.uuid4()
    window = dt.timedelta(seconds=settings.payment_window_seconds)
    order = await conn.fetchrow(
        f"""INSERT INTO coffee_orders (id, user_id, shop_id, total_amount, currency, crypto_amount, crypto_currency,
                                       chain, order_type, pickup_time, delivery_address, special_instructions,
                                       expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now() + $13::interval)
            RETURNING {ORDER_COLUMNS}""",
        order_id, user_id, shop_id, total, currency, amount, asset.symbol, asset.chain, delivery.order_type,
        delivery.pickup_time, delivery.delivery_address, delivery.special_instructions, window)
    await _insert_items(conn, order_id, items)
    wanted, fields = _wanted(items)
    held = await inventory.reserve(conn, order_id, shop_id, wanted, fields)
    address = await deposit_address(conn, settings, asset, order_id, btc_account)
    payment = await conn.fetchrow(
        """INSERT INTO crypto_payments (order_id, user_id, chain, crypto_currency, crypto_amount, decimals,
                                        fiat_amount, fiat_currency, exchange_rate, wallet_address, expires_at,
                                        token_address, chain_id, payment_uri, rate_source, rate_as_of)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *""",
        order_id, user_id, asset.chain, asset.symbol, amount, asset.decimals, total, currency, rate.rate, address,
        order["expires_at"], asset.token_address, asset.chain_id, payment_uri(asset, address, amount), rate.source,
        rate.as_of)
    await audit.record(conn, actor, "order.create", "order", order_id, after=order_payload(order))
    await emit_many(conn, [Event("order.created", "order", order_id, order_payload(order)),
                           Event("payment.initiated", "order", order_id, payment_payload(payment, shop_id))])
    return order_id, held


async def lock_order(conn: Connection, order_id: uuid.UUID) -> Any:
    order = await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM coffee_orders WHERE id = $1 FOR UPDATE", order_id)
    if order is None:
        raise NotFound("no such order", order_id=str(order_id))
    return order


async def _set_status(conn: Connection, order: Any, target: OrderStatus, actor: audit.Actor,
                      extra: Sequence[Event] = ()) -> Any:
    after = await conn.fetchrow(
        f"""UPDATE coffee_orders SET order_status = $2, version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {ORDER_COLUMNS}""", order["id"], target.value)
    await audit.record(conn, actor, f"order.{target.value}", "order", order["id"],
                       before={"order_status": order["order_status"]}, after={"order_status": target.value})
    await emit_many(conn, [Event(f"order.{target.value}", "order", order["id"], order_payload(after)), *extra])
    return after


async def cancel(conn: Connection, order: Any, actor: audit.Actor) -> Any:
    """Cancel an unpaid order: its stock goes back and its payment window closes."""
    target = order_transition(order["order_status"], OrderStatus.CANCELLED)
    if order["payment_status"] not in ("pending", "expired"):
        raise Conflict(f"the payment is {order['payment_status']}; a paid or paying order cannot be cancelled",
                       payment_status=order["payment_status"])
    await inventory.release(conn, order["id"])
    payment = await conn.fetchrow(
        """UPDATE crypto_payments SET status = 'expired', updated_at = now() WHERE order_id = $1 AND status = 'pending'
           RETURNING *""", order["id"])
    await conn.execute(
        "UPDATE coffee_orders SET payment_status = 'expired' WHERE id = $1 AND payment_status = 'pending'", order["id"])
    extra = [] if payment is None else [Event("payment.expired", "order", order["id"],
                                              payment_payload(payment, order["shop_id"]))]
    return await _set_status(conn, order, target, actor, extra)


STAFF_MOVES = (OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.COMPLETED)


async def advance(conn: Connection, order: Any, target: str, actor: audit.Actor) -> Any:
    """The shop's progress moves: preparing, ready, completed."""
    wanted = OrderStatus(target)
    if wanted not in STAFF_MOVES:
        raise IllegalTransition("order", OrderStatus(order["order_status"]), wanted)
    return await _set_status(conn, order, order_transition(order["order_status"], wanted), actor)


async def modify(conn: Connection, settings: Settings, order: Any, *, lines: Sequence[Line] | None,
                 delivery: Delivery, rate: Rate | None, asset: Asset, actor: audit.Actor) -> Any:
    """Change an unpaid order: details, and items (re-priced, re-reserved, re-quoted at a fresh rate)."""
    if not modifiable(order["order_status"]) or order["payment_status"] != "pending":
        raise Conflict(f"the order is {order['order_status']} and its payment {order['payment_status']};"
                       " only an unpaid order can change", current_status=order["order_status"])
    seen = await conn.fetchval(
        """SELECT count(*) FROM deposits d JOIN crypto_payments p ON p.chain = d.chain AND p.wallet_address = d.address
           WHERE p.order_id = $1""", order["id"])
    if seen:
        raise Conflict("a payment to this order has been seen; it can no longer change")
    total, amount = order["total_amount"], order["crypto_amount"]
    if lines is not None:
        assert rate is not None
        items = await price_items(conn, order["shop_id"], order["currency"], lines)
        total = order_total([it.priced for it in items], order["currency"])
        amount = crypto_amount(total, rate.rate, asset.decimals)
        await inventory.release(conn, order["id"])
        await conn.execute("DELETE FROM order_reservations WHERE order_id = $1", order["id"])
        await conn.execute("DELETE FROM order_items WHERE order_id = $1", order["id"])
        await _insert_items(conn, order["id"], items)
        wanted, fields = _wanted(items)
        await inventory.reserve(conn, order["id"], order["shop_id"], wanted, fields)
        payment = await conn.fetchrow("SELECT wallet_address FROM crypto_payments WHERE order_id = $1", order["id"])
        await conn.execute(
            """UPDATE crypto_payments SET crypto_amount = $2, fiat_amount = $3, exchange_rate = $4, rate_source = $5,
                      rate_as_of = $6, payment_uri = $7, updated_at = now() WHERE order_id = $1""",
            order["id"], amount, total, rate.rate, rate.source, rate.as_of,
            payment_uri(asset, payment["wallet_address"], amount))
    after = await conn.fetchrow(
        f"""UPDATE coffee_orders SET total_amount = $2, crypto_amount = $3, order_type = $4, pickup_time = $5,
                   delivery_address = $6, special_instructions = $7, version = version + 1, updated_at = now()
            WHERE id = $1 RETURNING {ORDER_COLUMNS}""",
        order["id"], total, amount, delivery.order_type, delivery.pickup_time, delivery.delivery_address,
        delivery.special_instructions)
    await audit.record(conn, actor, "order.update", "order", order["id"], before=order_payload(order),
                       after=order_payload(after))
    await emit_many(conn, [Event("order.updated", "order", order["id"], order_payload(after))])
    return after
