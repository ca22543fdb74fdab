"""The merchant console in a real browser: an owner signs in, finds an overpaid order under the
exception filter and refunds the overpayment; the customer names their address on the refund page;
the ledger exports as CSV; every section opens without a serious accessibility violation."""

from __future__ import annotations

import csv
import io

from playwright.async_api import Page, expect

from tests.conftest import Tokens, wait_for
from tests.integration.browser import DESKTOP, screenshots, serious_violations
from tests.integration.engine_support import make_coffee_shop, pay_directly, place
from tests.integration.helpers import PASSWORD, person_at

pytest_plugins = ["tests.integration.engine_support", "tests.integration.browser"]

LIVE = 20_000
CUSTOMER = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"


async def no_violations(page: Page) -> None:
    found = await serious_violations(page)
    assert found == [], found


async def test_a_merchant_refunds_an_overpayment_from_the_console(
        api, tokens: Tokens, db, chain_settings, engine, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    email = await person_at(api, tokens, db, shop.id, "owner", "Olga")
    order = await place(api, {}, shop, "eth", "tUSDC")
    await pay_directly(db, order, 4_500_000 + 1_250_000)  # 1.25 tUSDC too much
    await engine()

    page = await open_page(str(api.make_url("/console")), viewport=DESKTOP)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("[data-who]")).to_have_text("Signed in as Olga", timeout=LIVE)
    await page.locator("#order-filter").select_option("overpaid")
    row = page.locator(f'[data-table="orders"] [data-row="{order["id"]}"]')
    await expect(row).to_contain_text("overpaid", timeout=LIVE)
    await no_violations(page)
    await screenshots(page, chain_settings, "console-orders")
    await row.get_by_role("button", name="Refund overpayment").click()
    await expect(page.locator("[data-message]")).to_have_text("Done", timeout=LIVE)

    refunds = await (await api.get(f"/v1/shops/{shop.id}/refunds", headers=shop.merchant)).json()
    (issued,) = refunds["items"]
    assert (issued["variant"], issued["amount"], issued["status"]) == ("overpaid", "1250000", "awaiting_claim")
    await page.get_by_role("link", name="Refunds").click()
    await expect(page.locator(f'[data-table="refunds"] [data-row="{issued["id"]}"]')).to_contain_text(
        "1.25 tUSDC", timeout=LIVE)
    await no_violations(page)

    # the customer's refund page: the address is checked, then the refund goes on its way
    customer = await open_page(str(api.make_url(issued["claim_url"])))
    await expect(customer.locator("[data-refund-amount]")).to_have_text("1.25 tUSDC")
    await no_violations(customer)
    await customer.get_by_label("Your tUSDC address (eth)").fill(CUSTOMER.lower())
    await customer.get_by_role("button", name="Send my refund there").click()
    await expect(customer.locator("#address-problem")).to_be_visible()  # not EIP-55: refused, nothing lost
    await customer.get_by_label("Your tUSDC address (eth)").fill(CUSTOMER)
    await customer.get_by_role("button", name="Send my refund there").click()
    await expect(customer.locator("[data-refund-status]")).not_to_have_attribute(
        "data-refund-status", "awaiting_claim", timeout=LIVE)
    await screenshots(customer, chain_settings, "refund-claimed")
    after = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert after["destination"] == CUSTOMER and after["status"] != "awaiting_claim"

    await page.get_by_role("link", name="Balances and ledger").click()
    export = page.locator("[data-export]")
    await expect(export).to_be_visible(timeout=LIVE)
    got = await page.request.get(str(api.make_url(await export.get_attribute("href") or "")))
    assert got.status == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await got.text())))
    credit = next(r for r in rows if r["kind"] == "payment")
    assert (credit["asset"], credit["amount"], credit["amount_coins"]) == ("tUSDC", "5750000", "5.75")
    for tab in ("Invoices", "Payouts", "Webhooks", "Wallets", "API keys", "Staff", "Shop and menu"):
        await page.get_by_role("link", name=tab, exact=True).click()
        await expect(page.locator('section.panel:not([hidden]) h2')).to_have_text(tab)
        await no_violations(page)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_console_makes_an_invoice_and_edits_the_menu(api, tokens: Tokens, db, open_page) -> None:
    shop = await make_coffee_shop(api, tokens, price="4.50")
    email = await person_at(api, tokens, db, shop.id, "owner", "Olga")
    page = await open_page(str(api.make_url("/console#invoices")), viewport=DESKTOP)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    form = page.locator('[data-form="invoice"]')
    await form.get_by_label("Amount").fill("12.40")
    await form.get_by_label("Reference").fill("INV-9")
    await form.get_by_role("button", name="Create invoice").click()
    link = page.locator("[data-checkout-link] a")
    await expect(link).to_be_visible(timeout=LIVE)
    checkout = await api.get(await link.get_attribute("href"))
    assert checkout.status == 200 and "INV-9" in await checkout.text()

    await page.get_by_role("link", name="Shop and menu").click()
    price = page.get_by_label("Price Latte", exact=False)
    await price.fill("5.10")
    await page.locator(f'[data-table="menu"] [data-row="{shop.product_id}"]').get_by_role("button", name="Save").click()
    # the message already says "Done" (the invoice): wait for the menu itself, as the API serves it

    async def repriced() -> bool:
        return (await (await api.get(f"/v1/shops/{shop.id}/menu")).json())["items"][0]["price"] == "5.10"

    await wait_for(repriced, timeout=LIVE / 1000)
