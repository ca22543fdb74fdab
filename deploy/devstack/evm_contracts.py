"""Deploy the project's contracts on the local anvil and record where they are.

anvil keeps its chain in memory, so this runs at every start. The deployer is anvil's first dev
account with a fresh nonce, so the addresses come out the same each time. The treasury is anvil's
last dev account: in production it is the merchant's own address, given in config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import HTTPProvider, Web3

from beanpay.chains.evm.artifacts import artifact

# anvil's well-known dev mnemonic accounts ("test test ... junk"); local chain only
DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TREASURY = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # dev account 9


def deployment_file(state_dir: Path) -> Path:
    return state_dir / "anvil" / "deployment.json"


def deploy(url: str, chain_id: int, state_dir: Path) -> dict[str, Any]:
    w3 = Web3(HTTPProvider(url))
    deployer = Account.from_key(DEPLOYER_KEY)

    def create(name: str) -> str:
        art = artifact(name)
        tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor().build_transaction(
            {"from": deployer.address, "nonce": w3.eth.get_transaction_count(deployer.address), "chainId": chain_id})
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction))
        if receipt["status"] != 1:
            raise RuntimeError(f"deploying {name} failed")
        return str(receipt["contractAddress"])

    factory = create("ForwarderFactory")
    usdc = create("TestUSDC")
    implementation = w3.eth.contract(address=Web3.to_checksum_address(factory),
                                     abi=artifact("ForwarderFactory")["abi"]).functions.implementation().call()
    record = {
        "name": "eth", "chain_id": chain_id, "rpc_url": url, "factory": factory, "implementation": implementation,
        "treasury": TREASURY, "tokens": [{"symbol": "tUSDC", "address": usdc, "decimals": 6}],
        "start_height": w3.eth.block_number,
    }
    path = deployment_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return record
