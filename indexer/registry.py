"""Which chains are configured, and the policy and node source of each."""

from __future__ import annotations

from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.chains.endpoints import Endpoint
from beanpay.chains.evm.rpc import EvmRpc
from beanpay.config import Settings
from beanpay.indexer.bitcoin import BitcoinSource
from beanpay.indexer.evm import EvmSource
from beanpay.indexer.follower import ChainPolicy
from beanpay.indexer.source import Source

BITCOIN = "btc"


def chains(settings: Settings) -> list[str]:
    return [BITCOIN, *(c.name for c in settings.evm_chains or [])]


def policy(settings: Settings, chain: str) -> ChainPolicy:
    if chain == BITCOIN:
        return ChainPolicy(chain=BITCOIN, confirmations=settings.btc_confirmations,
                           finality_depth=settings.btc_finality_depth, poll_seconds=settings.btc_poll_seconds,
                           batch_blocks=settings.indexer_batch_blocks, start_height=settings.btc_start_height,
                           drop_after_seconds=settings.btc_drop_after_seconds)
    c = settings.evm_chain(chain)
    return ChainPolicy(chain=c.name, confirmations=c.confirmations, finality_depth=c.finality_depth,
                       poll_seconds=c.poll_seconds, batch_blocks=settings.indexer_batch_blocks,
                       start_height=c.start_height, finality_tag=c.finality == "tag")


def source(settings: Settings, chain: str) -> Source:
    if chain == BITCOIN:
        return BitcoinSource(BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or ""))
    c = settings.evm_chain(chain)
    endpoints = [Endpoint(c.rpc_url, c.rpc_name), *(Endpoint(e.url, e.name, e.requests_per_second)
                                                    for e in c.endpoints)]
    return EvmSource(c, EvmRpc(endpoints, chain=c.name, max_lag=c.max_head_lag_blocks,
                               logs_max_blocks=c.getlogs_max_blocks, chain_id=c.chain_id))
