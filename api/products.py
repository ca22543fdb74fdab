"""The product catalog: products with typed customizations, filter by category, search by name.

A product made for a shop (`shop_id`) belongs to it: only its menu carries it and its managers change
it. A shared product (an operator's catalog; what merchants made before products had shops) is changed
by an operator, or by its creator while no menu of a shop they do not manage carries it: one merchant's
rename or deactivation must not reach another shop's menu."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from msgspec import UNSET

from beanpay import audit, queries
from beanpay import cachekeys as keys
from beanpay.access import Principal
from beanpay.api.body import check_version, decode_body, decode_query, merged
from beanpay.api.guard import needs, public
from beanpay.api.http import actor, json, path_id, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import keyset, page_of, to_struct
from beanpay.api.schemas import Page, Product, ProductCreate, ProductPatch, ProductQuery, encoder
from beanpay.api.shops import fetch_shop
from beanpay.api.state import cache, pool
from beanpay.db import Connection
from beanpay.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import AvailabilityChanged, Deleted, PriceChanged
from beanpay.money import check_fiat, normalize

routes = Routes()
SQL = queries.load("beanpay.api", "products.sql")
JSON_FIELDS = ("ingredients", "nutritional_info", "customizations")
EDIT = needs("catalog:write", "its shop's managers (a shared one: its creator while only their shops' menus carry "
             "it), operators")


def _json(value: object) -> str | None:
    return None if value is None else encoder.encode(value).decode()


def _check_prices(base_price: Any, currency: str, customizations: Any) -> None:
    """Prices fit the currency's minor units; option deltas are then written with exactly those units."""
    errors = []
    if base_price is not UNSET and (why := check_fiat(base_price, currency)):
        errors.append({"field": "$.base_price", "message": why})
    for gi, group in enumerate([] if customizations is UNSET else customizations):
        for oi, option in enumerate(group.options):
            if why := check_fiat(option.price_delta, currency, signed=True):
                errors.append({"field": f"$.customizations[{gi}].options[{oi}].price_delta", "message": why})
            else:
                option.price_delta = normalize(option.price_delta, currency)
    if errors:
        raise InvalidInput("invalid prices", errors)


async def fetch_product(conn: Connection, product_id: uuid.UUID, *, lock: bool = False) -> tuple[Product, Any]:
    row = await conn.fetchrow(SQL.lock if lock else SQL.fetch, product_id)
    if row is None:
        raise NotFound("no such product", product_id=str(product_id))
    return to_struct(row, Product, JSON_FIELDS), row["created_by"]


# what a product shows wherever it is sold (menus read it live); base price and options are not: a menu
# keeps its own price and its own copy of the options, taken when the shop lists the product
SHOWN_ON_MENUS = ("name", "category", "description", "image_url", "ingredients", "nutritional_info", "status")


async def _may_edit(conn: Connection, p: Principal, product: Product, created_by: uuid.UUID | None,
                    patch: ProductPatch | None) -> None:
    """A shop's product: its managers (and operators) change it. A shared one: operators, and its creator;
    while a menu of a shop they do not manage carries it, the creator changes nothing that menu shows
    (`patch` None: deleting it, which every menu shows)."""
    if p.operator:
        return
    if product.shop_id is not None:
        if not p.may("catalog:write", product.shop_id):
            raise Forbidden("this product belongs to a shop you do not manage")
        return
    if created_by is None or created_by != p.id:
        raise Forbidden("only an operator or the merchant who created a product may change it")
    shown = patch is None or any(getattr(patch, f) is not UNSET and getattr(patch, f) != getattr(product, f)
                                 for f in SHOWN_ON_MENUS)
    if not shown:
        return
    elsewhere = [r["shop_id"] for r in await conn.fetch(SQL.menus_with, product.id)
                 if not p.may("catalog:write", r["shop_id"])]
    if elsewhere:
        raise Forbidden("this product is on the menu of a shop you do not manage: only an operator may change what "
                        "its menus show (make a product of your own shop to keep it yours)",
                        shop_id=str(elsewhere[0]))


async def _menu_keys(conn: Connection, product_id: uuid.UUID) -> list[str]:
    return [keys.menu_key(r["shop_id"]) for r in await conn.fetch(SQL.menus_with, product_id)]


@routes.add("POST", "/v1/products", summary="Create a product", tag="products", body=ProductCreate,
            response=Product, status=201, policy=needs("catalog:write", "shops' owners and managers, operators"),
            errors=(400, 401, 403, 422))
async def create_product(request: web.Request) -> web.Response:
    claims = who(request)
    body = await decode_body(request, ProductCreate)
    _check_prices(body.base_price, body.currency, body.customizations)
    if body.shop_id is not None and not claims.may("catalog:write", body.shop_id):
        raise Forbidden("you may not make products for this shop", shop_id=str(body.shop_id))
    async with mutation(request) as m:
        if body.shop_id is not None:
            await fetch_shop(m.conn, body.shop_id)  # a 404 for a shop that is not there
        product = to_struct(await m.conn.fetchrow(
            SQL.insert, body.name, body.category, body.base_price, body.currency, body.description, body.image_url,
            _json(body.ingredients), _json(body.nutritional_info), _json(body.customizations), body.status,
            claims.id, body.shop_id), Product, JSON_FIELDS)
        await audit.record(m.conn, actor(request), "product.create", "product", product.id, after=product)
        await emit_many(m.conn, [Event(catalog.PRODUCT_CREATED, product.id, product)])
        return await m.respond(json(product, status=201))


@routes.add("GET", "/v1/products/{product_id}", summary="Get a product", tag="products", response=Product,
            policy=public(), errors=(404,))
async def get_product(request: web.Request) -> web.Response:
    product_id = path_id(request, "product_id")

    async def load(conn: Connection) -> Product:
        return (await fetch_product(conn, uuid.UUID(product_id)))[0]

    return await cached_read(request, keys.product_key(product_id), keys.TTL["product"], load)


@routes.add("GET", "/v1/products", summary="List products; filter by category, search by name", tag="products",
            query=ProductQuery, response=Page[Product],
            policy=public("anyone; deleted products: operators, and merchants their own"), errors=(401, 403, 422))
async def list_products(request: web.Request) -> web.Response:
    q = decode_query(request, ProductQuery)
    after, after_id = keyset(q.cursor)
    pattern = None
    if q.q is not None:
        escaped = q.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.page, q.limit + 1, after, after_id, q.status, q.category, pattern,
                                _deleted_by(request) if q.status == "deleted" else None)
    return json(page_of(rows, q.limit, Product, JSON_FIELDS))


def _deleted_by(request: web.Request) -> uuid.UUID | None:
    """Whose deleted products the caller may list: anyone's (None) for operators, else their own."""
    p = who(request)
    if p.kind == "anonymous":
        raise Unauthorized("deleted products are listed to operators and their creators only; sign in")
    if p.operator:
        return None
    if p.kind != "user" or not p.may_somewhere("catalog:write"):
        raise Forbidden("deleted products are listed to operators and their creators only")
    return p.id


@routes.add("PATCH", "/v1/products/{product_id}", summary="Update a product", tag="products", body=ProductPatch,
            response=Product, policy=EDIT,
            errors=(400, 401, 403, 404, 409, 422))
async def update_product(request: web.Request) -> web.Response:
    product_id = path_uuid(request, "product_id")
    claims = who(request)
    patch = await decode_body(request, ProductPatch)
    async with pool(request).transaction() as conn:
        before, created_by = await fetch_product(conn, product_id, lock=True)
        await _may_edit(conn, claims, before, created_by, patch)
        check_version(patch, before.version, "product")
        _check_prices(patch.base_price, before.currency, patch.customizations)
        want = merged(before, patch)
        after = to_struct(await conn.fetchrow(
            SQL.update, product_id, want.name, want.category, want.base_price, want.description, want.image_url,
            _json(want.ingredients), _json(want.nutritional_info), _json(want.customizations), want.status),
            Product, JSON_FIELDS)
        await audit.record(conn, actor(request), "product.update", "product", product_id, before=before, after=after)
        events: list[Event[Any]] = [Event(catalog.PRODUCT_UPDATED, product_id, after)]
        if before.base_price != after.base_price:
            events.append(Event(catalog.PRODUCT_PRICE_CHANGED, product_id, PriceChanged(
                product_id, after.base_price, before.base_price, currency=after.currency)))
        if before.status != after.status:
            events.append(Event(catalog.PRODUCT_AVAILABILITY_CHANGED, product_id,
                                AvailabilityChanged(product_id, after.status == "active")))
        await emit_many(conn, events)
        stale = await _menu_keys(conn, product_id)
    await cache(request).invalidate(keys.product_key(product_id), *stale)
    return json(after)


@routes.add("DELETE", "/v1/products/{product_id}", summary="Delete a product (hidden from reads and menus)",
            tag="products", status=204, policy=EDIT,
            errors=(401, 403, 404))
async def delete_product(request: web.Request) -> web.Response:
    product_id = path_uuid(request, "product_id")
    claims = who(request)
    async with pool(request).transaction() as conn:
        before, created_by = await fetch_product(conn, product_id, lock=True)
        await _may_edit(conn, claims, before, created_by, None)
        await conn.execute(SQL.delete, product_id)
        await audit.record(conn, actor(request), "product.delete", "product", product_id, before=before)
        await emit_many(conn, [Event(catalog.PRODUCT_DELETED, product_id, Deleted(product_id))])
        stale = await _menu_keys(conn, product_id)
    await cache(request).invalidate(keys.product_key(product_id), *stale)
    return web.Response(status=204)
