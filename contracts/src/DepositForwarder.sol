// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice The code behind every per-order deposit address (EIP-1167 clones of this contract).
/// A clone is bound to one treasury at deployment by its factory; afterwards anyone may flush it,
/// and ETH and tokens can only ever go to that treasury.
contract DepositForwarder {
    using SafeERC20 for IERC20;

    /// @dev an immutable lives in the implementation's code, so every clone sees the same factory
    address public immutable factory;
    address payable public treasury;

    event Flushed(address indexed treasury, address indexed token, uint256 amount);

    error OnlyFactory();
    error AlreadyInitialized();
    error EthTransferFailed();

    constructor() {
        factory = msg.sender;
    }

    function initialize(address payable treasury_) external {
        if (msg.sender != factory) revert OnlyFactory();
        if (treasury != address(0)) revert AlreadyInitialized();
        treasury = treasury_;
    }

    /// @notice Send all ETH and the whole balance of each token to the treasury. Safe to repeat.
    function flush(address[] calldata tokens) external {
        address payable to = treasury;
        uint256 eth = address(this).balance;
        if (eth > 0) {
            (bool ok,) = to.call{value: eth}("");
            if (!ok) revert EthTransferFailed();
            emit Flushed(to, address(0), eth);
        }
        for (uint256 i = 0; i < tokens.length; i++) {
            uint256 amount = IERC20(tokens[i]).balanceOf(address(this));
            if (amount > 0) {
                IERC20(tokens[i]).safeTransfer(to, amount);
                emit Flushed(to, tokens[i], amount);
            }
        }
    }

    receive() external payable {}
}
