"""The hosted checkout in a real browser: real transactions on btcd and anvil, followed by the indexers
and the engine, turn the open page paid without a reload; the underpaid, expired, browser-wallet and
invoice paths; links that do not open; languages; accessibility (axe-core) at every step."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.async_api import Page, expect

from beanpay.engine.expiry import expire_orders
from tests.conftest import Tokens
from tests.integration.browser import screenshots, serious_violations
from tests.integration.engine_support import get_order, make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support", "tests.integration.browser"]

LIVE = 20_000  # ms a live update may take: relay -> Kafka -> feed -> stream -> DOM


async def stage(page: Page, name: str) -> None:
    await expect(page.locator(f'#live [data-stage="{name}"]')).to_be_visible(timeout=LIVE)


async def mark(page: Page) -> None:
    """Something only this load of the page has: gone if the page reloads."""
    await page.evaluate("window.__sameLoad = 'yes'")


async def same_load(page: Page) -> bool:
    return await page.evaluate("window.__sameLoad === 'yes'") is True


async def no_violations(page: Page) -> None:
    found = await serious_violations(page)
    assert found == [], found


async def test_btc_checkout_turns_paid_live_then_claims_and_shows_the_receipt(
        api, tokens: Tokens, chain_settings, btc_wallet, btc_follower, engine, relay, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "btc", "BTC", size="large")  # a guest: the link is all they hold
    pay = order["payment"]
    page = await open_page(str(api.make_url(f"/pay/{order['checkout_token']}")))
    await stage(page, "awaiting")
    assert await page.locator(".address").inner_text() == pay["address"]
    assert await page.locator(".amount").inner_text() == pay["payment_uri"].split("amount=")[1]
    assert await page.locator("#live svg.qr title").text_content() == "Payment QR code"
    assert await page.get_attribute("a.button", "href") == pay["payment_uri"]
    assert "size: large" in await page.locator(".lines").inner_text()
    await no_violations(page)
    await screenshots(page, chain_settings, "checkout-awaiting")
    await mark(page)

    await btc_wallet.pay(pay["address"], int(pay["amount"]))
    await btc_follower.sync()  # the mempool scan records it seen
    await engine()
    await stage(page, "seen")
    await btc_wallet.mine(1)
    await btc_follower.sync()
    await engine()
    await stage(page, "confirming")
    await expect(page.locator("#live h2")).to_have_text("Confirming: 1 of 3", timeout=LIVE)
    await btc_wallet.mine(2)
    await btc_follower.sync()
    await engine()
    await stage(page, "paid")
    assert await same_load(page), "the page reloaded instead of updating live"
    assert page.errors == []  # type: ignore[attr-defined]
    await no_violations(page)

    await page.get_by_role("button", name="Show my claim code").click()
    code = (await page.locator("[data-claim-code]").inner_text()).strip()
    assert re.fullmatch(r"[A-Z0-9-]{6,16}", code), code
    claim = await (await api.get(f"/v1/orders/{order['id']}/claim", headers=tokens.operator)).json()
    assert claim["claim_code"] == code and claim["status"] == "active"
    assert await page.locator(".claim svg.qr").count() == 1
    await screenshots(page, chain_settings, "checkout-paid")

    await page.get_by_role("link", name="Receipt").click()
    receipt = page.locator("article.receipt")
    await expect(receipt).to_contain_text(pay["address"][:0] + "Transactions")
    seen = await api.get(f"/v1/orders/{order['id']}", headers=tokens.operator)
    txid = (await seen.json())["payment"]["transaction_hash"]
    await expect(receipt).to_contain_text(txid)
    await expect(receipt).to_contain_text("1 BTC =")
    await no_violations(page)
    await screenshots(page, chain_settings, "receipt")
    pdf = await api.get(page.url.split(str(api.make_url("")).rstrip("/"))[1].split("?")[0] + "/pdf")
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert (await pdf.read()).startswith(b"%PDF")


async def test_token_underpayment_shows_what_is_left_and_a_top_up_pays_it(
        api, tokens: Tokens, chain_settings, anvil, eth_follower, engine, relay, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "eth", "tUSDC")
    pay = order["payment"]
    assert pay["amount"] == "4500000"
    page = await open_page(str(api.make_url(f"/pay/{order['checkout_token']}")))
    await mark(page)
    payer = anvil(1)
    await payer.pay_usdc(pay["address"], 4_000_000)
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    await stage(page, "underpaid")
    await expect(page.locator("#live .notice")).to_contain_text("Still to pay: 0.5 tUSDC", timeout=LIVE)
    assert await page.locator(".amount").inner_text() == "0.5"
    href = await page.get_attribute("#live a.button", "href")
    assert href is not None and href.endswith(f"address={pay['address']}&uint256=500000"), href
    await no_violations(page)
    await screenshots(page, chain_settings, "checkout-underpaid")

    await payer.pay_usdc(pay["address"], 500_000)
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    await stage(page, "paid")
    assert await same_load(page)
    assert (await get_order(api, tokens.operator, order["id"]))["status"] == "confirmed"


async def test_the_browser_wallet_button_pays_through_an_injected_provider(
        api, tokens: Tokens, chain_settings, anvil, eth_follower, engine, relay, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "eth", "tUSDC")
    pay = order["payment"]
    payer = anvil(2)
    await payer.send(await payer.usdc.functions.mint(payer.account.address, 10_000_000).build_transaction(
        {"from": payer.account.address}))
    asked: list[str] = []

    async def provider(method: str, params: list[Any]) -> Any:
        asked.append(method)
        if method == "eth_requestAccounts":
            return [payer.account.address]
        return await payer.rpc(method, params)  # anvil's dev accounts sign eth_sendTransaction themselves

    page = await open_page(str(api.make_url(f"/pay/{order['checkout_token']}")), provider=provider)
    await page.get_by_role("button", name="Pay with browser wallet").click()
    status = page.locator("[data-wallet-status]")
    await expect(status).to_have_attribute("data-sent", "1", timeout=LIVE)
    tx_hash = (await status.inner_text()).strip()
    assert re.fullmatch(r"0x[0-9a-f]{64}", tx_hash), tx_hash
    assert asked[:2] == ["eth_requestAccounts", "eth_chainId"] and "eth_sendTransaction" in asked
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    await stage(page, "paid")
    paid = await get_order(api, tokens.operator, order["id"])
    assert (paid["payment"]["amount_received"], paid["payment"]["transaction_hash"]) == (pay["amount"], tx_hash)


async def test_an_expired_checkout_says_so_live_and_then_answers_410(
        api, tokens: Tokens, db, chain_settings, relay, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "btc", "BTC")
    page = await open_page(str(api.make_url(f"/pay/{order['checkout_token']}")))
    await stage(page, "awaiting")
    await db.execute("UPDATE crypto_payments SET expires_at = now() - interval '1 minute' WHERE order_id = $1",
                     uuid.UUID(order["id"]))  # the window passed (and expiry's grace with it)
    assert (await expire_orders(db, 100))[0] >= 1
    await stage(page, "expired")
    assert await page.locator("#live .address").count() == 0  # no address to pay once closed
    await no_violations(page)
    await screenshots(page, chain_settings, "checkout-expired")
    again = await page.reload()
    assert again is not None and again.status == 410


async def test_links_that_do_not_open_get_a_clear_page_and_pages_cannot_be_framed(
        api, tokens: Tokens, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "btc", "BTC")
    token = order["checkout_token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in ("nonsense", tampered, str(uuid.uuid4())):
        resp = await api.get(f"/pay/{bad}")
        body = await resp.text()
        assert resp.status == 404 and resp.content_type == "text/html", (bad, resp.status)
        assert "not valid" in body and "Traceback" not in body and order["payment"]["address"] not in body
    ok = await api.get(f"/pay/{token}")
    csp = ok.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert ok.headers["X-Frame-Options"] == "DENY" and ok.headers["Referrer-Policy"] == "no-referrer"
    assert ok.headers["Cache-Control"] == "no-store"
    # another order's token opens that order only
    other = await place(api, {}, shop, "btc", "BTC")
    assert other["payment"]["address"] not in await ok.text()
    page = await open_page(str(api.make_url(f"/pay/{tampered}")))
    await expect(page.locator("h1")).to_have_text("Not found")
    await no_violations(page)


async def test_languages_from_accept_language_or_the_query(api, tokens: Tokens, open_page) -> None:
    shop = await make_coffee_shop(api, tokens, price="1234.50")
    order = await place(api, {}, shop, "btc", "BTC")
    url = str(api.make_url(f"/pay/{order['checkout_token']}"))
    page = await open_page(url, locale="es-ES")
    assert await page.get_attribute("html", "lang") == "es"
    await expect(page.locator("#live h2")).to_have_text("Esperando tu pago")
    total = await page.locator(".total strong").inner_text()
    assert total.replace("\xa0", " ") == "1.234,50 US$", total  # Spanish separators and currency placement
    amount = await page.locator(".amount").inner_text()
    assert "," in amount and "." not in amount, amount
    await no_violations(page)
    english = await open_page(url + "?lang=en", locale="es-ES")
    await expect(english.locator("#live h2")).to_have_text("Waiting for your payment")
    assert (await english.locator(".total strong").inner_text()) == "$1,234.50"


async def test_an_invoice_checkout_lets_the_customer_pick_the_asset(
        api, tokens: Tokens, chain_settings, open_page) -> None:
    shop = await make_coffee_shop(api, tokens)
    resp = await api.post("/v1/invoices", headers=shop.merchant, json={
        "shop_id": shop.id, "amount": "12.40", "order_ref": "INV-42", "redirect_url": "https://shop.example/done",
        "assets": [{"chain": "eth", "asset": "tUSDC"}, {"chain": "btc", "asset": "BTC"}]})
    assert resp.status == 201
    made = await resp.json()
    page = await open_page(str(api.make_url(f"/pay/{made['checkout_token']}")))
    await expect(page.locator("h1")).to_have_text("INV-42")
    await no_violations(page)
    await screenshots(page, chain_settings, "invoice-pick")
    await page.get_by_label("BTC").check()
    await page.get_by_role("button", name="Continue").click()
    await stage(page, "awaiting")
    picked = await (await api.get(f"/v1/invoices/{made['id']}", headers=shop.merchant)).json()
    assert picked["payment"]["asset"] == "BTC"
    assert await page.locator(".address").inner_text() == picked["payment"]["address"]


async def test_without_javascript_the_page_refreshes_itself_and_the_claim_still_works(
        api, tokens: Tokens, db, engine, browser) -> None:
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "eth", "tUSDC")
    context = await browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        page = await context.new_page()
        await page.goto(str(api.make_url(f"/pay/{order['checkout_token']}")))
        await expect(page.locator("#live [data-stage='awaiting']")).to_be_visible()
        assert await page.locator('meta[http-equiv="refresh"]').count() == 1
        assert not await page.locator("button.copy").first.is_visible()  # copying needs the script
        assert await page.locator(".address").inner_text() == order["payment"]["address"]
        await pay_directly(db, order)
        await engine()
        await expect(page.locator("#live [data-stage='paid']")).to_be_visible(timeout=25_000)  # by refreshing
        await page.get_by_role("button", name="Show my claim code").click()
        await expect(page.locator("[data-claim-code]")).to_have_text(re.compile(r"\w{6,}"))
    finally:
        await context.close()


async def test_a_receipt_links_transactions_and_lists_refunds(make_api, tokens: Tokens, db, engine) -> None:
    api = await make_api(explorer_tx_urls={"eth": "https://explorer.example/tx/{txid}"})
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "eth", "tUSDC")
    page = await (await api.get(f"/pay/{order['checkout_token']}")).text()
    assert "/receipts/" not in page  # nothing paid: no receipt
    await pay_directly(db, order, 4_750_000)
    await engine()
    made = await api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "overpaid"}, headers=shop.merchant)
    assert made.status == 201, await made.text()
    page = await (await api.get(f"/pay/{order['checkout_token']}")).text()
    token = re.search(r'/receipts/([^?"]+)', page).group(1)  # type: ignore[union-attr]
    receipt = await api.get(f"/receipts/{token}")
    assert receipt.status == 200 and receipt.headers["Cache-Control"] == "no-store"
    html = await receipt.text()
    txid = (await (await api.get(f"/v1/orders/{order['id']}", headers=tokens.operator)).json())["payment"][
        "transaction_hash"]
    assert f'href="https://explorer.example/tx/{txid}"' in html
    assert "size: small" in html and "4.75 tUSDC" in html and "1 tUSDC = $1.00" in html
    assert "Refunds" in html and "0.25 tUSDC" in html and "awaiting claim" in html
    assert (await api.get(f"/receipts/{token[:-2]}xx")).status == 404
    other = await place(api, {}, shop, "eth", "tUSDC")  # the checkout token is not a receipt token
    assert (await api.get(f"/receipts/{other['checkout_token']}")).status == 404
    pdf = await api.get(f"/receipts/{token}/pdf")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")


async def test_overpaid_and_late_pages_say_what_happens_next_and_old_links_are_gone(
        make_api, tokens: Tokens, db, engine) -> None:
    api = await make_api(checkout_link_days=1)
    shop = await make_coffee_shop(api, tokens)
    over = await place(api, {}, shop, "eth", "tUSDC")
    await pay_directly(db, over, 5_000_000)
    late = await place(api, {}, shop, "eth", "tUSDC")
    await db.execute("UPDATE crypto_payments SET expires_at = now() - interval '1 hour' WHERE order_id = $1",
                     uuid.UUID(late["id"]))
    assert (await expire_orders(db, 100))[0] >= 1
    await pay_directly(db, late)  # first seen now: after the window closed
    await engine()
    page = await (await api.get(f"/pay/{over['checkout_token']}")).text()
    assert 'data-stage="overpaid"' in page and "You sent 0.5 tUSDC more than asked" in page
    answer = await api.get(f"/pay/{late['checkout_token']}")
    text = await answer.text()
    assert answer.status == 200 and 'data-stage="late"' in text and "accept it or refund it" in text
    assert (await (await api.get(f"/pay/{late['checkout_token']}?lang=es")).text()).count("Tu pago llegó tarde") == 1

    await db.execute("UPDATE coffee_orders SET created_at = now() - interval '2 days' WHERE id = $1",
                     uuid.UUID(over["id"]))
    gone = await api.get(f"/pay/{over['checkout_token']}")
    assert gone.status == 410 and "This link has expired" in await gone.text()


async def test_a_payment_replaced_or_dropped_before_it_was_mined_says_so_and_waits_again(
        make_api, tokens: Tokens, db, engine) -> None:
    api = await make_api()
    shop = await make_coffee_shop(api, tokens)
    for lost, words in (("replaced", "was replaced by another before it was mined"),
                        ("dropped", "no longer waiting to be mined")):
        order = await place(api, {}, shop, "eth", "tUSDC")
        pay = order["payment"]
        txid = "0x" + uuid.uuid4().hex * 2
        await db.execute("INSERT INTO deposits (chain, asset, txid, output_index, address, amount, status) "
                         "VALUES ($1, $2, $3, 0, $4, $5, 'seen')", pay["chain"], pay["asset"], txid, pay["address"],
                         int(pay["amount"]))
        await engine()
        assert 'data-stage="seen"' in await (await api.get(f"/pay/{order['checkout_token']}")).text()
        await db.execute("UPDATE deposits SET status = $1 WHERE txid = $2", lost, txid)  # as the indexer judges
        await engine()
        page = await (await api.get(f"/pay/{order['checkout_token']}")).text()
        assert 'data-stage="awaiting"' in page and words in page and f'data-lost="{lost}"' in page
        assert (await get_order(api, shop.staff, order["id"]))["payment"]["status"] == "pending"
        spanish = await (await api.get(f"/pay/{order['checkout_token']}?lang=es")).text()
        assert "vuelve a pagar" in spanish.lower()
