"""The deposit contracts on a real anvil: CREATE2 prediction, flushes to the treasury only, and
artifacts reproducible from the Solidity sources with the pinned compiler."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from web3 import AsyncWeb3
from web3.exceptions import ContractCustomError

from beanpay.chains.evm.artifacts import artifact, names
from beanpay.chains.evm.create2 import forwarder_address, order_salt_input
from beanpay.deploy.devstack import stack as devstack
from beanpay.deploy.devstack.anvil import Anvil
from beanpay.deploy.devstack.evm_payer import AnvilWallet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
async def evm(settings):  # type: ignore[no-untyped-def]
    await asyncio.to_thread(devstack.up, settings, ["anvil"])
    from beanpay.config import load_settings

    chain = (settings.evm_chains or load_settings().evm_chains)[0]
    return chain


@pytest.fixture
async def wallets(evm):  # type: ignore[no-untyped-def]
    """wallets(n): anvil dev account n as a paying wallet, closed after the test."""
    made: list[AnvilWallet] = []

    def make(index: int) -> AnvilWallet:
        made.append(AnvilWallet(evm, index))
        return made[-1]

    yield make
    for w in made:
        await w.close()


@pytest.fixture
def payer(wallets) -> AnvilWallet:  # type: ignore[no-untyped-def]
    return wallets(0)  # type: ignore[no-any-return]


def factory(w3: AsyncWeb3, address: str):  # type: ignore[no-untyped-def]
    return w3.eth.contract(address=AsyncWeb3.to_checksum_address(address), abi=artifact("ForwarderFactory")["abi"])


async def test_artifacts_are_reproducible_from_source(settings, evm, tmp_path) -> None:
    node_modules = Anvil(settings).npm_dir / "node_modules"
    subprocess.run(["node", str(ROOT / "contracts" / "build.mjs"), str(node_modules), str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    built = sorted(p.name for p in tmp_path.glob("*.json"))
    assert built == [f"{n}.json" for n in names()]
    for name in names():
        assert json.loads((tmp_path / f"{name}.json").read_text()) == artifact(name), name


async def test_predicted_address_is_the_deployed_one_and_funds_reach_only_the_treasury(evm, payer, wallets) -> None:
    w3, treasury = payer.w3, evm.treasury
    f = factory(w3, evm.factory)
    order = uuid.uuid4()
    predicted = forwarder_address(evm.factory, evm.implementation, order, treasury)
    assert predicted == await f.functions.predict(order_salt_input(order), treasury).call()
    assert await w3.eth.get_code(predicted) == b""

    await payer.pay_eth(predicted, 3 * 10**15)  # paid before anything is deployed there
    await payer.pay_usdc(predicted, 12_500_000)
    treasury_eth = await w3.eth.get_balance(treasury)
    treasury_usdc = await payer.usdc.functions.balanceOf(treasury).call()

    # a stranger asking to flush the same order to *their* address gets another address, not these funds
    thief = wallets(1)
    await thief.send(await factory(thief.w3, evm.factory).functions.deployAndFlush(
        [order_salt_input(order)], thief.account.address, [evm.tokens[0].address]).build_transaction(
        {"from": thief.account.address}))
    assert await w3.eth.get_balance(predicted) == 3 * 10**15

    # anyone may trigger the real sweep; the funds can only go to the treasury
    await thief.send(await factory(thief.w3, evm.factory).functions.deployAndFlush(
        [order_salt_input(order)], treasury, [evm.tokens[0].address]).build_transaction(
        {"from": thief.account.address}))
    assert await w3.eth.get_code(predicted) != b""
    assert await w3.eth.get_balance(predicted) == 0
    assert await w3.eth.get_balance(treasury) == treasury_eth + 3 * 10**15
    assert await payer.usdc.functions.balanceOf(treasury).call() == treasury_usdc + 12_500_000

    # re-flushing a deployed forwarder is safe: later deposits follow, nothing breaks
    await payer.pay_usdc(predicted, 1_000_000)
    await payer.send(await f.functions.deployAndFlush([order_salt_input(order)], treasury,
                                                      [evm.tokens[0].address]).build_transaction(
        {"from": payer.account.address}))
    assert await payer.usdc.functions.balanceOf(treasury).call() == treasury_usdc + 13_500_000

    # nobody can re-point a deployed forwarder
    forwarder = w3.eth.contract(address=predicted, abi=artifact("DepositForwarder")["abi"])
    with pytest.raises(ContractCustomError, match="0x0c6d42ae"):  # OnlyFactory()
        await forwarder.functions.initialize(thief.account.address).call({"from": thief.account.address})
    assert await forwarder.functions.treasury().call() == treasury


async def test_batch_deploy_and_flush_many_orders_in_one_transaction(evm, payer) -> None:
    w3, treasury = payer.w3, evm.treasury
    orders = [uuid.uuid4() for _ in range(5)]
    addresses = [forwarder_address(evm.factory, evm.implementation, o, treasury) for o in orders]
    for a in addresses:
        await payer.pay_eth(a, 10**15)
    before = await w3.eth.get_balance(treasury)
    tx_hash = await payer.send(await factory(w3, evm.factory).functions.deployAndFlush(
        [order_salt_input(o) for o in orders], treasury, []).build_transaction({"from": payer.account.address}))
    receipt = await w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert await w3.eth.get_balance(treasury) == before + 5 * 10**15
    assert all([await w3.eth.get_code(a) != b"" for a in addresses])
