"""`just demo`: the whole payment flow against the local stack.

Starts every service in one `beanpay run` process (API, relay, engine, webhook sender, notifier,
lightning service, BTC and EVM indexers) with development tokens turned off, as in production. The first
operator is made with `beanpay users create`, signs in and turns its second factor (TOTP) on, as every
operator's write needs; signed in again with it, it opens a shop and invites its owner, who
signs in, invites a barista and makes an API key for the shop's integration. The integration seeds the menu and stock
and registers a webhook to a local receiver that checks every signature with the reference
`standardwebhooks` library. A customer of the coffee platform, signed in at its identity provider (a
small one run here, publishing its keys as JWKS), places three orders paid in BTC (btcd), ETH and
test-USDC (anvil) with real signed transactions, the BTC and ETH ones paying too much, and a fourth paid
over Lightning from the customer's lnd node (confirmed as soon as the invoice settles); blocks are
mined, and each order is followed to confirmed, claimed, and handed over by the barista. The owner then
refunds both overpaid parts: the customer claims each with an address of their own, the ETH one is sent
by the platform's payout hot wallet, the BTC one by a PSBT the operator's wallet signs, and each is
followed until the indexer sees it confirmed at the customer's address. Ends with summary tables and
the pages' URLs (each order's checkout, one waiting to be paid, an invoice, the staff board and the
console; `--serve` keeps them up until Ctrl-C); exits non-zero if any step fails, so it doubles as a
smoke test of the whole system.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
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
import pyotp
from aiohttp import web
from embit import bip32, ec, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from eth_account import Account
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack.btc_payer import RegtestWallet
from beanpay.deploy.devstack.databases import create_database, drop_database
from beanpay.deploy.devstack.evm_payer import AnvilWallet
from beanpay.deploy.devstack.lnd import LndNode
from beanpay.deploy.devstack.wallet import account_key
from beanpay.deploy.endpoint import Endpoint
from beanpay.engine.payment_uri import coins

OPERATOR = "operator@demo.beanpay.test"
OWNER = "owner@bean-there.test"
BARISTA = "barista@bean-there.test"
PASSWORD = secrets.token_urlsafe(18)  # the demo's accounts, made afresh each run in a database dropped at the end
IDP_ISSUER = "https://id.coffee-platform.test"
IDP_AUDIENCE = "beanpay"

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
    ("lightning", "BTC", [("Espresso", 1, {"shot": ["single"]})]),  # a coffee-sized payment, settled at once
]
HOOK_EVENTS = ["order.created", "payment.initiated", "payment.processing", "payment.confirmed", "order.confirmed",
               "order.claimed", "claim.processed", "order.completed", "payment.overpaid", "refund.created",
               "refund.in_flight", "refund.completed"]
# the customer sends too much (0.001 ETH, 0.0002 BTC), and the shop refunds the excess on chain
OVERPAY = {("eth", "ETH"): 10**15, ("btc", "BTC"): 20_000}
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
        endpoint = Endpoint(self.handle, "/beanpay")
        self.port = endpoint.port
        return await endpoint.start()


Who = dict[str, str]  # the headers that say who calls: a session cookie and its CSRF token, or a bearer


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, who: Who, body: Any = None) -> Any:
        headers = dict(who)
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        async with self.session.request(method, self.base + path, json=body, headers=headers) as resp:
            data = await resp.json() if resp.status != 204 else None
            if resp.status >= 300:
                raise DemoFailed(f"{method} {path} -> {resp.status}: {data}")
            return data

    async def login(self, email: str, totp: str | None = None) -> Who:
        """Sign in: the session cookie (sent by hand: it is Secure, and the demo speaks plain HTTP to
        127.0.0.1) and the session's CSRF token for writes."""
        body = {"email": email, "password": PASSWORD} | ({} if totp is None else {"totp": totp})
        async with self.session.post(self.base + "/v1/auth/login", json=body) as r:
            if r.status != 200:
                raise DemoFailed(f"login of {email} -> {r.status}: {await r.text()}")
            me = await r.json()
            return {"Cookie": f"bp_session={r.cookies['bp_session'].value}", "X-CSRF-Token": me["csrf_token"]}

    async def login_with_second_factor(self, email: str) -> Who:
        """An operator's session with its second factor (every write of an operator needs one): signed in with
        the password, it turns TOTP on (the demo plays the authenticator app), then signs in again with the
        next code (each code is accepted once)."""
        weak = await self.login(email)
        setup = await self.call("POST", "/v1/auth/totp/setup", weak)
        app = pyotp.TOTP(setup["secret"])
        await self.call("POST", "/v1/auth/totp/enable", weak,
                        {"secret": setup["secret"], "code": app.now(), "password": PASSWORD})
        await self.call("POST", "/v1/auth/logout", weak)
        return await self.login(email, app.at(int(time.time()) + 30))

    async def join(self, inviter: Who, shop_id: str, email: str, role: str) -> Who:
        """Invite someone to the shop; they accept (making their account) and sign in."""
        invitation = await self.call("POST", f"/v1/shops/{shop_id}/invitations", inviter,
                                     {"email": email, "role": role})
        await self.call("POST", "/v1/invitations/accept", {}, {"token": invitation["token"], "password": PASSWORD})
        return await self.login(email)


class IdentityProvider:
    """The coffee platform's identity provider, as far as beanpay sees it: a signing key published as
    JWKS, and access tokens for its customers."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = uuid.uuid4().hex[:8]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def issuer_config(self) -> str:
        return msgspec.json.encode([{"issuer": IDP_ISSUER, "audience": IDP_AUDIENCE,
                                     "jwks_url": f"http://127.0.0.1:{self.port}/jwks"}]).decode()

    async def start(self) -> web.AppRunner:
        import json

        import jwt

        jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key())), "kid": self.kid, "use": "sig"}

        async def jwks(request: web.Request) -> web.Response:
            return web.json_response({"keys": [jwk]})

        app = web.Application()
        app.router.add_get("/jwks", jwks)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    def token(self, customer: uuid.UUID) -> Who:
        import jwt

        now = int(time.time())
        token = jwt.encode({"sub": str(customer), "iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "iat": now,
                            "exp": now + 1800}, self.key, algorithm="ES256", headers={"kid": self.kid})
        return {"Authorization": f"Bearer {token}"}


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


async def _lightning_ready(api: Api, shop_id: str, merchant: Who) -> dict[str, Any] | None:
    node = await api.call("GET", f"/v1/shops/{shop_id}/lightning-node", merchant)
    return node if node["configured"] and node["health"] == "ready" else None


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


async def seed(api: Api, operator: Who) -> tuple[dict[str, Any], Who, Who, dict[str, str], Who]:
    """The shop and its people: the operator opens it and invites its owner; the owner invites a barista
    and makes the API key its integration seeds the menu with. Returns (shop, integration, barista,
    products, owner)."""
    shop = await api.call("POST", "/v1/shops", operator, {
        "name": "Bean There Roasters", "address": "12 Harbour St", "latitude": 52.5200, "longitude": 13.4050,
        "currency": "USD", "opening_hours": {d: [{"open": "07:00", "close": "18:00"}]
                                             for d in ("mon", "tue", "wed", "thu", "fri")}})
    owner = await api.join(operator, shop["id"], OWNER, "owner")
    barista = await api.join(owner, shop["id"], BARISTA, "staff")
    key = await api.call("POST", "/v1/api-keys", owner, {
        "name": "shop integration", "shop_ids": [shop["id"]],
        "permissions": ["catalog:write", "supplies:write", "webhooks:manage", "ledger:read", "orders:read"]})
    merchant = {"Authorization": f"Bearer {key['key']}"}
    print(f"accounts: operator {OPERATOR}, owner {OWNER}, barista {BARISTA}; API key {key['prefix']}... "
          f"({', '.join(key['permissions'])})")
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
    return shop, merchant, barista, products, owner


async def pay_lightning(settings: Settings, bolt11: str) -> str:
    """The customer's own lnd node pays the invoice; the preimage is its proof of payment."""
    client = LndNode(settings, "customer").client()
    try:
        return "preimage " + await client.pay(bolt11)
    finally:
        await client.close()


async def pay(settings: Settings, chain: str, asset: str, address: str, amount: int, btc: RegtestWallet,
              evm: AnvilWallet) -> str:
    if chain == "btc":
        return (await btc.pay(address, amount)).txid
    if asset == "ETH":
        return await evm.pay_eth(address, amount)
    return await evm.pay_usdc(address, amount)


def operator_sign(settings: Settings, psbt: str) -> str:
    """The operator's wallet signs a PSBT of the platform's (custodial) wallet: the demo plays the operator
    with the stack's dev seed; the server holds only the account public key."""
    account = bip32.HDKey.from_string(account_key(settings.state_path).wif_private())
    signed = PSBT.from_string(psbt)
    if signed.sign_with(account) != len(signed.inputs):
        raise DemoFailed("the operator's wallet could not sign every input of the refund's PSBT")
    return str(signed.to_string())


async def refund_overpayment(api: Api, settings: Settings, owner: dict[str, str], operator: dict[str, str],
                             order: dict[str, Any], btc: RegtestWallet, evm: AnvilWallet,
                             server: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The owner refunds the overpaid part; the customer claims it with their own address (checked,
    auto-approved). ETH: the platform's payout wallet sends it; BTC: the operator signs the refund's PSBT
    and uploads it. Mined, the indexer sees the money arrive at the customer's address."""
    chain = order["payment"]["chain"]
    issued = await api.call("POST", f"/v1/orders/{order['id']}/refunds", owner, {"variant": "overpaid"})
    if chain == "btc":
        key = ec.PrivateKey(secrets.token_bytes(32))  # the customer's own wallet
        customer_address = script.p2wpkh(key.get_public_key()).address(NETWORKS["regtest"])
    else:
        customer_address = Account.create().address
    claimed = await api.call("POST", f"/v1/refund-claims/{issued['claim_token']}", {}, {"address": customer_address})
    started = time.monotonic()
    states = [issued["status"], claimed["status"]]
    if chain == "btc":
        detail = await api.call("GET", f"/v1/refunds/{issued['id']}", owner)
        sent = await api.call("POST", f"/v1/refunds/{issued['id']}/signed-psbt", operator,
                              {"psbt": operator_sign(settings, detail["psbt"])})
        states.append(sent["status"])

    async def done() -> bool:
        now = await api.call("GET", f"/v1/refunds/{issued['id']}", owner)
        if now["status"] != states[-1]:
            states.append(now["status"])
        if now["status"] == "in_flight":
            await (btc.mine(1) if chain == "btc" else evm.mine(1))
        return bool(now["status"] == "completed")

    await _until("the refund to confirm", done, server)
    final = await api.call("GET", f"/v1/refunds/{issued['id']}", owner)
    if chain != "btc":
        received = await evm.w3.eth.get_balance(customer_address)
        if received != int(final["amount"]):
            raise DemoFailed(f"the customer's address holds {received} wei, not the {final['amount']} refunded")
    return {**final, "states": states, "seconds": time.monotonic() - started}


async def run(settings: Settings, base: str, server: subprocess.Popen[bytes], idp: IdentityProvider,
              serve: bool = False) -> None:
    customer = idp.token(uuid.uuid4())
    idp_runner = await idp.start()
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
            operator = await api.login_with_second_factor(OPERATOR)
            shop, merchant, staff, products, owner = await seed(api, operator)
            hook = await api.call("POST", f"/v1/shops/{shop['id']}/webhooks", merchant, {
                "url": f"http://127.0.0.1:{receiver.port}/beanpay", "event_types": HOOK_EVENTS,
                "description": "demo receiver"})
            receiver.secret = hook["secret"]
            print(f"shop {shop['name']} seeded with {len(MENU)} products; webhook -> {hook['url']}\n")
            node = await _until("the Lightning node", lambda: _lightning_ready(api, shop["id"], merchant), server)
            print(f"Lightning: the platform's node {node['alias']} ({node['pubkey'][:16]}...), "
                  f"custodial, {int(node['inbound_msat']) // 1000} sat inbound\n")

            placed = []
            for chain, asset, lines in ORDERS:
                order = await api.call("POST", "/v1/orders", customer, {
                    "shop_id": shop["id"], "payment": {"chain": chain, "asset": asset}, "order_type": "pickup",
                    "items": [{"product_id": products[n], "quantity": q, "customizations": c} for n, q, c in lines]})
                p = order["payment"]
                amount = coins(int(p["amount"]), p["decimals"])
                if chain == "lightning" and p["lightning"] is None:
                    raise DemoFailed(f"no Lightning invoice: {p['lightning_unavailable']}")
                uri = p["lightning"]["unified_uri"] if p["lightning"] else p["payment_uri"]
                print(f"order {order['id'][:8]}  {order['total_amount']} USD -> {amount} {asset} on {chain}\n"
                      f"   {uri[:150]}{'...' if len(uri) > 150 else ''}")
                placed.append(order)

            print("\npaying each order with a real signed transaction (on chain) or payment (Lightning) ...")
            started = {}
            for order in placed:
                p = order["payment"]
                if p["lightning"] is not None:
                    txid = await pay_lightning(settings, p["lightning"]["bolt11"])
                else:
                    txid = await pay(settings, p["chain"], p["asset"], p["address"],
                                     int(p["amount"]) + OVERPAY.get((p["chain"], p["asset"]), 0), btc, evm)
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
            refunds = [await refund_overpayment(api, settings, owner, operator, o, btc, evm, server)
                       for o in placed if (o["payment"]["chain"], o["payment"]["asset"]) in OVERPAY
                       and o["payment"]["lightning"] is None]  # a Lightning invoice takes its exact amount

            async def refund_hooks_in() -> bool:  # the merchant hears of them, claim links and all
                return all({"refund.created", "refund.completed"} <= set(receiver.by_order[r["order_id"]])
                           for r in refunds)

            await _until("the refunds' webhooks", refund_hooks_in, server)
            balances = await api.call("GET", f"/v1/shops/{shop['id']}/balances", merchant)
            # for whoever opens the pages: an order waiting at checkout, and an invoice whose asset is picked there
            waiting = await api.call("POST", "/v1/orders", {}, {
                "shop_id": shop["id"], "payment": {"chain": "eth", "asset": "tUSDC"},
                "items": [{"product_id": products["Flat White"], "quantity": 1,
                           "customizations": {"milk": ["oat"], "size": ["large"]}}]})
            invoice = await api.call("POST", "/v1/invoices", owner, {
                "shop_id": shop["id"], "amount": "18.60", "order_ref": "CATERING-42", "expires_in_seconds": 3600,
                "assets": [{"chain": "btc", "asset": "BTC"}, {"chain": "lightning", "asset": "BTC"},
                           {"chain": "eth", "asset": "ETH"},
                           {"chain": "eth", "asset": "tUSDC"}]})
            async with session.get(f"{base}/pay/{placed[0]['checkout_token']}") as page:
                paid_page = page.status, "Paid" in await page.text()
        finally:
            await btc.close()
            await evm.close()
            await receiver_runner.cleanup()
            await idp_runner.cleanup()

    print(f"\n{'ORDER':9} {'PAID WITH':15} {'AMOUNT':>22}  {'PAID IN':>7}  {'CLAIM':9} {'WEBHOOKS':>8}  STATES")
    for o in placed:
        p = o["payment"]
        rail = "BTC, Lightning" if p["lightning"] else p["asset"] + " on " + p["chain"]
        print(f"{o['id'][:8]:9} {rail:15} {coins(int(p['amount']), p['decimals']):>22}"
              f"  {confirmed_after[o['id']]:>6.1f}s  {claims[o['id']]:9} {len(receiver.by_order[o['id']]):>8}  "
              + " -> ".join(timelines[o["id"]]))
    print(f"\n{'REFUND':9} {'OF ORDER':9} {'OVERPAID PART':>22}  {'SENT BY':26} {'CONFIRMED':>9}  STATES")
    for r in refunds:
        by = "the operator's PSBT" if r["method"] == "psbt" else "the platform's hot wallet"
        print(f"{r['id'][:8]:9} {r['order_id'][:8]:9} {coins(int(r['amount']), r['decimals']) + ' ' + r['asset']:>22}"
              f"  {by:26} {r['seconds']:>8.1f}s  " + " -> ".join(r["states"]))
        print(f"{'':20}to {r['destination']} in {r['txid']}")
    print("\nshop balances (ledger): " + ", ".join(
        f"{coins(int(b['balance']), b['decimals'])} {b['asset']}" for b in balances["balances"]))
    print(f"webhooks: {len(receiver.ids)} verified, {receiver.rejected} bad signatures, "
          f"{receiver.duplicates} duplicates")
    if receiver.rejected:
        raise DemoFailed("a webhook failed signature verification")
    if paid_page != (200, True):
        raise DemoFailed(f"the checkout page of a paid order answered {paid_page}")
    print("\npages (server-rendered, live over Server-Sent Events):")
    for o in placed:
        print(f"   checkout of paid order {o['id'][:8]}: {base}/pay/{o['checkout_token']}")
    print(f"   checkout waiting for payment:  {base}/pay/{waiting['checkout_token']}")
    print(f"   invoice (pick the asset):      {base}/pay/{invoice['checkout_token']}")
    print(f"   staff board:                   {base}/staff    (sign in as {BARISTA})")
    print(f"   merchant console:              {base}/console  (sign in as {OWNER})")
    if serve:
        print(f"\nserving until Ctrl-C; this run's password for {OWNER} and {BARISTA}: {PASSWORD}")
        await _serve_until_interrupted(server)


async def _serve_until_interrupted(server: subprocess.Popen[bytes]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set() and server.poll() is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description="The whole payment flow against the local stack.")
    parser.add_argument("--serve", action="store_true",
                        help="afterwards keep the services and pages up until Ctrl-C (prints the sign-in password)")
    args = parser.parse_args()
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
    idp = IdentityProvider()
    env = {**os.environ, "BEANPAY_DATABASE_URL": demo_dsn, "BEANPAY_DEV_TOKENS": "false",
           "BEANPAY_OIDC_ISSUERS": idp.issuer_config}
    password = settings.state_path / "secrets" / "demo-operator-password"
    password.parent.mkdir(parents=True, exist_ok=True)
    password.write_text(PASSWORD)
    # the first operator is made at the terminal, as in production: `beanpay users create --operator`
    made = subprocess.run([beanpay, "users", "create", "--email", OPERATOR, "--operator", "--password-file",
                           str(password)], env=env, capture_output=True, text=True, check=False)
    password.unlink()
    print(made.stdout.strip() or made.stderr.strip())
    with log.open("ab") as out:
        # its own process group: Ctrl-C at the terminal (with --serve) reaches the demo, which stops it
        server = subprocess.Popen([beanpay, "run"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        if made.returncode != 0:
            raise DemoFailed("could not create the operator")
        asyncio.run(run(settings, base, server, idp, serve=args.serve))
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
