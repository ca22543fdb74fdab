"""Being another customer through a second identity provider: two issuers whose subjects happen to be equal
(or one chosen to equal the other's) name two customers, never one; development tokens keep naming the
customer by their subject."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web

from beanpay.config import OidcIssuer
from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop, place
from tests.integration.test_oidc import AUDIENCE, Provider, bearer

pytest_plugins = ["tests.integration.engine_support"]
FIRST, SECOND = "https://id.coffee.example", "https://id.partner.example"


@pytest.fixture
async def providers(aiohttp_server: Any) -> dict[str, tuple[Provider, str]]:
    found = {}
    for issuer in (FIRST, SECOND):
        idp = Provider()
        app = web.Application()
        app.router.add_get("/jwks", idp.jwks)
        server = await aiohttp_server(app)
        found[issuer] = (idp, str(server.make_url("/jwks")))
    return found


async def test_equal_subjects_of_two_issuers_are_two_customers(make_api: Any, tokens: Tokens,
                                                               providers: dict[str, tuple[Provider, str]]) -> None:
    """Attack: a customer of the partner's identity provider gets (or picks) the same `sub` as a customer of
    the platform's provider, and reads that customer's orders. Must hold: the customer is (issuer, sub);
    the other issuer's customer sees none of them, and cannot open one by its id."""
    api = await make_api(oidc_issuers=[OidcIssuer(issuer, AUDIENCE, url) for issuer, (_, url) in providers.items()])
    shop = await make_coffee_shop(api, tokens)
    sub = str(uuid.uuid4())
    first, second = (idp.token(idp.add("ES256"), sub=sub, iss=issuer) for issuer, (idp, _) in providers.items())

    order = await place(api, bearer(first), shop, "eth", "ETH")
    mine = await (await api.get("/v1/orders", headers=bearer(first))).json()
    assert [o["id"] for o in mine["items"]] == [order["id"]]

    theirs = await api.get("/v1/orders", headers=bearer(second))
    assert theirs.status == 200 and (await theirs.json())["items"] == []
    assert (await api.get(f"/v1/orders/{order['id']}", headers=bearer(second))).status == 404
    # nor is a development token with the same subject that customer
    assert (await api.get(f"/v1/orders/{order['id']}", headers=tokens.header("customer", sub=uuid.UUID(sub)))
            ).status == 404
