"""PSBTs for the merchant's wallet: built with what signers need, and only the built one accepted back."""

from __future__ import annotations

import pytest
from embit import script
from embit.psbt import PSBT
from embit.transaction import Transaction

from beanpay.chains.bitcoin.addresses import InvalidAddress, script_for
from beanpay.chains.bitcoin.psbt import DUST, Coin, PsbtRefused, Signer, build, finalize, select
from beanpay.engine.wallets import parse_origin
from tests.integration.merchant_wallet import MerchantWallet


def _wallet_coin(wallet: MerchantWallet, value: int, index: int = 0) -> Coin:
    key = wallet.account.to_public().derive([0, index]).key
    return Coin(f"{index + 1:064x}", 0, value, bytes(script.p2wpkh(key).data), 0, index)


def test_coins_are_picked_largest_first_and_dust_change_goes_to_the_fee() -> None:
    w = MerchantWallet()
    coins = [_wallet_coin(w, 10_000, 0), _wallet_coin(w, 50_000, 1), _wallet_coin(w, 20_000, 2)]
    pay = [(b"\x00\x14" + b"\x01" * 20, 30_000)]
    picked, fee, change = select(coins, pay, b"\x00\x14" + b"\x02" * 20, fee_rate=2)
    assert [c.value for c in picked] == [50_000] and fee == (11 + 68 + 31 + 31) * 2 and change == 20_000 - fee
    picked, fee, change = select(coins, [(pay[0][0], 50_000 - 250)], b"\x00\x14" + b"\x02" * 20, fee_rate=1)
    assert change == 0 and fee == 250 < DUST  # 250 sats left: no change output, it is the fee
    with pytest.raises(ValueError, match="80000 sats"):
        select(coins, [(pay[0][0], 80_000)], b"\x00\x14" + b"\x02" * 20, fee_rate=1)


def test_the_signed_psbt_must_pay_what_was_built() -> None:
    w = MerchantWallet()
    coin = _wallet_coin(w, 100_000)
    signer = Signer.of(w.account_key, parse_origin(w.key_origin, "regtest"))
    to = script_for("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "regtest")
    change_key = w.account.to_public().derive([1, 0]).key
    built = build([coin], [(to, 60_000)], (bytes(script.p2wpkh(change_key).data), 39_000, 0), signer)
    psbt = PSBT.from_string(built)
    assert next(iter(psbt.inputs[0].bip32_derivations.values())).derivation[-2:] == [0, 0]
    assert next(iter(psbt.outputs[1].bip32_derivations.values())).derivation[-2:] == [1, 0]  # change is recognised
    raw, txid = finalize(built, w.sign(built))
    tx = Transaction.parse(bytes.fromhex(raw))
    assert tx.txid().hex() == txid and len(tx.vin[0].witness.items) == 2
    with pytest.raises(PsbtRefused, match="not signed"):
        finalize(built, built)
    for change in ("amount", "address"):
        other = PSBT.from_string(built)
        if change == "amount":
            other.outputs[0].value += 1
        else:
            other.outputs[0].script_pubkey = script.Script(b"\x00\x14" + b"\x07" * 20)
        with pytest.raises(PsbtRefused):
            finalize(built, w.sign(other.to_string()))


@pytest.mark.parametrize(("address", "network", "why"), [
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "regtest", "another network"),
    ("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081", "regtest", "checksum"),
    ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "regtest", "another network"),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "mainnet", "another network"),
])
def test_bad_bitcoin_addresses_say_why(address: str, network: str, why: str) -> None:
    with pytest.raises(InvalidAddress, match=why):
        script_for(address, network)  # type: ignore[arg-type]


def test_good_bitcoin_addresses_give_their_scripts() -> None:
    assert script_for("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "regtest").hex() == \
        "0014751e76e8199196d454941c45d1b3a323f1433bd6"
    assert script_for("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "mainnet").hex().startswith("76a914")
    assert script_for("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "mainnet").hex().startswith("a914")
