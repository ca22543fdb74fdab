"""A paying wallet on btcd regtest (tests and the demo): the stack's mining key pays, with real signed segwit
transactions."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bitcoinlib.keys import Key
from bitcoinlib.transactions import Transaction

from beanpay.chains.bitcoin.block import parse_block
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.deploy.devstack.btcd import mining_key

logging.getLogger("bitcoinlib").setLevel(logging.ERROR)
COINBASE_MATURITY = 100
FEE = 2_000  # sats; regtest relays anything reasonable


@dataclass
class Payment:
    txid: str
    vout: int
    address: str
    amount: int
    coin: tuple[str, int, int] | None = None  # (txid, vout, value) it spent: a replacement spends it again


class RegtestWallet:
    def __init__(self, settings: Settings) -> None:
        wif, self.address = mining_key(settings.state_path)
        self.key = Key(wif, network="regtest")
        self.rpc = BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or "")
        self._spent: set[tuple[str, int]] = set()
        self._scan_from = 1

    async def mine(self, n: int = 1) -> list[str]:
        return [str(h) for h in await self.rpc.call("generate", n)]

    async def ensure_funds(self) -> None:
        height = await self.rpc.block_count()
        if height < COINBASE_MATURITY + 20:
            await self.mine(COINBASE_MATURITY + 20 - height)

    async def _coin(self, amount: int) -> tuple[str, int, int]:
        """A mature, unspent coinbase output paying our key, worth more than `amount`."""
        tip = await self.rpc.block_count()
        for height in range(self._scan_from, tip - COINBASE_MATURITY + 1):
            self._scan_from = height
            (block_hash,) = await self.rpc.block_hashes([height])
            (raw,) = await self.rpc.raw_blocks([block_hash])
            coinbase = parse_block(raw).txs[0]
            out = coinbase.outputs[0]
            if (coinbase.txid, 0) in self._spent or out.value <= amount + FEE:
                continue
            if out.script != b"\x00\x14" + self.key.hash160:
                continue
            if await self.rpc.call("gettxout", coinbase.txid, 0, True) is None:
                self._spent.add((coinbase.txid, 0))
                continue
            return coinbase.txid, 0, out.value
        await self.mine(1)
        return await self._coin(amount)

    async def pay(self, address: str, amount: int, *, replaceable: bool = False) -> Payment:
        """Sign and broadcast a payment of `amount` sats to `address` (change back to the miner);
        `replaceable`: it signals BIP125, so a transaction paying more fee may replace it."""
        coin = await self._coin(amount)
        sent = await self._send(coin, [(address, amount)], FEE, replaceable=replaceable)
        return Payment(sent, 0, address, amount, coin)

    async def replace(self, payment: Payment, outputs: list[tuple[str, int]], fee: int) -> str:
        """Broadcast a transaction spending what `payment` spent, paying `outputs` (and the change) at `fee`:
        a fee bump when the outputs are the payment's, a redirection when they are not."""
        assert payment.coin is not None and fee > FEE
        return await self._send(payment.coin, outputs, fee, replaceable=True)

    async def _send(self, coin: tuple[str, int, int], outputs: list[tuple[str, int]], fee: int, *,
                    replaceable: bool) -> str:
        txid, vout, value = coin
        tx = Transaction(network="regtest", witness_type="segwit")
        tx.add_input(txid, vout, keys=self.key, value=value, witness_type="segwit",
                     sequence=0xFFFFFFFD if replaceable else 0xFFFFFFFF)
        for address, amount in outputs:
            tx.add_output(amount, address)
        tx.add_output(value - sum(a for _, a in outputs) - fee, self.address)
        tx.sign()
        sent = str(await self.rpc.call("sendrawtransaction", tx.raw_hex()))
        self._spent.add((txid, vout))
        return sent

    async def close(self) -> None:
        await self.rpc.close()
