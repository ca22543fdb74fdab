"""Payment URIs a wallet can open: BIP21 for Bitcoin, EIP-681 for ETH and ERC-20 tokens. Pure."""

from __future__ import annotations

from decimal import Decimal

from beanpay.engine.assets import Asset


def coins(amount: int, decimals: int) -> str:
    """Base units as a plain decimal string of whole coins (no exponent, no trailing zeros)."""
    text = format(Decimal(amount).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def payment_uri(asset: Asset, address: str, amount: int) -> str:
    if asset.chain == "btc":
        return f"bitcoin:{address}?amount={coins(amount, asset.decimals)}"
    if asset.token_address is None:
        return f"ethereum:{address}@{asset.chain_id}?value={amount}"
    return f"ethereum:{asset.token_address}@{asset.chain_id}/transfer?address={address}&uint256={amount}"
