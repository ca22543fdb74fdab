"""Fork points on symbolic chains: heights map to block names; a letter marks the branch."""

import pytest

from beanpay.indexer.reconcile import UnrecoverableReorg, confirmations, fork_point


def chain(*names: str) -> dict[int, str]:
    return {int(n[:2]): n for n in names}


def test_same_chain_forks_at_tip() -> None:
    stored = chain("10a", "11a", "12a")
    assert fork_point(stored, chain("10a", "11a", "12a", "13a")) == 12


def test_one_block_reorg() -> None:
    assert fork_point(chain("10a", "11a", "12a"), chain("10a", "11a", "12b", "13b")) == 11


def test_deep_reorg_within_window() -> None:
    assert fork_point(chain("10a", "11a", "12a", "13a"), chain("10a", "11b", "12b", "13b", "14b")) == 10


def test_node_chain_got_shorter() -> None:
    assert fork_point(chain("10a", "11a", "12a"), chain("10a", "11a")) == 11


def test_reorg_below_window_fails_loudly() -> None:
    with pytest.raises(UnrecoverableReorg, match="deeper than the finality window"):
        fork_point(chain("10a", "11a"), chain("10b", "11b", "12b"))


def test_confirmations() -> None:
    assert confirmations(100, 100) == 1
    assert confirmations(102, 100) == 3
    assert confirmations(99, 100) == 0
