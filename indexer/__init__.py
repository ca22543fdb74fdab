"""Chain followers: header chain, reorg detection, deposit discovery and confirmations, one leader
per chain. Built in the chains/indexer issue."""
