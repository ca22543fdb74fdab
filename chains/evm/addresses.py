"""EVM addresses people type: EIP-55 checksummed hex."""

from __future__ import annotations

from eth_utils.address import is_hex_address, to_checksum_address


class InvalidAddress(ValueError):
    """The message says why."""


def checksummed(address: str) -> str:
    """The address if it is a valid EIP-55 checksummed one (all lower or upper case is refused: its
    checksum cannot be checked, and one mistyped character would send money nowhere)."""
    text = address.strip()
    if not is_hex_address(text):
        raise InvalidAddress("not a 0x address of 40 hex digits")
    if to_checksum_address(text) != text:
        raise InvalidAddress("not EIP-55 checksummed (copy it with its mixed case from the wallet)")
    if int(text, 16) == 0:
        raise InvalidAddress("the zero address")
    return text
