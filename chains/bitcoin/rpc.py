"""Async JSON-RPC client for Bitcoin nodes, tested against btcd and written to Bitcoin Core's API.

btcd needs `jsonrpc` and a non-null `id` in every request, answers errors as HTTP 200 with an
`error` object, and closes the connection after each response; Core differs in the last two.
So: every request is complete, errors are read from the body whatever the status, and no
connection is reused. Transport failures are retried with backoff; RPC errors are not.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import msgspec


class RpcError(Exception):
    """The node answered with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message = method, code, message


class RpcUnavailable(Exception):
    """The node could not be reached or answered garbage, after retries."""


class _Reply(msgspec.Struct):
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict[str, Any] | None = None


_decode_one = msgspec.json.Decoder(_Reply).decode
_decode_many = msgspec.json.Decoder(list[_Reply]).decode


class BitcoinRpc:
    def __init__(self, url: str, user: str, password: str, *, timeout: float = 30.0, retries: int = 4) -> None:
        self.url = url
        self._auth = aiohttp.BasicAuth(user, password)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                auth=self._auth, timeout=self._timeout,
                connector=aiohttp.TCPConnector(force_close=True, limit=8),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, body: bytes) -> bytes:
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                async with self._client().post(self.url, data=body,
                                               headers={"Content-Type": "application/json"}) as resp:
                    data = await resp.read()
                    if resp.status in (401, 403):
                        raise RpcUnavailable(f"{self.url}: authentication refused (HTTP {resp.status})")
                    if data:
                        return data
                    if resp.status >= 500 or not data:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                          message="empty or failed reply")
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == self._retries:
                    raise RpcUnavailable(f"{self.url}: {exc!r} after {attempt + 1} attempts") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def call(self, method: str, *params: Any) -> Any:
        body = msgspec.json.encode({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": params})
        reply = _decode_reply(method, await self._post(body))
        return _result(method, reply)

    async def batch(self, method: str, params: list[tuple[Any, ...]]) -> list[Any]:
        """One HTTP request for many calls of one method; results in the order of `params`."""
        if not params:
            return []
        ids = [next(self._ids) for _ in params]
        body = msgspec.json.encode([{"jsonrpc": "1.0", "id": i, "method": method, "params": p}
                                    for i, p in zip(ids, params, strict=True)])
        raw = await self._post(body)
        try:
            replies = _decode_many(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RpcUnavailable(f"{method} batch: not a JSON-RPC batch reply: {raw[:200]!r}") from exc
        by_id = {r.id: r for r in replies}
        if set(by_id) != set(ids):
            raise RpcUnavailable(f"{method} batch: replies do not match the requests")
        return [_result(method, by_id[i]) for i in ids]

    # the calls the indexer uses, typed
    async def block_count(self) -> int:
        return int(await self.call("getblockcount"))

    async def block_hashes(self, heights: list[int]) -> list[str]:
        return [str(h) for h in await self.batch("getblockhash", [(h,) for h in heights])]

    async def raw_blocks(self, hashes: list[str]) -> list[bytes]:
        return [bytes.fromhex(h) for h in await self.batch("getblock", [(h, 0) for h in hashes])]


def _decode_reply(method: str, raw: bytes) -> _Reply:
    try:
        return _decode_one(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RpcUnavailable(f"{method}: not a JSON-RPC reply: {raw[:200]!r}") from exc


def _result(method: str, reply: _Reply) -> Any:
    if reply.error:
        raise RpcError(method, int(reply.error.get("code", 0)), str(reply.error.get("message")))
    return msgspec.json.decode(reply.result)
