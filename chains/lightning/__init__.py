"""Lightning nodes: lnd over its REST API. Nodes only; no knowledge of orders."""
