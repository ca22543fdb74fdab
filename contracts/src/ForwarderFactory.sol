// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {DepositForwarder} from "./DepositForwarder.sol";

/// @notice Per-order deposit addresses by CREATE2. The salt commits to (order id, treasury), so
/// the address is known off-chain before anything is deployed, and funds sent to it can only be
/// recovered to that treasury: another treasury gives another address.
contract ForwarderFactory {
    DepositForwarder public immutable implementation;

    event Deployed(bytes32 indexed orderId, address indexed forwarder, address indexed treasury);

    constructor() {
        implementation = new DepositForwarder();
    }

    function salt(bytes32 orderId, address treasury) public pure returns (bytes32) {
        return keccak256(abi.encode(orderId, treasury));
    }

    function predict(bytes32 orderId, address treasury) public view returns (address) {
        return Clones.predictDeterministicAddress(address(implementation), salt(orderId, treasury));
    }

    /// @notice Deploy (if not yet deployed) and flush the forwarders of many orders in one transaction.
    function deployAndFlush(bytes32[] calldata orderIds, address payable treasury, address[] calldata tokens)
        external
    {
        for (uint256 i = 0; i < orderIds.length; i++) {
            address forwarder = predict(orderIds[i], treasury);
            if (forwarder.code.length == 0) {
                Clones.cloneDeterministic(address(implementation), salt(orderIds[i], treasury));
                DepositForwarder(payable(forwarder)).initialize(treasury);
                emit Deployed(orderIds[i], forwarder, treasury);
            }
            DepositForwarder(payable(forwarder)).flush(tokens);
        }
    }
}
