"""Unsigned refund and payout transactions as PSBTs (BIP174) for the merchant's own wallet to sign, and
the checks on what comes back. embit does the PSBT encoding; what goes in and what is accepted back is
decided here. Pure: the caller picks the coins and asks the node."""

from __future__ import annotations

from dataclasses import dataclass

from embit import bip32
from embit.psbt import PSBT, DerivationPath
from embit.script import Script, Witness
from embit.transaction import Transaction, TransactionInput, TransactionOutput

# virtual sizes of a P2WPKH spend: overhead 10.5 vB (rounded up), an input 68 vB, an output 8 + 1 + script
OVERHEAD_VB, P2WPKH_INPUT_VB = 11, 68
DUST = 294  # sats: the smallest P2WPKH output nodes relay
RBF_SEQUENCE = 0xFFFFFFFD  # replaceable (BIP125), so a stuck refund can be fee-bumped


class PsbtRefused(ValueError):
    """A signed PSBT that is not the one built, or cannot be completed; `field` says what differs."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class Coin:
    txid: str
    vout: int
    value: int
    script: bytes
    key_chain: int  # 0 receive, 1 change
    index: int


@dataclass(frozen=True, slots=True)
class Signer:
    """Whose keys sign: the account public key, and the master fingerprint and account path signers
    look the keys up by (without a key origin, the account key itself as the root)."""

    account: bip32.HDKey
    fingerprint: bytes
    path: list[int]

    @classmethod
    def of(cls, account_key: str, origin: tuple[bytes, list[int]] | None) -> Signer:
        account = bip32.HDKey.from_string(account_key.strip())
        if origin is None:
            return cls(account, account.my_fingerprint, [])
        return cls(account, origin[0], origin[1])


@dataclass(frozen=True, slots=True)
class Built:
    psbt: str  # base64
    fee: int
    coins: tuple[Coin, ...]
    change: int  # sats back to the wallet (0: none)


def vsize(n_inputs: int, output_scripts: list[bytes]) -> int:
    return OVERHEAD_VB + n_inputs * P2WPKH_INPUT_VB + sum(9 + len(s) for s in output_scripts)


def select(coins: list[Coin], pays: list[tuple[bytes, int]], change_script: bytes,
           fee_rate: int) -> tuple[list[Coin], int, int]:
    """Largest coins first until the payments and the fee at `fee_rate` (sat/vB) are covered. Returns
    (coins, fee, change); change below dust goes to the fee. Raises ValueError when the wallet is short."""
    want = sum(a for _, a in pays)
    scripts = [s for s, _ in pays]
    picked: list[Coin] = []
    for coin in sorted(coins, key=lambda c: (-c.value, c.txid, c.vout)):
        picked.append(coin)
        total = sum(c.value for c in picked)
        fee_with_change = vsize(len(picked), [*scripts, change_script]) * fee_rate
        if total >= want + fee_with_change + DUST:
            return picked, fee_with_change, total - want - fee_with_change
        fee_alone = vsize(len(picked), scripts) * fee_rate
        if total >= want + fee_alone:
            return picked, total - want, 0
    have = sum(c.value for c in coins)
    raise ValueError(f"the wallet holds {have} sats in confirmed outputs beanpay can spend; "
                     f"{want} plus the network fee is needed")


def build(coins: list[Coin], pays: list[tuple[bytes, int]], change: tuple[bytes, int, int] | None,
          signer: Signer) -> str:
    """The PSBT spending `coins` to `pays`, with change (script, amount, change index) back to the wallet;
    every input carries its witness UTXO and BIP32 derivation so the merchant's wallet can sign it."""
    outs = [TransactionOutput(amount, Script(script)) for script, amount in pays]
    if change is not None:
        outs.append(TransactionOutput(change[1], Script(change[0])))
    tx = Transaction(vin=[TransactionInput(bytes.fromhex(c.txid), c.vout, sequence=RBF_SEQUENCE) for c in coins],
                     vout=outs)
    psbt = PSBT(tx)
    for scope, coin in zip(psbt.inputs, coins, strict=True):
        scope.witness_utxo = TransactionOutput(coin.value, Script(coin.script))
        key = signer.account.derive([coin.key_chain, coin.index]).key
        scope.bip32_derivations[key] = DerivationPath(signer.fingerprint, [*signer.path, coin.key_chain, coin.index])
    if change is not None:
        key = signer.account.derive([1, change[2]]).key
        psbt.outputs[-1].bip32_derivations[key] = DerivationPath(signer.fingerprint, [*signer.path, 1, change[2]])
    return str(psbt.to_string())


def finalize(built_base64: str, signed_base64: str) -> tuple[str, str]:
    """The raw transaction (hex) and txid of a signed PSBT, refused unless it spends exactly the built
    inputs and pays exactly the built outputs (same addresses, same amounts)."""
    try:
        signed = PSBT.from_string(signed_base64.strip())
    except Exception:
        raise PsbtRefused("psbt", "not a base64 PSBT") from None
    built = PSBT.from_string(built_base64)
    outs = [(bytes(o.script_pubkey.data), o.value) for o in signed.tx.vout]
    want = [(bytes(o.script_pubkey.data), o.value) for o in built.tx.vout]
    if [s for s, _ in outs] != [s for s, _ in want]:
        raise PsbtRefused("psbt", "the signed transaction pays other addresses than the refund approved")
    if outs != want:
        raise PsbtRefused("psbt", "the signed transaction pays other amounts than the refund approved")
    if [(i.txid, i.vout) for i in signed.tx.vin] != [(i.txid, i.vout) for i in built.tx.vin]:
        raise PsbtRefused("psbt", "the signed transaction spends other outputs than the ones offered")
    tx = signed.tx  # built afresh from the scopes on each access: once, then witnessed
    for n, scope in enumerate(signed.inputs):
        if scope.final_scriptwitness is None:
            if len(scope.partial_sigs) != 1:
                raise PsbtRefused("psbt", f"input {n} is not signed")
            ((pub, sig),) = scope.partial_sigs.items()
            scope.final_scriptwitness = Witness([sig, pub.sec()])
        tx.vin[n].witness = scope.final_scriptwitness
    return tx.serialize().hex(), tx.txid().hex()
