"""Which chains are configured, and the policy and node source of each."""

from __future__ import annotations

from beanpay.config import Settings
from chains.bitcoin.rpc import BitcoinRpc
from indexer.bitcoin import BitcoinSource
from indexer.follower import ChainPolicy

CHAINS = ("btc",)


class UnknownChain(ValueError):
    pass


def policy(settings: Settings, chain: str) -> ChainPolicy:
    if chain == "btc":
        return ChainPolicy(chain="btc", confirmations=settings.btc_confirmations,
                           finality_depth=settings.btc_finality_depth, poll_seconds=settings.btc_poll_seconds,
                           batch_blocks=settings.indexer_batch_blocks, start_height=settings.btc_start_height)
    raise UnknownChain(f"unknown chain {chain!r}; configured: {', '.join(CHAINS)}")


def source(settings: Settings, chain: str) -> BitcoinSource:
    if chain == "btc":
        return BitcoinSource(BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or ""))
    raise UnknownChain(f"unknown chain {chain!r}; configured: {', '.join(CHAINS)}")
