"""Rate providers. Each answers "fiat per one whole coin" with the time the source stood behind it,
so the service can refuse a stale rate instead of quoting it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Protocol

import aiohttp
import msgspec
from web3 import AsyncHTTPProvider, AsyncWeb3

from beanpay.chains.evm.artifacts import artifact


class Rate(msgspec.Struct, frozen=True):
    asset: str
    fiat: str
    rate: Decimal  # fiat per 1 coin
    as_of: dt.datetime
    source: str


class RateUnavailable(Exception):
    """No usable rate: the provider failed, has no such pair, or its rate is too old."""


class RateProvider(Protocol):
    name: str

    async def fetch(self, asset: str, fiat: str) -> Rate: ...

    async def close(self) -> None: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StaticRates:
    """Rates from config (the local default); always as of now."""

    name = "static"

    def __init__(self, rates: dict[str, Decimal]) -> None:
        self.rates = rates

    async def fetch(self, asset: str, fiat: str) -> Rate:
        rate = self.rates.get(f"{asset}:{fiat}")
        if rate is None:
            raise RateUnavailable(f"no static rate for {asset}/{fiat}")
        return Rate(asset, fiat, rate, _now(), self.name)

    async def close(self) -> None:
        return None


class ChainlinkFeeds:
    """AggregatorV3 feeds read with `latestRoundData`; the answer is scaled by the feed's decimals."""

    name = "chainlink"

    def __init__(self, rpc_url: str, feeds: dict[str, str]) -> None:
        self.w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
        abi = artifact("TestPriceFeed")["abi"]  # the AggregatorV3 read functions, same ABI as Chainlink's
        self.feeds = {pair: self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(a), abi=abi)
                      for pair, a in feeds.items()}
        self.decimals: dict[str, int] = {}

    async def fetch(self, asset: str, fiat: str) -> Rate:
        pair = f"{asset}:{fiat}"
        feed = self.feeds.get(pair)
        if feed is None:
            raise RateUnavailable(f"no Chainlink feed for {asset}/{fiat}")
        try:
            if pair not in self.decimals:
                self.decimals[pair] = int(await feed.functions.decimals().call())
            _, answer, _, updated_at, _ = await feed.functions.latestRoundData().call()
        except Exception as exc:  # node down, reverted call: no rate rather than a wrong one
            raise RateUnavailable(f"Chainlink feed {asset}/{fiat}: {exc}") from exc
        if answer <= 0 or updated_at == 0:
            raise RateUnavailable(f"Chainlink feed {asset}/{fiat} has no valid answer")
        rate = Decimal(answer).scaleb(-self.decimals[pair])
        return Rate(asset, fiat, rate, dt.datetime.fromtimestamp(updated_at, dt.UTC), self.name)

    async def close(self) -> None:
        await self.w3.provider.disconnect()


class _Spot(msgspec.Struct):
    amount: Decimal
    base: str
    currency: str


class _SpotReply(msgspec.Struct):
    data: _Spot


class HttpTicker:
    """An exchange ticker over HTTP, Coinbase's spot shape: GET {base}/v2/prices/{ASSET}-{FIAT}/spot
    -> {"data": {"amount": "65000.12", "base": "BTC", "currency": "USD"}}. The amount is read as a
    decimal string, never a float. The spot endpoint carries no timestamp: the fetch time is used."""

    name = "http"

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None
        self.decode = msgspec.json.Decoder(_SpotReply).decode

    async def fetch(self, asset: str, fiat: str) -> Rate:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self.timeout)
        url = f"{self.base_url}/v2/prices/{asset}-{fiat}/spot"
        try:
            async with self.session.get(url) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RateUnavailable(f"ticker {asset}/{fiat}: HTTP {resp.status}")
            reply = self.decode(body).data
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RateUnavailable(f"ticker {asset}/{fiat}: {exc}") from exc
        if reply.base != asset or reply.currency != fiat or not reply.amount.is_finite() or reply.amount <= 0:
            raise RateUnavailable(f"ticker {asset}/{fiat}: unexpected reply {reply}")
        return Rate(asset, fiat, reply.amount, _now(), self.name)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
