"""A real browser for page tests: Playwright driving Debian's chromium (never a downloaded one), axe-core
for accessibility, the outbox relay (the pages' live updates ride on Kafka), and screenshots at phone
and desktop sizes written under the state folder on every run."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from beanpay.config import Settings
from beanpay.events.relay import Relay

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
TABLET_PORTRAIT = {"width": 820, "height": 1180}
TABLET_LANDSCAPE = {"width": 1180, "height": 820}
DESKTOP = {"width": 1280, "height": 900}


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium package is needed (deploy/install-deps.sh installs it)"  # noqa: ASYNC240
    assert AXE.exists(), "axe-core is missing: just setup installs it (npm ci --prefix tests/browser)"
    async with async_playwright() as pw:
        found = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield found
        await found.close()


@pytest.fixture
async def relay(chain_settings: Settings, db: Any) -> AsyncIterator[Relay]:
    """The outbox relay, running: events reach Kafka, and from there the pages' streams."""
    found = Relay(chain_settings, db)
    stop = asyncio.Event()
    task = asyncio.create_task(found.run(stop))
    yield found
    stop.set()
    await asyncio.wait_for(task, 15)


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """open_page(url, viewport=PHONE, locale="en-US", provider=None): a page in a fresh context, with
    axe-core loaded before any page script (so the page's CSP does not apply to it)."""
    contexts: list[Any] = []

    async def make(url: str, *, viewport: dict[str, int] | None = None, locale: str = "en-US",
                   provider: Callable[[str, list[Any]], Awaitable[Any]] | None = None) -> Page:
        context = await browser.new_context(viewport=viewport or PHONE, locale=locale)  # type: ignore[arg-type]
        contexts.append(context)
        await context.add_init_script(path=str(AXE))
        if provider is not None:
            await inject_provider(context, provider)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # script errors only: a refused request (401 before sign-in, a wrong claim code) is logged by the
        # browser as "Failed to load resource", and is what the page expects
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.errors = errors  # type: ignore[attr-defined]
        await page.goto(url)
        return page

    yield make
    for context in contexts:
        await context.close()


async def inject_provider(context: Any, forward: Callable[[str, list[Any]], Awaitable[Any]]) -> None:
    """An EIP-1193 `window.ethereum` whose requests Python answers (a test forwards them to anvil)."""

    async def call(_source: Any, method: str, params_json: str) -> str:
        return json.dumps(await forward(method, json.loads(params_json)))

    await context.expose_binding("__beanpayTestRpc", call)
    await context.add_init_script("""
        window.ethereum = {
          isTest: true,
          request: async ({ method, params }) => JSON.parse(
            await window.__beanpayTestRpc(method, JSON.stringify(params || []))),
        };""")


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                           .map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html).slice(0, 3) }));
    }""")
    return list(result)


async def screenshots(page: Page, settings: Settings, name: str,
                      sizes: tuple[tuple[str, dict[str, int]], ...] = (("phone", PHONE), ("desktop", DESKTOP))) \
        -> list[Path]:
    folder = settings.state_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for label, size in sizes:
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        path = folder / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        written.append(path)
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    return written
