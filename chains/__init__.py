"""Chain clients: Bitcoin (JSON-RPC, raw block parsing, BIP84 watch-only addresses) and EVM (web3,
CREATE2 deposit forwarders). Nodes only; no knowledge of orders. Built in the chains/indexer issue."""
