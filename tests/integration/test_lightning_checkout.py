"""The checkout's Lightning rail in a real browser: the customer picks Lightning on a Bitcoin payment, the page
shows one QR that a wallet's camera reads as both the address and the invoice, and the customer's lnd node
paying the invoice turns the open page paid without a reload."""

from __future__ import annotations

import io
import urllib.parse

import zxingcpp
from PIL import Image
from playwright.async_api import expect

from beanpay.chains.lightning.lnd import LndClient
from tests.conftest import Tokens
from tests.integration.browser import DESKTOP, screenshots
from tests.integration.engine_support import get_order, make_coffee_shop, place
from tests.integration.lightning_support import Running
from tests.integration.test_checkout_pages import mark, no_violations, same_load, stage

pytest_plugins = ["tests.integration.lightning_support", "tests.integration.browser"]


async def test_picking_lightning_shows_one_qr_for_both_rails_and_the_page_turns_paid(
        ln_api, ln_settings, tokens: Tokens, lightning_service: Running, relay, open_page,
        customer_node: LndClient) -> None:
    shop = await make_coffee_shop(ln_api, tokens)
    order = await place(ln_api, {}, shop, "btc", "BTC")  # on chain only until the customer picks Lightning
    pay = order["payment"]
    page = await open_page(str(ln_api.make_url(f"/pay/{order['checkout_token']}")))
    await stage(page, "awaiting")
    await expect(page.locator("[data-invoice]")).to_have_count(0)
    await page.get_by_role("button", name="Pay with Lightning").click()
    await expect(page.locator("[data-invoice]")).to_be_visible()
    opened = await get_order(ln_api, {"X-Checkout-Token": order["checkout_token"]}, order["id"])
    invoice = opened["payment"]["lightning"]
    assert await page.locator("[data-invoice]").inner_text() == invoice["bolt11"]
    await no_violations(page)

    # the QR as a camera sees it: BIP21 with the address, the amount and the invoice
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    shot = await page.locator("[data-qr] svg").screenshot()
    # QR only: zxing's other formats have once read a second, spurious code in the same picture
    found = {code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)),
                                                           formats=zxingcpp.BarcodeFormat.QRCode)}
    assert len(found) == 1, f"the page's QR did not decode to one text: {found}"
    uri = urllib.parse.urlsplit(found.pop())
    params = dict(urllib.parse.parse_qsl(uri.query))
    assert uri.scheme == "bitcoin" and uri.path == pay["address"]
    assert params["amount"] == pay["payment_uri"].split("amount=")[1]
    assert params["lightning"].lower() == invoice["bolt11"].lower()
    await screenshots(page, ln_settings, "checkout-lightning")
    await mark(page)

    await customer_node.pay(invoice["bolt11"])
    await stage(page, "paid")
    assert await same_load(page), "the page reloaded instead of updating live"
    assert page.errors == []  # type: ignore[attr-defined]
