"""The follower's catch-up pipeline against the real database, fed by a scripted node: the chain changes
between two fetched batches, or the node fails half way. Real nodes cannot be made to reorg, or fail,
at an exact point of a catch-up; the reorgs and crashes they can do are tested in test_*_indexer.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest

from beanpay.chains.jsonrpc import RpcUnavailable
from beanpay.engine import addresses
from beanpay.indexer.follower import ChainPolicy, Follower
from beanpay.indexer.types import FoundDeposit


@dataclass(frozen=True)
class FakeBlock:
    hash: str
    prev_hash: str
    deposits: tuple[FoundDeposit, ...] = ()


def chain(tag: str, length: int, *, base: list[FakeBlock] | None = None,
          pays: dict[int, FoundDeposit] | None = None) -> list[FakeBlock]:
    """Blocks 0..length-1: `base`'s blocks first, then new ones named by `tag`."""
    blocks = list(base or [])
    while len(blocks) < length:
        h = len(blocks)
        found = (pays or {}).get(h)
        blocks.append(FakeBlock(f"{tag}{h}", blocks[-1].hash if blocks else "none", (found,) if found else ()))
    return blocks


@dataclass
class ScriptedNode:
    """Serves `first` for the first `switch_after` block fetches, then `then` (a reorg, or a failure)."""

    first: list[FakeBlock]
    then: list[FakeBlock] | Exception
    switch_after: int
    fetches: int = 0
    requested: list[list[int]] = field(default_factory=list)

    def _chain(self) -> list[FakeBlock]:
        if self.fetches <= self.switch_after:
            return self.first
        if isinstance(self.then, Exception):
            raise self.then
        return self.then

    def watch_key(self, address: str, script: bytes | None) -> str:
        return address

    @staticmethod
    def outpoint(txid: str, output_index: int) -> None:
        return None  # an account chain: nothing to spend

    def spends(self, block: FakeBlock, outpoints: set[object]) -> list[object]:
        return []

    def deposits(self, block: FakeBlock, watched: dict[str, str]) -> list[FoundDeposit]:
        return [d for d in block.deposits if d.address in watched]

    async def tip(self) -> int:
        return len(self._chain()) - 1

    async def hashes(self, heights: list[int]) -> dict[int, str]:
        blocks = self._chain()
        return {h: blocks[h].hash for h in heights}

    async def blocks(self, heights: list[int]) -> list[tuple[int, FakeBlock]]:
        self.fetches += 1
        self.requested.append(heights)
        blocks = self._chain()
        return [(h, blocks[h]) for h in heights]

    async def close(self) -> None:
        pass


def deposit(address: str, n: int) -> FoundDeposit:
    return FoundDeposit("FAKE", f"tx{n}", 0, address, 1000 + n)


@pytest.fixture
async def fake_chain(db: asyncpg.Pool) -> str:
    name = f"fake{uuid.uuid4().hex[:12]}"
    async with db.acquire() as conn:
        for address in ("a", "b"):
            await addresses.watch(conn, name, address, None, None)
    return name


def policy(name: str) -> ChainPolicy:
    return ChainPolicy(chain=name, confirmations=2, finality_depth=50, poll_seconds=1.0, batch_blocks=3,
                       start_height=1)


async def test_chain_changing_between_prefetched_batches_is_rewound_and_followed(db, fake_chain) -> None:
    old = chain("old", 12, pays={3: deposit("a", 1)})
    # the node reorgs once the first batch (1-3) is fetched: from height 3 on, its chain is another one,
    # so the next batch does not follow the applied block 3 (which paid `a`)
    new = chain("new", 14, base=old[:3], pays={7: deposit("b", 2)})
    node = ScriptedNode(first=old, then=new, switch_after=2)  # the start block and the first batch
    follower = Follower(policy(fake_chain), db, node)

    await follower.sync(until=11)

    cursor = await db.fetchrow("SELECT tip_height, tip_hash, last_reorg_depth FROM chain_cursors WHERE chain = $1",
                               fake_chain)
    assert (cursor["tip_height"], cursor["tip_hash"]) == (11, "new11")
    stored = {r["height"]: r["hash"] for r in await db.fetch(
        "SELECT height, hash FROM chain_blocks WHERE chain = $1", fake_chain)}
    assert stored == {h: new[h].hash for h in range(0, 12)}
    deposits = {r["txid"]: (r["status"], r["block_hash"]) for r in await db.fetch(
        "SELECT txid, status, block_hash FROM deposits WHERE chain = $1", fake_chain)}
    assert deposits == {"tx1": ("orphaned", None), "tx2": ("confirmed", "new7")}
    assert cursor["last_reorg_depth"] == 1
    assert node.requested[:3] == [[0], [1, 2, 3], [4, 5, 6]]


async def test_node_failing_mid_catch_up_keeps_what_was_applied_and_resumes(db, fake_chain) -> None:
    blocks = chain("b", 12, pays={2: deposit("a", 1), 8: deposit("b", 2)})
    node = ScriptedNode(first=blocks, then=RpcUnavailable("node went away"), switch_after=3)
    follower = Follower(policy(fake_chain), db, node)

    with pytest.raises(RpcUnavailable):
        await follower.sync(until=11)
    tip = await db.fetchval("SELECT tip_height FROM chain_cursors WHERE chain = $1", fake_chain)
    assert tip == 6, "both batches fetched before the failure are applied; nothing after"

    node.then = blocks  # the node is back
    await follower.sync(until=11)
    rows = await db.fetch("SELECT txid, status, block_height FROM deposits WHERE chain = $1 ORDER BY txid",
                          fake_chain)
    assert [(r["txid"], r["status"], r["block_height"]) for r in rows] == [
        ("tx1", "confirmed", 2), ("tx2", "confirmed", 8)]
    events = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id IN ('a', 'b') "
                            "AND payload->>'chain' = $1", fake_chain)
    assert sorted(e["event_type"] for e in events) == ["deposit.confirmed"] * 2 + ["deposit.detected"] * 2


async def test_a_reorg_deeper_than_the_window_halts_the_chain_until_an_operator_rewinds(db, fake_chain) -> None:
    from beanpay.indexer import store
    from beanpay.indexer.follower import HALTED, ChainHalted

    shallow = ChainPolicy(chain=fake_chain, confirmations=2, finality_depth=3, poll_seconds=1.0, batch_blocks=3,
                          start_height=1)
    old = chain("old", 12, pays={5: deposit("a", 1)})
    new = chain("new", 14, base=old[:2], pays={6: deposit("b", 2)})  # forks at 2: below the kept window
    node = ScriptedNode(first=old, then=new, switch_after=10**6)
    await Follower(shallow, db, node).sync(until=11)
    node.switch_after = 0  # the node now serves the other chain

    with pytest.raises(ChainHalted, match="deeper than the finality window"):
        await Follower(shallow, db, node).sync()
    cursor = await db.fetchrow("SELECT tip_height, halted_at, halt_reason FROM chain_cursors WHERE chain = $1",
                               fake_chain)
    assert cursor["tip_height"] == 11 and cursor["halted_at"] is not None and "window" in cursor["halt_reason"]
    assert HALTED.labels(fake_chain)._value.get() == 1  # alert-able
    with pytest.raises(ChainHalted, match="rewind with `beanpay chain reorg`"):
        await Follower(shallow, db, node).sync()  # a restarted follower refuses too: it never guesses
    assert await db.fetchval("SELECT status FROM deposits WHERE chain = $1 AND txid = 'tx1'", fake_chain) == "confirmed"

    # the operator checked the node and rewinds below the window, trusting its block 1 (what
    # `beanpay chain reorg --beyond-window` does); the follower then follows the new chain
    async with db.transaction() as conn:
        await store.rewind(conn, fake_chain, 1, reason="operator rewind", node_header=(new[1].hash, new[1].prev_hash))
    await Follower(shallow, db, node).sync()
    cursor = await db.fetchrow("SELECT tip_height, tip_hash, halted_at FROM chain_cursors WHERE chain = $1",
                               fake_chain)
    assert (cursor["tip_height"], cursor["tip_hash"], cursor["halted_at"]) == (13, "new13", None)
    deposits = {r["txid"]: r["status"] for r in await db.fetch(
        "SELECT txid, status FROM deposits WHERE chain = $1", fake_chain)}
    assert deposits == {"tx1": "orphaned", "tx2": "confirmed"}


async def test_a_node_whose_blocks_never_link_stops_the_sync_instead_of_looping(db, fake_chain) -> None:
    from beanpay.indexer.follower import NoProgress

    blocks = chain("b", 8)

    class Liar(ScriptedNode):
        async def blocks(self, heights: list[int]) -> list[tuple[int, FakeBlock]]:
            served = await super().blocks(heights)
            if heights[0] > 3:  # past block 3 every block claims a parent nobody has
                return [(h, FakeBlock(b.hash, "nowhere")) for h, b in served]
            return served

    node = Liar(first=blocks, then=blocks, switch_after=10**6)
    with pytest.raises(NoProgress):
        await Follower(policy(fake_chain), db, node).sync(until=7)
    cursor = await db.fetchrow("SELECT tip_height, halted_at, halt_reason FROM chain_cursors WHERE chain = $1",
                               fake_chain)
    assert cursor["tip_height"] == 3
    assert cursor["halted_at"] is not None and "does not link" in cursor["halt_reason"]  # halted, not retried
