"""What providers answer when an `eth_getLogs` range is too much for them, read into a smaller span.

Every hosted provider caps `eth_getLogs`, by blocks, by results or by bytes, and words it its own way:
some suggest a range that works, some name their cap, some only say no. The patterns below are their
messages as they send them (collected from the providers' answers and the public indexers that parse
them); a refusal that names nothing halves the span. Pure: no I/O.
"""

from __future__ import annotations

import re

# A range the provider suggests: Infura and zkSync ("Try with this block range [0x.., 0x..]"),
# Alchemy ("Based on your parameters, this block range should work: [0x.., 0x..]").
_SUGGESTED = re.compile(r"(?:block range|should work):? \[0x([0-9a-fA-F]+),\s*0x([0-9a-fA-F]+)\]")

# A cap in blocks the provider names; the number is the widest span it allows.
_NAMED_CAPS = [re.compile(p, re.IGNORECASE) for p in (
    r"requested too many blocks from \d+ to \d+, maximum is set to ([\d,.]+)",  # Avalanche
    r"Max range: ([\d,.]+)",  # Cloudflare
    r"Maximum allowed number of requested blocks is ([\d,.]+)",  # thirdweb
    r"eth_getLogs is limited to a ([\d,.]+) range",  # QuickNode, 1RPC, Blast
    r"limited to ([\d,.]+) block",  # BlockPI
    r"exceeds the range allowed for your plan \(\d+ > ([\d,.]+)\)",  # Blast (paid)
    r"please limit the query to at most ([\d,.]+) blocks",  # Coinbase (Base node)
    r"maximum block range: ([\d,.]+)",  # PublicNode
    r"query exceeds max block range ([\d,.]+)",  # llamarpc, Hyperliquid
    r"block range greater than ([\d,.]+) max",  # op-geth based public endpoints
    r"block range exceeds ([\d,.]+)",
    r"block range is too wide \(maximum ([\d,.]+)\)",  # Moonbeam
    r"query must be smaller than size ([\d,.]+)",  # Harmony
    r"up to a ([\d,.]+) block range",  # Alchemy's free tier, Aurora
    r"maximum \[from, to\] blocks distance: ([\d,.]+)",  # Ankr (some chains)
)]

# A refusal that names no cap: the span is halved.
_UNNAMED = re.compile("|".join((
    r"query returned more than \d+ results",  # geth's and Infura's result cap
    r"query exceeds max results",  # llamarpc, Ankr
    r"logs matched by query exceeds limit of \d+",  # Arbitrum
    r"backend response too large",  # Optimism
    r"block range is too (?:large|wide)",  # Optimism, Ankr
    r"block range too large",  # Base
    r"Block range limit exceeded",  # Chainstack
    r"response size should not greater than \d+ bytes",  # 1RPC
    r"Log response size exceeded",  # Alchemy (without its suggestion)
    r"range is too large",
    r"too many (?:blocks|results|logs)",
)), re.IGNORECASE)


def narrower_span(message: str, span: int) -> int | None:
    """The span (blocks per request, at least 1) to use after `message` refused a request of `span`
    blocks; None when the message is not about the range, or when the span cannot get any narrower."""
    if (found := _SUGGESTED.search(message)) is not None:
        allowed = int(found.group(2), 16) - int(found.group(1), 16) + 1
    elif (named := next((m for p in _NAMED_CAPS if (m := p.search(message)) is not None), None)) is not None:
        allowed = int(re.sub(r"[,.]", "", named.group(1)))
    elif _UNNAMED.search(message) is not None:
        allowed = span // 2
    else:
        return None
    narrower = allowed if allowed < span else span // 2  # always narrower than what was refused
    return narrower if narrower >= 1 else None

