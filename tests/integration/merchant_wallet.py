"""A merchant's own Bitcoin wallet, on the test side only: the server is given its account public key
and key origin, never this; tests sign the PSBTs beanpay builds with it, as the merchant's wallet would."""

from __future__ import annotations

import os
from typing import Any

from embit import bip32
from embit.networks import NETWORKS
from embit.psbt import PSBT

REGTEST = NETWORKS["regtest"]


class MerchantWallet:
    def __init__(self, seed: bytes | None = None) -> None:
        self.root = bip32.HDKey.from_seed(seed or os.urandom(32), version=REGTEST["xprv"])
        self.account = self.root.derive("m/84h/1h/0h")
        self.account_key = self.account.to_public().to_string(version=REGTEST["zpub"])  # a vpub
        self.key_origin = f"[{self.root.my_fingerprint.hex()}/84h/1h/0h]"

    def sign(self, psbt_base64: str) -> str:
        """Sign every input this wallet's keys can (by the BIP32 derivations the PSBT carries)."""
        psbt = PSBT.from_string(psbt_base64)
        assert psbt.sign_with(self.root) > 0, "the PSBT has no input this wallet can sign"
        return psbt.to_string()


async def connected_wallet(api: Any, shop: Any) -> MerchantWallet:
    """A new merchant wallet, given to `shop` as its own Bitcoin wallet (its account key and key origin)."""
    merchant = MerchantWallet()
    resp = await api.put(f"/v1/shops/{shop.id}/wallets/btc", headers=shop.merchant,
                         json={"account_key": merchant.account_key, "key_origin": merchant.key_origin})
    assert resp.status == 200, await resp.text()
    return merchant
