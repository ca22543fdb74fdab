"""QR codes drawn server-side as inline SVG (segno): no script and no image request needed to show one.

Encoding is most of a checkout page's cost (py-spy: 86% of a page render, most of it segno choosing the
best mask), and a payment's URI changes only when part of it is paid, so each drawing is kept in a
per-process LRU cache.
"""

from __future__ import annotations

import functools

import segno
from markupsafe import Markup


@functools.lru_cache(maxsize=4096)
def svg(data: str, *, title: str) -> Markup:
    """An inline, scalable SVG of `data`, titled for screen readers. Error correction M, as wallets expect."""
    code = segno.make(data, error="m", micro=False)
    # segno escapes the title; the SVG is our own output, so it is safe to mark as markup
    drawn = code.svg_inline(scale=4, border=2, dark="#111", light="#fff", title=title, svgclass="qr",
                            lineclass=None, omitsize=True)
    return Markup(drawn.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 (segno escaped the title)
