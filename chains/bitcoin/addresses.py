"""BIP84 watch-only deposit addresses: native segwit (P2WPKH) from an account extended public key.

The server holds only the account-level public key (m/84'/coin'/account'); each order gets the
external-chain address 0/i. xpub/zpub and their testnet/regtest forms (tpub/vpub) are accepted; a
private extended key is refused, so no spending key ever reaches the server. BIP32 public
derivation is bitcoinlib's (the card's library); the address and script are built here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from bitcoinlib.encoding import hash160, pubkeyhash_to_addr_bech32
from bitcoinlib.keys import HDKey

Network = Literal["mainnet", "testnet", "regtest"]
HRP: dict[Network, str] = {"mainnet": "bc", "testnet": "tb", "regtest": "bcrt"}

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# version bytes of account public keys, and the plain xpub/tpub each maps to for BIP32 parsing
_PUBLIC_VERSIONS = {
    bytes.fromhex("0488b21e"): ("mainnet", "0488b21e"),  # xpub
    bytes.fromhex("04b24746"): ("mainnet", "0488b21e"),  # zpub
    bytes.fromhex("043587cf"): ("testnet", "043587cf"),  # tpub
    bytes.fromhex("045f1cf6"): ("testnet", "043587cf"),  # vpub
}
_PRIVATE_VERSIONS = {bytes.fromhex(v) for v in ("0488ade4", "04b2430c", "04358394", "045f18bc")}


class InvalidAccountKey(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DepositAddress:
    index: int
    address: str
    script: bytes  # scriptPubKey: OP_0 <20-byte key hash>


def _b58check_decode(text: str) -> bytes:
    num = 0
    for ch in text:
        pos = _B58.find(ch)
        if pos < 0:
            raise InvalidAccountKey(f"not base58: {ch!r}")
        num = num * 58 + pos
    raw = num.to_bytes((num.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    body, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] != check:
        raise InvalidAccountKey("bad checksum")
    return body


def _b58check_encode(body: bytes) -> str:
    raw = body + hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4]
    num = int.from_bytes(raw, "big")
    out = ""
    while num:
        num, rem = divmod(num, 58)
        out = _B58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


class Bip84Account:
    def __init__(self, extended_public_key: str, network: Network) -> None:
        body = _b58check_decode(extended_public_key.strip())
        if len(body) != 78:
            raise InvalidAccountKey("an extended key is 78 bytes")
        version = body[:4]
        if version in _PRIVATE_VERSIONS:
            raise InvalidAccountKey("a private extended key was given; the server takes only the account xpub")
        if version not in _PUBLIC_VERSIONS:
            raise InvalidAccountKey(f"unknown extended key version {version.hex()}")
        key_net, plain = _PUBLIC_VERSIONS[version]
        if (key_net == "mainnet") != (network == "mainnet"):
            raise InvalidAccountKey(f"a {key_net} key cannot derive {network} addresses")
        if body[4] != 3:
            raise InvalidAccountKey(
                f"expected an account-level key (depth 3, m/84'/coin'/account'), got depth {body[4]}")
        xpub = _b58check_encode(bytes.fromhex(plain) + body[4:])
        account = HDKey(xpub, network="bitcoin" if key_net == "mainnet" else "testnet")
        self._external = account.child_public(0)
        self._change = account.child_public(1)
        self.hrp = HRP[network]

    def derive(self, index: int) -> DepositAddress:
        """The external-chain address 0/index."""
        return self._address(self._external, index)

    def derive_change(self, index: int) -> DepositAddress:
        """The change-chain address 1/index (where transactions beanpay builds send their change)."""
        return self._address(self._change, index)

    def _address(self, branch: HDKey, index: int) -> DepositAddress:
        if not 0 <= index < 2**31:
            raise ValueError("index must be a non-hardened child number")
        key_hash = hash160(branch.child_public(index).public_byte)
        address = pubkeyhash_to_addr_bech32(key_hash, prefix=self.hrp, witver=0)
        return DepositAddress(index, address, b"\x00\x14" + key_hash)


class InvalidAddress(ValueError):
    """An address someone typed that cannot be paid on this network; the message says why."""


_BASE58_VERSIONS: dict[Network, tuple[int, int]] = {"mainnet": (0x00, 0x05), "testnet": (0x6F, 0xC4),
                                                    "regtest": (0x6F, 0xC4)}


def script_for(address: str, network: Network) -> bytes:
    """The scriptPubKey that pays `address` on `network`: segwit (bech32 / bech32m, checksum and
    human-readable part checked) or legacy base58 P2PKH / P2SH (checksum and version checked)."""
    from embit import base58, bech32  # BIP173/BIP350 checksums are embit's

    text = address.strip()
    hrp = HRP[network]
    if text.lower().startswith(hrp + "1"):
        version, program = bech32.decode(hrp, text)
        if version is None or program is None:
            raise InvalidAddress("bad bech32 checksum or encoding")
        if version == 0 and len(program) not in (20, 32):
            raise InvalidAddress("a version 0 witness program is 20 or 32 bytes")
        return bytes([version + 0x50 if version else 0, len(program)]) + bytes(program)
    if any(text.lower().startswith(h + "1") for h in HRP.values()):
        raise InvalidAddress(f"a segwit address of another network; {network} addresses start with {hrp}1")
    try:
        raw = bytes(base58.decode_check(text))
    except Exception:
        raise InvalidAddress(f"not a {network} Bitcoin address (bad checksum or encoding)") from None
    p2pkh, p2sh = _BASE58_VERSIONS[network]
    if len(raw) != 21 or raw[0] not in (p2pkh, p2sh):
        raise InvalidAddress(f"a base58 address of another network or kind; not payable on {network}")
    if raw[0] == p2pkh:
        return b"\x76\xa9\x14" + raw[1:] + b"\x88\xac"
    return b"\xa9\x14" + raw[1:] + b"\x87"
