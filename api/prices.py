"""Current exchange rates (the ones new orders are quoted at)."""

from __future__ import annotations

from aiohttp import web

from beanpay.api.body import decode_query
from beanpay.api.guard import public
from beanpay.api.http import json
from beanpay.api.routing import Routes
from beanpay.api.schemas import PriceOut, PriceQuery, Prices
from beanpay.api.state import rates

routes = Routes()


@routes.add("GET", "/v1/prices", summary="Fresh exchange rates in a fiat currency (fiat per whole coin)",
            tag="prices", query=PriceQuery, response=Prices, policy=public(), errors=(422,))
async def get_prices(request: web.Request) -> web.Response:
    q = decode_query(request, PriceQuery)
    found = await rates(request).cached(q.fiat)
    return json(Prices(q.fiat, [PriceOut(r.asset, r.fiat, r.rate, r.as_of, r.source) for r in found]))
