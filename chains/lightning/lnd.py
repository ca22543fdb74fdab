"""lnd's REST API (v0.20): invoices, their settlement stream, balances, and the few node calls the dev
stack and the tests need. TLS is pinned to the node's own certificate; the macaroon is sent as lnd
expects (hex in `Grpc-Metadata-macaroon`). Nodes only: no knowledge of orders.

REST rather than gRPC: it needs no generated stubs and aiohttp is already here; lnd serves both from
the same handlers, with the same macaroon checks.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import aiohttp
import msgspec

__all__ = ["Invoice", "LndClient", "LndError", "LndUnavailable", "NodeInfo", "Permission"]

T = TypeVar("T")


class LndError(Exception):
    """The node answered with an error (its message says why: a permission, an unknown invoice...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"lnd {status}: {message}")
        self.status, self.message = status, message

    @property
    def permission_denied(self) -> bool:
        return "permission denied" in self.message or "verification failed" in self.message


class LndUnavailable(Exception):
    """The node could not be reached (refused, timed out, TLS failed)."""


class NodeInfo(msgspec.Struct):
    identity_pubkey: str
    alias: str = ""
    synced_to_chain: bool = False
    block_height: int = 0
    num_active_channels: int = 0


class Invoice(msgspec.Struct, rename={"payment_hash": "r_hash"}):
    """An invoice as lnd reports it (the REST form: bytes base64, 64-bit numbers as strings)."""

    payment_hash: str  # base64, as lnd sends it; see `hash_hex`
    value_msat: int = 0
    state: str = "OPEN"  # OPEN | SETTLED | CANCELED | ACCEPTED
    settle_index: int = 0
    add_index: int = 0
    amt_paid_msat: int = 0
    settle_date: int = 0
    creation_date: int = 0
    expiry: int = 0
    payment_request: str = ""

    @property
    def hash_hex(self) -> str:
        return base64.b64decode(self.payment_hash).hex()


class AddedInvoice(msgspec.Struct):
    r_hash: str
    payment_request: str
    add_index: int = 0

    @property
    def hash_hex(self) -> str:
        return base64.b64decode(self.r_hash).hex()


class Balance(msgspec.Struct):
    sat: int = 0
    msat: int = 0


class ChannelBalance(msgspec.Struct):
    local_balance: Balance = msgspec.field(default_factory=Balance)
    remote_balance: Balance = msgspec.field(default_factory=Balance)


class DecodedInvoice(msgspec.Struct):
    destination: str
    payment_hash: str  # hex
    num_msat: int = 0
    timestamp: int = 0
    expiry: int = 0
    description: str = ""
    description_hash: str = ""  # hex


class Permission(msgspec.Struct):
    entity: str
    action: str


class _Stream(msgspec.Struct):
    result: Invoice | None = None
    error: dict[str, Any] | None = None


_decode_stream = msgspec.json.Decoder(_Stream, strict=False).decode


def ssl_context(tls_cert_pem: str) -> ssl.SSLContext:
    """Trust exactly the node's certificate (lnd signs its own)."""
    context = ssl.create_default_context(cadata=tls_cert_pem)
    context.check_hostname = True
    return context


class LndClient:
    def __init__(self, url: str, *, tls_cert_pem: str, macaroon_hex: str, timeout: float = 10.0,
                 connector: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self._connector = connector or {}  # e.g. a resolver that refuses private addresses
        self._ssl = ssl_context(tls_cert_pem)
        self._headers = {"Grpc-Metadata-macaroon": macaroon_hex}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64, **self._connector))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
                    limits: aiohttp.ClientTimeout | None = None) -> Any:
        try:
            async with self._http().request(method, self.url + path, json=body,
                                            timeout=limits or self._timeout) as resp:
                raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise LndUnavailable(f"{self.url}: {e!r}") from e
        try:
            reply = msgspec.json.decode(raw) if raw else {}
        except msgspec.DecodeError:  # a node that does not speak lnd's REST: its problem, not beanpay's
            raise LndError(resp.status if resp.status != 200 else 502, "the node's answer is not JSON") from None
        if resp.status != 200:
            message = reply.get("message", raw.decode(errors="replace")) if isinstance(reply, dict) else str(reply)
            raise LndError(resp.status, str(message))
        if not isinstance(reply, dict):
            raise LndError(502, "the node's answer is not a JSON object")
        return reply

    async def _as(self, kind: type[T], method: str, path: str, body: dict[str, Any] | None = None,
                  limits: aiohttp.ClientTimeout | None = None) -> T:
        """A call's answer as `kind`: an answer of another shape is the node's error, not beanpay's."""
        reply = await self._call(method, path, body, limits)
        try:
            return msgspec.convert(reply, kind, strict=False)
        except msgspec.ValidationError as e:
            raise LndError(502, f"the node's answer is not what lnd sends: {e}") from None

    async def info(self) -> NodeInfo:
        return await self._as(NodeInfo, "GET", "/v1/getinfo")

    async def channel_balance(self) -> ChannelBalance:
        return await self._as(ChannelBalance, "GET", "/v1/balance/channels")

    async def add_invoice(self, *, value_msat: int, description_hash: bytes, expiry_seconds: int,
                          memo: str = "") -> AddedInvoice:
        """An invoice for exactly `value_msat` (never amountless), bound to `description_hash`."""
        if value_msat <= 0:
            raise ValueError("an invoice needs a positive amount")
        body = {"value_msat": str(value_msat), "description_hash": base64.b64encode(description_hash).decode(),
                "expiry": str(expiry_seconds), "memo": memo, "private": True}
        return await self._as(AddedInvoice, "POST", "/v1/invoices", body)

    async def lookup_invoice(self, payment_hash_hex: str) -> Invoice:
        return await self._as(Invoice, "GET", f"/v1/invoice/{payment_hash_hex}")

    async def cancel_invoice(self, payment_hash_hex: str) -> None:
        """Cancel an open invoice so it can no longer be paid (lnd refuses for a settled one)."""
        body = {"payment_hash": base64.b64encode(bytes.fromhex(payment_hash_hex)).decode()}
        await self._call("POST", "/v2/invoices/cancel", body)

    async def subscribe_invoices(self, settle_index: int) -> AsyncIterator[Invoice]:
        """Every invoice settled after `settle_index` (the backlog first), then each added or settled
        invoice as it happens. Ends when the node closes the stream; raises LndUnavailable if it drops."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        try:
            async with self._http().get(f"{self.url}/v1/invoices/subscribe", params={"settle_index": str(settle_index)},
                                        timeout=timeout) as resp:
                if resp.status != 200:
                    raise LndError(resp.status, (await resp.read()).decode(errors="replace"))
                async for line in resp.content:
                    if not line.strip():
                        continue
                    try:
                        message = _decode_stream(line)
                    except msgspec.MsgspecError:  # what a node says is checked like any other input
                        raise LndError(502, "the node's invoice stream sent what is not an invoice") from None
                    if message.error is not None:
                        raise LndError(500, str(message.error.get("message", message.error)))
                    if message.result is not None:
                        yield message.result
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise LndUnavailable(f"{self.url}: invoice stream: {e!r}") from e

    async def decode(self, payment_request: str) -> DecodedInvoice:
        # a payment request is bech32 (letters and digits): anything else (`..`, `/`, `?`) could reach
        # another of the node's endpoints with this macaroon, so it is never sent
        if not payment_request.isascii() or not payment_request.isalnum():
            raise LndError(400, "not a payment request")
        return await self._as(DecodedInvoice, "GET", f"/v1/payreq/{payment_request}")

    async def pay(self, payment_request: str, *, fee_limit_sat: int = 0, wait_seconds: float = 60.0) -> str:
        """Pay an invoice and wait for the outcome; the preimage (hex) on success."""
        body: dict[str, Any] = {"payment_request": payment_request,
                                "fee_limit": {"fixed": str(fee_limit_sat)}}
        reply = await self._call("POST", "/v1/channels/transactions", body, aiohttp.ClientTimeout(total=wait_seconds))
        if reply.get("payment_error"):
            raise LndError(409, str(reply["payment_error"]))
        return base64.b64decode(reply.get("payment_preimage", "")).hex()

    async def bake_macaroon(self, permissions: list[Permission]) -> str:
        """A new macaroon (hex) limited to `permissions`."""
        body = {"permissions": [msgspec.structs.asdict(p) for p in permissions]}
        return str((await self._call("POST", "/v1/macaroon", body))["macaroon"])

    # node management: the dev stack and the tests
    async def new_address(self) -> str:
        return str((await self._call("GET", "/v1/newaddress?type=WITNESS_PUBKEY_HASH"))["address"])

    async def onchain_balance(self) -> int:
        return int((await self._call("GET", "/v1/balance/blockchain")).get("confirmed_balance", 0))

    async def connect_peer(self, pubkey: str, host: str) -> None:
        try:
            await self._call("POST", "/v1/peers", {"addr": {"pubkey": pubkey, "host": host}, "perm": True})
        except LndError as e:
            if "already connected" not in e.message:
                raise

    async def open_channel(self, pubkey: str, amount_sat: int, push_sat: int = 0) -> str:
        body = {"node_pubkey": base64.b64encode(bytes.fromhex(pubkey)).decode(),
                "local_funding_amount": str(amount_sat), "push_sat": str(push_sat), "private": True}
        reply = await self._call("POST", "/v1/channels", body, aiohttp.ClientTimeout(total=60))
        return base64.b64decode(reply.get("funding_txid_bytes", "")).hex()

    async def channels(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/v1/channels")).get("channels", []))

    async def pending_channels(self) -> int:
        reply = await self._call("GET", "/v1/channels/pending")
        return len(reply.get("pending_open_channels", []))
