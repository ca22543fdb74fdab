"""What a customer is told for each event, in their language. Pure: from the facts the fanout read."""

from __future__ import annotations

from dataclasses import dataclass

from beanpay.engine.payment_uri import coins


@dataclass(frozen=True, slots=True)
class Facts:
    shop: str
    asset: str
    decimals: int
    amount: int  # base units asked
    received: int  # base units received
    checkout_link: str
    refund_amount: int | None = None  # refunds
    refund_link: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    link: str | None


# event type -> (title, body); {shop} {amount} {asset} {received} {remaining} {extra} {refund} filled in
EN: dict[str, tuple[str, str]] = {
    "order.confirmed": ("Payment received", "Your order at {shop} is paid. Show your claim code at the counter."),
    "payment.underpaid": ("Part of your payment arrived",
                          "{received} {asset} of {amount} {asset} arrived for your order at {shop}; "
                          "{remaining} {asset} is still due."),
    "payment.overpaid": ("You paid more than asked",
                         "You sent {extra} {asset} more than your order at {shop} asked. The shop refunds it."),
    "payment.late": ("Your payment arrived late",
                     "Your payment to {shop} arrived after the window closed. The shop accepts it or refunds it."),
    "order.expired": ("Your order expired", "Nothing was paid in time for your order at {shop}."),
    "order.ready": ("Your order is ready", "Pick it up at {shop}."),
    "order.cancelled": ("Your order was cancelled", "{shop} cancelled your order. If you paid, you are refunded."),
    "refund.created": ("A refund is waiting for you",
                       "{shop} refunds you {refund} {asset}. Open the link to say where to send it."),
    "refund.completed": ("Your refund was sent", "{shop} sent you {refund} {asset}."),
}
ES: dict[str, tuple[str, str]] = {
    "order.confirmed": ("Pago recibido", "Tu pedido en {shop} está pagado. Muestra tu código en el mostrador."),
    "payment.underpaid": ("Ha llegado parte de tu pago",
                          "Llegaron {received} {asset} de {amount} {asset} para tu pedido en {shop}; "
                          "faltan {remaining} {asset}."),
    "payment.overpaid": ("Pagaste más de lo pedido",
                         "Enviaste {extra} {asset} más de lo que pedía tu pedido en {shop}. La tienda te lo devuelve."),
    "payment.late": ("Tu pago llegó tarde",
                     "Tu pago a {shop} llegó después del plazo. La tienda lo acepta o lo reembolsa."),
    "order.expired": ("Tu pedido caducó", "No se pagó a tiempo tu pedido en {shop}."),
    "order.ready": ("Tu pedido está listo", "Recógelo en {shop}."),
    "order.cancelled": ("Tu pedido se canceló", "{shop} canceló tu pedido. Si pagaste, se te reembolsa."),
    "refund.created": ("Tienes un reembolso",
                       "{shop} te reembolsa {refund} {asset}. Abre el enlace para decir adónde."),
    "refund.completed": ("Reembolso enviado", "{shop} te envió {refund} {asset}."),
}
CATALOGUES = {"en": EN, "es": ES}
NOTIFIED = frozenset(EN)


def compose(event_type: str, facts: Facts, language: str = "en") -> Message | None:
    """The message for an event, or None when the customer is not told about this event."""
    found = CATALOGUES.get(language, EN).get(event_type) or EN.get(event_type)
    if found is None:
        return None
    values = {
        "shop": facts.shop, "asset": facts.asset, "amount": coins(facts.amount, facts.decimals),
        "received": coins(facts.received, facts.decimals),
        "remaining": coins(max(facts.amount - facts.received, 0), facts.decimals),
        "extra": coins(max(facts.received - facts.amount, 0), facts.decimals),
        "refund": coins(facts.refund_amount or 0, facts.decimals),
    }
    link = facts.refund_link if event_type.startswith("refund.") and facts.refund_link else facts.checkout_link
    title, body = found
    return Message(title.format(**values), body.format(**values), link)
