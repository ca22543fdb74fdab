"""The local stack's merchant wallet: a dev-only BIP84 seed in the state folder.

It stands in for the merchant's own wallet, which in production never touches the server: the
server is given only the account public key (written next to the seed as btc_account_xpub).
Tests and the demo use the seed to sign payments and sweeps.
"""

from __future__ import annotations

import os
from pathlib import Path

from bitcoinlib.keys import HDKey
from bitcoinlib.mnemonic import Mnemonic

ACCOUNT_PATH = (84, 1, 0)  # m/84'/1'/0': BIP84, coin type 1 (testnet and regtest), account 0, all hardened


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def account_key(state_dir: Path) -> HDKey:
    """The dev wallet's account private key, creating the seed (and the public xpub file) once."""
    seed_file = state_dir / "secrets" / "btc_wallet_mnemonic"
    if not seed_file.exists():
        _write_private(seed_file, Mnemonic().generate(strength=128))
    seed = Mnemonic().to_seed(seed_file.read_text().strip())
    account = HDKey.from_seed(seed, network="testnet", witness_type="segwit")
    for index in ACCOUNT_PATH:
        account = account.child_private(index, hardened=True)
    xpub_file = state_dir / "secrets" / "btc_account_xpub"
    if not xpub_file.exists():
        xpub_file.write_text(account.wif_public())  # a vpub: BIP84 testnet/regtest account key
    return account
