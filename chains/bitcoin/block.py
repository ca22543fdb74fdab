"""Raw block parsing (segwit-aware), so the indexer never depends on a node's verbose formats.

Only what deposit detection needs is kept: header hashes, each transaction's txid, its outputs
(value in sats, scriptPubKey) and the outpoints it spends. The txid is the double SHA-256 of the
legacy serialization, hashed from slices of the raw bytes rather than re-serialized.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


class BlockParseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TxOut:
    value: int  # sats
    script: bytes


@dataclass(frozen=True, slots=True)
class Tx:
    txid: str
    outputs: tuple[TxOut, ...]
    spends: tuple[tuple[str, int], ...]  # (txid, vout) of each input; coinbase spends nothing


@dataclass(frozen=True, slots=True)
class Block:
    hash: str
    prev_hash: str
    txs: tuple[Tx, ...]


def dsha256(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _hex_be(h: bytes) -> str:
    """Hashes are shown byte-reversed, as nodes print them."""
    return h[::-1].hex()


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise BlockParseError(f"truncated at byte {self.pos}, wanted {n} more")
        out = self.buf[self.pos:end]
        self.pos = end
        return out

    def varint(self) -> int:
        first = self.take(1)[0]
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        return int.from_bytes(self.take(size), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")


_COINBASE_PREVOUT = b"\x00" * 32


def _parse_tx(r: _Reader) -> Tx:
    start = r.pos
    r.take(4)  # version
    segwit = r.buf[r.pos] == 0 and r.buf[r.pos + 1] == 1  # marker and flag
    if segwit:
        r.take(2)
    body_start = r.pos
    spends = []
    n_inputs = r.varint()
    for _ in range(n_inputs):
        prev = r.take(32)
        vout = r.u32()
        r.take(r.varint())  # scriptSig
        r.take(4)  # sequence
        if prev != _COINBASE_PREVOUT:
            spends.append((_hex_be(prev), vout))
    outputs = []
    for _ in range(r.varint()):
        value = r.u64()
        outputs.append(TxOut(value, r.take(r.varint())))
    body_end = r.pos
    if segwit:
        for _ in range(n_inputs):  # one witness stack per input
            for _ in range(r.varint()):
                r.take(r.varint())
    r.take(4)  # locktime
    if segwit:  # the txid commits to the legacy serialization: no marker, flag or witnesses
        txid = dsha256(r.buf[start:start + 4] + r.buf[body_start:body_end] + r.buf[r.pos - 4:r.pos])
    else:
        txid = dsha256(memoryview(r.buf)[start:r.pos])
    return Tx(_hex_be(txid), tuple(outputs), tuple(spends))


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A block whose header is read and whose body is parsed only when it may pay a watched script."""

    hash: str
    prev_hash: str
    raw: bytes


def read_header(raw: bytes) -> RawBlock:
    if len(raw) < 81:
        raise BlockParseError("shorter than a block header")
    return RawBlock(hash=_hex_be(dsha256(raw[:80])), prev_hash=_hex_be(raw[4:36]), raw=raw)


_P2WPKH_PREFIX = b"\x16\x00\x14"  # script length 22, OP_0, push 20
# a pattern that starts with a literal runs on the regex engine's fast literal search
_P2WPKH_SCRIPTS = re.compile(rb"\x16(\x00\x14.{20})", re.DOTALL)
# the same with a lookahead, so matches may overlap: ~9x slower, used only when needed (see may_pay)
_P2WPKH_SCRIPTS_OVERLAPPING = re.compile(rb"(?=\x16(\x00\x14.{20}))", re.DOTALL)


def may_pay(raw: bytes, p2wpkh_scripts: set[bytes] | dict[bytes, str]) -> bool:
    """Could any output of this raw block pay one of these P2WPKH scripts? A bytes scan, no parsing.

    Every P2WPKH output appears verbatim in the block as 0x16 0x00 0x14 <20-byte hash>, so a miss here
    is certain; a hit is confirmed by a full parse. Far cheaper than parsing every transaction.
    """
    scripts = p2wpkh_scripts.keys() if isinstance(p2wpkh_scripts, dict) else p2wpkh_scripts
    candidates = _P2WPKH_SCRIPTS.findall(raw, 80)
    # A non-overlapping scan misses a script that starts inside an earlier (false) candidate. The
    # prefix cannot overlap itself, so if the block holds exactly as many prefixes as candidates found,
    # every prefix began a candidate and none was skipped; otherwise (rare) scan again, overlapping.
    if raw.count(_P2WPKH_PREFIX, 80) != len(candidates):
        candidates = _P2WPKH_SCRIPTS_OVERLAPPING.findall(raw, 80)
    # findall and the set test both run in C: a Python loop per output was a third of catch-up time
    return not scripts.isdisjoint(candidates)


def parse_block(raw: bytes) -> Block:
    if len(raw) < 81:
        raise BlockParseError("shorter than a block header")
    header = raw[:80]
    r = _Reader(raw)
    r.pos = 80
    txs = tuple(_parse_tx(r) for _ in range(r.varint()))
    if r.pos != len(raw):
        raise BlockParseError(f"{len(raw) - r.pos} trailing bytes after the last transaction")
    return Block(hash=_hex_be(dsha256(header)), prev_hash=_hex_be(header[4:36]), txs=txs)


def parse_tx(raw: bytes) -> Tx:
    """One raw transaction (as from the mempool)."""
    r = _Reader(raw)
    tx = _parse_tx(r)
    if r.pos != len(raw):
        raise BlockParseError(f"{len(raw) - r.pos} trailing bytes after the transaction")
    return tx


@dataclass(frozen=True, slots=True)
class Payment:
    txid: str
    vout: int
    script: bytes
    value: int


def _varint_at(raw: bytes, pos: int) -> tuple[int, int]:
    first = raw[pos]
    if first < 0xFD:
        return first, pos + 1
    size = 2 if first == 0xFD else 4 if first == 0xFE else 8
    return int.from_bytes(raw[pos + 1:pos + 1 + size], "little"), pos + 1 + size


def payments_to(raw: bytes, watched: set[bytes] | dict[bytes, str]) -> list[Payment]:
    """Outputs of a raw block paying a watched script, found in one pass that allocates nothing for the
    other outputs and hashes only the transactions that pay us. Same result as parsing the whole block."""
    lengths = {len(s) for s in watched}
    found: list[Payment] = []
    n_tx, pos = _varint_at(raw, 80)
    end = len(raw)
    try:
        for _ in range(n_tx):
            start = pos
            pos += 4
            segwit = raw[pos] == 0 and raw[pos + 1] == 1
            if segwit:
                pos += 2
            body_start = pos
            n_in, pos = _varint_at(raw, pos)
            for _ in range(n_in):
                size, pos = _varint_at(raw, pos + 36)
                pos += size + 4
            n_out, pos = _varint_at(raw, pos)
            hits: list[tuple[int, int, int, int]] = []
            for vout in range(n_out):
                size, script_at = _varint_at(raw, pos + 8)
                if size in lengths and raw[script_at:script_at + size] in watched:
                    hits.append((vout, pos, script_at, size))
                pos = script_at + size
            body_end = pos
            if segwit:
                for _ in range(n_in):
                    items, pos = _varint_at(raw, pos)
                    for _ in range(items):
                        size, pos = _varint_at(raw, pos)
                        pos += size
            pos += 4
            if pos > end:
                raise BlockParseError("truncated block")
            if hits:
                legacy = (raw[start:start + 4] + raw[body_start:body_end] + raw[pos - 4:pos]) if segwit \
                    else raw[start:pos]
                txid = _hex_be(dsha256(legacy))
                found += [Payment(txid, vout, raw[s:s + size], int.from_bytes(raw[v:v + 8], "little"))
                          for vout, v, s, size in hits]
    except IndexError:
        raise BlockParseError("truncated block") from None
    if pos != end:
        raise BlockParseError(f"{end - pos} trailing bytes after the last transaction")
    return found


@dataclass(frozen=True, slots=True)
class Spend:
    txid: str  # the spending transaction
    prev_txid: str
    prev_vout: int


def outpoint(txid: str, vout: int) -> bytes:
    """An output as a spending input names it in raw bytes: its txid (byte-reversed) and index."""
    return bytes.fromhex(txid)[::-1] + vout.to_bytes(4, "little")


def may_spend(raw: bytes, outpoints: set[bytes]) -> bool:
    """Could this raw block spend one of these outpoints? Each appears verbatim in a spending input, so
    a miss is certain; a few byte searches run in C, and past a few dozen the block is walked."""
    if not outpoints:
        return False
    if len(outpoints) > 48:  # each search is a pass over the block; past ~50 the walk is cheaper
        return True
    return any(o in raw for o in outpoints)


def spends_of(raw: bytes, outpoints: set[bytes]) -> list[Spend]:
    """Inputs of a raw block spending one of these outpoints (36 bytes each), in one pass that hashes
    only the transactions that spend one. Lengths under 0xfd (nearly all) are read inline: this walk
    runs on every block while outputs are tracked, and a call per field was half its time."""
    found: list[Spend] = []
    n_tx, pos = _varint_at(raw, 80)
    end = len(raw)
    try:
        for _ in range(n_tx):
            start = pos
            pos += 4
            segwit = raw[pos] == 0 and raw[pos + 1] == 1
            if segwit:
                pos += 2
            body_start = pos
            n_in = raw[pos]
            pos += 1
            if n_in >= 0xFD:
                n_in, pos = _varint_at(raw, pos - 1)
            hits: list[bytes] = []
            for _ in range(n_in):
                prev = raw[pos:pos + 36]
                if prev in outpoints:
                    hits.append(prev)
                size = raw[pos + 36]
                if size < 0xFD:
                    pos += 41 + size
                else:
                    size, pos = _varint_at(raw, pos + 36)
                    pos += size + 4
            n_out = raw[pos]
            pos += 1
            if n_out >= 0xFD:
                n_out, pos = _varint_at(raw, pos - 1)
            for _ in range(n_out):
                size = raw[pos + 8]
                if size < 0xFD:
                    pos += 9 + size
                else:
                    size, script_at = _varint_at(raw, pos + 8)
                    pos = script_at + size
            body_end = pos
            if segwit:
                for _ in range(n_in):
                    items = raw[pos]
                    pos += 1
                    if items >= 0xFD:
                        items, pos = _varint_at(raw, pos - 1)
                    for _ in range(items):
                        size = raw[pos]
                        if size < 0xFD:
                            pos += 1 + size
                        else:
                            size, pos = _varint_at(raw, pos)
                            pos += size
            pos += 4
            if pos > end:
                raise BlockParseError("truncated block")
            if hits:
                legacy = (raw[start:start + 4] + raw[body_start:body_end] + raw[pos - 4:pos]) if segwit \
                    else raw[start:pos]
                txid = _hex_be(dsha256(legacy))
                found += [Spend(txid, _hex_be(h[:32]), int.from_bytes(h[32:], "little")) for h in hits]
    except IndexError:
        raise BlockParseError("truncated block") from None
    if pos != end:
        raise BlockParseError(f"{end - pos} trailing bytes after the last transaction")
    return found
