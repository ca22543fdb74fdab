"""The bulk signer used to fill benchmark chains produces the very bytes bitcoinlib signs."""

from __future__ import annotations

import logging

from bitcoinlib.keys import Key
from bitcoinlib.transactions import Transaction

from beanpay.chains.bitcoin.block import parse_tx
from tests.bench.p2wpkh import P2wpkhSigner

logging.getLogger("bitcoinlib").setLevel(logging.ERROR)


def test_signed_spend_matches_bitcoinlib() -> None:
    key = Key(bytes(range(1, 33)).hex(), network="regtest")
    other = Key(bytes(range(2, 34)).hex(), network="regtest")
    prev, vout, value = "ab" * 32, 3, 5_000_000
    outputs = [(10_000, b"\x00\x14" + other.hash160), (4_989_000, b"\x00\x14" + key.hash160)]

    ours = P2wpkhSigner(key.secret.to_bytes(32, "big"), key.hash160).spend(prev, vout, value, outputs)

    reference = Transaction(network="regtest", witness_type="segwit", version=2)
    reference.add_input(prev, vout, keys=key, value=value, witness_type="segwit")
    reference.add_output(10_000, other.address(encoding="bech32"))
    reference.add_output(4_989_000, key.address(encoding="bech32"))
    reference.sign()
    assert ours.raw.hex() == reference.raw_hex()
    assert ours.txid == parse_tx(ours.raw).txid
    assert [(o.value, o.script) for o in parse_tx(ours.raw).outputs] == outputs
