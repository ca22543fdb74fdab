// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Pays ETH through an internal call, as a smart-contract wallet would (tests only).
contract EthPayer {
    function pay(address payable to) external payable {
        (bool ok,) = to.call{value: msg.value}("");
        require(ok, "payment failed");
    }

    /// @notice A payment that reverts after sending: it must never count.
    function payAndRevert(address payable to) external payable {
        (bool ok,) = to.call{value: msg.value}("");
        require(ok && false, "reverted on purpose");
    }
}
