"""A dishonest Lightning node: lnd's REST API as a shop owner could serve it from a machine of their own,
over HTTPS with a certificate of its own, answering beanpay's probes as an invoice-only node would, and
reporting through its invoice stream whatever the test tells it to (another shop's invoice settled, ten
bitcoin paid for a coffee). It moves no money: what it says is all there is."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(host: str = "127.0.0.1") -> tuple[str, str]:
    """(certificate PEM, key PEM) for `host`, as lnd makes its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake lnd")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def b64(hex_hash: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_hash)).decode()


class FakeLnd:
    """Start it, connect it as a shop's node (`connect_body`), then `report_settled(...)` any payment hash."""

    def __init__(self, *, pubkey: str | None = None) -> None:
        self.pubkey = pubkey or "02" + os.urandom(32).hex()
        self.cert, self._key = self_signed()
        self.invoices: dict[str, dict[str, Any]] = {}  # payment hash (hex) -> what the node says of it
        self.cancelled: list[str] = []
        self.streams = 0  # how many times beanpay opened the invoice stream
        self.paths: list[str] = []  # every path beanpay asked for, as the node received it
        self.pay_macaroon = os.urandom(32).hex()  # with this one the node may pay (refunds)
        self.bills: dict[str, dict[str, Any]] = {}  # payment requests it can decode (a customer's invoices)
        self.paid: list[str] = []  # payment requests it paid
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._settle_index = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> FakeLnd:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/v1/getinfo", self._info)
        app.router.add_get("/v1/invoice/{hash}", self._lookup)
        app.router.add_post("/v1/invoices", self._add)
        app.router.add_get("/v1/invoices/subscribe", self._subscribe)
        app.router.add_post("/v2/invoices/cancel", self._cancel)
        app.router.add_post("/v1/channels/transactions", self._pay)
        app.router.add_get("/v1/balance/channels", self._balance)
        app.router.add_get("/v1/payreq/{request}", self._decode)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder) / "tls.cert", Path(folder) / "tls.key"
            cert.write_text(self.cert)
            key.write_text(self._key)
            context.load_cert_chain(cert, key)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)  # its invoice streams never end by themselves
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            try:  # its invoice streams hang on a queue: bounded, whatever the client on the other end does
                await asyncio.wait_for(self._runner.cleanup(), 10)
            except TimeoutError:
                print("fake lnd: cleanup did not finish in 10 s")

    def connect_body(self, **extra: Any) -> dict[str, Any]:
        """What a shop owner sends to PUT /v1/shops/{id}/lightning-node for this node."""
        return {"rest_url": self.url, "tls_cert": self.cert, "macaroon": os.urandom(32).hex(), **extra}

    def report_settled(self, payment_hash: str, amt_paid_msat: int, *, settle_date: int | None = None) -> None:
        """The node's stream says this invoice (any hash, anyone's) was paid this much."""
        self._settle_index += 1
        invoice = {"r_hash": b64(payment_hash), "state": "SETTLED", "amt_paid_msat": str(amt_paid_msat),
                   "value_msat": str(amt_paid_msat), "settle_index": str(self._settle_index),
                   "settle_date": str(settle_date or int(dt.datetime.now(dt.UTC).timestamp()))}
        self.invoices[payment_hash] = invoice
        self._queue.put_nowait(invoice)

    def report_garbage(self) -> None:
        """The node's stream sends what is no invoice at all."""
        self._queue.put_nowait({"garbage": True})

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response({"identity_pubkey": self.pubkey, "alias": "honest node", "synced_to_chain": True,
                                  "block_height": 1})

    async def _lookup(self, request: web.Request) -> web.Response:
        found = self.invoices.get(request.match_info["hash"])
        if found is None:
            return web.json_response({"code": 2, "message": "unable to locate invoice"}, status=404)
        return web.json_response(found)

    async def _add(self, request: web.Request) -> web.Response:
        body = await request.json()
        payment_hash = os.urandom(32).hex()
        self.invoices[payment_hash] = {"r_hash": b64(payment_hash), "state": "OPEN", "value_msat": body["value_msat"]}
        return web.json_response({"r_hash": b64(payment_hash), "payment_request": "lnbcrt1fake" + payment_hash[:20],
                                  "add_index": str(len(self.invoices))})

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        self.streams += 1
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            invoice = await self._queue.get()
            if invoice.get("garbage"):
                await response.write(b'{"result": {"r_hash": 42, "state": ["not", "an", "invoice"]}}\n')
                continue
            await response.write(msgspec.json.encode({"result": invoice}) + b"\n")

    async def _cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.cancelled.append(base64.b64decode(body["payment_hash"]).hex())
        return web.json_response({})

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.paths.append(request.path)
        return await handler(request)  # type: ignore[no-any-return]

    def _paying(self, request: web.Request) -> bool:
        return request.headers.get("Grpc-Metadata-macaroon") == self.pay_macaroon

    def bill(self, amount_sat: int) -> str:
        """A customer's invoice (elsewhere on the network) this node decodes and pays."""
        request = "lnbcrt" + os.urandom(16).hex()
        self.bills[request] = {"destination": "03" + os.urandom(32).hex(), "payment_hash": os.urandom(32).hex(),
                               "num_msat": str(amount_sat * 1000),
                               "timestamp": str(int(dt.datetime.now(dt.UTC).timestamp())), "expiry": "7200"}
        return request

    async def _pay(self, request: web.Request) -> web.Response:  # an invoice-only macaroon may not pay
        if not self._paying(request):
            return web.json_response({"code": 2, "message": "permission denied"}, status=403)
        asked = (await request.json())["payment_request"]
        if asked not in self.bills:
            return web.json_response({"payment_error": "invoice is not for this network"})
        await asyncio.sleep(0.5)  # a payment takes a while: attempts overlap
        self.paid.append(asked)
        return web.json_response({"payment_preimage": base64.b64encode(os.urandom(32)).decode()})

    async def _decode(self, request: web.Request) -> web.Response:
        found = self.bills.get(request.match_info["request"])
        if found is not None:
            return web.json_response(found)
        # a node's own words, which say something about the node and nothing about the customer's invoice
        return web.json_response({"code": 2, "message": "node internal detail: wallet db at /srv/lnd"}, status=500)

    async def _balance(self, request: web.Request) -> web.Response:
        return web.json_response({"remote_balance": {"sat": "100000000", "msat": "100000000000"}})
