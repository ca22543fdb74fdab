"""The product catalog: products with typed customizations, filter by category, search by name."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from asyncpg import Record
from msgspec import UNSET

from beanpay import audit
from beanpay import cachekeys as keys
from beanpay.api.body import check_version, decode_body, decode_query, patched_fields, update_statement
from beanpay.api.http import actor, json, path_id, path_uuid, require
from beanpay.api.reads import cached_read
from beanpay.api.routing import Routes
from beanpay.api.rows import KeysetPage, to_struct
from beanpay.api.schemas import Page, Product, ProductCreate, ProductPatch, ProductQuery, encoder
from beanpay.api.state import cache, pool
from beanpay.db import Connection, transaction
from beanpay.errors import Forbidden, InvalidInput, NotFound
from beanpay.events.outbox import emit
from beanpay.money import check_fiat, normalize
from beanpay.tokens import Claims

routes = Routes()

COLUMNS = """id, name, category, base_price, currency, description, image_url, ingredients, nutritional_info,
             customizations, status, version, created_at, updated_at"""
JSON_FIELDS = ("ingredients", "nutritional_info", "customizations")


def _product(row: Record) -> Product:
    return to_struct(row, Product, JSON_FIELDS)


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
    row = await conn.fetchrow(
        f"SELECT {COLUMNS}, created_by FROM products WHERE id = $1 AND status <> 'deleted'"
        + (" FOR UPDATE" if lock else ""), product_id)
    if row is None:
        raise NotFound("no such product", product_id=str(product_id))
    return _product(row), row["created_by"]


def _may_edit(claims: Claims, created_by: uuid.UUID | None) -> None:
    if claims.role != "operator" and created_by != claims.sub:
        raise Forbidden("only an operator or the merchant who created a product may change it")


async def _menu_keys(conn: Connection, product_id: uuid.UUID) -> list[str]:
    rows = await conn.fetch("SELECT shop_id FROM shop_products WHERE product_id = $1", product_id)
    return [keys.menu_key(r["shop_id"]) for r in rows]


@routes.add("POST", "/v1/products", summary="Create a product", tag="products", body=ProductCreate,
            response=Product, status=201, auth="operator or merchant", errors=(400, 401, 403, 422))
async def create_product(request: web.Request) -> web.Response:
    claims = require(request, "operator", "merchant")
    body = await decode_body(request, ProductCreate)
    _check_prices(body.base_price, body.currency, body.customizations)
    async with transaction(pool(request)) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO products (name, category, base_price, currency, description, image_url, ingredients,
                                      nutritional_info, customizations, status, created_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}""",
            body.name, body.category, body.base_price, body.currency, body.description, body.image_url,
            encoder.encode(body.ingredients).decode(),
            None if body.nutritional_info is None else encoder.encode(body.nutritional_info).decode(),
            encoder.encode(body.customizations).decode(), body.status, claims.sub)
        product = _product(row)
        await audit.record(conn, actor(request), "product.create", "product", product.id, after=product)
        await emit(conn, "product.created", "product", product.id, product)
    return json(product, status=201)


@routes.add("GET", "/v1/products/{product_id}", summary="Get a product", tag="products", response=Product,
            errors=(404,))
async def get_product(request: web.Request) -> web.Response:
    product_id = path_id(request, "product_id")

    async def load(conn: Connection) -> Product:
        return (await fetch_product(conn, uuid.UUID(product_id)))[0]

    return await cached_read(request, keys.product_key(product_id), keys.TTL["product"], load)


@routes.add("GET", "/v1/products", summary="List products; filter by category, search by name", tag="products",
            query=ProductQuery, response=Page[Product], errors=(422,))
async def list_products(request: web.Request) -> web.Response:
    q = decode_query(request, ProductQuery)
    page = KeysetPage(q.limit, q.cursor)
    if q.status is None:
        page.where("status <> 'deleted'")
    else:
        page.where("status = ?", q.status)
    if q.category is not None:
        page.where("category = ?", q.category)
    if q.q is not None:
        escaped = q.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        page.where("lower(name) LIKE ?", f"%{escaped}%")
    async with pool(request).acquire() as conn:
        return json(await page.fetch(conn, COLUMNS, "products", Product, JSON_FIELDS))


@routes.add("PATCH", "/v1/products/{product_id}", summary="Update a product", tag="products", body=ProductPatch,
            response=Product, auth="operator, or the merchant who created it", errors=(400, 401, 403, 404, 409, 422))
async def update_product(request: web.Request) -> web.Response:
    product_id = path_uuid(request, "product_id")
    claims = require(request, "operator", "merchant")
    patch = await decode_body(request, ProductPatch)
    async with transaction(pool(request)) as conn:
        before, created_by = await fetch_product(conn, product_id, lock=True)
        _may_edit(claims, created_by)
        check_version(patch, before.version, "product")
        _check_prices(patch.base_price, before.currency, patch.customizations)
        sql, values = update_statement("products", COLUMNS, patched_fields(patch), JSON_FIELDS)
        row = await conn.fetchrow(sql, product_id, *values)
        after = _product(row)
        await audit.record(conn, actor(request), "product.update", "product", product_id, before=before, after=after)
        await emit(conn, "product.updated", "product", product_id, after)
        if before.base_price != after.base_price:
            await emit(conn, "product.price_changed", "product", product_id,
                       {"product_id": str(product_id), "old_price": before.base_price,
                        "new_price": after.base_price, "currency": after.currency})
        if before.status != after.status:
            await emit(conn, "product.availability_changed", "product", product_id,
                       {"product_id": str(product_id), "available": after.status == "active"})
        stale = await _menu_keys(conn, product_id)
    await cache(request).invalidate(keys.product_key(product_id), *stale)
    return json(after)


@routes.add("DELETE", "/v1/products/{product_id}", summary="Delete a product (hidden from reads and menus)",
            tag="products", status=204, auth="operator, or the merchant who created it", errors=(401, 403, 404))
async def delete_product(request: web.Request) -> web.Response:
    product_id = path_uuid(request, "product_id")
    claims = require(request, "operator", "merchant")
    async with transaction(pool(request)) as conn:
        before, created_by = await fetch_product(conn, product_id, lock=True)
        _may_edit(claims, created_by)
        await conn.execute(
            "UPDATE products SET status = 'deleted', version = version + 1, updated_at = now() WHERE id = $1",
            product_id)
        await audit.record(conn, actor(request), "product.delete", "product", product_id, before=before)
        await emit(conn, "product.deleted", "product", product_id, {"id": str(product_id)})
        stale = await _menu_keys(conn, product_id)
    await cache(request).invalidate(keys.product_key(product_id), *stale)
    return web.Response(status=204)
