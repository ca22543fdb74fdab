"""EVM deposit discovery on hand-made call trees and logs (pure; the node tests are in integration)."""

from beanpay.chains.evm.rpc import CallFrame, Log
from beanpay.indexer.evm import EvmBlock, find_deposits, successful_value_calls, token_transfer

A, B, TOKEN = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def frame(to: str | None, value: int = 0, error: str | None = None, calls: list[CallFrame] | None = None) -> CallFrame:
    return CallFrame(to=to, value=hex(value), error=error, calls=calls or [])


def test_value_calls_depth_first_skipping_reverted_subtrees() -> None:
    tree = frame(B, 0, calls=[
        frame(A, 5),
        frame(B, 0, error="execution reverted", calls=[frame(A, 7)]),  # reverted: neither counts
        frame(B, 0, calls=[frame(A, 9, calls=[frame(B, 1)])]),
    ])
    found = [(t.index, t.to, t.value) for t in successful_value_calls(tree, "0xtx")]
    assert found == [(1, A, 5), (5, A, 9), (6, B, 1)]


def test_reverted_transaction_counts_nothing() -> None:
    assert list(successful_value_calls(frame(A, 10, error="out of gas", calls=[frame(A, 3)]), "0xtx")) == []


def _log(topics: list[str], data: str = "0x" + "00" * 31 + "64") -> Log:
    return Log(address=TOKEN.upper().replace("0X", "0x"), topics=topics, data=data, blockHash="0xh",
               blockNumber="0x1", transactionHash="0xtx", logIndex="0x3")


def test_erc20_transfer_logs_and_not_erc721() -> None:
    transfer = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    to_topic = "0x" + "00" * 12 + A[2:]
    t = token_transfer(_log([transfer, "0x" + "00" * 32, to_topic]))
    assert t is not None and (t.to, t.amount, t.log_index, t.token) == (A, 100, 3, TOKEN)
    assert token_transfer(_log([transfer, "0x" + "00" * 32, to_topic, "0x" + "00" * 32], data="0x")) is None


def test_find_deposits_matches_watched_and_known_tokens_only() -> None:
    from beanpay.indexer.evm import EthTransfer, TokenTransfer

    block = EvmBlock("0xh", "0xp", eth=(EthTransfer("0x1", 0, A, 10), EthTransfer("0x2", 0, B, 10)),
                     tokens=(TokenTransfer("0x3", 4, TOKEN, A, 50), TokenTransfer("0x4", 5, "0x" + "dd" * 20, A, 9)))
    found = find_deposits(block, {A: "0xAa"}, {TOKEN: "tUSDC"})
    assert [(d.asset, d.txid, d.address, d.amount) for d in found] == [("ETH", "0x1", "0xAa", 10),
                                                                        ("tUSDC", "0x3", "0xAa", 50)]
