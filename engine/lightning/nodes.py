"""Which lnd node serves a shop, and how beanpay reaches it.

A shop's own node is stored with its macaroon sealed (AES-256-GCM, the shop id as associated data) under a
key derived from BEANPAY_LIGHTNING_CREDENTIALS_KEY: the database alone never yields a usable credential.
The platform's node is configured in the environment only (custodial: its funds are the platform's)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from decimal import Decimal
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from beanpay import queries
from beanpay.chains.lightning.lnd import LndClient
from beanpay.config import Settings
from beanpay.db import Connection, fetchrow_as
from beanpay.engine.webhooks.egress import connector_options

SQL = queries.load("beanpay.engine", "lightning.sql")


class NodeRow(msgspec.Struct):
    id: uuid.UUID
    shop_id: uuid.UUID | None
    rest_url: str
    tls_cert: str
    macaroon_sealed: bytes | None
    pubkey: str
    alias: str
    settle_index: int
    health: str
    health_reason: str | None
    inbound_msat: Decimal | None
    checked_at: dt.datetime | None

    @property
    def custodial(self) -> bool:
        return self.shop_id is None


class CredentialsUnavailable(Exception):
    """The key that opens stored node credentials is not configured."""


def _key(settings: Settings) -> bytes:
    if not settings.lightning_credentials_key:
        raise CredentialsUnavailable("BEANPAY_LIGHTNING_CREDENTIALS_KEY is not set")
    return hashlib.sha256(b"beanpay lightning credentials\0" + settings.lightning_credentials_key.encode()).digest()


def seal(settings: Settings, shop_id: uuid.UUID, macaroon_hex: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(settings)).encrypt(nonce, bytes.fromhex(macaroon_hex), shop_id.bytes)


def unseal(settings: Settings, shop_id: uuid.UUID, sealed: bytes) -> str:
    return AESGCM(_key(settings)).decrypt(sealed[:12], sealed[12:], shop_id.bytes).hex()


def platform_configured(settings: Settings) -> bool:
    return bool(settings.lightning_rest_url and settings.lightning_tls_cert_file and settings.lightning_macaroon)


def platform_cert(settings: Settings) -> str:
    assert settings.lightning_tls_cert_file
    return Path(settings.lightning_tls_cert_file).read_text()


def platform_client(settings: Settings) -> LndClient:
    assert settings.lightning_rest_url and settings.lightning_macaroon
    return LndClient(settings.lightning_rest_url, tls_cert_pem=platform_cert(settings),
                     macaroon_hex=settings.lightning_macaroon)


def client_for(settings: Settings, node: NodeRow) -> LndClient:
    """A client for a node row: the platform's from the environment, a shop's from its sealed macaroon,
    its connections allowed only to public addresses unless private ones are (dev and test)."""
    if node.shop_id is None or node.macaroon_sealed is None:
        return platform_client(settings)
    return LndClient(node.rest_url, tls_cert_pem=node.tls_cert,
                     macaroon_hex=unseal(settings, node.shop_id, node.macaroon_sealed),
                     connector=connector_options(settings.webhook_allow_private))


async def platform(conn: Connection, settings: Settings) -> NodeRow | None:
    """The platform's node, once the lightning service registered it."""
    if not platform_configured(settings):
        return None
    return await fetchrow_as(conn, SQL.platform_node, NodeRow)


async def serving(conn: Connection, settings: Settings, shop_id: uuid.UUID) -> NodeRow | None:
    """The node that issues a shop's invoices: its own, else the platform's, else none."""
    own = await fetchrow_as(conn, SQL.shop_node, NodeRow, shop_id)
    return own if own is not None else await platform(conn, settings)


class NodeStillBusy(Exception):
    """Invoices are still open on the shop's current node: another cannot replace it yet."""


async def connect_shop_node(conn: Connection, shop_id: uuid.UUID, *, rest_url: str, tls_cert: str,
                            macaroon_sealed: bytes, pubkey: str, alias: str, pay_macaroon_sealed: bytes | None,
                            pay_daily_limit_msat: int | None) -> NodeRow:
    """Connect a shop's own node, or replace it (the shop row locked by the caller): refused while invoices
    are open on another node identity, whose stream must still be followed until they settle or expire."""
    if await conn.fetchval(SQL.open_invoices_on_shop_node, shop_id, pubkey):
        raise NodeStillBusy("invoices are still open on the shop's current node")
    node = await fetchrow_as(conn, SQL.put_shop_node, NodeRow, uuid.uuid4(), shop_id, rest_url, tls_cert,
                             macaroon_sealed, pubkey, alias[:64])
    assert node is not None
    await conn.execute(SQL.set_pay_macaroon, shop_id, pay_macaroon_sealed, pay_daily_limit_msat)
    return node
