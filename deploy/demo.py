"""`just demo`: start the API and relay, seed a shop with a menu through the API, print the menu.

Run after `beanpay dev up` and `beanpay migrate` (the justfile does both). Exits non-zero if any
step fails, so it doubles as a smoke test of the whole stack.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import aiohttp
import asyncpg

from beanpay.config import Settings, load_settings
from beanpay.tokens import Claims, issue

MENU = [
    ("Espresso", "coffee", "2.80", [("shot", [("single", "0"), ("double", "0.90")])]),
    ("Flat White", "coffee", "3.90", [("milk", [("whole", "0"), ("oat", "0.50")]),
                                      ("size", [("regular", "0"), ("large", "0.70")])]),
    ("Cold Brew", "coffee", "4.50", [("size", [("regular", "0"), ("large", "0.80")])]),
    ("Chai Latte", "tea", "4.10", [("milk", [("whole", "0"), ("oat", "0.50")])]),
    ("Almond Croissant", "bakery", "3.60", []),
]


async def _wait_ready(session: aiohttp.ClientSession, base: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if server.poll() is not None:
            raise SystemExit(f"the API process exited with {server.returncode}; see .beanpay/logs/demo-api.log")
        try:
            async with session.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the API did not become ready")


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any) -> Any:
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json()
        if resp.status >= 300:
            raise SystemExit(f"{method} {url} -> {resp.status}: {data}")
        return data


async def seed_and_show(settings: Settings, base: str, server: subprocess.Popen[bytes]) -> None:
    conn = await asyncpg.connect(settings.dsn)
    try:
        before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM event_outbox")
    finally:
        await conn.close()
    operator = issue(Claims(sub=uuid.uuid4(), role="operator"), settings.jwt_secret or "", ttl=600)
    async with aiohttp.ClientSession() as session:
        await _wait_ready(session, base, server)
        shop = await _call(session, "POST", f"{base}/v1/shops", operator, {
            "name": "Bean There Roasters", "address": "12 Harbour St", "latitude": 52.5200, "longitude": 13.4050,
            "currency": "USD", "opening_hours": {d: [{"open": "07:00", "close": "18:00"}]
                                                 for d in ("mon", "tue", "wed", "thu", "fri")}})
        merchant = issue(Claims(sub=uuid.uuid4(), role="merchant", shops=[uuid.UUID(shop["id"])]),
                         settings.jwt_secret or "", ttl=600)
        for name, category, price, groups in MENU:
            product = await _call(session, "POST", f"{base}/v1/products", merchant, {
                "name": name, "category": category, "base_price": price,
                "customizations": [{"name": g, "options": [{"name": o, "price_delta": d} for o, d in opts]}
                                   for g, opts in groups]})
            await _call(session, "PUT", f"{base}/v1/shops/{shop['id']}/products/{product['id']}", merchant,
                        {"price": price, "available": True})
            await _call(session, "POST", f"{base}/v1/supplies", merchant, {
                "shop_id": shop["id"], "product_id": product["id"], "quantity": 40, "unit": "servings"})
        async with session.get(f"{base}/v1/shops/{shop['id']}/menu") as resp:
            menu = await resp.json()
    print(f"\n{menu['shop_name']}  (shop {menu['shop_id']}, prices in {menu['currency']})\n")
    print(f"  {'ITEM':18} {'CATEGORY':9} {'PRICE':>6}  OPTIONS")
    for item in menu["items"]:
        options = "; ".join(
            f"{g['name']}: " + ", ".join(o["name"] + (f" +{o['price_delta']}" if o["price_delta"] not in ("0", "0.00")
                                                      else "") for o in g["options"])
            for g in item["customizations"])
        print(f"  {item['name']:18} {item['category']:9} {item['price']:>6}  {options}")
    await _wait_published(settings, before)


async def _wait_published(settings: Settings, after_id: int) -> None:
    conn = await asyncpg.connect(settings.dsn)
    try:
        for _ in range(150):
            left = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
            if left == 0:
                sent = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE id > $1", after_id)
                print(f"\n{sent} events of this run published to Kafka by the outbox relay; "
                      f"try: kcat -b {settings.kafka_servers} -C -t coffee-shop-events -e -q")
                return
            await asyncio.sleep(0.2)
        raise SystemExit("the relay did not publish the outbox within 30s")
    finally:
        await conn.close()


def main() -> int:
    settings = load_settings()
    base = f"http://{settings.api_host}:{settings.api_port}"
    log = settings.state_path / "logs" / "demo-api.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    beanpay = os.path.join(os.path.dirname(sys.executable), "beanpay")
    with log.open("ab") as out:
        server = subprocess.Popen([beanpay, "run"], stdout=out, stderr=subprocess.STDOUT)
    try:
        asyncio.run(seed_and_show(settings, base, server))
    finally:
        server.terminate()
        server.wait(timeout=15)
    print("\ndemo finished: API and relay stopped; the stack keeps running (`just down` stops it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
