"""What can be paid with: each configured chain's native coin and tokens, with their decimals."""

from __future__ import annotations

from dataclasses import dataclass

from beanpay.config import Settings


@dataclass(frozen=True, slots=True)
class Asset:
    chain: str
    symbol: str
    decimals: int
    token_address: str | None = None  # ERC-20 contract; None for the chain's native coin
    chain_id: int | None = None  # EVM chains only


def payable_assets(settings: Settings) -> dict[tuple[str, str], Asset]:
    assets = {("btc", "BTC"): Asset("btc", "BTC", 8)}
    for chain in settings.evm_chains or []:
        assets[(chain.name, "ETH")] = Asset(chain.name, "ETH", 18, None, chain.chain_id)
        for token in chain.tokens:
            assets[(chain.name, token.symbol)] = Asset(chain.name, token.symbol, token.decimals, token.address,
                                                       chain.chain_id)
    return assets
