"""The pages' pure parts: where a checkout stands, the reader's language, amounts per locale, and a
catalogue that has every string the templates and page code use."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from beanpay.api.pages.locale import Formatter, choose
from beanpay.api.pages.messages import CATALOGUES
from beanpay.api.pages.stages import Stage, progress

PAGES = Path(__file__).resolve().parents[2] / "api" / "pages"


@pytest.mark.parametrize(("order", "payment", "received", "confirmations", "stage", "remaining", "extra"), [
    ("pending", "pending", 0, 0, Stage.AWAITING, 1000, 0),
    ("pending", "processing", 1000, 0, Stage.SEEN, 0, 0),
    ("pending", "processing", 400, 2, Stage.CONFIRMING, 600, 0),
    ("pending", "underpaid", 400, 3, Stage.UNDERPAID, 600, 0),
    ("confirmed", "confirmed", 1000, 3, Stage.PAID, 0, 0),
    ("confirmed", "underpaid", 990, 3, Stage.PAID, 0, 0),  # the shop accepted the shortfall
    ("ready", "overpaid", 1500, 3, Stage.OVERPAID, 0, 500),
    ("expired", "late", 1000, 1, Stage.LATE, 0, 0),
    ("expired", "expired", 0, 0, Stage.EXPIRED, 0, 0),
    ("cancelled", "confirmed", 1000, 3, Stage.CANCELLED, 0, 0),
])
def test_stages(order: str, payment: str, received: int, confirmations: int, stage: Stage, remaining: int,
                extra: int) -> None:
    p = progress(order, payment, amount=1000, received=received, confirmations=confirmations, required=3)
    assert (p.stage, p.remaining, p.extra) == (stage, remaining, extra)
    assert p.payable == (stage in (Stage.AWAITING, Stage.SEEN, Stage.CONFIRMING, Stage.UNDERPAID))


def test_confirmations_are_capped_at_what_is_required() -> None:
    assert progress("pending", "processing", amount=1, received=1, confirmations=9, required=3).confirmations == 3


@pytest.mark.parametrize(("query", "header", "lang"), [
    (None, None, "en"), ("es", "en-US", "es"), ("ES-mx", None, "es"), ("xx", "es-ES,es;q=0.9", "es"),
    (None, "fr-FR, es;q=0.8, en;q=0.9", "en"), (None, "fr, es;q=0.5", "es"), (None, "es;q=bad, en", "en"),
])
def test_the_language_comes_from_the_query_then_accept_language(query: str | None, header: str | None,
                                                                lang: str) -> None:
    assert choose(query, header) == lang


def test_amounts_keep_every_digit_in_the_readers_separators() -> None:
    en, es = Formatter("en"), Formatter("es")
    assert en.coins(123_456_789, 8) == "1.23456789"
    assert es.coins(123_456_789, 8) == "1,23456789"
    assert en.coins("1000000000000000001", 18) == "1.000000000000000001"  # wei, exact
    assert en.coins(250_000_000_000, 8) == "2,500"
    assert en.fiat(Decimal("1234.5"), "USD") == "$1,234.50"
    assert es.fiat(Decimal("4.5"), "EUR").replace("\xa0", " ") == "4,50 €"


def _used_strings() -> set[str]:
    found: set[str] = set()
    for path in [*(PAGES / "templates").glob("*.html"), *PAGES.glob("*.py")]:
        text = path.read_text()
        found |= set(re.findall(r'_\("((?:[^"\\]|\\.)+)"', text))
        found |= set(re.findall(r't\.text\("((?:[^"\\]|\\.)+)"', text))
        found |= set(re.findall(r'(?:NotFound|Gone|InvalidInput|Conflict)\("((?:[^"\\]|\\.)+)"', text))
    from beanpay.api.pages import console, staff
    from beanpay.api.pages.render import TITLES
    return (found | set(TITLES.values()) | set(staff.SCRIPT_STRINGS) | {title for _, title in staff.COLUMNS}
            | set(console.SCRIPT_STRINGS) | {title for _, title in console.SECTIONS})


def test_every_language_has_every_string() -> None:
    used = _used_strings()
    assert len(used) > 40
    for lang, catalogue in CATALOGUES.items():
        if lang != "en":
            missing = sorted(used - set(catalogue))
            assert not missing, f"{lang} lacks {missing}"
            for key, value in catalogue.items():  # placeholders survive translation
                assert set(re.findall(r"{\w+}", key)) == set(re.findall(r"{\w+}", value)), key
