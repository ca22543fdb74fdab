"""What became of a payment seen unconfirmed whose transaction left the mempool without being mined. Pure.

Told by its inputs, as NBXplorer does: one of them spent by another transaction means it was replaced (a fee
bump, or its outputs sent elsewhere; a double spend, mined or not), known at once when the other transaction
is in the mempool; all of them unspent again means it was dropped (evicted, expired, or lost with a node's
mempool), judged only after it has been gone a while (`drop_after`): other nodes may still hold it and mine
it, and the customer is not asked to pay again for a payment that is still coming. Either way it is never
credited, and seen again (broadcast anew, or mined after all) it counts again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Outpoint = tuple[str, int]

# Scans in a row a transaction must be missing from the mempool before its inputs are asked about: one scan
# may race a block the index has not applied yet.
ABSENT_SCANS = 2


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Literal["replaced", "dropped"]
    replaced_by: str | None = None


def conflict(txid: str, inputs: Sequence[Outpoint], spenders: Mapping[Outpoint, str],
             mempool: Collection[str]) -> str | None:
    """Another transaction in the mempool now spending one of `txid`'s inputs: it replaced `txid`."""
    return next((s for i in inputs if (s := spenders.get(i)) not in (None, txid) and s in mempool), None)


def judge(txid: str, inputs: Sequence[Outpoint], unspent: Sequence[bool], spenders: Mapping[Outpoint, str],
          mempool: Collection[str]) -> Verdict:
    """`unspent[i]`: whether the node says `inputs[i]` is unspent (btcd's gettxout sees mined spends only, not
    the mempool's); `spenders`: the transactions seen spending outputs; `mempool`: its transactions now."""
    if (by := conflict(txid, inputs, spenders, mempool)) is not None:
        return Verdict("replaced", by)
    if any(not free for free in unspent):  # spent by a mined transaction: seen in the mempool first, or not
        return Verdict("replaced", next((s for i in inputs if (s := spenders.get(i)) not in (None, txid)), None))
    return Verdict("dropped")


@dataclass
class Absences:
    """Since when, and for how many scans in a row, each transaction has been missing from the mempool."""

    missing: dict[str, tuple[float, int]] = field(default_factory=dict)

    def update(self, missing: Collection[str], now: float) -> dict[str, tuple[float, int]]:
        """Record this scan's missing transactions: each with (seconds missing, scans missing in a row)."""
        self.missing = {t: (self.missing[t][0], self.missing[t][1] + 1) if t in self.missing else (now, 1)
                        for t in missing}
        return {t: (now - since, scans) for t, (since, scans) in self.missing.items()}
