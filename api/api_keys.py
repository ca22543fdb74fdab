"""API keys for integrations: made by a shop's owner (or an operator) with named permissions for one or
more shops, shown once, kept only as a digest, listed with their last use, revocable. A key can hold
only what its creator holds on each of its shops, and never the right to manage people or keys."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from beanpay import audit, queries
from beanpay.access import grantable
from beanpay.api.accounts import credentials
from beanpay.api.accounts.principals import forget
from beanpay.api.accounts.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyQuery
from beanpay.api.body import decode_body, decode_query
from beanpay.api.guard import needs
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.routing import Routes
from beanpay.api.rows import to_struct, to_structs
from beanpay.api.state import pool
from beanpay.errors import Forbidden, InvalidInput, NotFound

routes = Routes()
SQL = queries.load("beanpay.api", "accounts.sql")
KEYS = needs("api-keys:manage", "the owners of the key's shops, operators")
SHOWN_ONCE = "[shown once, when the key was created]"
PREFIX_LENGTH = 10  # "bp_" and 7 characters: enough to tell keys apart in a list, far too few to guess


@routes.add("POST", "/v1/api-keys", summary="Create an API key (the key is shown once)", tag="api-keys",
            body=ApiKeyCreate, response=ApiKeyCreated, status=201, policy=KEYS, errors=(400, 401, 403, 422))
async def create_key(request: web.Request) -> web.Response:
    body = await decode_body(request, ApiKeyCreate)
    p = who(request)
    problems = grantable(p, set(body.permissions), set(body.shop_ids))
    if problems:
        raise InvalidInput("this key cannot be made", [{"field": field, "message": why} for field, why in problems])
    expires = body.expires_at
    if expires is not None:
        expires = (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        if expires <= dt.datetime.now(dt.UTC):
            raise InvalidInput("this key cannot be made", [{"field": "expires_at", "message": "must be in the future"}])
    key = credentials.new_api_key()
    async with mutation(request) as m:
        row = await m.conn.fetchrow(SQL.api_key_insert, credentials.digest(key), key[:PREFIX_LENGTH], body.name,
                                    sorted(set(body.permissions)), sorted(set(body.shop_ids), key=str),
                                    p.id if p.kind == "user" else None, expires)
        assert row is not None
        made = to_struct(row, ApiKey)
        await audit.record(m.conn, actor(request), "api_key.create", "api_key", made.id,
                           after={"name": made.name, "permissions": made.permissions,
                                  "shop_ids": [str(s) for s in made.shop_ids]})  # never the key
        fields = {f: getattr(made, f) for f in ApiKey.__struct_fields__}
        return await m.respond(json(ApiKeyCreated(**fields, key=key), status=201),
                               stored=json(ApiKeyCreated(**fields, key=SHOWN_ONCE), status=201).body)  # type: ignore[arg-type]


@routes.add("GET", "/v1/api-keys", summary="The API keys of the shops I own (or of one shop)", tag="api-keys",
            query=ApiKeyQuery, response=list[ApiKey], policy=KEYS, errors=(401, 403, 422))
async def list_keys(request: web.Request) -> web.Response:
    q = decode_query(request, ApiKeyQuery)
    mine = who(request).shops_with("api-keys:manage")
    if q.shop_id is not None:
        if mine is not None and q.shop_id not in mine:
            raise Forbidden("you do not hold api-keys:manage on this shop")
        shops: list[object] | None = [q.shop_id]
    else:
        shops = None if mine is None else list(mine)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.api_keys_of_shops, shops)
    return json(to_structs(rows, ApiKey))


@routes.add("DELETE", "/v1/api-keys/{key_id}", summary="Revoke an API key", tag="api-keys", status=204, policy=KEYS,
            errors=(401, 403, 404))
async def revoke_key(request: web.Request) -> web.Response:
    key_id = path_uuid(request, "key_id")
    p = who(request)
    async with pool(request).transaction() as conn:
        row = await conn.fetchrow(SQL.api_key_lock, key_id)
        # the owner of any one of the key's shops may revoke it: a key that can act for a shop is that shop's risk
        if row is None or not any(p.may("api-keys:manage", s) for s in row["shop_ids"]):
            raise NotFound("no such API key")
        if row["revoked_at"] is None:
            await conn.fetchrow(SQL.api_key_revoke, key_id)
            await audit.record(conn, actor(request), "api_key.revoke", "api_key", key_id)
    await forget(request, keys=[row["key_digest"]])
    return web.Response(status=204)
