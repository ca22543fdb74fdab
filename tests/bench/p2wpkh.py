"""Bulk P2WPKH spends for test data: one input, any outputs, signed per BIP143 with libsecp256k1.

bitcoinlib (used by the wallets in tests and the demo) spends ~2.5 ms per signed transaction, which
makes a benchmark chain of 100k+ transactions take minutes; coincurve's libsecp256k1 binding signs in
tens of microseconds. Signatures are deterministic (RFC 6979) and low-S, so the transactions match
what bitcoinlib would sign (a unit test compares them byte for byte).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from coincurve import PrivateKey

from beanpay.chains.bitcoin.block import dsha256

SIGHASH_ALL = 1
_SEQUENCE = b"\xff\xff\xff\xff"


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


@dataclass(frozen=True, slots=True)
class Signed:
    txid: str
    raw: bytes


class P2wpkhSigner:
    def __init__(self, secret: bytes, pubkey_hash: bytes) -> None:
        self._key = PrivateKey(secret)
        self._pubkey = self._key.public_key.format(compressed=True)
        self._script_code = b"\x19\x76\xa9\x14" + pubkey_hash + b"\x88\xac"

    def spend(self, prev_txid: str, vout: int, value: int, outputs: list[tuple[int, bytes]]) -> Signed:
        """Spend (prev_txid, vout), worth `value` sats and paying our key, to (amount, scriptPubKey) outputs."""
        outpoint = bytes.fromhex(prev_txid)[::-1] + struct.pack("<I", vout)
        serialized_outputs = b"".join(struct.pack("<q", amount) + _varint(len(script)) + script
                                      for amount, script in outputs)
        version, locktime = struct.pack("<i", 2), bytes(4)
        preimage = (version + dsha256(outpoint) + dsha256(_SEQUENCE) + outpoint + self._script_code
                    + struct.pack("<q", value) + _SEQUENCE + dsha256(serialized_outputs) + locktime
                    + struct.pack("<I", SIGHASH_ALL))
        signature = self._key.sign(dsha256(preimage), hasher=None) + bytes([SIGHASH_ALL])
        inputs = b"\x01" + outpoint + b"\x00" + _SEQUENCE
        body = inputs + _varint(len(outputs)) + serialized_outputs
        witness = b"\x02" + _varint(len(signature)) + signature + _varint(len(self._pubkey)) + self._pubkey
        raw = version + b"\x00\x01" + body + witness + locktime
        return Signed(dsha256(version + body + locktime)[::-1].hex(), raw)
