"""`just demo`: the whole payment flow against the local stack.

Starts every service in one `beanpay run` process (API, relay, engine, webhook sender, BTC and EVM
indexers), seeds a shop with a menu and stock, registers a webhook to a local receiver that checks
every signature with the reference `standardwebhooks` library, then as a customer places three
orders paid in BTC (btcd), ETH and test-USDC (anvil) with real signed transactions, mines blocks,
and follows each order to confirmed, claimed and processed. Ends with a summary table; exits non-zero
if any step fails, so it doubles as a smoke test of the whole system.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import msgspec
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.deploy.devstack.evm_payer import AnvilWallet
from beanpay.engine.payment_uri import coins
from beanpay.tokens import Claims, issue

MENU = [
    ("Espresso", "coffee", "2.80", [("shot", [("single", "0"), ("double", "0.90")])]),
    ("Flat White", "coffee", "3.90", [("milk", [("whole", "0"), ("oat", "0.50")]),
                                      ("size", [("regular", "0"), ("large", "0.70")])]),
    ("Cold Brew", "coffee", "4.50", [("size", [("regular", "0"), ("large", "0.80")])]),
    ("Chai Latte", "tea", "4.10", [("milk", [("whole", "0"), ("oat", "0.50")])]),
    ("Almond Croissant", "bakery", "3.60", []),
]
# what the customer orders, and pays with
ORDERS = [
    ("btc", "BTC", [("Flat White", 1, {"milk": ["oat"], "size": ["large"]}), ("Almond Croissant", 1, {})]),
    ("eth", "ETH", [("Cold Brew", 2, {"size": ["large"]})]),
    ("eth", "tUSDC", [("Espresso", 1, {"shot": ["double"]}), ("Chai Latte", 1, {"milk": ["oat"]})]),
]
HOOK_EVENTS = ["order.created", "payment.initiated", "payment.processing", "payment.confirmed", "order.confirmed",
               "order.claimed", "claim.processed", "order.completed"]
TIMEOUT = 120.0


class DemoFailed(Exception):
    pass


@dataclass
class Receiver:
    """The merchant's webhook endpoint: verifies each signature, remembers each message id once."""

    secret: str = ""
    by_order: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    ids: set[str] = field(default_factory=set)
    rejected: int = 0
    duplicates: int = 0
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            message = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=400)
        msg_id = request.headers["webhook-id"]
        if msg_id in self.ids:
            self.duplicates += 1
        else:
            self.ids.add(msg_id)
            self.by_order[message["data"].get("order_id", "")].append(message["type"])
        return web.Response(status=204)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/beanpay", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        async with self.session.request(method, self.base + path, json=body, headers=headers) as resp:
            data = await resp.json() if resp.status != 204 else None
            if resp.status >= 300:
                raise DemoFailed(f"{method} {path} -> {resp.status}: {data}")
            return data


async def _until(what: str, check: Any, server: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoFailed(f"`beanpay run` exited with {server.returncode}; see .beanpay/logs/demo.log")
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise DemoFailed(f"timed out waiting for {what}")


async def _ready(session: aiohttp.ClientSession, base: str, settings: Settings) -> bool:
    try:
        async with session.get(f"{base}/readyz") as resp:
            if resp.status != 200:
                return False
    except aiohttp.ClientError:
        return False
    conn = await asyncpg.connect(settings.dsn)
    try:  # the indexers have started (a payment made before that would predate their start height)
        return bool(await conn.fetchval("SELECT count(*) FROM chain_cursors") >= 2)
    finally:
        await conn.close()


async def seed(api: Api, operator: str, secret: str) -> tuple[dict[str, Any], str, dict[str, str]]:
    shop = await api.call("POST", "/v1/shops", operator, {
        "name": "Bean There Roasters", "address": "12 Harbour St", "latitude": 52.5200, "longitude": 13.4050,
        "currency": "USD", "opening_hours": {d: [{"open": "07:00", "close": "18:00"}]
                                             for d in ("mon", "tue", "wed", "thu", "fri")}})
    merchant = issue(Claims(sub=uuid.uuid4(), role="merchant", shops=[uuid.UUID(shop["id"])]), secret, ttl=1800)
    products = {}
    for name, category, price, groups in MENU:
        product = await api.call("POST", "/v1/products", merchant, {
            "name": name, "category": category, "base_price": price,
            "customizations": [{"name": g, "options": [{"name": o, "price_delta": d} for o, d in opts]}
                               for g, opts in groups]})
        await api.call("PUT", f"/v1/shops/{shop['id']}/products/{product['id']}", merchant,
                       {"price": price, "available": True})
        await api.call("POST", "/v1/supplies", merchant, {
            "shop_id": shop["id"], "product_id": product["id"], "quantity": 40, "unit": "servings"})
        products[name] = product["id"]
    return shop, merchant, products


async def pay(settings: Settings, chain: str, asset: str, address: str, amount: int, btc: RegtestWallet,
              evm: AnvilWallet) -> str:
    if chain == "btc":
        return (await btc.pay(address, amount)).txid
    if asset == "ETH":
        return await evm.pay_eth(address, amount)
    return await evm.pay_usdc(address, amount)


async def run(settings: Settings, base: str, server: subprocess.Popen[bytes]) -> None:
    secret = settings.jwt_secret or ""
    operator = issue(Claims(sub=uuid.uuid4(), role="operator"), secret, ttl=1800)
    customer_id = uuid.uuid4()
    customer = issue(Claims(sub=customer_id, role="customer"), secret, ttl=1800)
    receiver = Receiver()
    receiver_runner = await receiver.start()
    btc = RegtestWallet(settings)
    evm = AnvilWallet((settings.evm_chains or [])[0], 0)
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        try:
            print("waiting for the services and the indexers ...")
            await btc.ensure_funds()
            await _until("the API and both indexers", lambda: _ready(session, base, settings), server)
            shop, merchant, products = await seed(api, operator, secret)
            staff = issue(Claims(sub=uuid.uuid4(), role="staff", shops=[uuid.UUID(shop["id"])]), secret, ttl=1800)
            hook = await api.call("POST", f"/v1/shops/{shop['id']}/webhooks", merchant, {
                "url": f"http://127.0.0.1:{receiver.port}/beanpay", "event_types": HOOK_EVENTS,
                "description": "demo receiver"})
            receiver.secret = hook["secret"]
            print(f"shop {shop['name']} seeded with {len(MENU)} products; webhook -> {hook['url']}\n")

            placed = []
            for chain, asset, lines in ORDERS:
                order = await api.call("POST", "/v1/orders", customer, {
                    "shop_id": shop["id"], "payment": {"chain": chain, "asset": asset}, "order_type": "pickup",
                    "items": [{"product_id": products[n], "quantity": q, "customizations": c} for n, q, c in lines]})
                p = order["payment"]
                amount = coins(int(p["amount"]), p["decimals"])
                print(f"order {order['id'][:8]}  {order['total_amount']} USD -> {amount} {asset} on {chain}\n"
                      f"   {p['payment_uri']}")
                placed.append(order)

            print("\npaying each order with a real signed transaction ...")
            started = {}
            for order in placed:
                p = order["payment"]
                txid = await pay(settings, p["chain"], p["asset"], p["address"], int(p["amount"]), btc, evm)
                started[order["id"]] = time.monotonic()
                print(f"   {order['id'][:8]} paid: {txid}")

            timelines: dict[str, list[str]] = {o["id"]: ["pending"] for o in placed}
            confirmed_after: dict[str, float] = {}

            async def follow() -> bool:
                for o in placed:
                    now = await api.call("GET", f"/v1/orders/{o['id']}", customer)
                    state = now["payment_status"] if now["status"] == "pending" else now["status"]
                    if state != timelines[o["id"]][-1]:
                        timelines[o["id"]].append(state)
                    if now["status"] == "confirmed" and o["id"] not in confirmed_after:
                        confirmed_after[o["id"]] = time.monotonic() - started[o["id"]]
                return len(confirmed_after) == len(placed)

            print("mining blocks until each payment has its confirmations ...")
            for _ in range(max(settings.btc_confirmations, (settings.evm_chains or [])[0].confirmations)):
                await asyncio.sleep(1.0)
                await btc.mine(1)
                await evm.mine(1)
                await follow()
            await _until("every order to be confirmed", follow, server)

            claims = {}
            for o in placed:
                claim = await api.call("POST", f"/v1/orders/{o['id']}/claim", customer)
                done = await api.call("POST", f"/v1/claims/{claim['claim_code']}/process", staff)
                claims[o["id"]] = claim["claim_code"]
                timelines[o["id"]] += ["claimed", done["order_status"]]

            async def hooks_in() -> bool:
                return all({"order.confirmed", "claim.processed", "order.completed"} <= set(receiver.by_order[o["id"]])
                           for o in placed)

            await _until("the webhooks", hooks_in, server)
            balances = await api.call("GET", f"/v1/shops/{shop['id']}/balances", merchant)
        finally:
            await btc.close()
            await evm.close()
            await receiver_runner.cleanup()

    print(f"\n{'ORDER':9} {'PAID WITH':15} {'AMOUNT':>22}  {'PAID IN':>7}  {'CLAIM':9} {'WEBHOOKS':>8}  STATES")
    for o in placed:
        p = o["payment"]
        print(f"{o['id'][:8]:9} {p['asset'] + ' on ' + p['chain']:15} {coins(int(p['amount']), p['decimals']):>22}"
              f"  {confirmed_after[o['id']]:>6.1f}s  {claims[o['id']]:9} {len(receiver.by_order[o['id']]):>8}  "
              + " -> ".join(timelines[o["id"]]))
    print("\nshop balances (ledger): " + ", ".join(
        f"{coins(int(b['balance']), b['decimals'])} {b['asset']}" for b in balances["balances"]))
    print(f"webhooks: {len(receiver.ids)} verified, {receiver.rejected} bad signatures, "
          f"{receiver.duplicates} duplicates")
    if receiver.rejected:
        raise DemoFailed("a webhook failed signature verification")


def main() -> int:
    settings = load_settings()
    if not settings.evm_chains or not settings.btc_account_xpub:
        print("the local stack is not up (no anvil deployment or btcd wallet); run `just up`", file=sys.stderr)
        return 1
    # a database of the demo's own: its indexers start at today's chain tips, whatever earlier runs,
    # tests or a restarted anvil left in the main one
    demo_dsn = asyncio.run(create_database(settings.dsn, "beanpay_demo"))
    settings = msgspec.structs.replace(settings, database_url=demo_dsn)
    base = f"http://{settings.api_host}:{settings.api_port}"
    log = settings.state_path / "logs" / "demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    beanpay = os.path.join(os.path.dirname(sys.executable), "beanpay")
    with log.open("ab") as out:
        server = subprocess.Popen([beanpay, "run"], stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, "BEANPAY_DATABASE_URL": demo_dsn})
    try:
        asyncio.run(run(settings, base, server))
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc} (service log: {log})", file=sys.stderr)
        return 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(drop_database(load_settings().dsn, demo_dsn))
    print("\ndemo finished: services stopped; the stack keeps running (`just down` stops it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
