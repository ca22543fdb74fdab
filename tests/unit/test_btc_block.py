"""The raw block parser against blocks (and txids) as btcd reported them, captured once."""

import json
import time
from pathlib import Path

import pytest

from beanpay.chains.bitcoin.block import BlockParseError, parse_block, payments_to

BLOCKS = json.loads((Path(__file__).parent / "data" / "btcd_regtest_blocks.json").read_text())


@pytest.mark.parametrize("captured", BLOCKS, ids=lambda b: f"height-{b['height']}")
def test_hash_parent_and_txids_match_the_node(captured: dict) -> None:  # type: ignore[type-arg]
    block = parse_block(bytes.fromhex(captured["raw"]))
    assert block.hash == captured["hash"]
    assert block.prev_hash == captured["previousblockhash"]
    assert [tx.txid for tx in block.txs] == captured["tx"]


def test_genesis_coinbase_is_the_famous_one() -> None:
    genesis = parse_block(bytes.fromhex(BLOCKS[0]["raw"]))
    assert genesis.txs[0].txid == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    assert genesis.txs[0].outputs[0].value == 50 * 100_000_000
    assert genesis.txs[0].spends == ()


def test_segwit_spend_outputs_and_inputs() -> None:
    block = parse_block(bytes.fromhex(BLOCKS[1]["raw"]))
    spend = block.txs[1]
    assert len(spend.spends) == 1 and len(spend.spends[0][0]) == 64
    assert all(out.script[:2] == b"\x00\x14" for out in spend.outputs)  # P2WPKH outputs
    found = payments_to(bytes.fromhex(BLOCKS[1]["raw"]), {spend.outputs[0].script: "bcrt1q-test"})
    assert [(p.txid, p.vout, p.value) for p in found] == [(spend.txid, 0, spend.outputs[0].value)]


def test_truncated_and_padded_blocks_are_refused() -> None:
    raw = bytes.fromhex(BLOCKS[1]["raw"])
    with pytest.raises(BlockParseError):
        parse_block(raw[:-3])
    with pytest.raises(BlockParseError):
        parse_block(raw + b"\x00")


def test_parsing_is_fast() -> None:
    """Throughput, not a timing gate: printed for the note; fails only if absurdly slow."""
    raw = bytes.fromhex(BLOCKS[1]["raw"])
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        parse_block(raw)
    per_tx = (time.perf_counter() - started) / (n * 2)
    print(f"\nparse: {per_tx * 1e6:.1f} us per transaction")
    assert per_tx < 500e-6


def test_prefilter_never_misses_a_watched_output() -> None:
    from beanpay.chains.bitcoin.block import may_pay

    raw = bytes.fromhex(BLOCKS[1]["raw"])
    block = parse_block(raw)
    scripts = {out.script for tx in block.txs for out in tx.outputs}
    assert all(may_pay(raw, {s}) for s in scripts if len(s) == 22)
    assert not may_pay(raw, {b"\x00\x14" + bytes(20)})


def test_prefilter_finds_a_script_overlapped_by_a_false_match() -> None:
    """An output value whose last bytes read 16 00 14 makes a false candidate that overlaps the real
    script right after it; the real one must still be found (a non-overlapping scan would skip it)."""
    from beanpay.chains.bitcoin.block import may_pay

    watched = b"\x00\x14" + bytes(range(1, 21))
    value = bytes(5) + b"\x16\x00\x14"  # 8-byte amount ending in the pattern
    raw = bytes(80) + value + b"\x16" + watched + bytes(10)
    assert may_pay(raw, {watched})
    assert may_pay(raw, {watched: "addr"})
    assert not may_pay(raw, {b"\x00\x14" + bytes(20)})


@pytest.mark.parametrize("captured", BLOCKS, ids=lambda b: f"height-{b['height']}")
def test_single_pass_scan_equals_full_parse(captured: dict) -> None:  # type: ignore[type-arg]
    from beanpay.chains.bitcoin.block import payments_to

    raw = bytes.fromhex(captured["raw"])
    block = parse_block(raw)
    every = {out.script for tx in block.txs for out in tx.outputs}
    expected = [(tx.txid, vout, out.script, out.value) for tx in block.txs for vout, out in enumerate(tx.outputs)
                if out.script in every]
    assert [(p.txid, p.vout, p.script, p.value) for p in payments_to(raw, every)] == expected
    assert payments_to(raw, {b"\x00\x14" + bytes(20)}) == []
    with pytest.raises(BlockParseError):
        payments_to(raw[:-2], every)


def test_prefilter_finds_a_script_after_a_false_match_near_the_end() -> None:
    """A false candidate whose 20 bytes run past the real script's prefix, and a prefix too close to
    the end to start a candidate: neither hides a real script, and neither invents one."""
    from beanpay.chains.bitcoin.block import may_pay

    watched = b"\x00\x14" + bytes(range(101, 121))
    raw = bytes(80) + b"\x16\x00\x14" + bytes(7) + b"\x16" + watched + b"\x16\x00\x14" + bytes(5)
    assert may_pay(raw, {watched})
    assert not may_pay(bytes(80) + b"\x16\x00\x14" + bytes(19), {b"\x00\x14" + bytes(20)})
