// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// The token examples/send-transfers.ts deploys on the dev chain: the whole supply goes to the
/// deployer, who then sends transfers that blockhook turns into evm.log and evm.activity webhooks.
contract DemoToken is ERC20 {
    constructor(uint256 initialSupply) ERC20("Demo Token", "DEMO") {
        _mint(msg.sender, initialSupply);
    }
}
