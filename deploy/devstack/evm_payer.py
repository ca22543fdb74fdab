"""Payments on the local anvil from its dev accounts (tests and the demo), with real signed transactions."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3

from beanpay.chains.evm.artifacts import artifact
from beanpay.config import EvmChainConfig

# anvil's dev mnemonic accounts 1..3 (0 deploys the stack's contracts, 9 is the dev treasury)
KEYS = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]


class AnvilWallet:
    def __init__(self, chain: EvmChainConfig, key_index: int = 0) -> None:
        self.chain = chain
        self.w3 = AsyncWeb3(AsyncHTTPProvider(chain.rpc_url))
        self.account = Account.from_key(KEYS[key_index])
        self.usdc = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(chain.tokens[0].address),
                                         abi=artifact("TestUSDC")["abi"])

    async def send(self, tx: Any) -> str:
        """Sign and send; return the tx hash once mined (anvil automines)."""
        tx = {"from": self.account.address, "chainId": self.chain.chain_id,
              "nonce": await self.w3.eth.get_transaction_count(self.account.address, "pending"), **tx}
        if "gas" not in tx:
            tx["gas"] = await self.w3.eth.estimate_gas(tx)
        tx.setdefault("maxFeePerGas", 10**10)
        tx.setdefault("maxPriorityFeePerGas", 10**9)
        signed = self.account.sign_transaction(tx)
        tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
        await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return "0x" + bytes(tx_hash).hex().removeprefix("0x")

    async def pay_eth(self, to: str, wei: int) -> str:
        return await self.send({"to": AsyncWeb3.to_checksum_address(to), "value": wei, "gas": 21_000})

    async def pay_usdc(self, to: str, units: int) -> str:
        await self.send(await self.usdc.functions.mint(self.account.address, units).build_transaction(
            {"from": self.account.address}))
        return await self.send(await self.usdc.functions.transfer(AsyncWeb3.to_checksum_address(to), units)
                               .build_transaction({"from": self.account.address}))

    async def deploy(self, name: str) -> Any:
        art = artifact(name)
        tx = await self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor().build_transaction(
            {"from": self.account.address})
        tx_hash = await self.send(tx)
        receipt = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    async def mine(self, blocks: int = 1) -> None:
        await self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    async def rpc(self, method: str, params: list[Any]) -> Any:
        reply = await self.w3.provider.make_request(method, params)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]
