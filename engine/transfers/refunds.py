"""Refunds: issued on a payment in one of five variants, claimed by the customer with their own address.
The payment row stays locked while a refund is decided, so concurrent refunds never exceed what it received."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import msgspec

from beanpay import audit
from beanpay.chains.bitcoin.addresses import InvalidAddress as InvalidBitcoinAddress
from beanpay.chains.bitcoin.addresses import Network, script_for
from beanpay.chains.evm.addresses import InvalidAddress as InvalidEvmAddress
from beanpay.chains.evm.addresses import checksummed
from beanpay.db import Connection, fetchrow_as
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.orders import lock_order
from beanpay.engine.payments import PAID, PaymentStatus
from beanpay.engine.settlement import resolve
from beanpay.engine.transfers import rules
from beanpay.engine.transfers.rules import AmountError, TransferStatus
from beanpay.engine.transfers.service import BITCOIN, SQL, TransferRow, lock, record
from beanpay.errors import Conflict, Gone, InvalidInput
from beanpay.money import MAX_FIAT


class PaidPayment(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    order_status: str
    wallet_id: uuid.UUID | None
    chain: str
    crypto_currency: str
    decimals: int
    token_address: str | None
    crypto_amount: int
    amount_received: int
    fiat_amount: Decimal
    fiat_currency: str
    status: str
    resolution: str | None
    credited: int
    held: int


def field_error(exc: AmountError) -> InvalidInput:
    return InvalidInput("the transfer is not possible", [{"field": exc.field, "message": exc.message}])


async def locked_payment(conn: Connection, order_id: uuid.UUID, *, counting: frozenset[str] = rules.HOLDING) \
        -> PaidPayment:
    paid = await fetchrow_as(conn, SQL.lock_payment, PaidPayment, order_id, sorted(counting))
    if paid is None:
        raise Conflict("the order has no payment")
    return paid


async def issue(conn: Connection, *, order_id: uuid.UUID, variant: str, amount: int | None,
                fiat_amount: Decimal | None, fee_bps: int, reason: str | None, rate: Decimal | None,
                claim_ttl: dt.timedelta, secret: str, actor: audit.Actor) -> TransferRow:
    """A refund of an order's payment. An unresolved underpaid or late payment is resolved as refunded
    (its order closes); a paid one keeps its order as it is."""
    order = await lock_order(conn, order_id)
    paid = await locked_payment(conn, order_id)
    status = PaymentStatus(paid.status)
    if paid.resolution == "settled":
        raise Conflict("this payment's overpayment was settled outside beanpay")
    if status in (PaymentStatus.UNDERPAID, PaymentStatus.LATE) and paid.resolution is None:
        await resolve(conn, order, "refund", actor)
        paid = await locked_payment(conn, order_id)
    elif not (status in PAID or paid.resolution in ("accepted", "refunded")):
        raise Conflict(f"the payment is {status.value}; only money received and confirmed can be refunded",
                       payment_status=status.value)
    if variant == "fiat_fixed" and fiat_amount is None:
        raise field_error(AmountError("fiat_amount", "a fiat_fixed refund needs its fiat amount"))
    if fiat_amount is not None and not (0 < fiat_amount <= MAX_FIAT and fiat_amount == round(fiat_amount, 2)):
        raise field_error(AmountError("fiat_amount", f"above zero, at most {MAX_FIAT}, in cents"))
    try:
        gross = None if variant == "fiat_fixed" else rules.gross_amount(
            variant, received=paid.credited, expected=paid.crypto_amount, fiat_paid=paid.fiat_amount, rate=rate,
            decimals=paid.decimals, fiat_amount=fiat_amount, custom=amount)
        net = None if gross is None else rules.net_amount(gross, fee_bps)
        if net is not None:
            rules.check_refundable(net, received=paid.credited, held=paid.held)
    except AmountError as exc:
        raise field_error(exc) from None
    row = await fetchrow_as(
        conn, SQL.add_refund, TransferRow, uuid.uuid4(), paid.id, order_id, paid.shop_id, paid.wallet_id,
        paid.chain, paid.crypto_currency, paid.decimals, paid.token_address, variant,
        fiat_amount if variant == "fiat_fixed" else (paid.fiat_amount if variant == "fiat_today" else None),
        paid.fiat_currency.strip() if variant in ("fiat_fixed", "fiat_today") else None,
        rate if variant == "fiat_today" else None, fee_bps, net,
        dt.datetime.now(dt.UTC) + claim_ttl, reason, audit.user_id(actor))
    assert row is not None
    await record(conn, secret, None, row, actor)
    return row


async def check_still_refundable(conn: Connection, refund: TransferRow, amount: int) -> None:
    """At approval, the amount (a fiat_fixed one's is set only now) within the payment's refundable rest."""
    assert refund.order_id is not None
    paid = await locked_payment(conn, refund.order_id)
    held = paid.held - (refund.amount or 0)  # this refund is counted in `held` already
    try:
        rules.check_refundable(amount, received=paid.credited, held=max(held, 0))
    except AmountError as exc:
        raise field_error(exc) from None


def check_destination(chain: str, address: str, network: Network) -> tuple[str, bytes | None]:
    """An address money goes out to, as it is paid: the Bitcoin script, or the checksummed EVM address."""
    try:
        if chain == BITCOIN:
            return address.strip(), script_for(address, network)
        return checksummed(address), None
    except (InvalidBitcoinAddress, InvalidEvmAddress) as exc:
        raise InvalidInput("the address cannot be paid", [{"field": "address", "message": str(exc)}]) from None


async def watch_destination(conn: Connection, chain: str, address: str, network: Network) -> str:
    """Check the destination and watch it from now on (the indexer then sees the money arrive)."""
    destination, script = check_destination(chain, address, network)
    if await conn.fetchval(SQL.payment_address, chain, destination):
        raise InvalidInput("the address cannot be paid", [
            {"field": "address", "message": "this is a beanpay payment address, not your own wallet's"}])
    await conn.execute(SQL.watch_destination, chain, destination, script)
    return destination


async def claim(conn: Connection, refund_id: uuid.UUID, address: str, *, network: Network, secret: str,
                actor: audit.Actor) -> TransferRow:
    """The customer's address, validated for the refund's chain; the address is watched from now on."""
    before = await lock(conn, refund_id)
    if before.kind != "refund" or before.status != TransferStatus.AWAITING_CLAIM:
        raise IllegalTransition("refund", before.status, TransferStatus.AWAITING_APPROVAL)
    assert before.claim_expires_at is not None
    if before.claim_expires_at <= dt.datetime.now(dt.UTC):
        raise Gone("this refund link has expired; ask the shop for a new one")
    destination = await watch_destination(conn, before.chain, address, network)
    after = await fetchrow_as(conn, SQL.claim, TransferRow, refund_id, destination)
    if after is None:
        raise Gone("this refund link has expired; ask the shop for a new one")
    await record(conn, secret, before, after, actor)
    return after
