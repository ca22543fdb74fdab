"""Pure reorg logic: where a node's chain and our stored window of headers part ways.

Invariant: stored headers are linked by parent hash from the lowest kept height to the tip.
A new block either extends the tip (its parent is the tip's hash) or it does not, and then the
fork point is the highest height at which the node's hash equals ours. Searching below the kept
window is refused loudly: that reorg is deeper than the finality depth the chain was trusted to.
"""

from __future__ import annotations

from collections.abc import Mapping


class UnrecoverableReorg(Exception):
    pass


def fork_point(stored: Mapping[int, str], node: Mapping[int, str]) -> int:
    """The highest height where `stored` and `node` agree.

    `node` holds the node's current hashes for (at least) the stored heights it has; heights the
    node no longer has (its chain got shorter) count as disagreement.
    """
    if not stored:
        raise UnrecoverableReorg("no stored headers to compare against")
    for height in sorted(stored, reverse=True):
        if node.get(height) == stored[height]:
            return height
    raise UnrecoverableReorg(
        f"the node's chain differs from every stored header down to height {min(stored)}: "
        "a reorg deeper than the finality window; rewind with `beanpay chain reorg` after checking the node")


def confirmations(tip_height: int, block_height: int) -> int:
    return max(0, tip_height - block_height + 1)
