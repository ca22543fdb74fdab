"""Refunds: issued on a payment in one of five variants, claimed by the customer with their own address.
The payment row stays locked while a refund is decided, so concurrent refunds never exceed what it received."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
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


class LockedPayment(msgspec.Struct):
    """A refund's payment as lock_payment reads it, locked."""

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


class PaidPayment(LockedPayment):
    """The locked payment with what its refunds hold (refund_holdings, read after the lock)."""

    held: int
    credited_custodial: int  # of `credited`, what the platform holds
    held_custodial: int  # of `held`, refunds of the platform's money
    own_node_id: uuid.UUID | None  # the shop's own Lightning node that received part of it
    own_node_pubkey: str | None
    own_node_pays: bool  # that node (still the same identity) has a macaroon that may pay

    def source(self) -> RefundSource:
        """Where a refund of this payment goes back from: the custody that received most of it (a payment is
        almost always paid one way; one paid two ways is refunded from its larger part, within that part)."""
        platform, own = self.credited_custodial, self.credited - self.credited_custodial
        if platform > own or (platform == own and self.wallet_id is None and self.own_node_id is None):
            return RefundSource(True, None, None, None, platform, self.held_custodial)
        return RefundSource(False, self.wallet_id, self.own_node_id, self.own_node_pubkey, own,
                            self.held - self.held_custodial)


class RefundSource(msgspec.Struct, frozen=True):
    """The wallet or node a refund is paid back from, and what its payment left there to refund."""

    custodial: bool  # the platform's wallet or node
    wallet_id: uuid.UUID | None  # the shop's own wallet (None: the platform's, or only its node)
    node_id: uuid.UUID | None  # the shop's own node that received it
    node_pubkey: str | None
    credited: int
    held: int


def field_error(exc: AmountError) -> InvalidInput:
    return InvalidInput("the transfer is not possible", [{"field": exc.field, "message": exc.message}])


async def locked_payment(conn: Connection, order_id: uuid.UUID, *, counting: frozenset[str] = rules.HOLDING) \
        -> PaidPayment:
    """The order's payment, locked, with what its refunds hold (read after the lock)."""
    paid = await fetchrow_as(conn, SQL.lock_payment, LockedPayment, order_id)
    if paid is None:
        raise Conflict("the order has no payment")
    holdings = await conn.fetchrow(SQL.refund_holdings, paid.id, sorted(counting))
    assert holdings is not None
    return PaidPayment(**msgspec.structs.asdict(paid), **dict(holdings))


async def issue(conn: Connection, *, order_id: uuid.UUID, variant: str, amount: int | None,
                fiat_amount: Decimal | None, fee_bps: int, reason: str | None, rate: Decimal | None,
                claim_ttl: dt.timedelta, secret: str, actor: audit.Actor,
                minimums: Mapping[str, str]) -> TransferRow:
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
    source = paid.source()
    if not source.custodial and source.wallet_id is None and not paid.own_node_pays:
        raise Conflict("this payment's money is in the shop's own Lightning node, which beanpay may not pay from: "
                       "refund it from the node yourself, or connect the node with a macaroon that may pay")
    try:
        gross = None if variant == "fiat_fixed" else rules.gross_amount(
            variant, received=source.credited if variant == "crypto_paid" else paid.credited,
            expected=paid.crypto_amount, fiat_paid=paid.fiat_amount, rate=rate, decimals=paid.decimals,
            fiat_amount=fiat_amount, custom=amount)
        net = None if gross is None else rules.net_amount(gross, fee_bps)
        if net is not None:
            rules.check_refundable(net, received=source.credited, held=source.held)
            rules.check_minimum(net, rules.minimum_amount(paid.chain, paid.crypto_currency, paid.decimals,
                                                          token=paid.token_address is not None, configured=minimums))
    except AmountError as exc:
        raise field_error(exc) from None
    row = await fetchrow_as(
        conn, SQL.add_refund, TransferRow, uuid.uuid4(), paid.id, order_id, paid.shop_id, source.wallet_id,
        paid.chain, paid.crypto_currency, paid.decimals, paid.token_address, variant,
        fiat_amount if variant == "fiat_fixed" else (paid.fiat_amount if variant == "fiat_today" else None),
        paid.fiat_currency.strip() if variant in ("fiat_fixed", "fiat_today") else None,
        rate if variant == "fiat_today" else None, fee_bps, net,
        dt.datetime.now(dt.UTC) + claim_ttl, reason, audit.user_id(actor), source.custodial, source.node_id,
        source.node_pubkey)
    assert row is not None
    await record(conn, secret, None, row, actor)
    return row


async def check_still_refundable(conn: Connection, refund: TransferRow, amount: int) -> None:
    """At approval, the amount (a fiat_fixed one's is set only now) within the payment's refundable rest."""
    assert refund.order_id is not None
    paid = await locked_payment(conn, refund.order_id)
    source = paid.source()
    if source.custodial != refund.platform_money:  # the payment's money moved since (a reorg): decide again
        raise Conflict("this payment's money is no longer where it was when the refund was made; cancel the "
                       "refund and make a new one")
    held = source.held - (refund.amount or 0)  # this refund is counted in `held` already
    try:
        rules.check_refundable(amount, received=source.credited, held=max(held, 0))
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
    if not before.platform_money and before.wallet_id is None:
        raise InvalidInput("this refund cannot go to an address", [{
            "field": "address", "message": "its money is in the shop's own Lightning node, which pays it back: "
                                           "give a Lightning invoice for the amount instead"}])
    destination = await watch_destination(conn, before.chain, address, network)
    after = await fetchrow_as(conn, SQL.claim, TransferRow, refund_id, destination)
    if after is None:
        raise Gone("this refund link has expired; ask the shop for a new one")
    await record(conn, secret, before, after, actor)
    return after
