"""Per-order deposit addresses, computed off-chain exactly as ForwarderFactory.predict does.

address = keccak256(0xff ++ factory ++ salt ++ keccak256(init_code))[12:], where the init code is
the EIP-1167 minimal proxy of the forwarder implementation (as OpenZeppelin's Clones builds it)
and salt = keccak256(abi.encode(order_id, treasury)). Pure: no node is asked.
"""

from __future__ import annotations

import uuid
from functools import cache

from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

_PROXY_PREFIX = bytes.fromhex("3d602d80600a3d3981f3363d3d373d3d3d363d73")
_PROXY_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def order_salt_input(order_id: uuid.UUID) -> bytes:
    """The bytes32 order id the contracts take: the UUID's 16 bytes, left-padded."""
    return order_id.bytes.rjust(32, b"\x00")


def clone_init_code(implementation: str) -> bytes:
    return _PROXY_PREFIX + to_canonical_address(implementation) + _PROXY_SUFFIX


def salt(order_id: uuid.UUID, treasury: str) -> bytes:
    return keccak(order_salt_input(order_id) + to_canonical_address(treasury).rjust(32, b"\x00"))


@cache
def _init_code_hash(implementation: str) -> bytes:
    return keccak(clone_init_code(implementation))


def forwarder_address(factory: str, implementation: str, order_id: uuid.UUID, treasury: str) -> str:
    digest = keccak(b"\xff" + to_canonical_address(factory) + salt(order_id, treasury)
                    + _init_code_hash(implementation))
    return to_checksum_address(digest[12:])
