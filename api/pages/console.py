"""The merchant console, `/console`: a page shell whose script signs the owner or manager in and works
every part of a shop through the public API, as an integration would: orders and invoices with their
exceptions, refunds and payouts (approval, PSBT download and upload), balances and the ledger (CSV),
webhooks and their deliveries, wallets, API keys, staff, the shop and its menu."""

from __future__ import annotations

from aiohttp import web

from beanpay.api.pages.render import formatter, html_errors, page

SECTIONS = (("orders", "Orders"), ("invoices", "Invoices"), ("refunds", "Refunds"), ("payouts", "Payouts"),
            ("ledger", "Balances and ledger"), ("webhooks", "Webhooks"), ("wallets", "Wallets"),
            ("keys", "API keys"), ("people", "Staff"), ("shop", "Shop and menu"))
DEBT = ("The shop owes the platform {amount}: a chain reorganisation took back a payment already paid out. New "
        "payments pay it back; refunds and payouts wait until the balance is above zero.")
SCRIPT_STRINGS = (
    "Signed in as {name}", "Wrong email or password", "Could not reach beanpay; retrying",
    "You have no shop to manage.",
    "All", "Exceptions", "Status", "Payment", "Total", "Created", "Actions", "Accept", "Refund", "Refund overpayment",
    "Keep it", "Approve", "Cancel", "Download PSBT", "Upload signed PSBT", "Done", "Failed",
    "Amount", "Address", "Request payout", "Balance", "Export CSV", "Kind", "Memo", "Add endpoint", "Deliveries",
    "Redeliver", "Delete", "Save", "Create", "Name", "Permissions", "Key (shown once)", "Revoke", "Email", "Role",
    "Invite", "Invitation link (shown once)", "Withdraw", "Price", "Available", "Product", "Phone", "URL",
    "Events", "Chain", "Wallet", "Custodial (platform wallet)", "Own wallet", "Set wallet", "Checkout link",
    "Reference", "Assets", "Asset", "Destination", "Transaction", "Nothing here yet.", "Create invoice", "Filter",
    DEBT,
)


async def console(request: web.Request) -> web.StreamResponse:
    t = formatter(request)
    strings = {s: t.text(s) for s in SCRIPT_STRINGS}
    return page(request, "console.html", t=t, strings=strings, sections=SECTIONS)


def install(app: web.Application) -> None:
    app.router.add_get("/console", html_errors(console))
