"""The pages' strings per language. English is the key; a language lacking a string shows English (a
test requires every language to have every string the templates and page code use)."""

from __future__ import annotations

ES = {
    "Address": "Dirección",
    "Amount": "Importe",
    "Back to the shop": "Volver a la tienda",
    "Claim code QR": "Código QR de recogida",
    "Confirming: {n} of {total}": "Confirmando: {n} de {total}",
    "Continue": "Continuar",
    "Copy address": "Copiar dirección",
    "Copy amount": "Copiar importe",
    "Download PDF": "Descargar PDF",
    "Handed over. Enjoy!": "Entregado. ¡Que lo disfrutes!",
    "How would you like to pay?": "¿Cómo quieres pagar?",
    "If you paid, the shop refunds you.": "Si pagaste, la tienda te lo reembolsa.",
    "Invoice": "Factura",
    "It arrived after the payment window closed. The shop will either accept it or refund it; nothing is lost.":
        "Llegó después de cerrarse el plazo de pago. La tienda lo aceptará o lo reembolsará; no se pierde nada.",
    "Item": "Artículo",
    "Nothing was paid. Ask the shop for a new invoice.": "No se pagó nada. Pide una factura nueva a la tienda.",
    "Nothing was paid. Please place the order again.": "No se pagó nada. Haz el pedido de nuevo.",
    "Open in wallet": "Abrir en la cartera",
    "Order": "Pedido",
    "Paid": "Pagado",
    "Paid, with more than the amount": "Pagado, con más del importe",
    "Part of the amount has arrived": "Ha llegado parte del importe",
    "Pay before {time}": "Paga antes de {time}",
    "Pay with browser wallet": "Pagar con la cartera del navegador",
    "Pay {shop}": "Pagar a {shop}",
    "Payment QR code": "Código QR del pago",
    "Payment seen, waiting for confirmation": "Pago visto, esperando confirmación",
    "Payments by beanpay": "Pagos con beanpay",
    "Price": "Precio",
    "Rate": "Cambio",
    "Receipt": "Recibo",
    "Received {received} {asset}. Still to pay: {remaining} {asset}.":
        "Recibido: {received} {asset}. Falta por pagar: {remaining} {asset}.",
    "Refunds": "Reembolsos",
    "Scan with your wallet": "Escanéalo con tu cartera",
    "Show my claim code": "Mostrar mi código de recogida",
    "Show this code at the counter": "Muestra este código en el mostrador",
    "Skip to content": "Saltar al contenido",
    "This invoice can no longer be paid": "Esta factura ya no se puede pagar",
    "This order was cancelled": "Este pedido se canceló",
    "This payment window has closed": "El plazo de pago ha terminado",
    "Total": "Total",
    "Transactions": "Transacciones",
    "Valid until {time}": "Válido hasta {time}",
    "Waiting for your payment": "Esperando tu pago",
    "What you bought": "Lo que compraste",
    "You sent {extra} {asset} more than asked. The shop refunds the difference: you get a link to claim it by "
    "email, or ask the shop.":
        "Enviaste {extra} {asset} más de lo pedido. La tienda te reembolsa la diferencia: recibirás un enlace por "
        "correo para reclamarla, o pregunta en la tienda.",
    "Your order": "Tu pedido",
    "Your payment arrived late": "Tu pago llegó tarde",
    "asked": "pedido",
    "Language": "Idioma",
    # error pages
    "Not found": "No encontrado",
    "This link has expired": "Este enlace ha caducado",
    "That cannot be done now": "Eso no se puede hacer ahora",
    "Please check what you entered": "Revisa lo que has introducido",
    "Too many requests": "Demasiadas solicitudes",
    "Please try again in a moment": "Inténtalo de nuevo en un momento",
    "Something went wrong": "Algo ha fallado",
    "This checkout link is not valid. Check that you copied all of it.":
        "Este enlace de pago no es válido. Comprueba que lo copiaste entero.",
    "This receipt link is not valid. Check that you copied all of it.":
        "Este enlace de recibo no es válido. Comprueba que lo copiaste entero.",
    "This link has expired. Ask the shop if you need the order again.":
        "Este enlace ha caducado. Pregunta en la tienda si necesitas el pedido de nuevo.",
    "This link is for an order whose asset is already chosen.": "En este enlace ya se eligió cómo pagar.",
    "Choose one of the offered ways to pay.": "Elige una de las formas de pago ofrecidas.",
    "Nothing has been paid on this link yet.": "Todavía no se ha pagado nada en este enlace.",
    "There is no receipt for this order: it has not been paid.": "Este pedido no tiene recibo: no se ha pagado.",
    "Something went wrong on our side. It has been logged.": "Algo ha fallado por nuestra parte. Queda registrado.",
    # refund states on receipts
    "awaiting claim": "pendiente de reclamar", "awaiting approval": "pendiente de aprobación",
    "awaiting signature": "pendiente de firma", "sending": "enviándose", "in flight": "enviado",
    "completed": "completado", "failed": "fallido",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": {}, "es": ES}
