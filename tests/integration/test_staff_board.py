"""The staff board in a real browser: a barista signs in, a newly paid order appears live with a chime,
one tap moves it along, a typed claim code hands it over, low stock is flagged; at tablet sizes in
portrait and landscape, with no serious accessibility violation."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.conftest import Tokens
from tests.integration.browser import TABLET_LANDSCAPE, TABLET_PORTRAIT, screenshots, serious_violations
from tests.integration.engine_support import make_coffee_shop, pay_directly, place
from tests.integration.helpers import PASSWORD, person_at

pytest_plugins = ["tests.integration.engine_support", "tests.integration.browser"]

LIVE = 20_000


async def sign_in(page: Page, email: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("[data-who]")).to_have_text("Signed in as Sam", timeout=LIVE)


def column(page: Page, status: str) -> Any:
    return page.locator(f'[data-column="{status}"]')


async def test_the_board_shows_a_paid_order_live_moves_it_and_hands_it_over(
        api, tokens: Tokens, db, chain_settings, engine, relay, open_page) -> None:
    shop = await make_coffee_shop(api, tokens, stock=7)  # reorder level 5
    email = await person_at(api, tokens, db, shop.id, "staff", "Sam")
    page = await open_page(str(api.make_url("/staff")), viewport=TABLET_LANDSCAPE)
    wrong = page.locator("[data-login-error]")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(wrong).to_have_text("Wrong email or password", timeout=LIVE)
    await sign_in(page, email)
    await expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=LIVE)  # the queue is read
    await no_violations(page)

    order = await place(api, {}, shop, "btc", "BTC", quantity=2)  # 7 - 2 = 5 available: at the reorder level
    await pay_directly(db, order)
    await engine()
    card = column(page, "confirmed").locator(f'[data-order="{order["id"]}"]')
    await expect(card).to_be_visible(timeout=LIVE)
    await expect(card).to_contain_text("2 \u00d7 Latte")
    await expect(page.locator("body")).to_have_attribute("data-chimes", "1")
    await expect(page.locator(".low-stock")).to_contain_text("(5 left)", timeout=LIVE)
    await no_violations(page)
    await screenshots(page, chain_settings, "staff-board", sizes=(("tablet-landscape", TABLET_LANDSCAPE),
                                                                  ("tablet-portrait", TABLET_PORTRAIT)))

    await card.get_by_role("button", name="Start").click()
    moved = column(page, "preparing").locator(f'[data-order="{order["id"]}"]')
    await expect(moved).to_be_visible(timeout=LIVE)
    await moved.get_by_role("button", name="Ready").click()
    ready = column(page, "ready").locator(f'[data-order="{order["id"]}"]')
    await expect(ready).to_be_visible(timeout=LIVE)
    state = await (await api.get(f"/v1/orders/{order['id']}", headers=tokens.operator)).json()
    assert state["status"] == "ready"

    claimed = await api.post(f"/pay/{order['checkout_token']}/claim", allow_redirects=False)
    assert claimed.status == 303
    code = (await (await api.get(f"/v1/orders/{order['id']}/claim", headers=tokens.operator)).json())["claim_code"]
    await page.get_by_label("Claim code").fill("nope-nope")
    await page.get_by_role("button", name="Hand over", exact=True).first.click()
    await expect(page.locator("[data-claim-result]")).to_have_attribute("data-ok", "0", timeout=LIVE)
    await page.get_by_label("Claim code").fill(code.lower())  # typed as it comes
    await page.locator("[data-claim-form] button[type=submit]").click()
    await expect(page.locator("[data-claim-result]")).to_have_attribute("data-ok", "1", timeout=LIVE)
    await expect(ready).to_have_count(0, timeout=LIVE)
    done = await (await api.get(f"/v1/orders/{order['id']}", headers=tokens.operator)).json()
    assert done["status"] == "completed"
    assert page.errors == []  # type: ignore[attr-defined]

    # a second paid order chimes again; a reload shows the queue as the API has it
    second = await place(api, {}, shop, "btc", "BTC")
    await pay_directly(db, second)
    await engine()
    await expect(column(page, "confirmed").locator(f'[data-order="{second["id"]}"]')).to_be_visible(timeout=LIVE)
    await expect(page.locator("body")).to_have_attribute("data-chimes", "2")
    await page.reload()
    await expect(column(page, "confirmed").locator(f'[data-order="{second["id"]}"]')).to_be_visible(timeout=LIVE)


async def test_staff_of_another_shop_see_nothing_of_this_one(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    other = await make_coffee_shop(api, tokens)
    refused = await api.get(f"/v1/shops/{other.id}/events", headers=shop.staff)
    assert refused.status == 403
    assert (await api.get(f"/v1/shops/{shop.id}/events")).status == 401


async def no_violations(page: Page) -> None:
    found = await serious_violations(page)
    assert found == [], found
