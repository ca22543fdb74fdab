// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A Chainlink AggregatorV3-compatible feed for local use: the deployer posts answers.
/// Eight decimals, like Chainlink's fiat feeds. `updatedAt` is given, so tests can post a stale round.
contract TestPriceFeed {
    address public immutable owner;
    uint80 private round;
    int256 private answer;
    uint256 private updated;

    constructor() {
        owner = msg.sender;
    }

    function decimals() external pure returns (uint8) {
        return 8;
    }

    function description() external pure returns (string memory) {
        return "beanpay test feed";
    }

    function setAnswer(int256 newAnswer, uint256 updatedAt) external {
        require(msg.sender == owner, "not owner");
        round += 1;
        answer = newAnswer;
        updated = updatedAt;
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 value, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return (round, answer, updated, updated, round);
    }
}
