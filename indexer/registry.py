"""Which chains are configured, and the policy and node source of each."""

from __future__ import annotations

from beanpay.config import EvmChainConfig, Settings
from chains.bitcoin.rpc import BitcoinRpc
from chains.evm.rpc import EvmRpc
from indexer.bitcoin import BitcoinSource
from indexer.evm import EvmSource
from indexer.follower import ChainPolicy
from indexer.source import Source

BITCOIN = "btc"


class UnknownChain(ValueError):
    pass


def chains(settings: Settings) -> list[str]:
    return [BITCOIN, *(c.name for c in settings.evm_chains or [])]


def evm_chain(settings: Settings, chain: str) -> EvmChainConfig:
    for config in settings.evm_chains or []:
        if config.name == chain:
            return config
    raise UnknownChain(f"unknown chain {chain!r}; configured: {', '.join(chains(settings))}")


def policy(settings: Settings, chain: str) -> ChainPolicy:
    if chain == BITCOIN:
        return ChainPolicy(chain=BITCOIN, confirmations=settings.btc_confirmations,
                           finality_depth=settings.btc_finality_depth, poll_seconds=settings.btc_poll_seconds,
                           batch_blocks=settings.indexer_batch_blocks, start_height=settings.btc_start_height)
    c = evm_chain(settings, chain)
    return ChainPolicy(chain=c.name, confirmations=c.confirmations, finality_depth=c.finality_depth,
                       poll_seconds=c.poll_seconds, batch_blocks=settings.indexer_batch_blocks,
                       start_height=c.start_height)


def source(settings: Settings, chain: str) -> Source:
    if chain == BITCOIN:
        return BitcoinSource(BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or ""))
    c = evm_chain(settings, chain)
    return EvmSource(c, EvmRpc(c.rpc_url))
