"""The API's wire types. OpenAPI is generated from these, so the docs cannot drift from the code."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

T = TypeVar("T")

Currency = Literal["AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "KRW", "USD"]
Name = Annotated[str, Meta(min_length=1, max_length=255)]
Text = Annotated[str, Meta(max_length=4000)]
Price = Annotated[Decimal, Meta(description="fiat amount as a decimal string, in the currency's minor units")]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
Count = Annotated[int, Meta(ge=0, le=1_000_000_000)]
HHMM = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="24h local time, HH:MM")]
Email = Annotated[str, Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=255)]
Phone = Annotated[str, Meta(pattern=r"^\+?[0-9 ()-]{3,20}$", max_length=20)]
Url = Annotated[str, Meta(pattern=r"^https?://", max_length=500)]


class Input(Struct, forbid_unknown_fields=True, kw_only=True):
    """Request bodies: unknown fields are an error, so a typo is never silently ignored."""


# ---- errors ----------------------------------------------------------------------------------------

class FieldError(Struct):
    field: str
    message: str


class ErrorDetail(Struct, omit_defaults=True):
    code: str
    message: str
    fields: list[FieldError] | None = None
    detail: dict[str, str] | None = None


class ErrorBody(Struct):
    error: ErrorDetail


class Page(Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


# ---- shops -----------------------------------------------------------------------------------------

class Interval(Struct, forbid_unknown_fields=True):
    open: HHMM
    close: HHMM


class OpeningHours(Struct, forbid_unknown_fields=True, omit_defaults=True):
    mon: list[Interval] = []
    tue: list[Interval] = []
    wed: list[Interval] = []
    thu: list[Interval] = []
    fri: list[Interval] = []
    sat: list[Interval] = []
    sun: list[Interval] = []


ShopStatus = Literal["active", "closed", "inactive"]


class ShopCreate(Input):
    name: Name
    address: Annotated[str, Meta(min_length=1, max_length=1000)]
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    phone: Phone | None = None
    email: Email | None = None
    currency: Currency = "USD"
    opening_hours: OpeningHours | None = None
    status: ShopStatus = "active"

    def __post_init__(self) -> None:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("set both latitude and longitude, or neither")


class ShopPatch(Input):
    name: Name | UnsetType = UNSET
    address: Annotated[str, Meta(min_length=1, max_length=1000)] | UnsetType = UNSET
    latitude: Latitude | UnsetType | None = UNSET
    longitude: Longitude | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    opening_hours: OpeningHours | UnsetType | None = UNSET
    status: ShopStatus | UnsetType = UNSET
    version: Annotated[int, Meta(ge=1, description="expected current version; a mismatch is a 409")] | UnsetType = UNSET


class Shop(Struct, omit_defaults=True):
    id: uuid.UUID
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    phone: str | None
    email: str | None
    currency: str
    opening_hours: OpeningHours | None
    status: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    distance_km: float | None = None


class ShopQuery(Struct, forbid_unknown_fields=True):
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    status: Literal["active", "closed", "inactive", "deleted"] | None = None
    near: Annotated[str, Meta(pattern=r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$", description="lat,lng")] | None = None
    radius_km: Annotated[float, Meta(gt=0, le=20000)] = 5.0


# ---- products --------------------------------------------------------------------------------------

class CustomizationOption(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    price_delta: Price = Decimal(0)


class CustomizationGroup(Struct, forbid_unknown_fields=True):
    """One choice on a product, e.g. size (small/medium/large) or milk (whole/oat)."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    options: Annotated[list[CustomizationOption], Meta(min_length=1, max_length=50)]
    required: bool = False
    multiple: bool = False

    def __post_init__(self) -> None:
        names = [o.name for o in self.options]
        if len(names) != len(set(names)):
            raise ValueError(f"option names in {self.name!r} must be unique")


class NutritionalInfo(Struct, forbid_unknown_fields=True, omit_defaults=True):
    calories: Count | None = None
    caffeine_mg: Count | None = None
    sugar_g: Count | None = None
    fat_g: Count | None = None
    protein_g: Count | None = None


ProductStatus = Literal["active", "inactive"]
Customizations = Annotated[list[CustomizationGroup], Meta(max_length=20)]


class ProductCreate(Input):
    name: Name
    category: Annotated[str, Meta(min_length=1, max_length=100)]
    base_price: Price
    currency: Currency = "USD"
    description: Text | None = None
    image_url: Url | None = None
    ingredients: Annotated[list[Annotated[str, Meta(min_length=1, max_length=100)]], Meta(max_length=50)] = []
    nutritional_info: NutritionalInfo | None = None
    customizations: Customizations = []
    status: ProductStatus = "active"
    # the shop it is made for: only that shop's menu carries it, its managers change it; none: shared
    shop_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        _check_unique_groups(self.customizations)


class ProductPatch(Input):
    name: Name | UnsetType = UNSET
    category: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    base_price: Price | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    image_url: Url | UnsetType | None = UNSET
    ingredients: list[Annotated[str, Meta(min_length=1, max_length=100)]] | UnsetType = UNSET
    nutritional_info: NutritionalInfo | UnsetType | None = UNSET
    customizations: Customizations | UnsetType = UNSET
    status: ProductStatus | UnsetType = UNSET
    version: Annotated[int, Meta(ge=1)] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.customizations is not UNSET:
            _check_unique_groups(self.customizations)


def _check_unique_groups(groups: list[CustomizationGroup]) -> None:
    names = [g.name for g in groups]
    if len(names) != len(set(names)):
        raise ValueError("customization group names must be unique")


class Product(Struct):
    id: uuid.UUID
    name: str
    category: str
    base_price: Decimal
    currency: str
    description: str | None
    image_url: str | None
    ingredients: list[str]
    nutritional_info: NutritionalInfo | None
    customizations: list[CustomizationGroup]
    status: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    shop_id: uuid.UUID | None = None  # the shop it belongs to; none: shared by every menu


class ProductQuery(Struct, forbid_unknown_fields=True):
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    category: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    q: Annotated[str, Meta(min_length=1, max_length=100, description="name contains (case-insensitive)")] | None = None
    status: Literal["active", "inactive", "deleted"] | None = None


# ---- menus -----------------------------------------------------------------------------------------

class MenuEntryPut(Input):
    price: Price
    available: bool = True


class MenuEntryCreate(MenuEntryPut, kw_only=True):
    product_id: uuid.UUID


class MenuEntry(Struct):
    shop_id: uuid.UUID
    product_id: uuid.UUID
    price: Decimal
    available: bool
    updated_at: dt.datetime


class MenuItem(Struct):
    product_id: uuid.UUID
    name: str
    category: str
    description: str | None
    image_url: str | None
    price: Decimal
    available: bool
    customizations: list[CustomizationGroup]


class Menu(Struct):
    shop_id: uuid.UUID
    shop_name: str
    currency: str
    items: list[MenuItem]


# ---- supplies --------------------------------------------------------------------------------------

Unit = Annotated[str, Meta(min_length=1, max_length=20)]


class SupplyCreate(Input):
    shop_id: uuid.UUID
    product_id: uuid.UUID
    quantity: Count
    unit: Unit
    reorder_level: Count = 10


class SupplyPatch(Input):
    quantity: Count | UnsetType = UNSET
    unit: Unit | UnsetType = UNSET
    reorder_level: Count | UnsetType = UNSET
    discontinued: bool | UnsetType = UNSET
    version: Annotated[int, Meta(ge=1)] | UnsetType = UNSET


class Restock(Input):
    quantity: Annotated[int, Meta(ge=1, le=1_000_000_000)]


class Supply(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    unit: str
    reorder_level: int
    reserved: int
    status: str
    last_restocked: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


# ---- health ----------------------------------------------------------------------------------------

class Health(Struct):
    status: Literal["ok"]


class Readiness(Struct):
    status: Literal["ready", "not_ready", "draining"]
    postgres: str
    redis: str
    kafka: str


# ---- prices -----------------------------------------------------------------------------------------

class PriceQuery(Struct, forbid_unknown_fields=True):
    fiat: Currency = "USD"


class PriceOut(Struct):
    asset: str
    fiat: str
    rate: Decimal
    as_of: dt.datetime
    source: str


class Prices(Struct):
    fiat: str
    rates: list[PriceOut]


# ---- orders -----------------------------------------------------------------------------------------

OptionName = Annotated[str, Meta(min_length=1, max_length=100)]
Quantity = Annotated[int, Meta(ge=1, le=100)]


class OrderLine(Input):
    product_id: uuid.UUID
    quantity: Quantity = 1
    customizations: Annotated[dict[OptionName, Annotated[list[OptionName], Meta(max_length=20)]],
                              Meta(max_length=20, description="group name -> chosen option names")] = {}


class PaymentChoice(Input):
    chain: Annotated[str, Meta(min_length=1, max_length=32,
                               description="btc, lightning (Bitcoin, with a Lightning invoice too), or a configured "
                                           "EVM chain")]
    asset: Annotated[str, Meta(min_length=1, max_length=16, description="BTC, ETH or a token symbol")]


class OrderTerms(Input):
    """How an order is paid and handed over (an order's fields besides its items; a cart checkout's)."""

    shop_id: uuid.UUID
    payment: PaymentChoice
    order_type: Literal["pickup", "delivery"] = "pickup"
    pickup_time: dt.datetime | None = None
    delivery_address: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    special_instructions: Annotated[str, Meta(max_length=500)] | None = None

    def __post_init__(self) -> None:
        _check_delivery(self.order_type, self.delivery_address)
        _check_time("pickup_time", self.pickup_time)


class OrderCreate(OrderTerms, kw_only=True):
    items: Annotated[list[OrderLine], Meta(min_length=1, max_length=50)]


def _check_delivery(order_type: str, address: str | None) -> None:
    if order_type == "delivery" and not address:
        raise ValueError("delivery_address is required for a delivery order")


def _check_time(name: str, value: object) -> None:
    """A time PostgreSQL can store: once in UTC still within years 1..9999 (9999-12-31T23:00-05:00 is not).
    The message leads with the field's name, which the API reports as the field at fault."""
    if isinstance(value, dt.datetime):
        try:
            (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise ValueError(f"{name}: must be a time within years 1 to 9999 in UTC") from None


class OrderPatch(Input):
    items: Annotated[list[OrderLine], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    order_type: Literal["pickup", "delivery"] | UnsetType = UNSET
    pickup_time: dt.datetime | UnsetType | None = UNSET
    delivery_address: Annotated[str, Meta(min_length=1, max_length=500)] | UnsetType | None = UNSET
    special_instructions: Annotated[str, Meta(max_length=500)] | UnsetType | None = UNSET
    version: Annotated[int, Meta(ge=1)] | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_time("pickup_time", self.pickup_time)


class OrderMove(Input):
    status: Literal["preparing", "ready", "completed"]


class Resolution(Input):
    action: Literal["accept", "refund", "settle"]


class OrderQuery(Struct, forbid_unknown_fields=True):
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    status: Literal["pending", "confirmed", "preparing", "ready", "completed", "cancelled", "expired"] | None = None
    payment_status: Literal["pending", "processing", "confirmed", "underpaid", "overpaid", "late",
                            "expired"] | None = None
    shop_id: uuid.UUID | None = None


class OrderItemOut(Struct):
    product_id: uuid.UUID
    product_name: str
    base_price: Decimal
    final_price: Decimal
    quantity: int
    customizations: dict[str, list[str]]


class LightningInvoiceOut(Struct):
    """A BOLT11 invoice for the payment: the same amount over Lightning (millisatoshis, as a string).
    `unified_uri` is BIP21 with the invoice, one QR for both rails."""

    bolt11: str
    payment_hash: str
    amount_msat: str
    expires_at: dt.datetime
    state: str  # open | settled | cancelled
    unified_uri: str
    description: str  # its SHA-256 is the invoice's description hash


class PaymentRequest(Struct):
    """Where and how much to pay. `amount` is in base units (sats, wei, token units) as a string.
    A Bitcoin payment may carry a Lightning invoice too (`lightning`); if one was asked for and none could be
    issued, `lightning_unavailable` says why (it is still payable on chain)."""

    id: uuid.UUID
    chain: str
    asset: str
    decimals: int
    address: str
    amount: str
    amount_received: str
    token_address: str | None
    chain_id: int | None
    payment_uri: str
    rate: Decimal
    rate_source: str
    fiat_amount: Decimal
    fiat_currency: str
    status: str
    confirmations: int
    transaction_hash: str | None
    expires_at: dt.datetime
    confirmed_at: dt.datetime | None
    resolution: str | None
    lightning: LightningInvoiceOut | None = None
    lightning_unavailable: str | None = None


class Order(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    payment_status: str
    order_type: str
    pickup_time: dt.datetime | None
    delivery_address: str | None
    special_instructions: str | None
    total_amount: Decimal
    currency: str
    items: list[OrderItemOut]
    payment: PaymentRequest
    expires_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    # the order's capability (its checkout page and status): for whoever placed it (guests included, and
    # an integration that placed it for a buyer) and whoever sent it, never for staff or read-only keys;
    # send it as X-Checkout-Token to read the order without an account
    checkout_token: str | None = None


class OrderSummary(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    payment_status: str
    total_amount: Decimal
    currency: str
    chain: str | None
    asset: str | None
    created_at: dt.datetime


# ---- claims -----------------------------------------------------------------------------------------

class Claim(Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    claim_code: str
    status: str
    claimed_at: dt.datetime
    expires_at: dt.datetime | None
    processed_at: dt.datetime | None


class ClaimProcessed(Struct):
    claim: Claim
    order_status: str


# ---- ledger -----------------------------------------------------------------------------------------

class Balance(Struct):
    chain: str
    asset: str
    balance: str  # base units
    decimals: int | None
    custodial: bool  # held by the platform (paid into its wallet); false: in the shop's own wallet


class Balances(Struct):
    shop_id: uuid.UUID
    balances: list[Balance]


class LedgerEntry(Struct):
    id: int
    entry_group: uuid.UUID
    chain: str
    asset: str
    amount: str  # base units credited to the shop; negative for a reversal
    kind: str
    payment_id: uuid.UUID | None  # None: a payout
    memo: str | None
    created_at: dt.datetime
    custodial: bool
    transfer_id: uuid.UUID | None  # the refund or payout it belongs to


class LedgerQuery(Struct, forbid_unknown_fields=True):
    before: Annotated[int, Meta(ge=1, le=2**63 - 1, description="an entry id (BIGINT)")] | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 50


class LedgerPage(Struct):
    items: list[LedgerEntry]
    next_before: int | None


# ---- webhooks ---------------------------------------------------------------------------------------

WebhookUrl = Annotated[str, Meta(pattern=r"^https?://[^\s]+$", max_length=2000)]
EventType = Annotated[str, Meta(pattern=r"^(\*|[a-z_]+\.[a-z_]+)$", max_length=64)]


class WebhookCreate(Input):
    url: WebhookUrl
    event_types: Annotated[list[EventType], Meta(min_length=1, max_length=50)]
    description: Annotated[str, Meta(max_length=500)] | None = None
    # deliveries of a refund's events carry its claim token (whoever holds it says where the refund goes):
    # only for those who may issue refunds at the shop (refunds:create)
    refund_claims: bool = False


class WebhookPatch(Input):
    url: WebhookUrl | UnsetType = UNSET
    event_types: Annotated[list[EventType], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=500)] | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    # turning it on, or changing where (or what) an endpoint that has it goes, needs refunds:create
    refund_claims: bool | UnsetType = UNSET
    version: Annotated[int, Meta(ge=1)] | UnsetType = UNSET


class Webhook(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    refund_claims: bool = False  # deliveries of refunds' events carry their claim tokens


class WebhookCreated(Webhook, kw_only=True):
    secret: str  # shown once: sign-check deliveries with it (Standard Webhooks, whsec_...)


class Delivery(Struct):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class DeliveryQuery(Struct, forbid_unknown_fields=True):
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    status: Literal["pending", "succeeded", "failed"] | None = None


encoder = msgspec.json.Encoder(decimal_format="string")
