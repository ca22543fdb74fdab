"""BIP84's published test vectors (mnemonic "abandon ... about")."""

import pytest

from beanpay.chains.bitcoin.addresses import Bip84Account, InvalidAccountKey

ZPUB = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2"
        "AGutZYs")
VPUB = ("vpub5Y6cjg78GGuNLsaPhmYsiw4gYX3HoQiRBiSwDaBXKUafCt9bNwWQiitDk5VZ5BVxYnQdwoTyXSs2JHRPAgjAvtbBrf8ZhDYe2jWA"
        "qvZVnsc")
ZPRV = ("zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYNZKEm7z6qUW"
        "CroSQnE")


def test_first_receive_addresses() -> None:
    account = Bip84Account(ZPUB, "mainnet")
    assert account.derive(0).address == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert account.derive(1).address == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    assert account.derive(0).script.hex() == "0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2"


def test_testnet_vector_and_regtest_prefix() -> None:
    testnet = Bip84Account(VPUB, "testnet")
    assert testnet.derive(0).address == "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
    regtest = Bip84Account(VPUB, "regtest").derive(0)
    assert regtest.address.startswith("bcrt1q") and regtest.script == testnet.derive(0).script


def test_private_keys_wrong_network_and_depth_are_refused() -> None:
    with pytest.raises(InvalidAccountKey, match="private"):
        Bip84Account(ZPRV, "mainnet")
    with pytest.raises(InvalidAccountKey, match="cannot derive"):
        Bip84Account(ZPUB, "regtest")
    with pytest.raises(InvalidAccountKey, match="checksum"):
        Bip84Account(ZPUB[:-1] + "t", "mainnet")
