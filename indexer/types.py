"""The indexer's value types: what a chain source finds, what a follower applies, where it stands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import msgspec


@dataclass(frozen=True, slots=True)
class FoundDeposit:
    asset: str
    txid: str
    output_index: int
    address: str
    amount: int  # base units


@dataclass(frozen=True, slots=True)
class FoundSpend:
    """An input spending an output beanpay recorded (a deposit)."""

    txid: str  # the spent output's transaction
    output_index: int
    spending_txid: str


@dataclass(frozen=True, slots=True)
class BlockChanges:
    height: int
    hash: str
    parent_hash: str
    deposits: list[FoundDeposit]
    spends: list[FoundSpend] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MempoolScan:
    """What a scan of the node's mempool found: new payments to watched addresses, the outputs each of their
    transactions spends, and every transaction in the mempool now."""

    deposits: list[FoundDeposit]
    inputs: dict[str, tuple[tuple[str, int], ...]]
    mempool: frozenset[str]


class Cursor(msgspec.Struct, frozen=True):
    tip_height: int
    tip_hash: str
    halted_at: dt.datetime | None = None
    halt_reason: str | None = None
