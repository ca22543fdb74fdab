"""Request and response bodies of the Lightning routes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from msgspec import Meta, Struct

from beanpay.api.schemas import Input


class LightningNodeSet(Input):
    """The shop's own lnd: its REST URL (https), its TLS certificate (PEM) and a macaroon (hex) baked with
    `lncli bakemacaroon invoices:read invoices:write info:read offchain:read`: beanpay can issue and watch
    invoices and read the node's identity and balances, and can never spend. A macaroon that may pay is
    refused."""

    rest_url: Annotated[str, Meta(min_length=9, max_length=2000, pattern=r"^https://")]
    tls_cert: Annotated[str, Meta(min_length=1, max_length=20000)]
    macaroon: Annotated[str, Meta(min_length=2, max_length=8000, pattern=r"^[0-9a-fA-F]+$")]
    # optional: a macaroon that may pay (offchain:read offchain:write info:read), for refunds over Lightning,
    # and how much it may pay out in a day; without it, refunds go on chain
    pay_macaroon: Annotated[str, Meta(min_length=2, max_length=8000, pattern=r"^[0-9a-fA-F]+$")] | None = None
    pay_daily_limit_sat: Annotated[int, Meta(ge=1, le=2_100_000_000_000_000)] | None = None

    def __post_init__(self) -> None:
        if (self.pay_macaroon is None) != (self.pay_daily_limit_sat is None):
            raise ValueError("pay_daily_limit_sat: a paying macaroon needs its daily limit, and only it")


class LightningNodeOut(Struct):
    """The node that issues the shop's invoices: its own, or the platform's (`custodial`: the platform holds
    what it receives). Check `pubkey` and `alias` against your node. `inbound_msat`: what it can receive."""

    shop_id: uuid.UUID
    custodial: bool
    configured: bool
    pubkey: str | None = None
    alias: str | None = None
    rest_url: str | None = None
    health: str | None = None
    health_reason: str | None = None
    inbound_msat: str | None = None
    checked_at: dt.datetime | None = None
    refunds_over_lightning: bool = False  # a macaroon that may pay is configured for refunds
