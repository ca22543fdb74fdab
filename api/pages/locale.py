"""The reader's language and the formatting of amounts and times in it (Babel's CLDR data).

Strings are a small catalogue per language kept here rather than gettext .po/.mo files, which would
need a compile step; a test checks every language has every English string.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal

from beanpay.api.pages.messages import CATALOGUES

LANGUAGES = tuple(CATALOGUES)  # "en" first: the fallback
DEFAULT = "en"


def choose(query: str | None, accept_language: str | None) -> str:
    """`?lang=` if it names a language we have, else the best of Accept-Language (by q), else English."""
    if query and query.lower()[:2] in CATALOGUES:
        return query.lower()[:2]
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-q, i, tag.strip().lower()[:2]))
    for _, _, lang in sorted(ranked):
        if lang in CATALOGUES:
            return lang
    return DEFAULT


class Formatter:
    """What a template needs to speak one language: its strings and its number and date forms."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)
        self._strings = CATALOGUES[lang]

    def text(self, message: str, **values: object) -> str:
        found = self._strings.get(message) or message
        return found.format(**values) if values else found

    def fiat(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency.strip(), locale=self.locale)

    def coins(self, base_units: int | str, decimals: int) -> str:
        """Base units as whole coins with every significant digit, in the reader's digits and separators."""
        value = Decimal(int(base_units)).scaleb(-decimals)
        pattern = "#,##0." + "#" * decimals if decimals else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale, decimal_quantization=False)

    def number(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def when(self, moment: dt.datetime) -> str:
        return format_datetime(moment, "medium", tzinfo=dt.UTC, locale=self.locale) + " UTC"
