"""Carts: a customer's lines at one shop, priced live from the menu with the same rules (and field
errors) as orders, and checked out into an order in that order's own transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from beanpay import queries
from beanpay.db import Connection, Database, fetch_as, fetchrow_as
from beanpay.engine.orders import Line, MenuLine, price_items
from beanpay.engine.pricing import PricedLine, order_total
from beanpay.errors import Conflict, InvalidInput, NotFound

SQL = queries.load("beanpay.engine", "carts.sql")
MAX_LINES = 50  # what one order may hold
_customs = msgspec.json.Decoder(dict[str, list[str]]).decode


class CartRow(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    shop_id: uuid.UUID
    expires_at: dt.datetime
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ItemRow(msgspec.Struct):
    id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    customizations: str  # JSON: group -> options
    added_at: dt.datetime

    def line(self) -> Line:
        return Line(self.product_id, self.quantity, _customs(self.customizations))


class _Menu(msgspec.Struct):
    shop_status: str | None
    currency: str | None
    product_id: uuid.UUID | None
    name: str | None
    customizations: str | None
    price: Decimal | None
    stocked: bool | None


@dataclass(frozen=True)
class CartLine:
    item: ItemRow
    name: str | None
    priced: PricedLine | None  # None: the line cannot be ordered as it is (see problems)
    problems: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PricedCart:
    cart: CartRow | None  # None: no cart (empty)
    shop_id: uuid.UUID
    currency: str
    lines: list[CartLine]
    total: Decimal  # of the lines that can be ordered

    @property
    def orderable(self) -> bool:
        return bool(self.lines) and all(not line.problems for line in self.lines)


def price_lines(menu: dict[uuid.UUID, MenuLine], currency: str, items: list[ItemRow]) -> tuple[list[CartLine], Decimal]:
    """Each line priced on its own, so one line off the menu does not hide the others' prices. Pure."""
    lines = []
    for i, item in enumerate(items):
        try:
            (priced,) = price_items(menu, currency, [item.line()])
        except InvalidInput as exc:
            problems = [{"field": f"items[{i}]" + e["field"].removeprefix("items[0]"), "message": e["message"]}
                        for e in exc.errors]
            lines.append(CartLine(item, menu[item.product_id].name if item.product_id in menu else None, None,
                                  problems))
            continue
        lines.append(CartLine(item, priced.name, priced.priced))
    total = order_total([ln.priced for ln in lines if ln.priced is not None], currency)
    return lines, total


async def _menu(conn: Connection, shop_id: uuid.UUID,
                products: list[uuid.UUID]) -> tuple[str, dict[uuid.UUID, MenuLine]]:
    rows = await fetch_as(conn, SQL.menu_lines, _Menu, shop_id, products)
    head = rows[0]
    if head.shop_status is None or head.shop_status == "deleted" or head.currency is None:
        raise NotFound("no such shop", shop_id=str(shop_id))
    menu = {r.product_id: MenuLine(r.product_id, r.name or "", r.customizations or "[]", r.price or Decimal(0),
                                   bool(r.stocked)) for r in rows if r.product_id is not None}
    return head.currency.strip(), menu


async def shop_of_item(conn: Connection, item_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID | None:
    """The shop of a line in this customer's cart (None: no such line of theirs)."""
    found: uuid.UUID | None = await conn.fetchval(SQL.shop_of_item, item_id, user_id)
    return found


async def read(conn: Connection, user_id: uuid.UUID, shop_id: uuid.UUID, *, lock: bool = False) -> PricedCart:
    cart = await fetchrow_as(conn, SQL.lock_cart if lock else SQL.cart_of, CartRow, user_id, shop_id)
    if cart is not None and cart.expires_at <= dt.datetime.now(dt.UTC):
        cart = None
    items = await fetch_as(conn, SQL.items, ItemRow, cart.id) if cart is not None else []
    currency, menu = await _menu(conn, shop_id, sorted({i.product_id for i in items}))
    lines, total = price_lines(menu, currency, items)
    return PricedCart(cart, shop_id, currency, lines, total)


async def _check(conn: Connection, shop_id: uuid.UUID, line: Line) -> None:
    """The line as the order would take it, with the add's own field names (product_id, customizations...)."""
    currency, menu = await _menu(conn, shop_id, [line.product_id])
    try:
        price_items(menu, currency, [line])
    except InvalidInput as exc:
        raise InvalidInput("the line does not match the menu",
                           [{"field": e["field"].removeprefix("items[0]."), "message": e["message"]}
                            for e in exc.errors]) from None


async def add(conn: Connection, user_id: uuid.UUID, shop_id: uuid.UUID, line: Line, ttl: dt.timedelta) -> uuid.UUID:
    await _check(conn, shop_id, line)
    cart = await fetchrow_as(conn, SQL.open_cart, CartRow, uuid.uuid4(), user_id, shop_id, ttl)
    assert cart is not None
    item_id = uuid.uuid4()
    added = await conn.fetchval(SQL.add_item, item_id, cart.id, line.product_id, line.quantity,
                                msgspec.json.encode(line.customizations).decode(), MAX_LINES)
    if added is None:
        raise InvalidInput("the cart is full", [{"field": "product_id",
                                                 "message": f"a cart holds at most {MAX_LINES} lines"}])
    return item_id


async def change(conn: Connection, user_id: uuid.UUID, shop_id: uuid.UUID, item_id: uuid.UUID, *,
                 quantity: int | None, customizations: dict[str, list[str]] | None, ttl: dt.timedelta) -> None:
    current = await read(conn, user_id, shop_id, lock=True)
    found = next((ln.item for ln in current.lines if ln.item.id == item_id), None)
    if current.cart is None or found is None:
        raise NotFound("no such line in your cart", item_id=str(item_id))
    line = found.line()
    await _check(conn, shop_id, Line(line.product_id, quantity or line.quantity,
                                     line.customizations if customizations is None else customizations))
    await conn.fetchval(SQL.change_item, item_id, current.cart.id, quantity,
                        None if customizations is None else msgspec.json.encode(customizations).decode())
    await conn.fetchrow(SQL.open_cart, uuid.uuid4(), user_id, shop_id, ttl)  # the change pushes its expiry out


async def remove(conn: Connection, user_id: uuid.UUID, shop_id: uuid.UUID, item_id: uuid.UUID) -> None:
    cart = await fetchrow_as(conn, SQL.lock_cart, CartRow, user_id, shop_id)
    if cart is None or await conn.fetchval(SQL.remove_item, item_id, cart.id) is None:
        raise NotFound("no such line in your cart", item_id=str(item_id))


async def clear(conn: Connection, user_id: uuid.UUID, shop_id: uuid.UUID) -> None:
    cart = await fetchrow_as(conn, SQL.lock_cart, CartRow, user_id, shop_id)
    if cart is not None:
        await conn.execute(SQL.delete_cart, cart.id)


def checked_out(cart: CartRow) -> Any:
    """The hook an order runs in its own transaction: the cart it came from goes, if it did not change
    since it was read (a line added in another tab meanwhile fails the checkout instead of being lost)."""

    async def delete(conn: Connection, _order: object) -> None:
        now = await fetchrow_as(conn, SQL.lock_cart, CartRow, cart.user_id, cart.shop_id)
        if now is None or now.version != cart.version:
            raise Conflict("the cart changed while it was checked out; look at it and check out again")
        await conn.execute(SQL.delete_cart, cart.id)

    return delete


async def purge_expired(db: Database, older_than: dt.timedelta, batch: int) -> int:
    async with db.transaction() as conn:
        return len(await conn.fetch(SQL.purge_expired, older_than, batch))
