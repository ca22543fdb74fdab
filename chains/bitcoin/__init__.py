"""Bitcoin: a node-agnostic JSON-RPC client, a raw block parser, BIP84 watch-only addresses."""
