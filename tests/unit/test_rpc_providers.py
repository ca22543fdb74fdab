"""What providers answer, read the way beanpay reads it: range caps, rate limits, quotas, endpoint health."""

import email.utils
import time
from typing import Any

import pytest

from beanpay.chains.endpoints import Endpoint, EndpointState, RpcPool, note_heads
from beanpay.chains.evm.getlogs import narrower_span
from beanpay.chains.jsonrpc import JsonRpcClient, RpcError, RpcRefused, display_url, refused_for_good, retry_after

# the providers' own words (their replies to an eth_getLogs over their caps)
INFURA = "query returned more than 10000 results. Try with this block range [0x112A880, 0x112A908]."
ALCHEMY = ("Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit "
           "on the response size, or you can request any block range with a cap of 10K logs in the response. Based "
           "on your parameters, this block range should work: [0x112a880, 0x112a8c2]")
ALCHEMY_FREE = ("Under the Free tier plan, you can make eth_getLogs requests with up to a 10 block range. Based on "
                "your parameters, this block range should work: [0x1, 0xa]")


@pytest.mark.parametrize(("message", "span", "expected"), [
    (INFURA, 1000, 0x112A908 - 0x112A880 + 1),
    (ALCHEMY, 2001, 0x112A8C2 - 0x112A880 + 1),
    (ALCHEMY_FREE, 50, 10),
    ("eth_getLogs is limited to a 10,000 range", 20_000, 10_000),  # QuickNode
    ("requested too many blocks from 0 to 4000, maximum is set to 2048", 4000, 2048),  # Avalanche
    ("query exceeds max block range 1000", 5000, 1000),  # llamarpc
    ("block range greater than 10000 max", 12_000, 10_000),
    ("please limit the query to at most 1,000 blocks", 2000, 1000),  # Coinbase
    ("block range is too wide", 100, 50),  # Ankr: no number, halved
    ("Block range is too large", 9, 4),  # Optimism
    ("logs matched by query exceeds limit of 10000", 64, 32),  # Arbitrum
    ("query returned more than 10000 results", 3, 1),  # geth, no suggestion
    ("eth_getLogs is limited to a 10,000 range", 500, 250),  # a cap above what was refused: halved, never wider
])
def test_a_refused_range_becomes_a_narrower_one(message: str, span: int, expected: int) -> None:
    assert narrower_span(message, span) == expected


@pytest.mark.parametrize(("message", "span"), [
    ("execution reverted", 10),  # not about the range: raised, not split
    ("invalid params", 10),
    ("query returned more than 10000 results", 1),  # one block is as narrow as it gets
    ("Try with this block range [0x5, 0x5].", 1),
])
def test_what_cannot_be_split_is_not(message: str, span: int) -> None:
    assert narrower_span(message, span) is None


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(email.utils.formatdate(1_000_030, usegmt=True), now=1_000_000) == pytest.approx(30, abs=1)
    assert retry_after(None) is None and retry_after("soon") is None


def test_quotas_and_credentials_are_refused_for_good_but_a_rate_limit_is_not() -> None:
    assert refused_for_good(403, b"")
    assert refused_for_good(401, b"Unauthorized")
    assert refused_for_good(429, b'{"error":{"code":429,"message":"Monthly capacity limit exceeded. Visit ..."}}')
    assert refused_for_good(429, b'{"error":{"code":-32005,"message":"daily request count exceeded, request rate '
                                 b'limited"}}')
    assert not refused_for_good(429, b'{"error":{"code":429,"message":"Your app has exceeded its compute units per '
                                     b'second capacity."}}')
    assert not refused_for_good(200, b"{}")


def test_logs_and_metrics_never_show_a_provider_key() -> None:
    assert display_url("https://mainnet.infura.io/v3/0123456789abcdef") == "https://mainnet.infura.io"
    assert display_url("https://user:secret@eth.example:8545/?apikey=x") == "https://eth.example:8545"
    client = JsonRpcClient("https://eth-mainnet.g.alchemy.com/v2/SECRETKEY")
    assert "SECRETKEY" not in client.name


def test_an_endpoint_behind_the_best_head_or_cooling_down_is_not_asked() -> None:
    fresh, lagging, cooling = EndpointState("a", head=100), EndpointState("b", head=90), EndpointState("c", head=100)
    assert note_heads([fresh, lagging, cooling]) == 100 and lagging.lag == 10
    cooling.failed(now=50.0)
    assert fresh.usable(50.0, None, max_lag=8)
    assert not lagging.usable(50.0, None, max_lag=8)
    assert not cooling.usable(50.5, None, max_lag=8) and cooling.usable(51.0, None, max_lag=8)
    assert fresh.usable(50.0, 100, max_lag=8) and not fresh.usable(50.0, 101, max_lag=8)  # has it the block?


def test_cool_downs_double_and_honour_what_the_endpoint_asked() -> None:
    s = EndpointState("a")
    assert [s.failed(0.0) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert s.failed(0.0, asked=30.0) == 30.0 and s.cooling_until == 30.0
    s.worked()
    assert s.failed(0.0) == 1.0


def test_the_pool_spreads_over_healthy_endpoints_and_only_those_with_the_block() -> None:
    pool = RpcPool("t", [Endpoint("http://a.example"), Endpoint("http://b.example"), Endpoint("http://c.example")],
                   lambda e, n: JsonRpcClient(e.url, name=n), ("eth_blockNumber", lambda r: int(r, 16)))
    a, b, c = pool.states
    a.head, b.head, c.head = 100, 100, 97
    note_heads(pool.states)
    firsts = {pool._order(None)[0] for _ in range(6)}
    assert firsts == {0, 1, 2}  # rotating
    assert sorted(pool._order(99)) == [0, 1]  # c has not got block 99
    assert pool._order(101) == []  # nobody has it: the caller asks for heads, then says "not yet"
    b.refuse(time.monotonic(), "quota")
    a.failed(time.monotonic())
    assert sorted(pool._order(99)) == [0, 1] and pool._order(99)[0] == 0  # none usable: the one cooling, not refused
    assert [s.name for s in pool.states] == ["http://a.example", "http://b.example", "http://c.example"]


class Scripted(JsonRpcClient):
    """An endpoint that answers each method with what the test says (a value, or an exception to raise)."""

    def __init__(self, name: str, answers: dict[str, Any]) -> None:
        super().__init__(f"http://{name}.example", name=name)
        self.answers, self.asked = answers, []  # type: list[str]

    async def call(self, method: str, *params: Any) -> Any:
        self.asked.append(method)
        answer = self.answers[method]
        if isinstance(answer, Exception):
            raise answer
        return answer


def scripted_pool(*answers: dict[str, Any]) -> tuple[RpcPool, list[Scripted]]:
    clients = [Scripted(chr(ord("a") + i), a) for i, a in enumerate(answers)]
    pool = RpcPool("t", [Endpoint(c.url, c.name) for c in clients], lambda e, n: clients[ord(n) - ord("a")],
                   ("eth_blockNumber", lambda r: int(r, 16)))
    return pool, clients


async def test_a_method_an_endpoint_lacks_is_asked_of_another_and_not_of_it_again() -> None:
    missing = RpcError("debug_traceBlockByNumber", -32601, "the method debug_traceBlockByNumber does not exist")
    pool, (a, b) = scripted_pool({"eth_blockNumber": "0x10", "debug_traceBlockByNumber": missing},
                                 {"eth_blockNumber": "0x10", "debug_traceBlockByNumber": ["trace"]})
    assert await pool.head() == 16
    for _ in range(3):
        assert await pool.call("debug_traceBlockByNumber", "0x10", covers=16) == ["trace"]
    assert a.asked.count("debug_traceBlockByNumber") == 1 and b.asked.count("debug_traceBlockByNumber") == 3


async def test_a_quota_or_a_lagging_answer_fails_over_and_a_node_error_does_not() -> None:
    quota = RpcRefused("a: eth_getLogs refused (HTTP 429): Monthly capacity limit exceeded")
    pool, (a, b) = scripted_pool({"eth_blockNumber": "0x10", "eth_getLogs": quota,
                                  "eth_call": RpcError("eth_call", 3, "execution reverted")},
                                 {"eth_blockNumber": "0x10", "eth_getLogs": [],
                                  "eth_call": RpcError("eth_call", 3, "execution reverted")})
    await pool.head()
    assert await pool.call("eth_getLogs", {}, covers=16) == [] and pool.states[0].refused is not None
    with pytest.raises(RpcError):  # the node answered: asking another would get the same
        await pool.call("eth_call", {})
    assert a.asked.count("eth_call") + b.asked.count("eth_call") == 1

    header = RpcError("eth_getBlockByNumber", -32000, "header not found")
    pool, (a, b) = scripted_pool({"eth_blockNumber": "0x10", "eth_getBlockByNumber": header},
                                 {"eth_blockNumber": "0x10", "eth_getBlockByNumber": {"number": "0x10"}})
    await pool.head()
    for _ in range(2):
        assert await pool.call("eth_getBlockByNumber", "0x10", False, covers=16) == {"number": "0x10"}
    assert a.asked.count("eth_getBlockByNumber") == 1  # cooling down after "not yet": not asked the second time


async def test_an_endpoint_with_a_budget_is_asked_no_faster_than_its_plan_allows() -> None:
    client = Scripted("a", {"eth_blockNumber": "0x1"})
    pool = RpcPool("t", [Endpoint(client.url, "a", requests_per_second=20)], lambda e, n: client,
                   ("eth_blockNumber", lambda r: int(r, 16)))
    started = time.monotonic()
    for _ in range(30):  # 20 at once (a second's budget), then 20 a second
        await pool.call("eth_blockNumber")
    assert time.monotonic() - started >= 0.4 and len(client.asked) == 30


def test_an_api_key_echoed_in_a_refusal_is_blanked() -> None:
    from beanpay.chains.jsonrpc import redacted

    assert redacted(b'{"error":"invalid project id 9aa3d95b3bc440fa88ea12eaa4456161"}') == \
        '{"error":"invalid project id <redacted>"}'
