"""EVM chains: JSON-RPC and web3 clients, CREATE2 deposit addresses, contract artifacts."""
